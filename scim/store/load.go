package store

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/scimd/scimd/audit"
)

// loadBatch is how many rows a load worker decodes at a time.
const loadBatch = 512

// load reads every backend row into memory. Decoding JSON is spread over
// GOMAXPROCS workers while one goroutine collects the objects per table;
// then each table's trees are built at once from its sorted objects (one
// goroutine per table). At startup this is most of the time to ready.
func (s *Store) load(ctx context.Context) error {
	var (
		firstErr error
		errOnce  sync.Once
		failed   atomic.Bool
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; failed.Store(true) })
	}
	type decoded struct {
		table string
		obj   any
	}
	raw := make(chan []Row, 4)
	objs := make(chan []decoded, 4)
	var workers sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		workers.Go(func() {
			dec := newRowDecoder()
			for rows := range raw {
				if failed.Load() {
					continue
				}
				out := make([]decoded, 0, len(rows))
				for _, row := range rows {
					obj, err := s.decodeRow(dec, row)
					if err != nil {
						fail(err)
						break
					}
					if obj != nil {
						out = append(out, decoded{row.Table, obj})
					}
				}
				objs <- out
			}
		})
	}
	var (
		n                  int
		users, groups      []*Resource
		members            []*Membership
		tokens             []*Token
		records            []*Record
		collected          = make(chan struct{})
		unknownObjectError error
	)
	go func() {
		defer close(collected)
		for batch := range objs {
			n += len(batch)
			for _, d := range batch {
				switch o := d.obj.(type) {
				case *Resource:
					if d.table == TableGroups {
						groups = append(groups, o)
					} else {
						users = append(users, o)
					}
				case *Membership:
					members = append(members, o)
				case *Token:
					tokens = append(tokens, o)
				case *Record:
					records = append(records, o)
				default:
					unknownObjectError = fmt.Errorf("store: load: unexpected %T", d.obj)
				}
			}
		}
	}()
	rows := make([]Row, 0, loadBatch)
	st, err := s.backend.Load(ctx, func(row Row) error {
		if failed.Load() {
			return firstErr
		}
		rows = append(rows, row)
		if len(rows) == loadBatch {
			raw <- rows
			rows = make([]Row, 0, loadBatch)
		}
		return nil
	})
	if len(rows) > 0 {
		raw <- rows
	}
	close(raw)
	workers.Wait()
	close(objs)
	<-collected
	if failed.Load() {
		err = firstErr
	}
	if err == nil {
		err = unknownObjectError
	}
	if err != nil {
		return fmt.Errorf("store: load: %w", err)
	}
	var build sync.WaitGroup
	build.Go(func() { s.head.users = loadResourceTable(users) })
	build.Go(func() { s.head.groups = loadResourceTable(groups) })
	build.Go(func() { s.head.members = loadMemberships(members) })
	build.Go(func() { s.head.tokens = loadTokenTable(tokens) })
	build.Go(func() { s.head.records = &recordTable{tree: loadTree(records, compareRecord)} })
	build.Wait()
	// Memberships and records (teammates are keyed by user id) refer to
	// resources by id: share the resources' id strings.
	noRun := func(*Membership) string { return "" }
	build.Go(func() {
		shareIDs(s.head.members.byMember, noRun, func(m *Membership) string { return m.MemberID },
			func(m *Membership, id string) { m.MemberID = id }, s.head.users.byID)
	})
	build.Go(func() {
		shareIDs(s.head.members.byGroup, noRun, func(m *Membership) string { return m.GroupID },
			func(m *Membership, id string) { m.GroupID = id }, s.head.groups.byID)
	})
	build.Go(func() {
		shareIDs(s.head.records.tree, func(r *Record) string { return r.Table }, func(r *Record) string { return r.Key },
			func(r *Record, id string) { r.Key = id }, s.head.users.byID)
	})
	build.Wait()
	s.pub = tables{users: s.head.users.copy(), groups: s.head.groups.copy(), members: s.head.members.copy(),
		tokens: s.head.tokens.copy(), records: s.head.records.copy()}
	s.lastSeq, s.lastHash, s.lastFeed = st.LastSeq, st.LastHash, st.LastFeedSeq
	if s.lastHash == "" {
		s.lastHash = audit.GenesisHash
	}
	s.log.Debug("store loaded", "rows", n, "auditSeq", st.LastSeq)
	return nil
}

type recordEnvelope struct {
	Table string          `json:"table"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// internKind returns k as one of the Kind constants when it equals one.
func internKind(k Kind) Kind {
	switch k {
	case KindUser:
		return KindUser
	case KindGroup:
		return KindGroup
	}
	return k
}

// decodeRow decodes a stored row: with dec when it can, else (and always
// for what dec does not handle) with encoding/json, to the same result.
func (s *Store) decodeRow(dec *rowDecoder, row Row) (any, error) {
	var obj any
	switch row.Table {
	case TableUsers, TableGroups:
		if r, ok := dec.resource(row.Data); ok {
			r.Kind = internKind(r.Kind)
			return r, nil
		}
		obj = &Resource{}
	case TableMemberships:
		if m, ok := dec.membership(row.Data); ok {
			m.MemberKind = internKind(m.MemberKind)
			return m, nil
		}
		obj = &Membership{}
	case TableTokens:
		obj = &Token{}
	case TableRecords:
		if env, ok := dec.recordEnvelope(row.Data); ok {
			if rec, err := s.decodeRecord(env); err == nil {
				return rec, nil
			}
		}
		var env recordEnvelope
		if err := json.Unmarshal(row.Data, &env); err != nil {
			return nil, fmt.Errorf("store: decode record %s: %w", row.Key, err)
		}
		return s.decodeRecord(env)
	default:
		return nil, fmt.Errorf("store: unknown table %q in backend", row.Table)
	}
	if err := json.Unmarshal(row.Data, obj); err != nil {
		return nil, fmt.Errorf("store: decode %s/%s: %w", row.Table, row.Key, err)
	}
	// Share the kind names rather than keep a decoded copy in every object.
	switch o := obj.(type) {
	case *Resource:
		o.Kind = internKind(o.Kind)
	case *Membership:
		o.MemberKind = internKind(o.MemberKind)
	}
	return obj, nil
}

// decodeRecord decodes a record's value with its table's decoder. It
// returns nil for a table no decoder is registered for.
func (s *Store) decodeRecord(env recordEnvelope) (any, error) {
	dec, ok := s.codecs[env.Table]
	if !ok {
		// A table no component claims any more: keep it on disk, skip it.
		s.log.Warn("store: skipping record of unregistered table", "table", env.Table, "key", env.Key)
		return nil, nil
	}
	v, err := dec(env.Value)
	if err != nil {
		return nil, fmt.Errorf("store: decode record %s/%s: %w", env.Table, env.Key, err)
	}
	return &Record{Table: s.tableNames[env.Table], Key: env.Key, Value: v}, nil
}
