package store

import (
	"context"
	"time"

	"github.com/scimd/scimd/audit"
)

// Backend is the durable journal under the in-memory state. Implementations
// (SQLite by default; PostgreSQL for several replicas) must pass the
// conformance suite in package storetest.
type Backend interface {
	// Load calls fn for every stored row, in any order, and returns the
	// state needed to continue the audit chain.
	Load(ctx context.Context, fn func(Row) error) (LoadState, error)
	// Commit durably applies the batches, in order, as one atomic
	// transaction. When it returns nil the batches survive a crash.
	Commit(ctx context.Context, batches []*Batch) error
	// AuditEvents returns stored audit events matching q, in sequence order.
	AuditEvents(ctx context.Context, q AuditQuery) ([]audit.Event, error)
	// Close releases the backend.
	Close() error
}

// Row is one persisted object: Data is its JSON encoding, nil for a
// deletion.
type Row struct {
	Table string
	Key   string
	Data  []byte
}

// Batch is everything one write transaction persists.
type Batch struct {
	Rows   []Row
	Events []audit.Event
}

// LoadState is what a backend reports at load time.
type LoadState struct {
	// LastSeq and LastHash are those of the newest audit event (0 and
	// audit.GenesisHash for an empty log).
	LastSeq  uint64
	LastHash string
}

// AuditQuery selects audit events. Zero fields do not filter.
type AuditQuery struct {
	// AfterSeq returns events with Seq > AfterSeq (a cursor).
	AfterSeq uint64
	// Limit caps the number of events (0: no limit).
	Limit int
	// Types keeps events whose type is one of these, or starts with one of
	// them followed by a dot ("scim.user" matches "scim.user.created").
	Types []string
	// TargetID keeps events whose target id is this.
	TargetID string
	// Actor keeps events whose actor name is this.
	Actor string
	// Since and Until bound the event time (inclusive, exclusive).
	Since, Until time.Time
}
