package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/sqlite"
)

// staticPolicy is a PolicySource whose active set the benchmark swaps.
type staticPolicy struct{ set atomic.Pointer[policy.Set] }

func (p *staticPolicy) Active() *policy.Set { return p.set.Load() }

// loadPolicy loads the repository's default policy, with extra appended to
// groups.rego (a comment gives a new revision deciding the same).
func loadPolicy(tb testing.TB, extra string) *policy.Set {
	tb.Helper()
	dir := filepath.Join("..", "..", "policies")
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !policy.IsPolicyFile(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		files[e.Name()] = b
	}
	files["groups.rego"] = append(files["groups.rego"], extra...)
	s, err := policy.LoadFiles(context.Background(), files)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

var benchDepartments = []string{"Engineering", "Sales", "Support", "Marketing", "Finance"}

// seedState writes users users, 1,000 groups (the first three mapped by
// the default policy) and three memberships per user.
func seedState(tb testing.TB, ctx context.Context, st *store.Store, users int) {
	tb.Helper()
	const groups = 1000
	mapped := []string{"Intercom Admins", "Intercom Support", "Intercom Viewers"}
	err := st.Write(ctx, func(tx *store.WriteTxn) error {
		for g := range groups {
			name := fmt.Sprintf("Group %04d", g)
			if g < len(mapped) {
				name = mapped[g]
			}
			if err := tx.PutResource(&store.Resource{ID: fmt.Sprintf("g%04d", g), Kind: store.KindGroup, Name: name,
				Attrs: map[string]any{}, Created: tx.Now(), Modified: tx.Now(), Version: 1}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	const chunk = 2000
	for start := 0; start < users; start += chunk {
		err := st.Write(ctx, func(tx *store.WriteTxn) error {
			for i := start; i < min(start+chunk, users); i++ {
				id, name := fmt.Sprintf("u%07d", i), fmt.Sprintf("user%07d@example.com", i)
				u := &store.Resource{ID: id, Kind: store.KindUser, Name: name, Created: tx.Now(), Modified: tx.Now(), Version: 1,
					Attrs: map[string]any{"active": true, "displayName": "Given Family",
						"name":   map[string]any{"givenName": "Given", "familyName": fmt.Sprint("Family", i)},
						"emails": []any{map[string]any{"value": name, "type": "work", "primary": true}},
						"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{
							"department": benchDepartments[i%len(benchDepartments)]}}}
				if err := tx.PutResource(u); err != nil {
					return err
				}
				for k := range 3 {
					g := (i*7919 + k*(groups/3)) % groups
					if _, err := tx.AddMember(&store.Membership{GroupID: fmt.Sprintf("g%04d", g), MemberID: id, MemberKind: store.KindUser}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkFullReevaluation is the reconciler's full pass after a policy
// change, through process (evaluation, comparison and the durable apply),
// with 10k and 100k teammates. Every op activates a new revision that
// decides the same, so every teammate is evaluated and none changes. Run
// with -benchtime=3x: one op is a whole pass.
func BenchmarkFullReevaluation(b *testing.B) {
	ctx := context.Background()
	sets := []*policy.Set{loadPolicy(b, "\n# revision A\n"), loadPolicy(b, "\n# revision B\n")}
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("teammates=%d", n), func(b *testing.B) {
			be, err := sqlite.Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			st, err := store.Open(ctx, store.Options{Backend: be, Records: Records()})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			seedState(b, ctx, st, n)
			src := &staticPolicy{}
			src.set.Store(sets[0])
			r := New(Options{Store: st, Policy: src, Threshold: &noEscalationGuard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			pass := func(s *policy.Set) {
				src.set.Store(s)
				t := trigger{cause: Cause{Kind: "policy", Revision: s.Revision(), Actor: "policy"}, all: true, committedAt: time.Now()}
				if err := r.process(ctx, []trigger{t}); err != nil {
					b.Fatal(err)
				}
			}
			pass(sets[0]) // creates every teammate
			b.ReportAllocs()
			cpu0 := cpuTime()
			i := 0
			for b.Loop() {
				i++
				pass(sets[i%2])
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/teammate")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*n), "cpu-ns/teammate")
			var granted int
			st.Read().Records(TableTeammates, func(_ string, v any) bool {
				if v.(*Teammate).Access {
					granted++
				}
				return true
			})
			if granted == 0 {
				b.Fatal("no teammate has access: the benchmark state maps no group")
			}
		})
	}
}
