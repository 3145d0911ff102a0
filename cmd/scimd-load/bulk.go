package main

import (
	"context"
	"fmt"
	"net/http"
	"path"
)

// Request kinds of a bulk sync: one POST /Bulk each.
const (
	kindBulkUsers   = "bulk-create-users"
	kindBulkGroups  = "bulk-create-groups"
	kindBulkMembers = "bulk-patch-members"
)

const bulkRequestURN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

// bulkOperation is one entry of a BulkRequest or BulkResponse.
type bulkOperation struct {
	Method   string `json:"method"`
	BulkID   string `json:"bulkId,omitempty"`
	Path     string `json:"path,omitempty"`
	Data     any    `json:"data,omitempty"`
	Location string `json:"location,omitempty"`
	Status   string `json:"status,omitempty"`
}

// bulk sends ops as one POST /Bulk of kind and returns the per-operation
// results. An operation that failed is an error unless its status is in
// allowed.
func (l *loader) bulk(ctx context.Context, kind string, ops []bulkOperation, allowed ...string) ([]bulkOperation, error) {
	var out struct{ Operations []bulkOperation }
	err := l.timed(kind, func() error {
		body := map[string]any{"schemas": []string{bulkRequestURN}, "Operations": ops}
		if _, err := l.cl.do(ctx, http.MethodPost, "/Bulk", body, &out, http.StatusOK); err != nil {
			return err
		}
		if len(out.Operations) != len(ops) {
			return fmt.Errorf("bulk: %d results for %d operations", len(out.Operations), len(ops))
		}
		for _, r := range out.Operations {
			ok := r.Status != "" && r.Status[0] == '2'
			for _, a := range allowed {
				ok = ok || r.Status == a
			}
			if !ok {
				return fmt.Errorf("bulk: %s %s answered %s", r.Method, r.BulkID, r.Status)
			}
		}
		return nil
	})
	return out.Operations, err
}

// pushBulk is push with every request a POST /Bulk of --bulk operations:
// users, then groups, then the member PATCHes (of --batch members each).
func (l *loader) pushBulk(ctx context.Context, st *state, jobs []memberJob) error {
	c := l.cfg
	chunks := func(n int) int { return (n + c.bulk - 1) / c.bulk }
	l.prog.begin("users", int64(c.users), 0)
	err := forEach(ctx, chunks(c.users), c.concurrency, func(k int) {
		lo, hi := k*c.bulk, min((k+1)*c.bulk, c.users)
		ops := make([]bulkOperation, 0, hi-lo)
		for i := lo; i < hi; i++ {
			st.names[i] = l.userName(i)
			ops = append(ops, bulkOperation{Method: http.MethodPost, Path: "/Users", BulkID: fmt.Sprint(i), Data: l.userBody(i)})
		}
		res, err := l.bulk(ctx, kindBulkUsers, ops, "409")
		for j, r := range res {
			if r.Status == "201" {
				st.users[lo+j] = path.Base(r.Location)
			} else if err == nil {
				st.users[lo+j], _ = l.cl.findOne(ctx, "/Users", "userName", st.names[lo+j])
			}
		}
		l.prog.add(int64(hi - lo))
	})
	if err != nil {
		return err
	}
	l.prog.begin("groups", int64(c.groups), 0)
	if err := forEach(ctx, chunks(c.groups), c.concurrency, func(k int) {
		lo, hi := k*c.bulk, min((k+1)*c.bulk, c.groups)
		ops := make([]bulkOperation, 0, hi-lo)
		for j := lo; j < hi; j++ {
			ops = append(ops, bulkOperation{Method: http.MethodPost, Path: "/Groups", BulkID: fmt.Sprint(j), Data: l.groupBody(j)})
		}
		res, err := l.bulk(ctx, kindBulkGroups, ops, "409")
		for j, r := range res {
			if r.Status == "201" {
				st.groups[lo+j] = path.Base(r.Location)
			} else if err == nil {
				st.groups[lo+j], _ = l.cl.findOne(ctx, "/Groups", "displayName", l.groupName(lo+j))
			}
		}
		l.prog.add(int64(hi - lo))
	}); err != nil {
		return err
	}
	l.prog.begin("memberships", int64(c.memberships), 0)
	return forEach(ctx, chunks(len(jobs)), c.concurrency, func(k int) {
		lo, hi := k*c.bulk, min((k+1)*c.bulk, len(jobs))
		var ops []bulkOperation
		var done []memberJob
		added := 0
		for _, jb := range jobs[lo:hi] {
			added += len(jb.users)
			gid, ids := st.groups[jb.group], st.ids(jb.users)
			if gid == "" || len(ids) == 0 {
				continue
			}
			ops = append(ops, bulkOperation{Method: http.MethodPatch, Path: "/Groups/" + gid,
				Data: patchBody(map[string]any{"op": "add", "path": "members", "value": memberValues(ids)})})
			done = append(done, jb)
		}
		defer l.prog.add(int64(added))
		if len(ops) == 0 {
			return
		}
		if _, err := l.bulk(ctx, kindBulkMembers, ops); err == nil {
			st.mu.Lock()
			for _, jb := range done {
				for _, id := range st.ids(jb.users) {
					st.members[jb.group].add(id)
				}
			}
			st.mu.Unlock()
		}
	})
}
