package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
)

// Channel is the LISTEN/NOTIFY channel a commit notifies with its journal
// sequence number.
const Channel = "scimd_journal"

// ErrFenced is returned by Commit when another process has become leader
// since this one was: its write is refused, so that two leaders can never
// both extend the audit chain.
var ErrFenced = errors.New("postgres: fenced: another scimd is the leader now")

// Backend is a store.Backend over one PostgreSQL database.
type Backend struct {
	pool *pgxpool.Pool
	// epoch, when not 0, is the leader epoch every Commit checks inside
	// its transaction (Fence sets it).
	epoch atomic.Int64
	// journalSeq is the last journal entry written or loaded.
	journalSeq atomic.Uint64
	// heads are the audit and feed heads after the last commit (or load),
	// written into each journal entry for standbys. Only the committer
	// (or, before it runs, Load) uses them.
	heads store.LoadState
}

var _ store.Backend = (*Backend)(nil)

// Open connects to the database at url (postgres://…), creating or
// migrating the schema as needed. A schema newer than this build knows is
// refused with ErrSchemaTooNew.
func Open(ctx context.Context, url string) (*Backend, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: database URL: %w", redact(err))
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", Describe(url), err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Backend{pool: pool}, nil
}

// redact keeps a URL parse error from repeating the password.
func redact(err error) error {
	return errors.New(strings.SplitN(err.Error(), "://", 2)[0] + ": cannot parse the URL")
}

// Describe returns url without its password, for logs and messages.
func Describe(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "postgres://(invalid URL)"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// Pool is the connection pool (for leader election and followers).
func (b *Backend) Pool() *pgxpool.Pool { return b.pool }

// Fence makes every later Commit check, inside its transaction, that the
// leader epoch is still epoch; 0 turns the check off.
func (b *Backend) Fence(epoch int64) { b.epoch.Store(epoch) }

// JournalSeq is the sequence number of the last journal entry this backend
// wrote or loaded.
func (b *Backend) JournalSeq() uint64 { return b.journalSeq.Load() }

// SetJournalSeq records that the state in memory includes journal entry seq
// (a standby that applied it, before it becomes leader).
func (b *Backend) SetJournalSeq(seq uint64) { b.journalSeq.Store(seq) }

// Load implements store.Backend: one consistent snapshot of the objects,
// the audit and feed heads and the journal position.
func (b *Backend) Load(ctx context.Context, fn func(store.Row) error) (store.LoadState, error) {
	st := store.LoadState{LastHash: audit.GenesisHash}
	err := pgx.BeginTxFunc(ctx, b.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT tbl, key, data FROM objects`)
		if err != nil {
			return fmt.Errorf("postgres: read objects: %w", err)
		}
		var r store.Row
		_, err = pgx.ForEachRow(rows, []any{&r.Table, &r.Key, &r.Data}, func() error {
			row := r
			r.Data = nil // Scan allocates the next one; fn may keep this one
			return fn(row)
		})
		if err != nil {
			return fmt.Errorf("postgres: read objects: %w", err)
		}
		h, err := readHeads(ctx, tx)
		if err != nil {
			return err
		}
		st.LastSeq, st.LastHash, st.LastFeedSeq = h.AuditSeq, h.AuditHash, h.FeedSeq
		b.heads = st
		b.journalSeq.Store(h.JournalSeq)
		return nil
	})
	return st, err
}

// Heads are the newest sequence numbers of the durable logs.
type Heads struct {
	AuditSeq   uint64
	AuditHash  string
	FeedSeq    uint64
	JournalSeq uint64
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func readHeads(ctx context.Context, q querier) (Heads, error) {
	h := Heads{AuditHash: audit.GenesisHash}
	var seq *int64
	var hash *string
	err := q.QueryRow(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return h, fmt.Errorf("postgres: read audit head: %w", err)
	}
	if seq != nil {
		h.AuditSeq, h.AuditHash = uint64(*seq), *hash
	}
	var feed, journal int64
	if err := q.QueryRow(ctx, `SELECT coalesce((SELECT max(seq) FROM feed), 0), coalesce((SELECT max(seq) FROM journal), 0)`).Scan(&feed, &journal); err != nil {
		return h, fmt.Errorf("postgres: read feed and journal heads: %w", err)
	}
	h.FeedSeq, h.JournalSeq = uint64(feed), uint64(journal)
	return h, nil
}

// Heads reads the newest sequence numbers of the durable logs.
func (b *Backend) Heads(ctx context.Context) (Heads, error) { return readHeads(ctx, b.pool) }

// Commit implements store.Backend: one transaction, sent as one pipeline,
// that checks the fencing epoch, applies the net change of every row,
// appends the audit events, feed entries and one journal entry, and
// notifies followers. PostgreSQL makes it durable (WAL flush) before
// COMMIT returns.
func (b *Backend) Commit(ctx context.Context, batches []*store.Batch) error {
	var (
		order    []rowKey
		last     = map[rowKey][]byte{}
		upTbl    []string
		upKey    []string
		upData   [][]byte
		delTbl   []string
		delKey   []string
		aSeq     []int64
		aTime    []time.Time
		aTimeNs  []int64
		aType    []string
		aActor   []string
		aTarget  []string
		aHash    []string
		aData    [][]byte
		fSeq     []int64
		fData    [][]byte
		journal  []store.Row
		nextJSeq = b.journalSeq.Load() + 1
		epoch    = b.epoch.Load()
		heads    = b.heads
	)
	for _, batch := range batches {
		// The journal keeps every row in commit order, so that a standby
		// replaying it passes through the same states (a rename freeing
		// a name before another resource takes it).
		journal = append(journal, batch.Rows...)
		for _, r := range batch.Rows {
			k := rowKey{r.Table, r.Key}
			if _, seen := last[k]; !seen {
				order = append(order, k)
			}
			last[k] = r.Data
		}
		for i, e := range batch.Events {
			data, err := encoded(batch.EventData, i, e)
			if err != nil {
				return fmt.Errorf("postgres: encode audit event %d: %w", e.Seq, err)
			}
			aSeq = append(aSeq, int64(e.Seq))
			aTime = append(aTime, e.Time.UTC())
			aTimeNs = append(aTimeNs, e.Time.UnixNano())
			aType = append(aType, e.Type)
			aActor = append(aActor, e.Actor.Name)
			aTarget = append(aTarget, e.Target.ID)
			aHash = append(aHash, e.Hash)
			aData = append(aData, data)
			heads.LastSeq, heads.LastHash = e.Seq, e.Hash
		}
		for i, f := range batch.Feed {
			data, err := encoded(batch.FeedData, i, f)
			if err != nil {
				return fmt.Errorf("postgres: encode feed entry %d: %w", f.Seq, err)
			}
			fSeq = append(fSeq, int64(f.Seq))
			fData = append(fData, data)
			heads.LastFeedSeq = f.Seq
		}
	}
	for _, k := range order {
		data := last[k]
		if data == nil {
			delTbl, delKey = append(delTbl, k.table), append(delKey, k.key)
		} else {
			upTbl, upKey, upData = append(upTbl, k.table), append(upKey, k.key), append(upData, data)
		}
	}
	pb := &pgx.Batch{}
	if epoch != 0 {
		pb.Queue(`SELECT epoch FROM leader WHERE id = 1 FOR SHARE`)
	}
	if len(upTbl) > 0 {
		pb.Queue(`INSERT INTO objects (tbl, key, data) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])
			ON CONFLICT (tbl, key) DO UPDATE SET data = excluded.data`, upTbl, upKey, upData)
	}
	if len(delTbl) > 0 {
		pb.Queue(`DELETE FROM objects o USING unnest($1::text[], $2::text[]) AS d(tbl, key)
			WHERE o.tbl = d.tbl AND o.key = d.key`, delTbl, delKey)
	}
	if len(aSeq) > 0 {
		pb.Queue(`INSERT INTO audit (seq, time_ns, time, type, actor, target_id, hash, data)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[])`,
			aSeq, aTimeNs, aTime, aType, aActor, aTarget, aHash, aData)
	}
	if len(fSeq) > 0 {
		pb.Queue(`INSERT INTO feed (seq, data) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, fSeq, fData)
	}
	pb.Queue(`INSERT INTO journal (seq, epoch, rows) VALUES ($1, $2, $3)`, int64(nextJSeq), epoch, EncodeEntry(heads, journal))
	pb.Queue(`SELECT pg_notify($1, $2)`, Channel, fmt.Sprint(nextJSeq))
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		res := tx.SendBatch(ctx, pb)
		if epoch != 0 {
			var current int64
			if err := res.QueryRow().Scan(&current); err != nil {
				res.Close()
				return fmt.Errorf("postgres: check leader epoch: %w", err)
			}
			if current != epoch {
				res.Close()
				return fmt.Errorf("%w (epoch %d, this process led epoch %d)", ErrFenced, current, epoch)
			}
		}
		if err := res.Close(); err != nil {
			return fmt.Errorf("postgres: write: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.heads = heads
	b.journalSeq.Store(nextJSeq)
	return nil
}

type rowKey struct{ table, key string }

// encoded returns data[i], the JSON the store encoded for v, or encodes v
// when the batch carries no encoding.
func encoded(data [][]byte, i int, v any) ([]byte, error) {
	if i < len(data) && data[i] != nil {
		return data[i], nil
	}
	return json.Marshal(v)
}

// AuditEvents implements store.Backend.
func (b *Backend) AuditEvents(ctx context.Context, q store.AuditQuery) ([]audit.Event, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where = append(where, "seq > "+arg(int64(q.AfterSeq)))
	if len(q.Types) > 0 {
		var ors []string
		for _, t := range q.Types {
			ors = append(ors, "(type = "+arg(t)+" OR type LIKE "+arg(escapeLike(t)+".%")+")")
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	if q.TargetID != "" {
		where = append(where, "target_id = "+arg(q.TargetID))
	}
	if q.Actor != "" {
		where = append(where, "actor = "+arg(q.Actor))
	}
	if !q.Since.IsZero() {
		where = append(where, "time_ns >= "+arg(q.Since.UnixNano()))
	}
	if !q.Until.IsZero() {
		where = append(where, "time_ns < "+arg(q.Until.UnixNano()))
	}
	query := "SELECT data FROM audit WHERE " + strings.Join(where, " AND ") + " ORDER BY seq"
	if q.Limit > 0 {
		query += " LIMIT " + arg(int64(q.Limit))
	}
	rows, err := b.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: query audit: %w", err)
	}
	events := []audit.Event{}
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&data}, func() error {
		var e audit.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("decode audit event: %w", err)
		}
		events = append(events, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: query audit: %w", err)
	}
	return events, nil
}

// FeedEntries implements store.Backend.
func (b *Backend) FeedEntries(ctx context.Context, after uint64, limit int) ([]store.FeedEntry, error) {
	query := `SELECT data FROM feed WHERE seq > $1 ORDER BY seq`
	args := []any{int64(after)}
	if limit > 0 {
		query += ` LIMIT $2`
		args = append(args, int64(limit))
	}
	rows, err := b.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: query feed: %w", err)
	}
	out := []store.FeedEntry{}
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&data}, func() error {
		var f store.FeedEntry
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("decode feed entry: %w", err)
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: query feed: %w", err)
	}
	return out, nil
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// Close implements store.Backend.
func (b *Backend) Close() error {
	b.pool.Close()
	return nil
}
