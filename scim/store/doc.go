// Package store is scimd's state store: the SCIM Users, Groups and
// memberships, the bearer tokens, and records owned by other components
// (teammates, pending changes, …), held in memory in copy-on-write B-trees
// (one per lookup order) and journalled through a Backend that makes every
// acknowledged write durable.
//
// Writes run one at a time in a write transaction that changes private
// copies of the trees it touches (so PATCHes to one group are applied as set
// deltas and never lose each other's members). The transaction's changes and
// the audit events it appended are handed to a committer goroutine that
// commits many transactions per fsync (group commit); Write returns only
// once its transaction is durable, and only then do readers see it: a
// Snapshot contains only durable transactions and never changes.
//
// The rules the code relies on (immutable stored values, copy-on-write
// tables, one writer, nothing visible before it is durable, a write that
// fails leaves everything as it was, hooks on the commit path) are listed
// in docs/architecture.md.
//
// The package's files: store.go opens the Store and serves reads;
// load.go rebuilds memory from the Backend's journal at start; txn.go is
// the write transaction, tables.go, memberships.go and fold.go its
// tables and indexes; commit.go runs writes, encodes them and commits them
// in groups; replay.go applies a journal written by another process (a
// standby following its leader); decode.go and types.go are the stored
// values and their codecs; backend.go is the interface that sqlite and
// postgres implement, storetest their shared conformance suite; copy.go
// copies one backend into another (scimd migrate) and deferred.go lets a
// batch of writes share one durable commit (SCIM bulk).
package store
