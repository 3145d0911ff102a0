package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Access events: token lifecycle beyond creation and revocation, and
// requests refused for want of a scope.
const (
	TypeTokenRotated = "token.rotated"
	TypeTokenExpired = "token.expired"
	// TypeAccessDenied is a request refused with 403: its token lacks the
	// scope the route needs.
	TypeAccessDenied = "access.denied"
	// OAuth 2.0 clients.
	TypeClientCreated       = "client.created"
	TypeClientRevoked       = "client.revoked"
	TypeClientSecretAdded   = "client.secret.added"
	TypeClientSecretRemoved = "client.secret.removed"
)

// Event types. The type names are stable: queries, exports and SIEM rules
// depend on them (see docs/audit.md).
const (
	TypeUserCreated     = "scim.user.created"
	TypeUserReplaced    = "scim.user.replaced"
	TypeUserPatched     = "scim.user.patched"
	TypeUserDeleted     = "scim.user.deleted"
	TypeGroupCreated    = "scim.group.created"
	TypeGroupReplaced   = "scim.group.replaced"
	TypeGroupPatched    = "scim.group.patched"
	TypeGroupDeleted    = "scim.group.deleted"
	TypeTokenCreated    = "token.created"
	TypeTokenRevoked    = "token.revoked"
	TypePolicyActivated = "policy.activated"
	TypePolicyRefused   = "policy.refused"
	TypePolicyPlanned   = "policy.planned"
	// TypePolicyWhatIf records a what-if query: a hypothetical change to
	// one teammate, evaluated and never applied.
	TypePolicyWhatIf = "policy.whatif"
	// TypeShadowRefused records a shadow policy set the gate refused.
	TypeShadowRefused = "policy.shadow.refused"
	// TypeShadowSet and TypeShadowCleared record a shadow policy set
	// being evaluated beside the live one, and no longer.
	TypeShadowSet     = "policy.shadow.set"
	TypeShadowCleared = "policy.shadow.cleared"

	// Reconciler events.
	TypeDecision            = "decision.made"
	TypeDecisionSummary     = "decision.summary"
	TypeTeammateCreated     = "teammate.created"
	TypeTeammateRoleChanged = "teammate.role.changed"
	TypeAccessGranted       = "teammate.access.granted"
	TypeAccessRemoved       = "teammate.access.removed"
	TypeTeammateExcluded    = "teammate.excluded"
	TypeTeammateIncluded    = "teammate.included"
	TypeTeammateDeleted     = "teammate.deleted"
	TypeRoleManual          = "teammate.role.manual"
	TypeRoleReverted        = "teammate.role.reverted"
	TypeChangeHeld          = "change.held"
	TypeChangeApproved      = "change.approved"
	TypeChangeRejected      = "change.rejected"
	TypePolicyError         = "policy.error"
	// TypeExcludedUserDeleted: the SCIM user of an excluded teammate was
	// deleted, and the teammate KEEPS its role and access.
	TypeExcludedUserDeleted = "teammate.excluded.user_deleted"
	// TypeRoleManualRefused: a manual role change on a managed teammate
	// was refused (the IdP and the policy decide its role).
	TypeRoleManualRefused = "teammate.role.manual_refused"
	// TypeDriftObserved: the application reported a role the policy did
	// not decide; scimd records it and publishes only the correction.
	TypeDriftObserved = "teammate.drift.observed"

	// Store events.
	// TypeStoreBackup: a backup of the store was made through the admin
	// API. TypeStoreRestored: the store was restored from a backup, and
	// the feed began a new epoch.
	TypeStoreBackup   = "store.backup"
	TypeStoreRestored = "store.restored"
)

// Actor is who caused an event: an IdP token, an admin, the reconciler or the
// policy engine.
type Actor struct {
	// Kind is "token", "admin", "system" or "policy".
	Kind string `json:"kind"`
	// Name is the token name, admin name, or component name.
	Name string `json:"name"`
}

// Target is what an event is about.
type Target struct {
	// Type is "User", "Group", "Teammate", "Token", "Policy", "Change", …
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	// Name is a human-readable name: userName, displayName, token name.
	Name string `json:"name,omitempty"`
}

// Change is a from → to summary of what an event changed. Either side may be
// nil (creation, deletion).
type Change struct {
	From any `json:"from,omitempty"`
	To   any `json:"to,omitempty"`
}

// Event is one audit record.
//
// Seq, PrevHash and Hash are assigned by the store when the event is
// appended, in the same transaction as the change it records.
type Event struct {
	Seq            uint64         `json:"seq"`
	Time           time.Time      `json:"time"`
	Type           string         `json:"type"`
	Actor          Actor          `json:"actor"`
	Target         Target         `json:"target"`
	Change         *Change        `json:"change,omitempty"`
	Reasons        []string       `json:"reasons,omitempty"`
	PolicyRevision string         `json:"policyRevision,omitempty"`
	DecisionID     string         `json:"decisionId,omitempty"`
	RequestID      string         `json:"requestId,omitempty"`
	Details        map[string]any `json:"details,omitempty"`
	PrevHash       string         `json:"prevHash"`
	Hash           string         `json:"hash"`
}

// UnmarshalJSON decodes an event with every number in Details and Change
// kept as written (json.Number), never as float64: the hash covers the
// numbers' text, which a float64 cannot always carry ("12.50", integers
// above 2^53). Any decoding of an Event, from any store or over HTTP, so
// reads back what was sealed.
func (e *Event) UnmarshalJSON(b []byte) error {
	type fields Event // without this method
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var f fields
	if err := dec.Decode(&f); err != nil {
		return err
	}
	*e = Event(f)
	return nil
}

// GenesisHash is the PrevHash of the first event of a log.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// ComputeHash returns the hex SHA-256 of the event's canonical encoding:
// the event with Hash empty (PrevHash and Seq included) encoded as JSON,
// decoded into generic values and encoded again, so that object keys are
// sorted at every level. An event therefore hashes the same whether its
// Details hold Go structs (when it is written) or decoded JSON (when it is
// read back).
func ComputeHash(e Event) (string, error) {
	e.Hash = ""
	e.Time = e.Time.UTC()
	bp := hashBuffers.Get().(*[]byte)
	b, err := appendCanonicalEvent((*bp)[:0], e)
	if err != nil {
		return "", fmt.Errorf("audit: encode event %d for hashing: %w", e.Seq, err)
	}
	sum := sha256.Sum256(b)
	if cap(b) <= maxPooledHashBuffer {
		*bp = b
		hashBuffers.Put(bp)
	}
	return hex.EncodeToString(sum[:]), nil
}

// hashBuffers recycles the buffers events are encoded into for hashing.
var hashBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooledHashBuffer is the largest hashing buffer kept for reuse.
const maxPooledHashBuffer = 1 << 20

func canonicalJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	return json.Marshal(generic)
}

// Seal assigns seq, prevHash and the resulting hash to e, and returns it.
// Times are normalised to UTC with microsecond precision so that the event
// hashes the same after a round trip through any store.
func Seal(e Event, seq uint64, prevHash string) (Event, error) {
	e.Seq = seq
	e.PrevHash = prevHash
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	h, err := ComputeHash(e)
	if err != nil {
		return Event{}, err
	}
	e.Hash = h
	return e, nil
}

// BrokenLinkError reports the first event at which a chain fails to verify.
type BrokenLinkError struct {
	Seq    uint64
	Reason string
}

func (e *BrokenLinkError) Error() string {
	return fmt.Sprintf("audit chain broken at event %d: %s", e.Seq, e.Reason)
}

// Verifier checks events one by one, in sequence order.
type Verifier struct {
	prevHash string
	prevSeq  uint64
	count    uint64
}

// NewVerifier returns a Verifier expecting the chain to start at the genesis
// hash.
func NewVerifier() *Verifier { return &Verifier{prevHash: GenesisHash} }

// Count is how many events have verified so far.
func (v *Verifier) Count() uint64 { return v.count }

// Next checks e against the previous event. It returns a *BrokenLinkError
// for the first event that does not verify.
func (v *Verifier) Next(e Event) error {
	if v.count > 0 && e.Seq != v.prevSeq+1 {
		return &BrokenLinkError{Seq: e.Seq, Reason: fmt.Sprintf("sequence gap after %d", v.prevSeq)}
	}
	if e.PrevHash != v.prevHash {
		return &BrokenLinkError{Seq: e.Seq, Reason: "previous hash does not match the preceding event"}
	}
	h, err := ComputeHash(e)
	if err != nil {
		return &BrokenLinkError{Seq: e.Seq, Reason: err.Error()}
	}
	if h != e.Hash {
		return &BrokenLinkError{Seq: e.Seq, Reason: "content does not match its hash (edited)"}
	}
	v.prevHash, v.prevSeq = e.Hash, e.Seq
	v.count++
	return nil
}
