package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/scimd/scimd/scim/store"
)

// TestGuardCountsEachTeammateOnce checks the mass-change guard of a full
// pass (a policy activation) against teammates that have both a SCIM user
// and a teammate record: each demotion counts once, so 6 of 100 with a
// threshold of more than 10 and more than 10 % is applied, and 12 of 100
// is held as one pending change listing 12 changes.
func TestGuardCountsEachTeammateOnce(t *testing.T) {
	tests := []struct {
		name      string
		removed   int
		wantHeld  bool
		wantAdmin int
	}{
		{"below the threshold is applied", 6, false, 94},
		{"above the threshold is held", 12, true, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := openTestStore(t)
			err := st.Write(ctx, func(tx *store.WriteTxn) error {
				if err := tx.PutResource(&store.Resource{ID: "g1", Kind: store.KindGroup, Name: "Intercom Admins",
					Attrs: map[string]any{}, Created: tx.Now(), Modified: tx.Now(), Version: 1}); err != nil {
					return err
				}
				for i := range 100 {
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
			if err != nil {
				t.Fatal(err)
			}
			src := &staticPolicy{}
			src.set.Store(loadPolicy(t, ""))
			r := New(Options{Store: st, Policy: src, Threshold: &Threshold{Count: 10, Percent: 10, EscalationCount: -1},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			pass := func() {
				t.Helper()
				if err := r.process(ctx, []trigger{{cause: Cause{Kind: "policy"}, all: true, committedAt: time.Now()}}); err != nil {
					t.Fatal(err)
				}
			}
			pass() // everyone becomes admin: promotions, never held
			if got := countRole(st, "admin"); got != 100 {
				t.Fatalf("%d admins after the first pass, want 100", got)
			}
			err = st.Write(ctx, func(tx *store.WriteTxn) error {
				for i := range tt.removed {
					if _, err := tx.RemoveMember("g1", fmt.Sprintf("u%03d", i)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			pass()
			if got := countRole(st, "admin"); got != tt.wantAdmin {
				t.Errorf("%d admins, want %d", got, tt.wantAdmin)
			}
			var pending []*PendingChange
			st.Read().Records(TableChanges, func(_ string, v any) bool {
				pending = append(pending, v.(*PendingChange))
				return true
			})
			if !tt.wantHeld {
				if len(pending) != 0 {
					t.Fatalf("%d pending changes, want none: %+v", len(pending), pending[0])
				}
				return
			}
			if len(pending) != 1 {
				t.Fatalf("%d pending changes, want 1", len(pending))
			}
			if c := pending[0]; c.Demotions != tt.removed || len(c.Changes) != tt.removed {
				t.Errorf("pending change counts %d demotions and lists %d changes, want %d each", c.Demotions, len(c.Changes), tt.removed)
			}
		})
	}
}

func countRole(st *store.Store, role string) int {
	n := 0
	st.Read().Records(TableTeammates, func(_ string, v any) bool {
		if tm := v.(*Teammate); tm.Access && tm.Role == role {
			n++
		}
		return true
	})
	return n
}

// noEscalationGuard is the default guard without its escalation rule, for
// tests that grant the highest role to everyone on purpose.
var noEscalationGuard = Threshold{Count: 10, Percent: 10, EscalationCount: -1}
