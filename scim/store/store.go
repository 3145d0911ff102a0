package store

import (
	"context"
	"errors"
	"log/slog"
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
