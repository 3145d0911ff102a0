package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/scim/store"
)

// benchTeammates is the number of teammates BenchmarkPages seeds
// (SCIMD_CONSOLE_BENCH_TEAMMATES overrides the default of 100k).
func benchTeammates(b *testing.B) int {
	if v := os.Getenv("SCIMD_CONSOLE_BENCH_TEAMMATES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			b.Fatalf("SCIMD_CONSOLE_BENCH_TEAMMATES=%q", v)
		}
		return n
	}
	return 100_000
}

// seedMany writes users, 1,000 groups (three of them mapped) and three
// memberships per user straight into the store, and lets the reconciler
// decide every teammate.
func seedMany(b *testing.B, e *env, users int) {
	ctx := context.Background()
	const groups = 1000
	mapped := map[int]string{0: "Intercom Admins", 1: "Intercom Support", 2: "Intercom Viewers"}
	err := e.app.Store.Write(ctx, func(tx *store.WriteTxn) error {
		for g := range groups {
			name, ok := mapped[g]
			if !ok {
				name = fmt.Sprintf("Group %04d", g)
			}
			r := &store.Resource{ID: fmt.Sprintf("g%04d", g), Kind: store.KindGroup, Name: name, Attrs: map[string]any{},
				Created: tx.Now(), Modified: tx.Now(), Version: 1}
			if g%10 == 5 {
				r.ExternalID = fmt.Sprintf("ext-%04d", g)
			}
			if err := tx.PutResource(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	const chunk = 2000
	for start := 0; start < users; start += chunk {
		err := e.app.Store.Write(ctx, func(tx *store.WriteTxn) error {
			for i := start; i < min(start+chunk, users); i++ {
				id, name := fmt.Sprintf("u%07d", i), fmt.Sprintf("user%07d", i)
				u := &store.Resource{ID: id, Kind: store.KindUser, Name: name, Created: tx.Now(), Modified: tx.Now(), Version: 1,
					Attrs: map[string]any{"active": true, "displayName": "Given Family",
						"emails": []any{map[string]any{"value": name + "@example.com", "type": "work", "primary": true}}}}
				if err := tx.PutResource(u); err != nil {
					return err
				}
				for k := range 3 {
					g := 1 + (i*7919+k*333)%(groups-1) // never the admin group: its grants are held
					if k == 0 && i%3 == 0 {
						g = 1 + i%2 // a third of the teammates get a role
					}
					if _, err := tx.AddMember(&store.Membership{GroupID: fmt.Sprintf("g%04d", g), MemberID: id, MemberKind: store.KindUser}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	e.idle()
}

// BenchmarkPages measures every console page, server-side rendering plus
// the loopback round trip, with 100k teammates. Run with -cpu 2 and a small
// -benchtime; seeding takes a while.
func BenchmarkPages(b *testing.B) {
	n := benchTeammates(b)
	e := newEnv(b, false)
	started := time.Now()
	seedMany(b, e, n)
	b.Logf("seeded %d teammates in %v", n, time.Since(started).Round(time.Millisecond))

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	get := func(path string) string {
		resp, err := hc.Get(e.srv.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return string(body)
	}
	login := get("/ui/login")
	resp, err := hc.PostForm(e.srv.URL+"/ui/login", url.Values{"token": {adminSecret}, "csrf": {csrfField.FindStringSubmatch(login)[1]}})
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("sign in: %v %v", resp, err)
	}
	resp.Body.Close()
	// Let the console finish verifying the audit chain and counting the
	// changes of the last days before measuring.
	deadline := time.Now().Add(10 * time.Minute)
	for strings.Contains(get("/ui/audit"), "written, verifying") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	mid := n / 2
	pages := []struct{ name, path string }{
		{"overview", "/ui/"},
		{"teammates", "/ui/teammates"},
		{"teammates-last-page", fmt.Sprintf("/ui/teammates?page=%d", (n+49)/50)},
		{"search-userName", fmt.Sprintf("/ui/teammates?q=user%07d", mid)},
		{"search-email-no-match", "/ui/teammates?q=nobody@nowhere"},
		{"filter-role", "/ui/teammates?role=support&page=100"},
		{"filter-group", "/ui/teammates?group=Group+0500"},
		{"teammate", fmt.Sprintf("/ui/teammates/u%07d", mid)},
		{"groups", "/ui/groups"},
		{"changes", "/ui/changes"},
		{"audit", "/ui/audit"},
		{"audit-teammate", fmt.Sprintf("/ui/audit?teammate=user%07d", mid)},
		{"audit-type-since", "/ui/audit?type=teammate.role&since=" + time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")},
		{"audit-type-common", "/ui/audit?type=teammate"},
		{"audit-event", "/ui/audit/3"},
		{"policy", "/ui/policy"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			cpu0 := cpuTime()
			for b.Loop() {
				get(p.path)
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
		})
	}
}
