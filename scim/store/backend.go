package store

import (
	"context"
	"encoding/json"
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
	// FeedEntries returns up to limit feed entries with Seq > after, in
	// sequence order (limit <= 0: no limit).
	FeedEntries(ctx context.Context, after uint64, limit int) ([]FeedEntry, error)
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
	Feed   []FeedEntry
	// EventData and FeedData are the JSON encodings (json.Marshal) of
	// Events and Feed, index for index, made by the store off the commit
	// path; a backend stores them rather than encoding again. They may be
	// nil in a Batch built elsewhere.
	EventData [][]byte
	FeedData  [][]byte
}

// FeedEntry is one entry of the change feed: an ordered, durable record of
// an applied change that applications follow. Seq increases by one per
// entry, with no gaps.
type FeedEntry struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Key identifies the subject (a teammate id).
	Key string `json:"key"`
	// Type names the change (e.g. "teammate.role.changed").
	Type string `json:"type"`
	// Data is the entry's JSON payload.
	Data json.RawMessage `json:"data"`
}

// LoadState is what a backend reports at load time.
type LoadState struct {
	// LastSeq and LastHash are those of the newest audit event (0 and
	// audit.GenesisHash for an empty log).
	LastSeq  uint64
	LastHash string
	// LastFeedSeq is the newest feed entry's sequence number (0: none).
	LastFeedSeq uint64
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
