package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// TestLoadMemberships checks the bulk load against sorting with the trees'
// own comparisons, for memberships in backend order (shuffled), with
// duplicates, and that equal ids share one string afterwards.
func TestLoadMemberships(t *testing.T) {
	for _, c := range []struct {
		name            string
		groups, members int
		dup             int
	}{
		{"empty", 0, 0, 0},
		{"one", 1, 1, 0},
		{"duplicates only", 1, 1, 3},
		{"many", 7, 500, 40},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			var ms []*Membership
			for g := range c.groups {
				for m := range c.members {
					if (g+m)%3 == 0 || c.groups == 1 {
						ms = append(ms, &Membership{GroupID: fmt.Sprint("g", g), MemberID: fmt.Sprintf("%x", m*2654435761), MemberKind: KindUser})
					}
				}
			}
			want := len(ms)
			for i := range c.dup {
				d := *ms[i%len(ms)]
				d.GroupID, d.MemberID = string([]byte(d.GroupID)), string([]byte(d.MemberID)) // equal, not shared
				ms = append(ms, &d)
			}
			rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
			tbl := loadMemberships(slices.Clone(ms))
			byGroup, byMember := tbl.byGroup.Items(), tbl.byMember.Items()
			if len(byGroup) != want || len(byMember) != want {
				t.Fatalf("%d by group, %d by member, want %d", len(byGroup), len(byMember), want)
			}
			if !slices.IsSortedFunc(byGroup, compareByGroup) || !slices.IsSortedFunc(byMember, compareByMember) {
				t.Fatal("trees out of order")
			}
			for i := 1; i < len(byGroup); i++ {
				if compareByGroup(byGroup[i-1], byGroup[i]) == 0 {
					t.Fatalf("duplicate membership %+v kept", byGroup[i])
				}
				if byGroup[i-1].GroupID == byGroup[i].GroupID && unsafe.StringData(byGroup[i-1].GroupID) != unsafe.StringData(byGroup[i].GroupID) {
					t.Fatalf("group id %q held twice", byGroup[i].GroupID)
				}
				if byMember[i-1].MemberID == byMember[i].MemberID && unsafe.StringData(byMember[i-1].MemberID) != unsafe.StringData(byMember[i].MemberID) {
					t.Fatalf("member id %q held twice", byMember[i].MemberID)
				}
			}
		})
	}
}
