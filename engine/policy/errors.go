package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownRole is wrapped by evaluation errors for a decision that names a
// role outside data.scimd.roles. The caller leaves the teammate unchanged.
var ErrUnknownRole = errors.New("role not in data.scimd.roles")

// ErrBadDecision is wrapped by evaluation errors for a decision that does not
// have the shape the policy contract requires.
var ErrBadDecision = errors.New("decision breaks the policy contract")

// ErrNoDecision is wrapped by evaluation errors when data.scimd.teammate is
// undefined for an input. A policy must decide for every teammate.
var ErrNoDecision = errors.New("data.scimd.teammate is undefined")

// Stage names the step of the gate that refused a policy set.
type Stage string

// Gate stages, in the order they run.
const (
	StageRead     Stage = "read"     // the directory could not be read
	StageParse    Stage = "parse"    // a file is not valid Rego v1, JSON or YAML
	StageBuiltin  Stage = "builtin"  // a non-deterministic built-in is used
	StageCompile  Stage = "compile"  // the strict compiler rejected the set
	StageTest     Stage = "test"     // a *_test.rego test failed, or there are none
	StageContract Stage = "contract" // the policy contract is broken
)

// Problem is one reason for a refusal, located in a file when possible.
type Problem struct {
	// File is relative to the policies directory, slash-separated.
	File    string `json:"file,omitempty"`
	Row     int    `json:"row,omitempty"`
	Col     int    `json:"col,omitempty"`
	Message string `json:"message"`
}

// Location is "file:row", "file" or "" when the problem has no location.
func (p Problem) Location() string {
	switch {
	case p.File != "" && p.Row > 0:
		return fmt.Sprintf("%s:%d", p.File, p.Row)
	default:
		return p.File
	}
}

// String is "file:row: message", or the message alone.
func (p Problem) String() string {
	if loc := p.Location(); loc != "" {
		return loc + ": " + p.Message
	}
	return p.Message
}

// RefusedError is returned when a policy set fails the gate. The previously
// active set, if any, stays active.
type RefusedError struct {
	// Stage is the gate step that refused the set.
	Stage Stage
	// Revision of the refused set ("" when it could not be read).
	Revision string
	// Problems lists the reasons, with file:line where known.
	Problems []Problem
	// Tests holds the test results when the tests ran.
	Tests []TestResult
}

// maxProblemsInMessage bounds the length of Error().
const maxProblemsInMessage = 10

// Error summarises the refusal on one line.
func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy refused at %s stage", e.Stage)
	if e.Revision != "" {
		fmt.Fprintf(&b, " (revision %s)", e.Revision)
	}
	for i, p := range e.Problems {
		if i == maxProblemsInMessage {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-i)
			break
		}
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Reasons returns the problems as "file:line: message" strings.
func (e *RefusedError) Reasons() []string {
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p.String()
	}
	return out
}

func refuse(stage Stage, rev string, problems ...Problem) *RefusedError {
	return &RefusedError{Stage: stage, Revision: rev, Problems: problems}
}

// UnknownRoleError is a decision naming a role outside data.scimd.roles.
// It wraps ErrUnknownRole.
type UnknownRoleError struct {
	Role  string
	Roles []string
}

func (e *UnknownRoleError) Error() string {
	return fmt.Sprintf("%s: %q (roles: %v)", ErrUnknownRole, e.Role, e.Roles)
}

func (e *UnknownRoleError) Unwrap() error { return ErrUnknownRole }
