package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Teammate is one row of the application's table: what the application
// needs to enforce access.
type Teammate struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	// Role is "" for none.
	Role     string `json:"role"`
	Access   bool   `json:"access"`
	Excluded bool   `json:"excluded"`
}

// State is the table and the last feed sequence it reflects. It is saved
// as one JSON file, replaced atomically, so the table and the sequence
// never disagree on disk.
type State struct {
	Seq       uint64              `json:"seq"`
	Teammates map[string]Teammate `json:"teammates"`
	// Epoch is the feed's epoch Seq belongs to (EpochKnown once a feed
	// page said it). scimd starts a new epoch when its store is restored
	// from a backup; a consumer of another epoch must re-sync.
	Epoch      string `json:"epoch"`
	EpochKnown bool   `json:"epochKnown"`
}

// Entry is one feed entry (GET /api/v1/feed) or one webhook body.
type Entry struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Type       string    `json:"type"`
	TeammateID string    `json:"teammateId"`
	Change     struct {
		Changes  []string `json:"changes"`
		Teammate struct {
			ID       string  `json:"id"`
			UserName string  `json:"userName"`
			Role     *string `json:"role"`
			Access   bool    `json:"access"`
			Excluded bool    `json:"excluded"`
			Deleted  bool    `json:"deleted"`
		} `json:"teammate"`
	} `json:"change"`
}

// Page is one answer of GET /api/v1/feed.
type Page struct {
	Entries []Entry `json:"entries"`
	Next    uint64  `json:"next"`
	Head    uint64  `json:"head"`
	Epoch   string  `json:"epoch"`
}

// StaleCursorError is scimd's 409 answer to a feed request from another
// epoch, or past the head: scimd's store was restored from a backup, and
// the consumer must re-read the teammates and follow from Head.
type StaleCursorError struct {
	Epoch   string `json:"epoch"`
	Head    uint64 `json:"head"`
	Message string `json:"error"`
}

func (e *StaleCursorError) Error() string { return "stale feed cursor: " + e.Message }

// LoadState reads the state file; ok is false when there is none yet.
func LoadState(path string) (st *State, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{Teammates: map[string]Teammate{}}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read state: %w", err)
	}
	st = &State{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, false, fmt.Errorf("decode state %s: %w", path, err)
	}
	if st.Teammates == nil {
		st.Teammates = map[string]Teammate{}
	}
	return st, true, nil
}

// Save writes the state to path atomically: a temporary file, fsync,
// rename.
func (s *State) Save(path string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".consumer-state-*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// Apply applies one entry. Entries at or below the state's sequence were
// applied already (a repeated delivery) and are ignored: Apply reports
// false for them.
func (s *State) Apply(e Entry) bool {
	if e.Seq <= s.Seq {
		return false
	}
	tm := e.Change.Teammate
	if tm.Deleted {
		delete(s.Teammates, e.TeammateID)
	} else {
		role := ""
		if tm.Role != nil {
			role = *tm.Role
		}
		s.Teammates[e.TeammateID] = Teammate{ID: e.TeammateID, UserName: tm.UserName, Role: role, Access: tm.Access, Excluded: tm.Excluded}
	}
	s.Seq = e.Seq
	return true
}

// Client calls scimd's admin API.
type Client struct {
	// Server is scimd's address, e.g. https://scimd.example.com.
	Server string
	// Token is a token allowed to read the feed.
	Token string
	HTTP  *http.Client
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.Server, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusConflict {
		var stale StaleCursorError
		if json.Unmarshal(body, &stale) == nil && stale.Message != "" {
			return &stale
		}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return nil
}

// Snapshot returns every teammate and the feed sequence the list reflects:
// the starting point of a new consumer.
func (c *Client) Snapshot(ctx context.Context) (*State, error) {
	var out struct {
		Teammates []struct {
			ID       string  `json:"id"`
			UserName string  `json:"userName"`
			Role     *string `json:"role"`
			Access   bool    `json:"access"`
			Excluded bool    `json:"excluded"`
		} `json:"teammates"`
		Seq uint64 `json:"seq"`
	}
	if err := c.get(ctx, "/api/v1/teammates", &out); err != nil {
		return nil, err
	}
	st := &State{Seq: out.Seq, Teammates: make(map[string]Teammate, len(out.Teammates))}
	for _, t := range out.Teammates {
		role := ""
		if t.Role != nil {
			role = *t.Role
		}
		st.Teammates[t.ID] = Teammate{ID: t.ID, UserName: t.UserName, Role: role, Access: t.Access, Excluded: t.Excluded}
	}
	return st, nil
}

// Feed returns the entries after a sequence, waiting up to wait for one.
// epoch, when not nil, is the epoch the sequence belongs to: scimd answers
// a *StaleCursorError when the feed is in another.
func (c *Client) Feed(ctx context.Context, after uint64, limit int, wait time.Duration, epoch *string) (Page, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(limit)}}
	if epoch != nil {
		q.Set("epoch", *epoch)
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	var p Page
	err := c.get(ctx, "/api/v1/feed?"+q.Encode(), &p)
	return p, err
}

// Follow keeps the state at path in step with scimd until ctx ends. A new
// consumer (no state file) starts from the teammates snapshot; then it
// long-polls the feed after the saved sequence, applies each page and
// saves it before asking for the next, so stopping at any point and
// starting again loses and repeats nothing. onPage, when not nil, sees the
// state after each saved page.
func Follow(ctx context.Context, c *Client, path string, wait time.Duration, onPage func(*State)) error {
	st, ok, err := LoadState(path)
	if err != nil {
		return err
	}
	if !ok {
		if st, err = c.Snapshot(ctx); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		if err := st.Save(path); err != nil {
			return err
		}
	}
	failures := 0
	for {
		var epoch *string
		if st.EpochKnown {
			epoch = &st.Epoch
		}
		p, err := c.Feed(ctx, st.Seq, 500, wait, epoch)
		if ctx.Err() != nil {
			return nil
		}
		var stale *StaleCursorError
		if errors.As(err, &stale) {
			// scimd was restored from a backup: what this consumer saw
			// after the backup's head no longer happened. Start again
			// from the teammates as they are now.
			if st, err = c.Snapshot(ctx); err != nil {
				return fmt.Errorf("re-sync after the feed moved to epoch %q: %w", stale.Epoch, err)
			}
			st.Epoch, st.EpochKnown = stale.Epoch, true
			if err := st.Save(path); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			// scimd restarting, network trouble: retry with backoff.
			failures++
			if !sleep(ctx, min(time.Duration(failures)*time.Second, 30*time.Second)) {
				return nil
			}
			continue
		}
		failures = 0
		if len(p.Entries) > 0 && p.Entries[0].Seq != st.Seq+1 {
			return fmt.Errorf("feed after %d starts at %d: entries are missing", st.Seq, p.Entries[0].Seq)
		}
		for _, e := range p.Entries {
			st.Apply(e)
		}
		newEpoch := !st.EpochKnown
		st.Epoch, st.EpochKnown = p.Epoch, true
		if len(p.Entries) > 0 || newEpoch {
			if err := st.Save(path); err != nil {
				return err
			}
		}
		if onPage != nil {
			onPage(st)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Receiver is the webhook mode: an http.Handler that verifies each
// delivery, applies it to the state and saves it before answering 2xx.
// A repeated delivery (same webhook-id) is acknowledged and ignored.
type Receiver struct {
	Secret string
	Path   string
	// Tolerance bounds the webhook-timestamp's distance from now
	// (default 5 minutes).
	Tolerance time.Duration

	mu    sync.Mutex
	state *State
}

// NewReceiver loads the state at path (bootstrapping it with boot when
// there is none and boot is not nil).
func NewReceiver(secret, path string, boot func() (*State, error)) (*Receiver, error) {
	st, ok, err := LoadState(path)
	if err != nil {
		return nil, err
	}
	if !ok && boot != nil {
		if st, err = boot(); err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		if err := st.Save(path); err != nil {
			return nil, err
		}
	}
	return &Receiver{Secret: secret, Path: path, state: st}, nil
}

// State returns a copy of the current state.
func (rc *Receiver) State() State {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := State{Seq: rc.state.Seq, Teammates: make(map[string]Teammate, len(rc.state.Teammates))}
	for k, v := range rc.state.Teammates {
		out.Teammates[k] = v
	}
	return out
}

// ServeHTTP handles one webhook delivery.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	tol := rc.Tolerance
	if tol == 0 {
		tol = 5 * time.Minute
	}
	if err := Verify(rc.Secret, r.Header, body, time.Now(), tol); err != nil {
		http.Error(w, "signature: "+err.Error(), http.StatusUnauthorized)
		return
	}
	var e Entry
	if err := json.Unmarshal(body, &e); err != nil || strconv.FormatUint(e.Seq, 10) != r.Header.Get("webhook-id") {
		http.Error(w, "body is not the entry named by webhook-id", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.state.Apply(e) {
		w.WriteHeader(http.StatusNoContent) // already applied: a repeated delivery
		return
	}
	if err := rc.state.Save(rc.Path); err != nil {
		// Not saved: answer 5xx so scimd delivers it again. Reload what
		// is on disk so memory does not run ahead of it.
		if st, _, lerr := LoadState(rc.Path); lerr == nil {
			rc.state = st
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Verify checks a scimd webhook as Standard Webhooks define it: the
// webhook-timestamp is within tolerance of now, and one of the
// space-separated "v1,<base64>" values in webhook-signature is the
// HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<raw body>". The key is
// the base64-decoded part of a "whsec_…" secret, or the secret's bytes
// otherwise. (This is the verifier of docs/webhooks.md.)
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		var err error
		if key, err = base64.StdEncoding.DecodeString(rest); err != nil {
			return fmt.Errorf("secret: %w", err)
		}
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad webhook-timestamp %q", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp is %s away from now", d.Round(time.Second))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("no valid signature")
}
