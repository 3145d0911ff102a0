package policywatch

import (
	"time"

	"github.com/scimd/scimd/engine/policy"
)

// States of the manager, as reported by Status.
const (
	// StateNone: no policy set has been loaded or refused yet.
	StateNone = "none"
	// StateActive: the last reload activated a set, or found the directory
	// unchanged from the active set.
	StateActive = "active"
	// StateRefused: the last reload was refused. The previous set, if any,
	// is still active (Revision), and LastError says why.
	StateRefused = "refused"
)

// Status is what GET /api/v1/policy reports.
type Status struct {
	// Dir is the watched policies directory.
	Dir string `json:"dir"`
	// State is StateNone, StateActive or StateRefused.
	State string `json:"status"`
	// Revision is the active set's revision, "" when none is active.
	Revision string `json:"revision,omitempty"`
	// Commit is the git commit of the active set, if any.
	Commit string `json:"commit,omitempty"`
	// LoadedAt is when the active set was activated.
	LoadedAt time.Time `json:"loadedAt,omitzero"`
	// Trigger is what activated the active set: startup, watch, resync, or
	// the manual trigger given to Reload.
	Trigger string `json:"trigger,omitempty"`
	// Files and Tests describe the active set.
	Files []string `json:"files,omitempty"`
	Tests int      `json:"tests"`
	// LastError is the last refusal since the active set was activated.
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// RefusedRevision is the revision of the last refused set.
	RefusedRevision string `json:"refusedRevision,omitempty"`
	// Problems locate the last refusal (file:line).
	Problems []policy.Problem `json:"problems,omitempty"`
	// Evaluation tells how OPA evaluates the active set's decisions (see
	// policy.Set.Evaluation).
	Evaluation *policy.Evaluation `json:"evaluation,omitempty"`
}
