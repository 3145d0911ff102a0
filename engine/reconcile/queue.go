package reconcile

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
)

// trigger is one unit of work: a SCIM write, a policy activation, …
type trigger struct {
	cause       Cause
	users       []string
	all         bool
	bypassGuard bool
	// changeID is the pending change an approval applies.
	changeID    string
	committedAt time.Time
	// manualSeq links a drift revert to the manual change's audit event.
	manualSeq map[string]uint64
	// shadowPass compares a new shadow policy with the live one for
	// every teammate; it changes nothing.
	shadowPass bool
}

func (r *Reconciler) enqueue(t trigger) {
	r.mu.Lock()
	r.queue = append(r.queue, t)
	r.enqueued++
	r.metrics.queueDepth.Set(float64(len(r.queue)))
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// onCommit runs on the store's committer after each durable write: it
// works out which users the write affects and enqueues them.
func (r *Reconciler) onCommit(ci store.CommitInfo) {
	users := map[string]bool{}
	manual := map[string]uint64{}
	var renames []GroupRename
	var snap *store.Snapshot
	for _, c := range ci.Changes {
		switch c.Table {
		case store.TableUsers:
			users[resourceID(c)] = true
		case store.TableMemberships:
			m := c.After
			if m == nil {
				m = c.Before
			}
			if mm := m.(*store.Membership); mm.MemberKind != store.KindGroup {
				users[mm.MemberID] = true
			}
		case store.TableGroups:
			before, _ := c.Before.(*store.Resource)
			after, _ := c.After.(*store.Resource)
			if before != nil && after != nil && (before.Name != after.Name || before.ExternalID != after.ExternalID) {
				if before.Name != after.Name {
					renames = append(renames, GroupRename{ID: after.ID, From: before.Name, To: after.Name})
				}
				if snap == nil {
					snap = r.store.Read()
				}
				for _, m := range snap.Members(after.ID) {
					users[m.MemberID] = true
				}
			}
		case store.TableRecords:
			after, _ := c.After.(*store.Record)
			if after == nil || after.Table != TableTeammates {
				continue
			}
			if t := after.Value.(*Teammate); t.Manual != nil {
				users[t.ID] = true
				manual[t.ID] = 0
			}
		}
	}
	if len(users) == 0 {
		return
	}
	cause := Cause{Kind: "scim", GroupsRenamed: renames}
	if len(renames) > 0 {
		cause.Summary = renameSummary(renames)
	}
	for _, e := range ci.Events {
		cause.AuditSeqs = append(cause.AuditSeqs, e.Seq)
		if cause.Actor == "" {
			cause.Actor, cause.RequestID = e.Actor.Name, e.RequestID
		}
		if e.Type == audit.TypeRoleManual {
			cause.Kind = "drift"
			manual[e.Target.ID] = e.Seq
		}
	}
	list := make([]string, 0, len(users))
	for id := range users {
		list = append(list, id)
	}
	sort.Strings(list)
	r.enqueue(trigger{cause: cause, users: list, committedAt: time.Now(), manualSeq: manual})
}

func resourceID(c store.Change) string {
	if c.After != nil {
		return c.After.(*store.Resource).ID
	}
	return c.Before.(*store.Resource).ID
}

// onlyFullPasses reports whether every trigger of trig is for the whole
// population (a policy activation or the startup pass).
func onlyFullPasses(batch []trigger, trig []int) bool {
	for _, ti := range trig {
		if !batch[ti].all {
			return false
		}
	}
	return len(trig) > 0
}

// onlyKind reports whether every trigger of batch has cause kind.
func onlyKind(batch []trigger, kind string) bool {
	for _, t := range batch {
		if t.cause.Kind != kind {
			return false
		}
	}
	return true
}

// anyActivation reports whether batch holds a policy activation's pass.
func anyActivation(batch []trigger) bool {
	for _, t := range batch {
		if t.all && t.cause.Kind == "policy" {
			return true
		}
	}
	return false
}

func anyApproval(batch []trigger, trig []int, changeID string) bool {
	for _, ti := range trig {
		if batch[ti].changeID == changeID {
			return true
		}
	}
	return false
}

// touchedUser is a user a batch touches and the triggers that touched it.
type touchedUser struct {
	id       string
	triggers []int
	// resolved: user and rec are the user's resource and teammate record
	// (nil when absent), found while listing everyone.
	resolved bool
	user     *store.Resource
	rec      *Teammate
}

// touchedUsers returns the users a batch touches, in id order, each with
// the indices of its triggers: the triggers naming it, in batch order, then
// every trigger of the whole population (all), once for the user's SCIM
// resource and once for its teammate record. full tells whether some
// trigger was for the whole population. Users touched only by such
// triggers share their triggers slice, which must not be modified.
func touchedUsers(snap *store.Snapshot, batch []trigger) ([]touchedUser, bool) {
	named := map[string][]int{}
	var all []int
	for i, t := range batch {
		if t.all {
			all = append(all, i)
			continue
		}
		for _, id := range t.users {
			if own := named[id]; len(own) == 0 || own[len(own)-1] != i { // each trigger once per user
				named[id] = append(own, i)
			}
		}
	}
	if all == nil {
		out := make([]touchedUser, 0, len(named))
		for id, trig := range named {
			out = append(out, touchedUser{id: id, triggers: trig})
		}
		slices.SortFunc(out, func(a, b touchedUser) int { return strings.Compare(a.id, b.id) })
		return out, false
	}

	type record struct {
		id string
		t  *Teammate
	}
	var users []*store.Resource
	var records []record
	snap.Resources(store.KindUser, func(u *store.Resource) bool {
		users = append(users, u)
		return true
	})
	snap.Records(TableTeammates, func(id string, v any) bool {
		records = append(records, record{id, v.(*Teammate)})
		return true
	})
	if !slices.IsSortedFunc(users, func(a, b *store.Resource) int { return strings.Compare(a.ID, b.ID) }) {
		slices.SortFunc(users, func(a, b *store.Resource) int { return strings.Compare(a.ID, b.ID) })
	}
	if !slices.IsSortedFunc(records, func(a, b record) int { return strings.Compare(a.id, b.id) }) {
		slices.SortFunc(records, func(a, b record) int { return strings.Compare(a.id, b.id) })
	}
	all = slices.Clip(all)
	out := make([]touchedUser, 0, max(len(users), len(records)))
	add := func(id string, u *store.Resource, rec *Teammate) {
		t := touchedUser{id: id, triggers: all, resolved: true, user: u, rec: rec}
		if own, ok := named[id]; ok {
			t.triggers = append(slices.Clip(own), t.triggers...)
			delete(named, id)
		}
		out = append(out, t)
	}
	i, j := 0, 0
	for i < len(users) || j < len(records) {
		switch {
		case j == len(records) || (i < len(users) && users[i].ID < records[j].id):
			add(users[i].ID, users[i], nil)
			i++
		case i == len(users) || records[j].id < users[i].ID:
			add(records[j].id, nil, records[j].t)
			j++
		default:
			add(users[i].ID, users[i], records[j].t)
			i++
			j++
		}
	}
	if len(named) > 0 { // named users with neither a resource nor a record
		for id, trig := range named {
			out = append(out, touchedUser{id: id, triggers: trig, resolved: true})
		}
		slices.SortFunc(out, func(a, b touchedUser) int { return strings.Compare(a.id, b.id) })
	}
	return out, true
}

// forced reports whether a trigger demands evaluation even of unchanged
// inputs (drift reverts and approvals).
func forced(batch []trigger, trig []int) bool {
	for _, ti := range trig {
		if k := batch[ti].cause.Kind; k == "drift" || k == "approval" || k == "plan" {
			return true
		}
	}
	return false
}

func triggerKinds(batch []trigger) string {
	seen := map[string]bool{}
	var kinds []string
	for _, t := range batch {
		if !seen[t.cause.Kind] {
			seen[t.cause.Kind] = true
			kinds = append(kinds, t.cause.Kind)
		}
	}
	return strings.Join(kinds, ",")
}

func mergeIDs(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range append(append([]string{}, a...), b...) {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

// causeOf is the first trigger of ev that explains it.
func causeOf(batch []trigger, ev *evaluation) (trigger, bool) {
	if len(ev.triggers) == 0 {
		return trigger{}, false
	}
	return batch[ev.triggers[0]], true
}
