package review

import (
	"fmt"
	"strings"
	"time"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/reconcile"
)

// Exit statuses of `scimd plan`, in increasing order of precedence.
const (
	// ExitNoChange: the candidate changes nobody's role or access and no
	// group mapping.
	ExitNoChange = 0
	// ExitError: the candidate was refused (does not compile, fails its
	// tests, breaks the contract), could not decide some teammates, or the
	// plan could not be made.
	ExitError = 1
	// ExitChanges: the candidate would change roles, access or group
	// mappings.
	ExitChanges = 2
	// ExitHeld: the changes would be held by the mass-change guard until an
	// admin approves them.
	ExitHeld = 3
)

// PlanRequest is the body of POST /api/v1/plan.
type PlanRequest struct {
	// Files maps paths relative to the policies directory (slash-separated)
	// to their content. Only *.rego, *.json, *.yaml and *.yml files count.
	Files map[string]string `json:"files"`
	// Commit is the git commit the files were read at, when known. It is
	// recorded; it does not change the candidate's revision.
	Commit string `json:"commit,omitempty"`
}

// PlanResult is what POST /api/v1/plan answers for a candidate that passed
// the gate: the reconciler's plan plus what a reviewer needs around it.
type PlanResult struct {
	reconcile.Plan
	// Summary is "+granted ~changed −removed".
	Summary string `json:"summary"`
	// Identical is true when the candidate's files are exactly the live
	// policy's.
	Identical bool `json:"identical"`
	// Digest is the candidate's full SHA-256; Commit the commit the client
	// reported.
	Digest string `json:"digest"`
	Commit string `json:"commit,omitempty"`
	// Files lists the candidate's files; Tests counts the tests it passed;
	// Roles are its roles, highest precedence first.
	Files []string `json:"files"`
	Tests int      `json:"tests"`
	Roles []string `json:"roles"`
	// PlannedAt is when the plan was made; RequestID identifies the request
	// and its policy.planned audit event.
	PlannedAt time.Time `json:"plannedAt"`
	RequestID string    `json:"requestId,omitempty"`
}

// NewPlanResult wraps a plan of candidate.
func NewPlanResult(p *reconcile.Plan, candidate *policy.Set, live *policy.Set, commit string, now time.Time) *PlanResult {
	r := &PlanResult{
		Plan:      *p,
		Summary:   Summary(p.Granted, p.Changed, p.Removed),
		Digest:    candidate.Digest(),
		Commit:    commit,
		Files:     candidate.Files(),
		Tests:     len(candidate.Tests()),
		Roles:     candidate.Roles(),
		PlannedAt: now.UTC(),
	}
	if live != nil && live.Digest() == candidate.Digest() {
		r.Identical = true
	}
	return r
}

// Summary formats counts as "+N ~M −K" (U+2212 MINUS SIGN for removals).
func Summary(granted, changed, removed int) string {
	return fmt.Sprintf("+%d ~%d \u2212%d", granted, changed, removed)
}

// HasChanges reports whether the candidate would change any teammate or
// group mapping.
func (r *PlanResult) HasChanges() bool { return len(r.Changes) > 0 || len(r.Groups) > 0 }

// ExitCode is the exit status `scimd plan` reports for r.
func (r *PlanResult) ExitCode() int {
	switch {
	case len(r.Errors) > 0:
		return ExitError
	case r.WouldHold:
		return ExitHeld
	case r.HasChanges():
		return ExitChanges
	default:
		return ExitNoChange
	}
}

// Refusal is the body of a 422 answer to POST /api/v1/plan: the candidate
// did not pass the gate a reload runs.
type Refusal struct {
	Error string `json:"error"`
	// Stage is the gate step that refused it: read, parse, builtin,
	// compile, test or contract.
	Stage    string `json:"stage"`
	Revision string `json:"revision,omitempty"`
	// Problems locate each reason (file:line, relative to the policies
	// directory).
	Problems []policy.Problem `json:"problems"`
	// FailedTests are the tests that failed or raised an error.
	FailedTests []policy.TestResult `json:"failedTests,omitempty"`
	// Tests counts every test that ran.
	Tests        int    `json:"tests"`
	LiveRevision string `json:"liveRevision,omitempty"`
	Commit       string `json:"commit,omitempty"`
	RequestID    string `json:"requestId,omitempty"`
}

// NewRefusal describes a refused candidate.
func NewRefusal(re *policy.RefusedError, live *policy.Set, commit string) *Refusal {
	out := &Refusal{Error: re.Error(), Stage: string(re.Stage), Revision: re.Revision,
		Problems: append([]policy.Problem{}, re.Problems...), Tests: len(re.Tests), Commit: commit}
	for _, t := range re.Tests {
		if t.Failed() {
			out.FailedTests = append(out.FailedTests, t)
		}
	}
	if live != nil {
		out.LiveRevision = live.Revision()
	}
	return out
}

// stateText describes a teammate state for people: "viewer", "no access",
// "access without a role", with "excluded" and "deleted" marks.
func stateText(s reconcile.State) string {
	var t string
	switch {
	case !s.Exists:
		return "deleted"
	case !s.Access:
		t = "no access"
	case s.Role == "":
		t = "access, no role"
	default:
		t = s.Role
	}
	if s.Excluded {
		t += " (excluded)"
	}
	return t
}

// mappingText describes a group mapping: its role, or "inactive".
func mappingText(m reconcile.GroupMapping) string {
	if !m.Active {
		return "inactive"
	}
	if m.Role == "" {
		return "active, no role"
	}
	return m.Role
}

// Kinds of a teammate change, as the plan sorts and marks them.
const (
	kindRemoved = iota
	kindChanged
	kindExclusion
	kindGranted
	numKinds
)

// diffKind sorts a change: access lost or gained first; then a change of
// exclusion alone (role and access as before), which is not a role change;
// anything else changes the role.
func diffKind(d reconcile.Diff) int {
	switch {
	case d.From.Access && !d.To.Access:
		return kindRemoved
	case !d.From.Access && d.To.Access:
		return kindGranted
	case d.From.Excluded != d.To.Excluded && d.From.Role == d.To.Role:
		return kindExclusion
	default:
		return kindChanged
	}
}

var kindMarks = map[int]string{kindRemoved: "-", kindChanged: "~", kindExclusion: "x", kindGranted: "+"}

func groupMark(g reconcile.GroupChange) string {
	switch {
	case !g.From.Active && g.To.Active:
		return "+"
	case g.From.Active && !g.To.Active:
		return "-"
	default:
		return "~"
	}
}

// sections splits the changes by kind, each in the plan's (user id) order.
func sections(changes []reconcile.Diff) [numKinds][]reconcile.Diff {
	var out [numKinds][]reconcile.Diff
	for _, d := range changes {
		k := diffKind(d)
		out[k] = append(out[k], d)
	}
	return out
}

var sectionTitles = [numKinds]string{
	kindRemoved:   "Lose access",
	kindChanged:   "Change role",
	kindExclusion: "Exclusion from provisioning changes",
	kindGranted:   "Gain access",
}

func short(rev string) string {
	if rev == "" {
		return "(none)"
	}
	return rev
}

// guardText explains what the mass-change guard would do.
func guardText(r *PlanResult) string {
	if r.WouldHold {
		why := fmt.Sprintf("%d demotions of %d teammates exceed the mass-change guard's threshold", r.Demotions, r.Teammates)
		if len(r.HoldReasons) > 0 {
			why = "the mass-change guard " + strings.Join(r.HoldReasons, "; ")
		}
		return "WOULD BE HELD: " + why + "; after the reload nothing changes until an admin runs `scimd changes approve ID`"
	}
	if r.Demotions > 0 {
		return fmt.Sprintf("would apply directly (%d demotions of %d teammates stay under the mass-change threshold)",
			r.Demotions, r.Teammates)
	}
	return "would apply directly (no demotions)"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func joinReasons(rs []string) string { return strings.Join(rs, "; ") }
