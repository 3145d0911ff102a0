package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/audit"
)

// Change is one object changed by a committed transaction. Before is nil
// for an insert, After is nil for a delete. The objects are *Resource,
// *Membership, *Token or *Record and must not be modified.
type Change struct {
	Table  string
	Before any
	After  any
}

// CommitInfo describes one durable write transaction.
type CommitInfo struct {
	// Commit is the transaction's number, increasing by one per write.
	Commit  uint64
	Changes []Change
	Events  []audit.Event
	// Feed holds the feed entries the transaction appended; FeedSeq is the
	// feed's head after it.
	Feed    []FeedEntry
	FeedSeq uint64
}

// RecordDecoder decodes a record value of one table from its JSON.
type RecordDecoder func(data []byte) (any, error)

// Options configure a Store.
type Options struct {
	// Backend is the durable journal. Required.
	Backend Backend
	// Records maps each record table name to the decoder of its values.
	// Open calls decoders from several goroutines at once.
	Records map[string]RecordDecoder
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the store's metrics when not nil.
	Registerer prometheus.Registerer
	// MaxBatch caps how many transactions share one commit (default 512).
	MaxBatch int
	// CommitDelay is the longest the committer waits for transactions that
	// other writers are still building before it commits a batch (default
	// DefaultCommitDelay; negative: never wait). It waits only while more
	// writers are in Write than the batch holds, so a lone writer never
	// waits.
	CommitDelay time.Duration
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
}

// DefaultCommitDelay is the default Options.CommitDelay: a fraction of an
// fsync, so that concurrent writers share commits (fewer fsyncs and fewer
// journal pages per write) at a small cost in latency.
const DefaultCommitDelay = 500 * time.Microsecond

// Store is the state store. It is safe for concurrent use.
type Store struct {
	backend     Backend
	codecs      map[string]RecordDecoder
	tableNames  map[string]string // the keys of codecs, to share them
	log         *slog.Logger
	clock       func() time.Time
	maxBatch    int
	commitDelay time.Duration
	// writers counts the goroutines inside Write; the committer waits for
	// their transactions (at most commitDelay) to commit them together.
	writers atomic.Int64

	writeMu  sync.Mutex // serialises write transactions
	lastSeq  uint64     // audit sequence, guarded by writeMu
	lastHash string     // audit chain head, guarded by writeMu
	lastFeed uint64     // feed sequence, guarded by writeMu
	commitNo uint64     // transaction number, guarded by writeMu
	closed   bool       // guarded by writeMu
	wrote    bool       // a transaction was committed here; guarded by writeMu
	// head holds every write so far, durable or not: the writer's tables,
	// never shown to readers. pub holds a copy of each, made when it last
	// changed, for snapshots. Both are guarded by writeMu.
	head, pub tables
	failed    atomic.Pointer[error]

	pending chan *pendingCommit
	durable atomic.Pointer[Snapshot]
	done    chan struct{}

	hooksMu sync.RWMutex
	hooks   []func(CommitInfo)

	metrics *metrics
}

type pendingCommit struct {
	info  CommitInfo
	snap  *tables // what readers see once the commit is durable
	batch *Batch  // encoded by the writer before it published anything
	errCh chan error
}

type metrics struct {
	commits      prometheus.Counter
	transactions prometheus.Counter
	commitTime   prometheus.Histogram
	batchSize    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scimd_store_commits_total", Help: "Durable backend commits (each one fsync or more)."}),
		transactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scimd_store_transactions_total", Help: "Write transactions made durable."}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "scimd_store_commit_seconds", Help: "Time to durably commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "scimd_store_commit_batch_transactions", Help: "Write transactions sharing one commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
	}
	if reg != nil {
		reg.MustRegister(m.commits, m.transactions, m.commitTime, m.batchSize)
	}
	return m
}

// Open loads the backend's rows into memory and starts the committer.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Backend == nil {
		return nil, errors.New("store: no backend")
	}
	s := &Store{
		backend:     opts.Backend,
		codecs:      opts.Records,
		log:         opts.Logger,
		clock:       opts.Clock,
		maxBatch:    opts.MaxBatch,
		commitDelay: opts.CommitDelay,
		pending:     make(chan *pendingCommit, 1024),
		done:        make(chan struct{}),
		metrics:     newMetrics(opts.Registerer),
	}
	if s.codecs == nil {
		s.codecs = map[string]RecordDecoder{}
	}
	s.tableNames = make(map[string]string, len(s.codecs))
	for name := range s.codecs {
		s.tableNames[name] = name
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.maxBatch <= 0 {
		s.maxBatch = 512
	}
	if s.commitDelay == 0 {
		s.commitDelay = DefaultCommitDelay
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	snap := s.pub
	s.durable.Store(&Snapshot{reader: reader{t: &snap}, FeedSeq: s.lastFeed})
	go s.commitLoop()
	return s, nil
}

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

// Read returns a snapshot of durable state.
func (s *Store) Read() *Snapshot { return s.durable.Load() }

// OnCommit registers fn to be called, in commit order, after each write
// transaction becomes durable. fn runs on the committer goroutine: it must
// be quick (enqueue work, do not block).
func (s *Store) OnCommit(fn func(CommitInfo)) {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	s.hooks = append(s.hooks, fn)
}

// Write runs fn in a write transaction. When fn returns nil, the
// transaction's changes and audit events are committed durably before Write
// returns; when fn returns an error nothing changes. Transactions that
// change nothing return at once.
func (s *Store) Write(ctx context.Context, fn func(*WriteTxn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if errp := s.failed.Load(); errp != nil {
		return *errp
	}
	s.writers.Add(1)
	defer s.writers.Add(-1)
	s.writeMu.Lock()
	if s.closed {
		s.writeMu.Unlock()
		return ErrClosed
	}
	w := &WriteTxn{store: s, now: s.clock().UTC().Truncate(time.Microsecond), own: s.head}
	w.reader.t = &w.own
	// On every early return the transaction's private copies of the tables
	// it changed are dropped: the store keeps its head.
	if err := fn(w); err != nil {
		s.writeMu.Unlock()
		return err
	}
	changes := w.netChanges()
	if len(changes) == 0 && len(w.events) == 0 && len(w.feed) == 0 {
		s.writeMu.Unlock()
		return nil
	}
	events := make([]audit.Event, len(w.events))
	hash := s.lastHash
	for i, e := range w.events {
		sealed, err := audit.Seal(e, s.lastSeq+uint64(i)+1, hash)
		if err != nil { // the chain's head stays where it was
			s.writeMu.Unlock()
			return err
		}
		events[i] = sealed
		hash = sealed.Hash
	}
	feed := w.feed
	for i := range feed {
		feed[i].Seq = s.lastFeed + uint64(i) + 1
	}
	info := CommitInfo{Commit: s.commitNo + 1, Events: events, Feed: feed, FeedSeq: s.lastFeed + uint64(len(feed)), Changes: changes}
	// Everything is encoded before anything is published: a value that
	// cannot be encoded fails its own write and leaves the store as it was.
	batch, err := encodeBatch(info)
	if err != nil {
		s.writeMu.Unlock()
		return err
	}
	s.lastHash = hash
	s.lastSeq += uint64(len(events))
	s.lastFeed = info.FeedSeq
	s.commitNo = info.Commit
	s.wrote = true
	s.adopt(w)
	snap := s.pub
	p := &pendingCommit{info: info, snap: &snap, batch: batch, errCh: make(chan error, 1)}
	s.pending <- p
	s.writeMu.Unlock()
	if d := deferredFrom(ctx); d != nil {
		d.add(p.errCh)
		return nil
	}
	return <-p.errCh
}

// adopt makes the tables w changed the writer's head and publishes a copy
// of each for snapshots. The caller holds writeMu.
func (s *Store) adopt(w *WriteTxn) {
	if w.owned.users {
		s.head.users = w.own.users
		s.pub.users = s.head.users.copy()
	}
	if w.owned.groups {
		s.head.groups = w.own.groups
		s.pub.groups = s.head.groups.copy()
	}
	if w.owned.members {
		s.head.members = w.own.members
		s.pub.members = s.head.members.copy()
	}
	if w.owned.tokens {
		s.head.tokens = w.own.tokens
		s.pub.tokens = s.head.tokens.copy()
	}
	if w.owned.records {
		s.head.records = w.own.records
		s.pub.records = s.head.records.copy()
	}
}

// Close waits for queued commits, stops the committer and closes the
// backend. Writes after Close fail with ErrClosed.
func (s *Store) Close() error {
	s.writeMu.Lock()
	if s.closed {
		s.writeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.pending)
	s.writeMu.Unlock()
	<-s.done
	return s.backend.Close()
}

// AuditEvents queries the durable audit log.
func (s *Store) AuditEvents(ctx context.Context, q AuditQuery) ([]audit.Event, error) {
	return s.backend.AuditEvents(ctx, q)
}

func (s *Store) commitLoop() {
	defer close(s.done)
	var timer *time.Timer
	for first := range s.pending {
		group := []*pendingCommit{first}
	drain:
		for len(group) < s.maxBatch {
			select {
			case p, ok := <-s.pending:
				if !ok {
					break drain
				}
				group = append(group, p)
			default:
				break drain
			}
		}
		// Other writers are building transactions: give them a moment to
		// join this commit (group commit under load), but never longer
		// than commitDelay, and not at all for a lone writer.
		if s.commitDelay > 0 && len(group) < s.maxBatch && s.writers.Load() > int64(len(group)) {
			if timer == nil {
				timer = time.NewTimer(s.commitDelay)
			} else {
				timer.Reset(s.commitDelay)
			}
		wait:
			for len(group) < s.maxBatch && s.writers.Load() > int64(len(group)) {
				select {
				case p, ok := <-s.pending:
					if !ok {
						break wait
					}
					group = append(group, p)
				case <-timer.C:
					break wait
				}
			}
			timer.Stop()
		}
		s.commitGroup(group)
	}
}

func (s *Store) commitGroup(group []*pendingCommit) {
	if errp := s.failed.Load(); errp != nil {
		for _, p := range group {
			p.errCh <- *errp
		}
		return
	}
	batches := make([]*Batch, len(group))
	for i, p := range group {
		batches[i] = p.batch
	}
	start := time.Now()
	err := s.backend.Commit(context.Background(), batches)
	s.metrics.commitTime.Observe(time.Since(start).Seconds())
	if err != nil {
		// Memory is now ahead of disk: refuse all further writes rather than
		// acknowledge anything that might not be durable. Readers keep the
		// last durable snapshot.
		err = fmt.Errorf("%w: commit: %w", ErrUnavailable, err)
		s.failed.Store(&err)
		s.log.Error("store commit failed; writes disabled until restart", "err", err)
		for _, p := range group {
			p.errCh <- err
		}
		return
	}
	s.metrics.commits.Inc()
	s.metrics.transactions.Add(float64(len(group)))
	s.metrics.batchSize.Observe(float64(len(group)))
	last := group[len(group)-1]
	s.durable.Store(&Snapshot{reader: reader{t: last.snap}, Commit: last.info.Commit, FeedSeq: last.info.FeedSeq})
	s.hooksMu.RLock()
	hooks := s.hooks
	s.hooksMu.RUnlock()
	for _, p := range group {
		for _, h := range hooks {
			h(p.info)
		}
		p.errCh <- nil
	}
}

// Feed returns durable feed entries with Seq > after, in order.
func (s *Store) Feed(ctx context.Context, after uint64, limit int) ([]FeedEntry, error) {
	return s.backend.FeedEntries(ctx, after, limit)
}

// Failed reports the commit error that disabled writes, or nil.
func (s *Store) Failed() error {
	if errp := s.failed.Load(); errp != nil {
		return *errp
	}
	return nil
}

func encodeBatch(info CommitInfo) (*Batch, error) {
	b := &Batch{Events: info.Events, Feed: info.Feed, Rows: make([]Row, 0, len(info.Changes)),
		EventData: make([][]byte, len(info.Events)), FeedData: make([][]byte, len(info.Feed))}
	for i, e := range info.Events {
		data, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("store: encode audit event %d: %w", e.Seq, err)
		}
		b.EventData[i] = data
	}
	for i, f := range info.Feed {
		data, err := json.Marshal(f)
		if err != nil {
			return nil, fmt.Errorf("store: encode feed entry %d: %w", f.Seq, err)
		}
		b.FeedData[i] = data
	}
	for _, c := range info.Changes {
		obj := c.After
		if obj == nil {
			obj = c.Before
		}
		key, data, err := encodeObject(c.Table, obj)
		if err != nil {
			return nil, err
		}
		if c.After == nil {
			data = nil
		}
		b.Rows = append(b.Rows, Row{Table: c.Table, Key: key, Data: data})
	}
	return b, nil
}

func encodeObject(table string, obj any) (string, []byte, error) {
	var key string
	var v any = obj
	switch o := obj.(type) {
	case *Resource:
		key = o.ID
	case *Membership:
		key = o.GroupID + "/" + o.MemberID
	case *Token:
		key = o.Name
	case *Record:
		key = o.Table + "/" + o.Key
		raw, err := json.Marshal(o.Value)
		if err != nil {
			return "", nil, fmt.Errorf("store: encode record %s: %w", key, err)
		}
		v = recordEnvelope{Table: o.Table, Key: o.Key, Value: raw}
	default:
		return "", nil, fmt.Errorf("store: cannot persist %T in %s", obj, table)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return "", nil, fmt.Errorf("store: encode %s/%s: %w", table, key, err)
	}
	return key, data, nil
}
