package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/scim/store"
)

// slowForTitle is appended to the default policy: a grant that takes
// minutes for users whose title is "Slowpoke" (built at evaluation time,
// so the gate's probes do not try it).
const slowForTitle = `
attribute_grants contains {"role": "viewer", "reason": "slow"} if {
	input.user.title == concat("", ["Slow", "poke"])
	every i in numbers.range(1, 100000) {
		every j in numbers.range(1, 100000) {
			i != 0 - j
		}
	}
}
`

// TestEvaluationDeadline runs a full pass and a SCIM-sized trigger over
// teammates of whom one is slow to decide: the slow one keeps its
// decision, is marked and tracked in the backlog; every other teammate is
// decided; a later successful evaluation clears the mark.
func TestEvaluationDeadline(t *testing.T) {
	for _, users := range []int{5, 200} { // the single-input and the chunked batch paths
		t.Run(fmt.Sprint(users, " users"), func(t *testing.T) {
			ctx := context.Background()
			st := openTestStore(t)
			src := &staticPolicy{}
			src.set.Store(loadPolicy(t, slowForTitle))
			r := New(Options{Store: st, Policy: src, Threshold: &noEscalationGuard, EvalTimeout: 300 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			write := func(fn func(tx *store.WriteTxn) error) {
				t.Helper()
				if err := st.Write(ctx, fn); err != nil {
					t.Fatal(err)
				}
			}
			write(func(tx *store.WriteTxn) error {
				if err := tx.PutResource(&store.Resource{ID: "g1", Kind: store.KindGroup, Name: "Intercom Admins",
					Attrs: map[string]any{}, Created: tx.Now(), Modified: tx.Now(), Version: 1}); err != nil {
					return err
				}
				for i := range users {
					id := fmt.Sprintf("u%03d", i)
					if err := tx.PutResource(&store.Resource{ID: id, Kind: store.KindUser, Name: id + "@example.com",
						Attrs: map[string]any{"active": true}, Created: tx.Now(), Modified: tx.Now(), Version: 1}); err != nil {
						return err
					}
					if _, err := tx.AddMember(&store.Membership{GroupID: "g1", MemberID: id, MemberKind: store.KindUser}); err != nil {
						return err
					}
				}
				return nil
			})
			pass := func(tr trigger) {
				t.Helper()
				tr.committedAt = time.Now()
				if err := r.process(ctx, []trigger{tr}); err != nil {
					t.Fatal(err)
				}
			}
			pass(trigger{cause: Cause{Kind: "policy"}, all: true})
			if got := countRole(st, "admin"); got != users {
				t.Fatalf("%d admins, want %d", got, users)
			}
			setTitle := func(title any) {
				write(func(tx *store.WriteTxn) error {
					u, _ := tx.Resource(store.KindUser, "u001")
					next := *u
					next.Attrs = map[string]any{"active": true, "title": title}
					next.Version++
					return tx.PutResource(&next)
				})
			}
			// u001 becomes slow; everyone else loses the group.
			setTitle("Slowpoke")
			write(func(tx *store.WriteTxn) error {
				for i := range users {
					if _, err := tx.RemoveMember("g1", fmt.Sprintf("u%03d", i)); err != nil {
						return err
					}
				}
				return nil
			})
			start := time.Now()
			if users > 64 {
				pass(trigger{cause: Cause{Kind: "policy"}, all: true, bypassGuard: true})
			} else {
				ids := []string{}
				for i := range users {
					ids = append(ids, fmt.Sprintf("u%03d", i))
				}
				pass(trigger{cause: Cause{Kind: "scim"}, users: ids})
			}
			t.Logf("pass took %s", time.Since(start))
			slow, _ := st.Read().Record(TableTeammates, "u001")
			// The loop runs out of time (the interpreter, or the compiled
			// policy's fuel refills) or of the compiled policy's memory
			// first: either bound stops it.
			if tm := slow.(*Teammate); !tm.Access || tm.Role != "admin" ||
				!(strings.Contains(tm.DecisionError, "deadline") || strings.Contains(tm.DecisionError, "MiB of memory")) {
				t.Errorf("slow teammate %+v: want admin kept and a deadline (or memory) decisionError", tm)
			}
			if got := countRole(st, "admin"); got != 1 {
				t.Errorf("%d admins after the removal, want only the slow one", got)
			}
			if b := r.Backlog(); b.Failing != 1 || b.Oldest.IsZero() {
				t.Errorf("backlog %+v, want one failing teammate", b)
			}
			setTitle("Fast")
			pass(trigger{cause: Cause{Kind: "retry"}, users: []string{"u001"}})
			slow, _ = st.Read().Record(TableTeammates, "u001")
			if tm := slow.(*Teammate); tm.Access || tm.DecisionError != "" {
				t.Errorf("slow teammate after a successful evaluation %+v: want decided and unmarked", tm)
			}
			if b := r.Backlog(); b.Failing != 0 {
				t.Errorf("backlog %+v after recovery", b)
			}
		})
	}
}
