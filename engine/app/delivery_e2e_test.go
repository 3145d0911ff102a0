package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/app"
	"github.com/scimd/scimd/engine/delivery"
)

// fastDelivery retries quickly so the tests take milliseconds per retry.
var fastDelivery = app.DeliveryConfig{
	MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	Timeout: 2 * time.Second, MaxFailures: 50,
}

// newDeliveryEnv is newEnv with a delivery configuration and no SCIM rate
// limit.
func newDeliveryEnv(t *testing.T, cfg app.DeliveryConfig) *env {
	t.Helper()
	e := &env{t: t, data: t.TempDir(), policies: copyPolicies(t)}
	e.startDelivery(cfg)
	e.token = e.createToken("okta")
	return e
}

func (e *env) startDelivery(cfg app.DeliveryConfig) {
	e.t.Helper()
	a, err := app.Open(context.Background(), app.Config{
		Data: e.data, Policies: e.policies, AdminToken: adminToken, PolicyDebounce: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Delivery: cfg,
	})
	if err != nil {
		e.t.Fatalf("open app: %v", err)
	}
	e.app = a
	e.srv = httptest.NewServer(a.Handler)
	e.scim = e.srv.URL + "/scim/v2"
	e.t.Cleanup(e.stop)
	e.idle()
}

func (e *env) restartDelivery(cfg app.DeliveryConfig) {
	e.t.Helper()
	e.stop()
	e.startDelivery(cfg)
}

// send is a request usable from any goroutine: it returns errors instead
// of failing the test.
func send(ctx context.Context, method, url, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// feedEntry is an entry of GET /api/v1/feed or a webhook body.
type feedEntry struct {
	Seq        uint64
	Type       string
	TeammateID string
	Change     struct {
		Changes  []string
		Teammate struct {
			ID       string
			UserName string
			Role     *string
			Access   bool
			Excluded bool
			Deleted  bool
		}
	}
}

type feedPage struct {
	Entries []feedEntry
	Next    uint64
	Head    uint64
}

// tmState is what a consumer keeps per teammate.
type tmState struct {
	Role     string
	Access   bool
	Excluded bool
}

// followerState is what a consumer persists after each page: its table,
// the sequence it reflects and (for the test) every sequence it applied.
type followerState struct {
	Seq     uint64
	Table   map[string]tmState
	Applied []uint64
}

func (s followerState) clone() followerState {
	return followerState{Seq: s.Seq, Table: cloneTable(s.Table), Applied: slices.Clone(s.Applied)}
}

func cloneTable(m map[string]tmState) map[string]tmState {
	out := make(map[string]tmState, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// apply applies a page to the state, all or nothing.
func (s *followerState) apply(p feedPage) {
	for _, en := range p.Entries {
		tm := en.Change.Teammate
		if tm.Deleted {
			delete(s.Table, en.TeammateID)
		} else {
			role := ""
			if tm.Role != nil {
				role = *tm.Role
			}
			s.Table[en.TeammateID] = tmState{Role: role, Access: tm.Access, Excluded: tm.Excluded}
		}
		s.Applied = append(s.Applied, en.Seq)
	}
	s.Seq = p.Next
}

// getFeed reads one page of the feed.
func getFeed(ctx context.Context, base string, after uint64, limit int, wait string) (feedPage, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(limit)}}
	if wait != "" {
		q.Set("wait", wait)
	}
	status, body, err := send(ctx, http.MethodGet, base+"/api/v1/feed?"+q.Encode(), adminToken, nil)
	if err != nil {
		return feedPage{}, err
	}
	if status != http.StatusOK {
		return feedPage{}, fmt.Errorf("feed: %d %s", status, body)
	}
	var p feedPage
	if err := json.Unmarshal(body, &p); err != nil {
		return feedPage{}, fmt.Errorf("feed: %w", err)
	}
	return p, nil
}

// follow long-polls the feed from the persisted state until ctx ends,
// persisting after every page (a page is applied whole or not at all). It
// returns the last persisted state.
func follow(ctx context.Context, base string, from followerState, limit int, progress func(followerState)) (followerState, error) {
	st := from.clone()
	for {
		p, err := getFeed(ctx, base, st.Seq, limit, "2s")
		if ctx.Err() != nil {
			return st, nil
		}
		if err != nil {
			return st, err
		}
		if len(p.Entries) > 0 && p.Entries[0].Seq != st.Seq+1 {
			return st, fmt.Errorf("page after %d starts at %d", st.Seq, p.Entries[0].Seq)
		}
		st.apply(p)
		if progress != nil {
			progress(st.clone())
		}
	}
}

// directory returns GET /api/v1/teammates as a consumer table, with its seq.
func (e *env) directory() (map[string]tmState, uint64) {
	e.t.Helper()
	var out struct {
		Teammates []teammate
		Seq       uint64
	}
	if err := json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/teammates", adminToken, nil, 200), &out); err != nil {
		e.t.Fatal(err)
	}
	m := map[string]tmState{}
	for _, tm := range out.Teammates {
		m[tm.ID] = tmState{Role: tm.role(), Access: tm.Access, Excluded: tm.Excluded}
	}
	return m, out.Seq
}

// membershipChurn makes n single-member PATCHes, spread over workers each
// owning its own users: every user cycles through the three mapped groups
// (add, remove, add to the next, …), so every PATCH changes one teammate.
func membershipChurn(ctx context.Context, e *env, users, groups []string, start, n, workers int) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				step := start + i/workers
				// Worker w owns users w, w+workers, …; each op touches one
				// of them; ops for one user stay in order within the worker.
				own := (len(users) - w + workers - 1) / workers
				u := users[w+workers*(step%own)]
				cycle := step / own
				g := groups[(cycle/2)%len(groups)]
				op := "add"
				if cycle%2 == 1 {
					op = "remove"
				}
				status, body, err := send(ctx, http.MethodPatch, e.scim+"/Groups/"+g, e.token,
					patchOp(map[string]any{"op": op, "path": "members", "value": memberValues(u)}))
				if err != nil || (status != 200 && status != 204) {
					errs <- fmt.Errorf("%s %s in %s: %d %s %v", op, u, g, status, body, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFeedFollowerMatchesDirectoryThroughRestarts follows the feed through
// 1,000 membership changes while stopping and resuming the consumer mid
// stream and restarting scimd, and ends with exactly the directory's state,
// every sequence applied once.
func TestFeedFollowerMatchesDirectoryThroughRestarts(t *testing.T) {
	e := newDeliveryEnv(t, fastDelivery)
	groups := []string{e.createGroup("Intercom Admins"), e.createGroup("Intercom Support"), e.createGroup("Intercom Viewers")}
	var users []string
	for i := range 40 {
		users = append(users, e.createUser(fmt.Sprintf("churn%02d@example.com", i), nil))
	}
	const workers, total = 4, 1000

	var mu sync.Mutex
	persisted := followerState{Table: map[string]tmState{}}
	save := func(s followerState) { mu.Lock(); persisted = s; mu.Unlock() }
	load := func() followerState { mu.Lock(); defer mu.Unlock(); return persisted.clone() }
	run := func(ctx context.Context, base string) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := follow(ctx, base, load(), 37, save)
			done <- err
		}()
		return done
	}

	// Phase 1: the first consumer is stopped mid-stream and a second one
	// resumes from what it persisted.
	ctx := context.Background()
	ctxA, stopA := context.WithCancel(ctx)
	doneA := run(ctxA, e.srv.URL)
	churn := make(chan error, 1)
	go func() { churn <- membershipChurn(ctx, e, users, groups, 0, total/2, workers) }()
	waitFor(t, 60*time.Second, "the first consumer to apply 200 entries", func() bool { return len(load().Applied) >= 200 })
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	ctxB, stopB := context.WithCancel(ctx)
	doneB := run(ctxB, e.srv.URL)
	if err := <-churn; err != nil {
		t.Fatal(err)
	}
	e.idle()
	stopB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}

	// Phase 2: scimd restarts; a third consumer resumes against it while
	// the rest of the changes arrive.
	e.restartDelivery(fastDelivery)
	ctxC, stopC := context.WithCancel(ctx)
	defer stopC()
	doneC := run(ctxC, e.srv.URL)
	if err := membershipChurn(ctx, e, users, groups, total/2/workers, total/2, workers); err != nil {
		t.Fatal(err)
	}
	e.idle()
	want, seq := e.directory()
	waitFor(t, 60*time.Second, "the consumer to reach the directory's seq", func() bool { return load().Seq >= seq })
	stopC()
	if err := <-doneC; err != nil {
		t.Fatal(err)
	}

	got := load()
	if got.Seq != seq {
		t.Fatalf("consumer at seq %d, directory at %d", got.Seq, seq)
	}
	if seq < uint64(total+len(users)) {
		t.Fatalf("feed head %d: expected at least %d entries (one per change and per new teammate)", seq, total+len(users))
	}
	for i, s := range got.Applied {
		if s != uint64(i+1) {
			t.Fatalf("applied sequence %d at position %d: lost or duplicated entries (around %v)", s, i, got.Applied[max(0, i-3):min(len(got.Applied), i+3)])
		}
	}
	if len(got.Applied) != int(seq) {
		t.Fatalf("applied %d entries, feed has %d", len(got.Applied), seq)
	}
	if len(got.Table) != len(want) {
		t.Fatalf("consumer has %d teammates, directory %d", len(got.Table), len(want))
	}
	for id, w := range want {
		if got.Table[id] != w {
			t.Fatalf("teammate %s: consumer %+v, directory %+v", id, got.Table[id], w)
		}
	}
}

// TestFeedLongPoll checks that a long-poll returns as soon as an entry
// arrives, and returns empty with the head at timeout.
func TestFeedLongPoll(t *testing.T) {
	e := newDeliveryEnv(t, fastDelivery)
	e.createUser("first@example.com", nil)
	_, head := e.directory()
	if head == 0 {
		t.Fatal("no feed entry for the first teammate")
	}

	start := time.Now()
	p, err := getFeed(context.Background(), e.srv.URL, head, 10, "700ms")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 0 || p.Next != head || p.Head != head {
		t.Fatalf("timed-out poll = %+v, want no entries, next=head=%d", p, head)
	}
	if waited := time.Since(start); waited < 700*time.Millisecond {
		t.Fatalf("poll returned after %s, before its wait", waited)
	}

	// A poll in flight returns with the entry a change appends.
	wrote := make(chan struct{})
	type result struct {
		p   feedPage
		err error
		at  time.Time
	}
	res := make(chan result, 1)
	go func() {
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) },
		})
		p, err := getFeed(ctx, e.srv.URL, head, 10, "30s")
		res <- result{p, err, time.Now()}
	}()
	<-wrote
	changed := time.Now()
	e.createUser("second@example.com", nil)
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.p.Entries) != 1 || r.p.Entries[0].Seq != head+1 || r.p.Entries[0].Type != "teammate.created" ||
		r.p.Entries[0].Change.Teammate.UserName != "second@example.com" || r.p.Next != head+1 {
		t.Fatalf("woken poll = %+v, want the new teammate's entry %d", r.p, head+1)
	}
	if d := r.at.Sub(changed); d > 15*time.Second {
		t.Fatalf("poll returned %s after the change: it waited for its timeout", d)
	}

	// Bad parameters and a cursor from another feed are refused clearly.
	for q, want := range map[string]int{
		"after=x": 400, "limit=0": 400, "limit=100000": 400, "wait=soon": 400,
		"after=" + strconv.FormatUint(head+1000, 10): http.StatusConflict,
	} {
		if status, body := e.do(http.MethodGet, e.srv.URL+"/api/v1/feed?"+q, adminToken, nil); status != want {
			t.Errorf("feed?%s = %d %s, want %d", q, status, body, want)
		}
	}
	if status, _ := e.do(http.MethodGet, e.srv.URL+"/api/v1/feed", "wrong", nil); status != http.StatusUnauthorized {
		t.Errorf("feed without the admin token = %d, want 401", status)
	}
}

// receiver is a webhook endpoint in the test process. It verifies every
// signature, answers as its script says, and records what it accepted.
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server
	// script returns the answer to the n-th attempt (1-based) at msg id;
	// nil answers 204.
	script func(n int, id uint64, w http.ResponseWriter, r *http.Request) bool

	mu       sync.Mutex
	attempts []attempt
	accepted []uint64 // ids answered 2xx, in order
	bodies   map[uint64]feedEntry
	badSig   int
}

type attempt struct {
	id     uint64
	at     time.Time
	status int
}

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, secret: testSecret, bodies: map[uint64]feedEntry{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

// statusWriter records the status a script answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if err := delivery.Verify(rc.secret, r.Header, body, time.Now(), delivery.DefaultTolerance); err != nil {
		rc.mu.Lock()
		rc.badSig++
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	id, err := strconv.ParseUint(r.Header.Get(delivery.HeaderID), 10, 64)
	if err != nil {
		http.Error(w, "bad id", 400)
		return
	}
	var en feedEntry
	if err := json.Unmarshal(body, &en); err != nil || en.Seq != id {
		http.Error(w, "body does not match webhook-id", 400)
		return
	}
	rc.mu.Lock()
	n := 1
	for _, a := range rc.attempts {
		if a.id == id {
			n++
		}
	}
	rc.attempts = append(rc.attempts, attempt{id: id, at: time.Now()})
	idx := len(rc.attempts) - 1
	script := rc.script
	rc.mu.Unlock()

	sw := &statusWriter{ResponseWriter: w, status: http.StatusNoContent}
	if script == nil || !script(n, id, sw, r) {
		sw.WriteHeader(http.StatusNoContent)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts[idx].status = sw.status
	if sw.status/100 == 2 {
		rc.accepted = append(rc.accepted, id)
		rc.bodies[id] = en
	}
}

func (rc *receiver) snapshot() (accepted []uint64, attempts []attempt, badSig int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.accepted), slices.Clone(rc.attempts), rc.badSig
}

// webhookView is an endpoint in GET /api/v1/webhooks.
type webhookView struct {
	ID        string
	URL       string
	Events    []string
	State     string
	Failing   bool
	Failures  int
	LastError string
	Cursor    uint64
	Head      uint64
	Delivered uint64
}

func (e *env) registerWebhook(body map[string]any) webhookView {
	e.t.Helper()
	var v webhookView
	if err := json.Unmarshal(e.mustDo(http.MethodPost, e.srv.URL+"/api/v1/webhooks", adminToken, body, http.StatusCreated), &v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) webhook(id string) webhookView {
	e.t.Helper()
	var out struct{ Webhooks []webhookView }
	b := e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/webhooks", adminToken, nil, 200)
	if strings.Contains(string(b), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") || strings.Contains(string(b), "secret") {
		e.t.Fatalf("GET /webhooks shows the secret: %s", b)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatal(err)
	}
	for _, w := range out.Webhooks {
		if w.ID == id {
			return w
		}
	}
	e.t.Fatalf("webhook %s not listed in %s", id, b)
	return webhookView{}
}

func (e *env) metric(name string) float64 {
	e.t.Helper()
	b := e.mustDo(http.MethodGet, e.srv.URL+"/metrics", "", nil, 200)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+]+)$`)
	m := re.FindSubmatch(b)
	if m == nil {
		return 0
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// checkInOrderOnce checks that the ids accepted are exactly 1..head, each
// once, in order.
func checkInOrderOnce(t *testing.T, accepted []uint64, head uint64) {
	t.Helper()
	if len(accepted) != int(head) {
		t.Fatalf("receiver accepted %d deliveries, feed has %d entries", len(accepted), head)
	}
	for i, id := range accepted {
		if id != uint64(i+1) {
			t.Fatalf("delivery %d has webhook-id %d: out of order, lost or duplicated (%v…)", i, id, accepted[max(0, i-3):min(len(accepted), i+3)])
		}
	}
}

// TestWebhookRetriesDeliverEveryChangeOnceInOrder: the receiver fails the
// first deliveries with 500, times one out, answers 429 with Retry-After,
// and still ends with every change exactly once, in order.
func TestWebhookRetriesDeliverEveryChangeOnceInOrder(t *testing.T) {
	e := newDeliveryEnv(t, fastDelivery) // attempts time out after 2s
	rc := newReceiver(t)
	const failFirst = 3
	rc.script = func(n int, id uint64, w http.ResponseWriter, r *http.Request) bool {
		switch {
		case id == 1 && n <= failFirst:
			http.Error(w, "receiver is starting", http.StatusInternalServerError)
		case id == 1 && n == failFirst+1:
			<-r.Context().Done() // never answers: scimd times out
			w.WriteHeader(http.StatusGatewayTimeout)
		case id == 2 && n == 1:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case id%25 == 0 && n == 1:
			http.Error(w, "flaky", http.StatusBadGateway)
		default:
			return false
		}
		return true
	}
	wh := e.registerWebhook(map[string]any{"url": rc.srv.URL + "/hooks/scimd", "secret": rc.secret})
	if wh.State != "active" || wh.Cursor != 0 || len(wh.Events) != 0 {
		t.Fatalf("registered webhook = %+v", wh)
	}

	admins := e.createGroup("Intercom Admins")
	support := e.createGroup("Intercom Support")
	var users []string
	for i := range 30 {
		users = append(users, e.createUser(fmt.Sprintf("hook%02d@example.com", i), nil))
	}
	e.addMembers(admins, users[:10]...)
	for _, u := range users[10:20] {
		e.addMembers(support, u)
	}
	e.removeMembers(admins, users[:5]...)
	e.setActive(users[25], false)
	e.mustDo(http.MethodDelete, e.scim+"/Users/"+users[29], e.token, nil, 204)
	e.idle()
	_, head := e.directory()
	waitFor(t, 60*time.Second, "every change to be accepted", func() bool {
		acc, _, _ := rc.snapshot()
		return len(acc) > 0 && acc[len(acc)-1] == head
	})

	accepted, attempts, badSig := rc.snapshot()
	if badSig != 0 {
		t.Fatalf("%d deliveries had bad signatures", badSig)
	}
	checkInOrderOnce(t, accepted, head)
	// The attempts at id 1: three 500s, one timeout, then success.
	var first, second []attempt
	for _, a := range attempts {
		switch a.id {
		case 1:
			first = append(first, a)
		case 2:
			second = append(second, a)
		}
	}
	if len(first) != failFirst+2 || first[failFirst+1].status/100 != 2 {
		t.Fatalf("attempts at id 1 = %+v, want %d failures, a timeout, then success", first, failFirst)
	}
	if len(second) != 2 || second[0].status != http.StatusTooManyRequests {
		t.Fatalf("attempts at id 2 = %+v, want a 429 then success", second)
	}
	if gap := second[1].at.Sub(second[0].at); gap < 950*time.Millisecond {
		t.Fatalf("retried %s after a 429 with Retry-After: 1", gap)
	}
	// Deliveries after a failure waited for the failing one: nothing later
	// was attempted before an earlier id was accepted.
	maxAccepted := uint64(0)
	for _, a := range attempts {
		if a.id > maxAccepted+1 {
			t.Fatalf("id %d attempted before %d was accepted", a.id, maxAccepted+1)
		}
		if a.status/100 == 2 {
			maxAccepted = a.id
		}
	}
	// Every body is the feed entry with that sequence.
	p, err := getFeed(context.Background(), e.srv.URL, 0, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range p.Entries {
		got := rc.bodies[en.Seq]
		if got.Type != en.Type || got.TeammateID != en.TeammateID || !slices.Equal(got.Change.Changes, en.Change.Changes) {
			t.Fatalf("webhook %d = %+v, feed entry %+v", en.Seq, got, en)
		}
	}

	waitFor(t, 10*time.Second, "the stored cursor to reach the head", func() bool { return e.webhook(wh.ID).Cursor == head })
	v := e.webhook(wh.ID)
	if v.State != "active" || v.Failing || v.Failures != 0 || v.Delivered != head || v.LastError == "" {
		t.Fatalf("webhook after recovery = %+v", v)
	}
	flaky := int(head / 25)
	for result, want := range map[string]int{"success": int(head), "server_error": failFirst + flaky, "timeout": 1, "rate_limited": 1} {
		if got := e.metric(`scimd_webhook_deliveries_total{result="` + result + `"}`); got != float64(want) {
			t.Errorf("deliveries{result=%q} = %v, want %d", result, got, want)
		}
	}
	if got := e.metric("scimd_webhook_delivery_duration_seconds_count"); got != float64(len(attempts)) {
		t.Errorf("latency histogram counted %v attempts, receiver saw %d", got, len(attempts))
	}
	if failed := e.audit("type=webhook.delivery.failed"); len(failed) != failFirst+flaky+2 {
		t.Errorf("%d delivery failure audit events, want %d", len(failed), failFirst+flaky+2)
	}
	if n := len(e.audit("type=webhook.paused")); n != 0 {
		t.Errorf("%d pause events, want none", n)
	}
}

// TestWebhookPausedAfterFailuresThenResumed: a dead receiver pauses the
// endpoint after MaxFailures attempts; it is shown as failing with its last
// error; resume continues from the entry that failed.
func TestWebhookPausedAfterFailuresThenResumed(t *testing.T) {
	cfg := fastDelivery
	cfg.MaxFailures = 3
	e := newDeliveryEnv(t, cfg)
	rc := newReceiver(t)
	var down sync.Mutex
	isDown := true
	rc.script = func(n int, id uint64, w http.ResponseWriter, r *http.Request) bool {
		down.Lock()
		defer down.Unlock()
		if isDown {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	wh := e.registerWebhook(map[string]any{"url": rc.srv.URL, "secret": rc.secret, "events": []string{}})
	alice := e.createUser("alice@example.com", nil)
	waitFor(t, 30*time.Second, "the endpoint to be paused", func() bool { return e.webhook(wh.ID).State == "paused" })
	v := e.webhook(wh.ID)
	if !v.Failing || v.Failures != 3 || !strings.Contains(v.LastError, "503") || !strings.Contains(v.LastError, "21-byte body") || v.Cursor != 0 {
		t.Fatalf("paused webhook = %+v", v)
	}
	// The receiver's answer body is counted, never recorded: not in
	// lastError, not in the audit chain.
	if strings.Contains(v.LastError, "database unavailable") {
		t.Fatalf("lastError records the receiver's body: %q", v.LastError)
	}
	for _, ev := range e.audit("type=webhook.delivery.failed") {
		if b, _ := json.Marshal(ev); strings.Contains(string(b), "database unavailable") {
			t.Fatalf("the audit chain records the receiver's body: %s", b)
		}
	}
	// More changes while paused wait in the feed.
	admins := e.createGroup("Intercom Admins", alice)
	_ = admins
	e.createUser("bob@example.com", nil)
	_, head := e.directory()
	if _, attempts, _ := rc.snapshot(); len(attempts) != 3 {
		t.Fatalf("%d attempts before resume, want 3 (a paused endpoint is not retried)", len(attempts))
	}
	if got := e.metric("scimd_webhook_pauses_total"); got != 1 {
		t.Errorf("pauses_total = %v, want 1", got)
	}
	if got := e.metric(`scimd_webhook_endpoints{state="paused"}`); got != 1 {
		t.Errorf(`endpoints{state="paused"} = %v, want 1`, got)
	}
	paused := e.audit("type=webhook.paused")
	if len(paused) != 1 || paused[0].Target.ID != wh.ID || paused[0].Actor.Name != "delivery" {
		t.Fatalf("pause audit events = %+v", paused)
	}
	if n := len(e.audit("type=webhook.delivery.failed")); n != 3 {
		t.Fatalf("%d failure audit events, want 3", n)
	}

	down.Lock()
	isDown = false
	down.Unlock()
	var resumed webhookView
	_ = json.Unmarshal(e.mustDo(http.MethodPost, e.srv.URL+"/api/v1/webhooks/"+wh.ID+"/resume", adminToken, nil, 200), &resumed)
	if resumed.State != "active" || resumed.Failures != 0 {
		t.Fatalf("resumed webhook = %+v", resumed)
	}
	waitFor(t, 30*time.Second, "delivery to catch up after resume", func() bool {
		acc, _, _ := rc.snapshot()
		return len(acc) > 0 && acc[len(acc)-1] == head
	})
	accepted, _, _ := rc.snapshot()
	checkInOrderOnce(t, accepted, head)
	if ev := e.audit("type=webhook.resumed"); len(ev) != 1 || ev[0].Actor.Kind != "admin" {
		t.Fatalf("resume audit events = %+v", ev)
	}
}

// TestWebhookEventFilter delivers only the subscribed changes and moves the
// cursor past the rest.
func TestWebhookEventFilter(t *testing.T) {
	e := newDeliveryEnv(t, fastDelivery)
	rc := newReceiver(t)
	wh := e.registerWebhook(map[string]any{"url": rc.srv.URL, "secret": rc.secret, "events": []string{"teammate.access.removed", "teammate.deleted"}})
	admins := e.createGroup("Intercom Admins")
	a := e.createUser("a@example.com", nil)
	b := e.createUser("b@example.com", nil)
	e.addMembers(admins, a, b)
	e.removeMembers(admins, a)
	e.mustDo(http.MethodDelete, e.scim+"/Users/"+b, e.token, nil, 204)
	e.idle()
	_, head := e.directory()
	waitFor(t, 30*time.Second, "the cursor to pass every entry", func() bool { return e.webhook(wh.ID).Cursor == head })
	accepted, _, _ := rc.snapshot()
	var types []string
	for _, id := range accepted {
		types = append(types, rc.bodies[id].Type)
	}
	if !slices.Equal(types, []string{"teammate.access.removed", "teammate.deleted"}) {
		t.Fatalf("filtered deliveries = %v (ids %v)", types, accepted)
	}
}

// TestWebhookDeliveryResumesAfterRestart: changes made while the receiver
// is down are delivered after scimd restarts, from the stored cursor.
func TestWebhookDeliveryResumesAfterRestart(t *testing.T) {
	cfg := fastDelivery
	cfg.MaxFailures = 1000 // never paused here, however slow the restart
	e := newDeliveryEnv(t, cfg)
	rc := newReceiver(t)
	var mu sync.Mutex
	up := true
	rc.script = func(n int, id uint64, w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			http.Error(w, "down", http.StatusBadGateway)
			return true
		}
		return false
	}
	wh := e.registerWebhook(map[string]any{"url": rc.srv.URL, "secret": rc.secret})
	e.createUser("one@example.com", nil)
	waitFor(t, 30*time.Second, "the first delivery", func() bool { return e.webhook(wh.ID).Cursor == 1 })
	mu.Lock()
	up = false
	mu.Unlock()
	for i := range 5 {
		e.createUser(fmt.Sprintf("later%d@example.com", i), nil)
	}
	waitFor(t, 30*time.Second, "a failed attempt", func() bool { return e.webhook(wh.ID).Failures > 0 })
	e.restartDelivery(cfg)
	mu.Lock()
	up = true
	mu.Unlock()
	_, head := e.directory()
	waitFor(t, 30*time.Second, "delivery after restart", func() bool { return e.webhook(wh.ID).Cursor == head })
	accepted, _, _ := rc.snapshot()
	checkInOrderOnce(t, accepted, head)
}

// TestDeadEndpointDelaysNobody: an endpoint that accepts connections and
// never answers holds only its own deliveries: SCIM writes succeed and a
// healthy endpoint receives every change meanwhile.
func TestDeadEndpointDelaysNobody(t *testing.T) {
	cfg := fastDelivery
	cfg.Timeout = time.Minute
	e := newDeliveryEnv(t, cfg)
	dead, healthy := newReceiver(t), newReceiver(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the receivers close
	dead.script = func(n int, id uint64, w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}
	deadHook := e.registerWebhook(map[string]any{"url": dead.srv.URL, "secret": dead.secret})
	healthyHook := e.registerWebhook(map[string]any{"url": healthy.srv.URL, "secret": healthy.secret})
	admins := e.createGroup("Intercom Admins")
	for i := range 20 {
		e.addMembers(admins, e.createUser(fmt.Sprintf("busy%02d@example.com", i), nil))
	}
	_, head := e.directory()
	waitFor(t, 30*time.Second, "the healthy endpoint to receive everything", func() bool { return e.webhook(healthyHook.ID).Cursor == head })
	accepted, _, _ := healthy.snapshot()
	checkInOrderOnce(t, accepted, head)
	waitFor(t, 30*time.Second, "the dead endpoint's first attempt", func() bool { _, a, _ := dead.snapshot(); return len(a) > 0 })
	_, attempts, _ := dead.snapshot()
	if v := e.webhook(deadHook.ID); v.Cursor != 0 || len(attempts) != 1 {
		t.Fatalf("dead endpoint: %+v after %d attempts, want one attempt in flight", v, len(attempts))
	}
}

// TestBadWebhookRegistrations get a 400 with a clear message, and the
// registry's other errors their status.
func TestBadWebhookRegistrations(t *testing.T) {
	e := newDeliveryEnv(t, fastDelivery)
	for _, c := range []struct {
		name string
		body any
		want string
	}{
		{"ftp url", map[string]any{"url": "ftp://example.com/x", "secret": testSecret}, "must be an absolute http:// or https:// URL"},
		{"relative url", map[string]any{"url": "/hooks", "secret": testSecret}, "must be an absolute http:// or https:// URL"},
		{"no host", map[string]any{"url": "http://", "secret": testSecret}, "must be an absolute http:// or https:// URL"},
		{"missing url", map[string]any{"secret": testSecret}, "url is required"},
		{"missing secret", map[string]any{"url": "https://app.example.com/hooks"}, "secret is required"},
		{"short secret", map[string]any{"url": "https://app.example.com/hooks", "secret": "hunter2"}, "too short"},
		{"bad whsec", map[string]any{"url": "https://app.example.com/hooks", "secret": "whsec_%%%not-base64%%%"}, "not standard base64"},
		{"unknown event", map[string]any{"url": "https://app.example.com/hooks", "secret": testSecret, "events": []string{"teammate.promoted"}}, `unknown event type "teammate.promoted"`},
		{"empty event", map[string]any{"url": "https://app.example.com/hooks", "secret": testSecret, "events": []string{""}}, `unknown event type ""`},
		{"typo field", map[string]any{"url": "https://app.example.com/hooks", "secret": testSecret, "event": []string{"teammate"}}, `unknown field "event"`},
		{"not json", "url=https://app.example.com", "body must be a JSON object"},
		{"after beyond head", map[string]any{"url": "https://app.example.com/hooks", "secret": testSecret, "after": 99}, "beyond the feed head"},
	} {
		status, body := e.do(http.MethodPost, e.srv.URL+"/api/v1/webhooks", adminToken, c.body)
		var msg struct{ Error string }
		_ = json.Unmarshal(body, &msg)
		if status != http.StatusBadRequest || !strings.Contains(msg.Error, c.want) {
			t.Errorf("%s: %d %s, want 400 mentioning %q", c.name, status, body, c.want)
		}
	}
	var list struct{ Webhooks []webhookView }
	_ = json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/webhooks", adminToken, nil, 200), &list)
	if len(list.Webhooks) != 0 {
		t.Fatalf("bad registrations stored: %+v", list.Webhooks)
	}
	// Prefixes of feed types are fine.
	ok := e.registerWebhook(map[string]any{"url": "https://user:pw@app.example.com/hooks", "secret": testSecret, "events": []string{"teammate.access", "teammate.role.changed"}})
	if ok.URL != "https://user:xxxxx@app.example.com/hooks" {
		t.Errorf("listed URL %q shows its password", ok.URL)
	}
	e.webhook(ok.ID) // fails on a listed secret
	for _, c := range []struct{ method, path string }{
		{http.MethodDelete, "/api/v1/webhooks/wh_nope"}, {http.MethodPost, "/api/v1/webhooks/wh_nope/resume"}, {http.MethodGet, "/api/v1/webhooks/wh_nope"},
	} {
		if status, body := e.do(c.method, e.srv.URL+c.path, adminToken, nil); status != http.StatusNotFound {
			t.Errorf("%s %s = %d %s, want 404", c.method, c.path, status, body)
		}
	}
	if status, _ := e.do(http.MethodPost, e.srv.URL+"/api/v1/webhooks", e.token, map[string]any{"url": "https://x.example.com", "secret": testSecret}); status != http.StatusForbidden {
		t.Errorf("registration with a SCIM token = %d, want 403", status)
	}
	e.mustDo(http.MethodDelete, e.srv.URL+"/api/v1/webhooks/"+ok.ID, adminToken, nil, http.StatusNoContent)
	created, deleted := e.audit("type=webhook.created"), e.audit("type=webhook.deleted")
	if len(created) != 1 || len(deleted) != 1 || created[0].Actor.Kind != "admin" || strings.Contains(fmt.Sprint(created[0]), "pw@") {
		t.Fatalf("audit: created %+v deleted %+v", created, deleted)
	}
}

// copyPoliciesTB is copyPolicies for benchmarks.
func copyPoliciesTB(tb testing.TB) string {
	tb.Helper()
	dst := tb.TempDir()
	entries, err := os.ReadDir(filepath.Join("..", "..", "policies"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, en := range entries {
		if en.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("..", "..", "policies", en.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, en.Name()), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dst
}

// BenchmarkSCIMWritesWithDeadWebhook measures SCIM user creation (each one
// a teammate change delivered to every endpoint) with no webhook, a
// healthy receiver, one that refuses connections and is retried every
// millisecond, and ten that accept connections and never answer. Besides
// ns/op it reports the median and 99th percentile request latency. Point
// TMPDIR at a tmpfs to take the disk's fsync time out of the comparison.
func BenchmarkSCIMWritesWithDeadWebhook(b *testing.B) {
	refused := func(tb testing.TB) string {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		return srv.URL
	}
	hanging := func(tb testing.TB) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			<-r.Context().Done()
		}))
		tb.Cleanup(srv.Close)
		return srv.URL
	}
	healthy := func(tb testing.TB) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusNoContent)
		}))
		tb.Cleanup(srv.Close)
		return srv.URL
	}
	for _, c := range []struct {
		name      string
		endpoints int
		url       func(testing.TB) string
		cfg       app.DeliveryConfig
	}{
		{"no-webhook", 0, nil, app.DeliveryConfig{}},
		{"healthy", 1, healthy, app.DeliveryConfig{}},
		{"refused-retry-1ms", 1, refused, app.DeliveryConfig{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxFailures: 1 << 30}},
		{"hanging-x10", 10, hanging, app.DeliveryConfig{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Timeout: time.Hour, MaxFailures: 1 << 30}},
	} {
		b.Run(c.name, func(b *testing.B) {
			a, err := app.Open(context.Background(), app.Config{
				Data: b.TempDir(), Policies: copyPoliciesTB(b), AdminToken: adminToken,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Delivery: c.cfg,
			})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(a.Handler)
			defer func() { srv.Close(); _ = a.Close() }()
			ctx := context.Background()
			status, body, err := send(ctx, http.MethodPost, srv.URL+"/api/v1/tokens", adminToken, map[string]string{"name": "bench"})
			if err != nil || status != http.StatusCreated {
				b.Fatalf("token: %d %s %v", status, body, err)
			}
			var tok struct{ Token string }
			_ = json.Unmarshal(body, &tok)
			for range c.endpoints {
				status, body, err := send(ctx, http.MethodPost, srv.URL+"/api/v1/webhooks", adminToken,
					map[string]any{"url": c.url(b), "secret": testSecret})
				if err != nil || status != http.StatusCreated {
					b.Fatalf("webhook: %d %s %v", status, body, err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				status, body, err := send(ctx, http.MethodPost, srv.URL+"/scim/v2/Users", tok.Token,
					map[string]any{"userName": fmt.Sprintf("bench%d@example.com", i), "active": true})
				if err != nil || status != http.StatusCreated {
					b.Fatalf("create user: %d %s %v", status, body, err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
