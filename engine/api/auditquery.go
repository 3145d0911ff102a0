package api

import (
	"context"
	"strings"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/engine/review"
	"github.com/scimd/scimd/scim/store"
)

// scanChunk is how many events a filtered scan reads at a time.
const scanChunk = 1000

// groupEventTypes is the type prefix of SCIM group events, which record
// membership changes (details.membersAdded / membersRemoved).
const groupEventTypes = "scim.group"

// resolveUser returns the user id named by v: a user id, a userName
// (case-insensitive), the userName of a teammate whose user is gone (an
// excluded teammate outlives its user) or, failing all, v itself.
func resolveUser(st *store.Store, v string) string {
	if v == "" {
		return ""
	}
	snap := st.Read()
	if _, ok := snap.Resource(store.KindUser, v); ok {
		return v
	}
	if u, ok := snap.ResourceByName(store.KindUser, v); ok {
		return u.ID
	}
	if _, ok := snap.Record(reconcile.TableTeammates, v); ok {
		return v
	}
	id := v
	snap.Records(reconcile.TableTeammates, func(key string, val any) bool {
		if t, ok := val.(*reconcile.Teammate); ok && strings.EqualFold(t.UserName, v) {
			id = key
			return false
		}
		return true
	})
	return id
}

// resolveGroup returns the group id named by v: a group id, a displayName
// or, for a group that no longer exists, v itself.
func resolveGroup(st *store.Store, v string) string {
	if v == "" {
		return ""
	}
	snap := st.Read()
	if _, ok := snap.Resource(store.KindGroup, v); ok {
		return v
	}
	if g, ok := snap.ResourceByName(store.KindGroup, v); ok {
		return g.ID
	}
	return v
}

// queryAudit runs an audit query with the teammate and group filters:
//
//   - group only: the group's events (created, renamed, members added and
//     removed, deleted);
//   - teammate only: the events about the teammate (SCIM user writes,
//     decisions, role and access changes) and the group events that added
//     it to or removed it from a group, merged in sequence order;
//   - both: the group's events that added or removed the teammate.
//
// q carries the other filters, the cursor and the limit.
func queryAudit(ctx context.Context, st *store.Store, q store.AuditQuery, teammate, group string) ([]audit.Event, error) {
	switch {
	case teammate == "" && group == "":
		return st.AuditEvents(ctx, q)
	case teammate == "":
		q.TargetID = group
		return st.AuditEvents(ctx, q)
	case group != "":
		q.TargetID = group
		return scanAudit(ctx, st, q, func(e audit.Event) bool { return review.MentionsMember(e, teammate) }, 0)
	}
	direct := q
	direct.TargetID = teammate
	own, err := st.AuditEvents(ctx, direct)
	if err != nil {
		return nil, err
	}
	types, ok := groupTypes(q.Types)
	if !ok {
		return own, nil
	}
	membership := q
	membership.Types = types
	bound := uint64(0)
	if q.Limit > 0 && len(own) == q.Limit {
		bound = own[len(own)-1].Seq // later membership events cannot make this page
	}
	member, err := scanAudit(ctx, st, membership, func(e audit.Event) bool { return review.MentionsMember(e, teammate) }, bound)
	if err != nil {
		return nil, err
	}
	return mergeEvents(own, member, q.Limit), nil
}

// groupTypes narrows a type filter to SCIM group events: the group types
// the filter admits, and false when it admits none.
func groupTypes(types []string) ([]string, bool) {
	if len(types) == 0 {
		return []string{groupEventTypes}, true
	}
	var out []string
	for _, t := range types {
		switch {
		case t == "scim" || t == groupEventTypes:
			out = append(out, groupEventTypes)
		case strings.HasPrefix(t, groupEventTypes+"."):
			out = append(out, t)
		}
	}
	return out, len(out) > 0
}

// scanAudit reads the events matching q in chunks and keeps those keep
// accepts, up to q.Limit (0: all). It stops past bound when bound > 0.
func scanAudit(ctx context.Context, st *store.Store, q store.AuditQuery, keep func(audit.Event) bool, bound uint64) ([]audit.Event, error) {
	limit := q.Limit
	q.Limit = scanChunk
	out := []audit.Event{}
	for {
		events, err := st.AuditEvents(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range events {
			if bound > 0 && e.Seq > bound {
				return out, nil
			}
			if keep(e) {
				out = append(out, e)
				if limit > 0 && len(out) == limit {
					return out, nil
				}
			}
		}
		if len(events) < scanChunk {
			return out, nil
		}
		q.AfterSeq = events[len(events)-1].Seq
	}
}

// mergeEvents merges two lists in sequence order, without duplicates, up
// to limit (0: all).
func mergeEvents(a, b []audit.Event, limit int) []audit.Event {
	out := make([]audit.Event, 0, len(a)+len(b))
	i, j := 0, 0
	for (i < len(a) || j < len(b)) && (limit <= 0 || len(out) < limit) {
		switch {
		case j == len(b) || (i < len(a) && a[i].Seq < b[j].Seq):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].Seq < a[i].Seq:
			out = append(out, b[j])
			j++
		default: // the same event in both
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}
