package server

import (
	"github.com/scimd/scimd/scim/patch"
	"github.com/scimd/scimd/scim/store"
)

// membersDelta is a change to a group's member set.
type membersDelta struct {
	// replace: the members become exactly add.
	replace bool
	// removeAll: every current member is removed before add is applied.
	removeAll bool
	add       []patch.Member
	remove    []string
}

func deltaFromPatch(d patch.MemberDelta) membersDelta {
	return membersDelta{replace: d.Replace, removeAll: d.RemoveAll, remove: d.Remove, add: d.Add}
}

// memberChange is what applying a delta did.
type memberChange struct {
	added, removed, skipped []string
}

func (mc memberChange) empty() bool { return len(mc.added) == 0 && len(mc.removed) == 0 }

// applyMembers applies a membership delta to a group as set operations in
// the write transaction, so concurrent PATCHes never lose each other's
// members. Member ids that name no user or group are skipped and reported
// (the IdP may send a member scimd never received).
func (s *Server) applyMembers(tx *store.WriteTxn, groupID string, d membersDelta) (memberChange, error) {
	var mc memberChange
	keep := map[string]bool{}
	if d.replace {
		for _, m := range d.add {
			keep[m.Value] = true
		}
	}
	if d.replace || d.removeAll {
		for _, m := range tx.Members(groupID) {
			if keep[m.MemberID] && !d.removeAll {
				continue
			}
			if _, err := tx.RemoveMember(groupID, m.MemberID); err != nil {
				return mc, err
			}
			mc.removed = append(mc.removed, m.MemberID)
		}
	}
	for _, id := range d.remove {
		removed, err := tx.RemoveMember(groupID, id)
		if err != nil {
			return mc, err
		}
		if removed {
			mc.removed = append(mc.removed, id)
		}
	}
	for _, m := range d.add {
		kind, ok := memberKind(tx, groupID, m.Value)
		if !ok {
			mc.skipped = append(mc.skipped, m.Value)
			s.log.Warn("skipping unknown group member", "group", groupID, "member", m.Value)
			continue
		}
		added, err := tx.AddMember(&store.Membership{GroupID: groupID, MemberID: m.Value, MemberKind: kind, Display: m.Display})
		if err != nil {
			return mc, err
		}
		if added {
			mc.added = append(mc.added, m.Value)
		}
	}
	mc.removed = dedupeRemoved(mc.removed, mc.added)
	if err := touchUsers(tx, mc.added, mc.removed); err != nil {
		return mc, err
	}
	return mc, nil
}

// touchUsers gives a new version to every user among the member id lists:
// a user's groups attribute changed with its memberships, so its
// meta.version and ETag change too and If-Match on the user protects
// against a concurrent membership change.
func touchUsers(tx *store.WriteTxn, lists ...[]string) error {
	done := map[string]bool{}
	for _, ids := range lists {
		for _, id := range ids {
			if done[id] {
				continue
			}
			done[id] = true
			u, ok := tx.Resource(store.KindUser, id)
			if !ok {
				continue
			}
			if err := tx.PutResource(touched(u, tx.Now())); err != nil {
				return err
			}
		}
	}
	return nil
}

// dedupeRemoved drops ids that were removed and then added back in the
// same request: for the audit log that member did not change.
func dedupeRemoved(removed, added []string) []string {
	if len(removed) == 0 || len(added) == 0 {
		return removed
	}
	back := map[string]bool{}
	for _, a := range added {
		back[a] = true
	}
	out := removed[:0]
	for _, r := range removed {
		if !back[r] {
			out = append(out, r)
		}
	}
	return out
}

func memberKind(tx *store.WriteTxn, groupID, id string) (store.Kind, bool) {
	if _, ok := tx.Resource(store.KindUser, id); ok {
		return store.KindUser, true
	}
	if _, ok := tx.Resource(store.KindGroup, id); ok && id != groupID {
		return store.KindGroup, true
	}
	return "", false
}
