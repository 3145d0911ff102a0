package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/app"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/postgres"
	"github.com/scimd/scimd/scim/store/postgres/pgtest"
)

// getJSON GETs url with token and decodes the answer into out.
func getJSON(t *testing.T, url, token string, out any) int {
	t.Helper()
	status, body, err := call(context.Background(), http.DefaultClient, http.MethodGet, url, token, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if out != nil && status == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v\n%s", url, err, body)
		}
	}
	return status
}

// waitLeader waits until one of ds answers /readyz with 200 and returns it.
func waitLeader(t *testing.T, limit time.Duration, ds ...*daemon) (*daemon, time.Duration) {
	t.Helper()
	start := time.Now()
	client := &http.Client{Timeout: time.Second}
	for time.Since(start) < limit {
		for _, d := range ds {
			resp, err := client.Get(d.base + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return d, time.Since(start)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no leader within %s", limit)
	return nil, 0
}

type clusterView struct {
	Leader struct {
		Member, URL string
		Epoch       int64
	}
	Epoch   int64
	Members []struct{ Member, URL, Role string }
}

// TestFailoverLosesNoAcknowledgedWrite runs three real scimd processes on
// one real PostgreSQL: 16 writers send creates through all of them (the
// standbys forward to the leader); the leader is killed with SIGKILL
// mid-stream; a standby takes over; every write that got a 2xx is present,
// the audit chain verifies, the feed has no gap, a held change and the
// policy revision carry over. Then the new leader's lock connection is
// terminated in PostgreSQL, which deposes it.
func TestFailoverLosesNoAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	pg := pgtest.Start(t)
	url := pg.CreateDatabase(t)
	// Demoting 3 is held; granting admin to the 4 at once is not.
	args := []string{"--database", url, "--rate-limit", "0", "--guard-count", "2", "--guard-percent", "1", "--guard-escalation-count", "-1"}
	a := startDaemon(t, t.TempDir(), args...)
	if d, _ := waitLeader(t, 30*time.Second, a); d != a {
		t.Fatal("the first process did not lead")
	}
	b := startDaemon(t, t.TempDir(), args...)
	c := startDaemon(t, t.TempDir(), args...)
	all := []*daemon{a, b, c}
	for _, d := range []*daemon{b, c} {
		if s := getJSON(t, d.base+"/readyz", "", nil); s != http.StatusServiceUnavailable {
			t.Fatalf("standby /readyz = %d, want 503", s)
		}
		if s := getJSON(t, d.base+"/healthz", "", nil); s != http.StatusOK {
			t.Fatalf("standby /healthz = %d, want 200", s)
		}
	}
	var view clusterView
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s := getJSON(t, b.base+"/api/v1/cluster", b.admin, &view); s != http.StatusOK {
			t.Fatalf("GET /api/v1/cluster on a standby = %d", s)
		}
		if len(view.Members) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(view.Members) != 3 || view.Leader.URL != a.base || view.Epoch < 1 {
		t.Fatalf("cluster view from a standby: %+v (leader should be %s)", view, a.base)
	}
	firstEpoch := view.Epoch
	rc := newHookReceiver(t)
	if out, err := b.cli("webhook", "add", "--url", rc.srv.URL+"/scimd", "--secret", rc.secret); err != nil {
		t.Fatalf("webhook add through a standby: %v\n%s", err, out)
	}

	// Through a standby (forwarded): a token, a mapped group, and a held
	// change (removing 3 of 4 admins exceeds --guard-count 2).
	token := b.scimToken("failover")
	ctx := context.Background()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var held []string
	for i := range 4 {
		status, body, err := call(ctx, client, http.MethodPost, c.base+"/scim/v2/Users", token,
			map[string]any{"userName": fmt.Sprintf("admin%d@example.com", i), "active": true})
		if err != nil || status != http.StatusCreated {
			t.Fatalf("create admin %d through a standby: %d %s %v", i, status, body, err)
		}
		var u struct{ ID string }
		_ = json.Unmarshal(body, &u)
		held = append(held, u.ID)
	}
	members := []any{}
	for _, id := range held {
		members = append(members, map[string]any{"value": id})
	}
	status, body, err := call(ctx, client, http.MethodPost, b.base+"/scim/v2/Groups", token,
		map[string]any{"displayName": "Intercom Admins", "members": members})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create group: %d %s %v", status, body, err)
	}
	var group struct{ ID string }
	_ = json.Unmarshal(body, &group)
	for _, id := range held {
		waitRole(t, a, id, "admin")
	}
	status, body, err = call(ctx, client, http.MethodPatch, a.base+"/scim/v2/Groups/"+group.ID, token, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "remove", "path": "members", "value": members[:3]}},
	})
	if err != nil || status/100 != 2 {
		t.Fatalf("remove 3 admins: %d %s %v", status, body, err)
	}
	pendingBefore := pendingChanges(t, a)
	if len(pendingBefore) != 1 {
		t.Fatalf("pending changes on the leader = %v, want one held change", pendingBefore)
	}
	var policyBefore struct{ Revision string }
	getJSON(t, a.base+"/api/v1/policy", a.admin, &policyBefore)

	// 16 writers, each sending to the three processes in turn.
	type acked struct{ id, userName string }
	var (
		mu       sync.Mutex
		ackList  []acked
		failures atomic.Int64
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d := all[(w+i)%3]
				name := fmt.Sprintf("writer%d-%d@example.com", w, i)
				status, body, err := call(ctx, client, http.MethodPost, d.base+"/scim/v2/Users", token,
					map[string]any{"userName": name, "active": true})
				if err != nil || status != http.StatusCreated {
					failures.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				var u struct{ ID string }
				if json.Unmarshal(body, &u) != nil {
					continue
				}
				mu.Lock()
				ackList = append(ackList, acked{u.ID, name})
				mu.Unlock()
			}
		})
	}
	waitAcks := func(n int) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			mu.Lock()
			got := len(ackList)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d acknowledged writes, want %d", got, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitAcks(300)
	killed := time.Now()
	a.kill()
	leader, took := waitLeader(t, 60*time.Second, b, c)
	t.Logf("SIGKILL of the leader → a standby ready as leader: %s", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("takeover took %s, want within 5s", took)
	}
	mu.Lock()
	before := len(ackList)
	mu.Unlock()
	waitAcks(before + 200)
	close(stop)
	wg.Wait()
	t.Logf("%d creates acknowledged, %d failed or refused (during %s of failover)", len(ackList), failures.Load(), took.Round(time.Millisecond))
	_ = killed

	// The held change and the policy revision carried over.
	if after := pendingChanges(t, leader); fmt.Sprint(after) != fmt.Sprint(pendingBefore) {
		t.Fatalf("pending changes after failover = %v, before = %v", after, pendingBefore)
	}
	var policyAfter struct{ Revision string }
	getJSON(t, leader.base+"/api/v1/policy", leader.admin, &policyAfter)
	if policyAfter.Revision == "" || policyAfter.Revision != policyBefore.Revision {
		t.Fatalf("policy revision after failover %q, before %q", policyAfter.Revision, policyBefore.Revision)
	}
	getJSON(t, leader.base+"/api/v1/cluster", leader.admin, &view)
	if view.Leader.URL != leader.base || view.Epoch <= firstEpoch {
		t.Fatalf("cluster view after failover: %+v", view)
	}

	// A partition of the leader from the database deposes it: the other
	// standby takes over, and writes go on through it.
	other := b
	if leader == b {
		other = c
	}
	if err := pg.Exec(ctx, dbName(t, url), `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND ((classid::bigint << 32) | objid::bigint) = $1`, int64(0x7363696d6402)); err != nil {
		t.Fatalf("terminate the leader's lock connection: %v", err)
	}
	select {
	case <-leader.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the deposed leader did not stop")
	}
	if next, took := waitLeader(t, 60*time.Second, other); next != other {
		t.Fatal("the remaining standby did not lead")
	} else {
		t.Logf("lock connection terminated → the other standby ready as leader: %s", took.Round(time.Millisecond))
	}
	status, body, err = call(ctx, client, http.MethodPost, other.base+"/scim/v2/Users", token,
		map[string]any{"userName": "after-partition@example.com", "active": true})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("write after the partition: %d %s %v", status, body, err)
	}
	// Every feed entry reached the webhook receiver, at least once and in
	// order, across both takeovers.
	deadline = time.Now().Add(90 * time.Second)
	for {
		head, err := other.feedHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		accepted, bad := rc.state()
		if len(bad) > 0 {
			t.Fatalf("bad deliveries: %v", bad)
		}
		if len(accepted) > 0 && accepted[len(accepted)-1] == head {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries stopped at %d entries, feed head %d", len(accepted), head)
		}
		time.Sleep(20 * time.Millisecond)
	}
	accepted, _ := rc.state()
	distinct, redelivered := 0, 0
	for _, id := range accepted {
		switch {
		case id == uint64(distinct+1):
			distinct++
		case id <= uint64(distinct):
			redelivered++
		default:
			t.Fatalf("delivery of %d after %d: out of order or lost", id, distinct)
		}
	}
	t.Logf("webhooks: %d entries delivered in order, %d delivered again after a takeover", distinct, redelivered)
	if err := other.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// Everything acknowledged is in the database; the audit chain verifies;
	// the feed has no gap.
	backend, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Options{Backend: backend, Records: app.Records()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	snap := st.Read()
	for _, ack := range ackList {
		u, ok := snap.Resource(store.KindUser, ack.id)
		if !ok || u.Name != ack.userName {
			t.Fatalf("acknowledged user %s (%s) lost: %+v", ack.id, ack.userName, u)
		}
	}
	events, err := st.AuditEvents(ctx, store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	v := audit.NewVerifier()
	for _, e := range events {
		if err := v.Next(e); err != nil {
			t.Fatalf("audit chain: %v", err)
		}
	}
	if int(v.Count()) < len(ackList) {
		t.Fatalf("audit has %d events for %d acknowledged creates", v.Count(), len(ackList))
	}
	feed, err := st.Feed(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(feed) == 0 {
		t.Fatal("empty feed: the role changes were not published")
	}
	for i, f := range feed {
		if f.Seq != uint64(i+1) {
			t.Fatalf("feed entry %d has seq %d: a gap", i+1, f.Seq)
		}
	}
	t.Logf("%d audit events verified, %d feed entries without a gap", v.Count(), len(feed))
}

func dbName(t *testing.T, url string) string {
	t.Helper()
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '/' {
			name := url[i+1:]
			for j := range name {
				if name[j] == '?' {
					return name[:j]
				}
			}
			return name
		}
	}
	t.Fatalf("no database in %s", url)
	return ""
}

// waitRole waits until the teammate has the role on d.
func waitRole(t *testing.T, d *daemon, id, role string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var tm struct{ Role *string }
		if getJSON(t, d.base+"/api/v1/teammates/"+id, d.admin, &tm) == http.StatusOK && tm.Role != nil && *tm.Role == role {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("teammate %s did not become %s", id, role)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pendingChanges returns the ids of the held changes on d, waiting a
// little for the reconciler to hold one.
func pendingChanges(t *testing.T, d *daemon) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out struct {
			Changes []struct{ ID string }
		}
		getJSON(t, d.base+"/api/v1/changes", d.admin, &out)
		var ids []string
		for _, c := range out.Changes {
			ids = append(ids, c.ID)
		}
		if len(ids) > 0 || time.Now().After(deadline) {
			return ids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterMemberRefusesWhatItCannotServe: with --database, settings a
// cluster member does not honour yet are refused, not silently ignored.
func TestClusterMemberRefusesWhatItCannotServe(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", "c.pem", "--tls-key", "k.pem"}, "--tls-cert"},
		{[]string{"--admin-listen", "127.0.0.1:0"}, "--admin-listen"},
	}
	for _, tc := range tests {
		args := append([]string{"serve", "--listen", "127.0.0.1:0", "--database", "postgres://scimd@127.0.0.1:1/x"}, tc.args...)
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "SCIMD_ADMIN_TOKEN="+testAdminToken)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "not supported with --database") {
			t.Errorf("serve %v: %v\n%s", tc.args, err, out)
		}
	}
}
