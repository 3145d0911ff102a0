package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/scimd/scimd/engine/httpjson"
	"github.com/scimd/scimd/scim/store"
)

// Feed paging limits.
const (
	DefaultFeedLimit = 100
	MaxFeedLimit     = 1000
	// MaxWait caps a long-poll; longer waits are shortened to it.
	MaxWait = 60 * time.Second
)

// Entry is one change as the feed and webhooks deliver it.
type Entry struct {
	// Seq is the entry's position in the feed, increasing by one per
	// entry; it is also the webhook-id.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Type is the first of the change's types (e.g. "teammate.role.changed").
	Type       string `json:"type"`
	TeammateID string `json:"teammateId"`
	// Change is a reconcile.FeedChange: changes, from, to, the teammate's
	// full current state, and the cause.
	Change json.RawMessage `json:"change"`
}

// entryOf converts a stored feed entry.
func entryOf(f store.FeedEntry) Entry {
	return Entry{Seq: f.Seq, Time: f.Time, Type: f.Type, TeammateID: f.Key, Change: f.Data}
}

// changeTypes returns every change type an entry carries (its type first).
func (e Entry) changeTypes() []string {
	var c struct {
		Changes []string `json:"changes"`
	}
	_ = json.Unmarshal(e.Change, &c)
	return append([]string{e.Type}, c.Changes...)
}

// TableFeedMeta holds the feed's epoch under FeedEpochKey.
const (
	TableFeedMeta = "feed.meta"
	FeedEpochKey  = "epoch"
)

// FeedEpoch names one history of the feed. Restoring a backup starts a
// new one: sequence numbers after the backup's head are issued again for
// other changes, so a consumer that saw the old ones must re-sync. A store
// that was never restored has the empty epoch.
type FeedEpoch struct {
	Epoch string    `json:"epoch"`
	Since time.Time `json:"since"`
}

// NewFeedEpoch returns a random epoch name.
func NewFeedEpoch() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate feed epoch: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// CurrentEpoch is the feed's epoch in a snapshot.
func CurrentEpoch(snap *store.Snapshot) string {
	if v, ok := snap.Record(TableFeedMeta, FeedEpochKey); ok {
		return v.(*FeedEpoch).Epoch
	}
	return ""
}

// StaleCursor is the 409 answer to a feed request from another epoch or
// past the head: re-read GET /api/v1/teammates, then follow from Head.
type StaleCursor struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
	Epoch  string `json:"epoch"`
	Head   uint64 `json:"head"`
}

// Page is the answer of GET /api/v1/feed.
type Page struct {
	// Epoch is the feed's epoch (see FeedEpoch); pass it back as
	// "epoch" to be told when it changes.
	Epoch   string  `json:"epoch"`
	Entries []Entry `json:"entries"`
	// Next is the "after" of the next request: the last entry's sequence,
	// or the request's "after" when there are none.
	Next uint64 `json:"next"`
	// Head is the newest sequence in the feed when the page was read.
	Head uint64 `json:"head"`
}

// ErrAhead reports an "after" beyond the feed head.
var ErrAhead = errors.New("after is beyond the feed head")

// readPage returns up to limit entries after after, waiting up to wait for
// the first one when there are none. It never returns entries beyond the
// durable snapshot's head, so everything a client sees is also in GET
// /api/v1/teammates from then on.
func readPage(ctx context.Context, st *store.Store, sig *signal, drain <-chan struct{}, after uint64, limit int, wait time.Duration) (Page, error) {
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		changed := sig.wait()
		head := st.Read().FeedSeq
		if after > head {
			return Page{}, fmt.Errorf("%w: after %d, head %d (was the data directory replaced? resynchronise from GET /api/v1/teammates)", ErrAhead, after, head)
		}
		if head > after || timeout == nil {
			return fetch(ctx, st, after, limit, head)
		}
		select {
		case <-changed:
		case <-timeout:
			return Page{Entries: []Entry{}, Next: after, Head: head}, nil
		case <-drain:
			return Page{Entries: []Entry{}, Next: after, Head: head}, nil
		case <-ctx.Done():
			return Page{}, ctx.Err()
		}
	}
}

func fetch(ctx context.Context, st *store.Store, after uint64, limit int, head uint64) (Page, error) {
	p := Page{Entries: []Entry{}, Next: after, Head: head}
	if head <= after {
		return p, nil
	}
	if n := head - after; uint64(limit) > n {
		limit = int(n)
	}
	rows, err := st.Feed(ctx, after, limit)
	if err != nil {
		return Page{}, fmt.Errorf("read feed: %w", err)
	}
	for _, r := range rows {
		if r.Seq > head {
			break
		}
		p.Entries = append(p.Entries, entryOf(r))
		p.Next = r.Seq
	}
	return p, nil
}

// parseWait reads the wait parameter: a Go duration ("30s") or seconds.
func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseUint(v, 10, 32)
		if nerr != nil {
			return 0, fmt.Errorf("wait must be a duration such as 30s, got %q", v)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, fmt.Errorf("wait must not be negative, got %q", v)
	}
	return min(d, MaxWait), nil
}

// serveFeed serves GET /api/v1/feed?after=SEQ&limit=N&wait=30s.
func (s *Service) serveFeed(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after uint64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, "after must be a feed sequence number (0 for the start)")
			return
		}
		after = n
	}
	limit := DefaultFeedLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxFeedLimit {
			httpjson.Error(w, http.StatusBadRequest, fmt.Sprintf("limit must be between 1 and %d", MaxFeedLimit))
			return
		}
		limit = n
	}
	wait, err := parseWait(q.Get("wait"))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	snap := s.store.Read()
	epoch := CurrentEpoch(snap)
	if want, ok := q["epoch"]; ok && want[0] != epoch {
		httpjson.Write(w, http.StatusConflict, StaleCursor{Status: http.StatusConflict, Epoch: epoch, Head: snap.FeedSeq,
			Error: fmt.Sprintf("the feed is in epoch %q, not %q: scimd's store was restored from a backup; re-read GET /api/v1/teammates and follow the feed from head %d", epoch, want[0], snap.FeedSeq)})
		return
	}
	page, err := readPage(r.Context(), s.store, s.signal, s.draining, after, limit, wait)
	page.Epoch = epoch
	switch {
	case err == nil:
		httpjson.Write(w, http.StatusOK, page)
	case r.Context().Err() != nil:
		// The client went away during a long-poll: nobody to answer.
	case errors.Is(err, ErrAhead):
		httpjson.Write(w, http.StatusConflict, StaleCursor{Status: http.StatusConflict, Epoch: epoch, Head: s.store.Read().FeedSeq,
			Error: err.Error()})
	default:
		s.log.Error("feed read failed", "err", err)
		httpjson.Error(w, httpjson.StatusOf(err), err.Error())
	}
}
