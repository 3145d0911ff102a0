package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// loader runs one scenario.
type loader struct {
	cfg  config
	cl   *client
	rec  *recorder
	prog *progress
}

// Request kinds in the report.
const (
	kindCreateUser  = "create-user"
	kindCreateGroup = "create-group"
	kindLookup      = "lookup-existing"
	kindAddMembers  = "patch-add-members"
	kindAdd         = "patch-add-member"
	kindRemove      = "patch-remove-member"
	kindMove        = "patch-move-member"
	kindActive      = "patch-user-active"
	kindRead        = "get-username-eq"
)

// timed runs fn as one request of kind and records it.
func (l *loader) timed(kind string, fn func() error) error {
	start := time.Now()
	err := fn()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err // the run is stopping: not a failure of the server
	}
	l.rec.observe(kind, start, time.Since(start), err)
	return err
}

// forEach runs fn(i) for i in [0, n) on concurrency workers until done or
// ctx ends.
func forEach(ctx context.Context, n, concurrency int, fn func(i int)) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(concurrency, max(n, 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// paced calls fn on concurrency workers for d: at rate calls per second
// overall, or as fast as the workers go when rate is 0. Each worker gets
// its own random source.
func paced(ctx context.Context, d time.Duration, rate float64, concurrency int, seed int64, fn func(rng *rand.Rand)) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var tick chan struct{}
	if rate > 0 {
		tick = make(chan struct{}, concurrency)
		go func() {
			defer close(tick)
			start := time.Now()
			interval := time.Duration(float64(time.Second) / rate)
			for i := int64(0); ; i++ {
				at := start.Add(time.Duration(i) * interval)
				if wait := time.Until(at); wait > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
				}
				select {
				case <-ctx.Done():
					return
				case tick <- struct{}{}:
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := range concurrency {
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
		wg.Go(func() {
			for ctx.Err() == nil {
				if tick != nil {
					if _, ok := <-tick; !ok {
						return
					}
				}
				fn(rng)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

var departments = []string{"Engineering", "Sales", "Support", "Marketing", "Finance"}

func (l *loader) userName(i int) string {
	return fmt.Sprintf("%s.user%07d@example.com", l.cfg.prefix, i)
}

func (l *loader) groupName(j int) string {
	if j < len(l.cfg.mapped) {
		return l.cfg.mapped[j]
	}
	return fmt.Sprintf("%s Group %05d", l.cfg.prefix, j)
}

// createUser creates user i, or finds it when it exists already.
func (l *loader) createUser(ctx context.Context, i int) (string, error) {
	name := l.userName(i)
	body := l.userBody(i)
	var out resource
	var status int
	err := l.timed(kindCreateUser, func() (err error) {
		status, err = l.cl.do(ctx, http.MethodPost, "/Users", body, &out, http.StatusCreated, http.StatusConflict)
		return err
	})
	if err != nil || status == http.StatusCreated {
		return out.ID, err
	}
	var id string
	err = l.timed(kindLookup, func() (err error) {
		id, err = l.cl.findOne(ctx, "/Users", "userName", name)
		return err
	})
	return id, err
}

// userBody is the representation of user i an IdP pushes.
func (l *loader) userBody(i int) map[string]any {
	name := l.userName(i)
	return map[string]any{
		"schemas":     []string{userURN, enterURN},
		"userName":    name,
		"externalId":  fmt.Sprintf("%s-%07d", l.cfg.prefix, i),
		"name":        map[string]any{"givenName": "Given", "familyName": fmt.Sprintf("Family%d", i)},
		"displayName": fmt.Sprintf("Given Family%d", i),
		"emails":      []any{map[string]any{"value": name, "type": "work", "primary": true}},
		"active":      true,
		enterURN:      map[string]any{"department": departments[i%len(departments)], "employeeNumber": fmt.Sprint(i)},
	}
}

// createGroup creates empty group j, or finds it when it exists already.
func (l *loader) createGroup(ctx context.Context, j int) (string, error) {
	name := l.groupName(j)
	body := l.groupBody(j)
	var out resource
	var status int
	err := l.timed(kindCreateGroup, func() (err error) {
		status, err = l.cl.do(ctx, http.MethodPost, "/Groups", body, &out, http.StatusCreated, http.StatusConflict)
		return err
	})
	if err != nil || status == http.StatusCreated {
		return out.ID, err
	}
	var id string
	err = l.timed(kindLookup, func() (err error) {
		id, err = l.cl.findOne(ctx, "/Groups", "displayName", name)
		return err
	})
	return id, err
}

// groupBody is the representation of empty group j.
func (l *loader) groupBody(j int) map[string]any {
	return map[string]any{"schemas": []string{groupURN}, "displayName": l.groupName(j), "members": []any{}}
}

// plan returns, per group, the indexes of the users the sync makes members:
// membership j is user j mod N in its (j div N)-th group, the groups of
// one user being distinct.
func plan(users, groups, memberships int) [][]int {
	perUser := (memberships + users - 1) / users
	step := 1
	if perUser > 0 {
		step = max(1, groups/perUser)
	}
	out := make([][]int, groups)
	for j := range memberships {
		u, k := j%users, j/users
		g := (u*7919 + k*step) % groups
		out[g] = append(out[g], u)
	}
	return out
}

// memberJob is one member PATCH of the sync: users (indexes) added to a
// group.
type memberJob struct {
	group int
	users []int
}

// memberJobs splits the sync's memberships into PATCHes of c.batch members,
// round robin over the groups.
func memberJobs(c config) []memberJob {
	var jobs []memberJob
	perGroup := plan(c.users, c.groups, c.memberships)
	for off := 0; ; off += c.batch {
		more := false
		for g, us := range perGroup {
			if off < len(us) {
				jobs = append(jobs, memberJob{g, us[off:min(off+c.batch, len(us))]})
				more = true
			}
		}
		if !more {
			return jobs
		}
	}
}

// ids returns the ids of the users (indexes) that were created.
func (st *state) ids(users []int) []string {
	ids := make([]string, 0, len(users))
	for _, u := range users {
		if st.users[u] != "" {
			ids = append(ids, st.users[u])
		}
	}
	return ids
}

// state is the simulator's view of the server's users and groups.
type state struct {
	mu      sync.Mutex
	users   []string
	names   []string
	groups  []string
	members []memberSet // per group
	off     map[string]bool
}

// memberSet is a set of user ids with O(1) random choice.
type memberSet struct {
	list []string
	pos  map[string]int
}

func (s *memberSet) has(id string) bool { _, ok := s.pos[id]; return ok }

func (s *memberSet) add(id string) {
	if s.pos == nil {
		s.pos = map[string]int{}
	}
	if _, ok := s.pos[id]; ok {
		return
	}
	s.pos[id] = len(s.list)
	s.list = append(s.list, id)
}

func (s *memberSet) remove(id string) {
	i, ok := s.pos[id]
	if !ok {
		return
	}
	last := s.list[len(s.list)-1]
	s.list[i], s.pos[last] = last, i
	s.list = s.list[:len(s.list)-1]
	delete(s.pos, id)
}

// sync is the initial push.
func (l *loader) sync(ctx context.Context) error {
	_, err := l.push(ctx)
	return err
}

func (l *loader) push(ctx context.Context) (*state, error) {
	c := l.cfg
	st := &state{users: make([]string, c.users), names: make([]string, c.users), groups: make([]string, c.groups),
		members: make([]memberSet, c.groups), off: map[string]bool{}}
	if c.bulk > 0 {
		return st, l.pushBulk(ctx, st, memberJobs(c))
	}
	l.prog.begin("users", int64(c.users), 0)
	err := forEach(ctx, c.users, c.concurrency, func(i int) {
		st.users[i], _ = l.createUser(ctx, i)
		st.names[i] = l.userName(i)
		l.prog.add(1)
	})
	if err != nil {
		return nil, err
	}
	l.prog.begin("groups", int64(c.groups), 0)
	if err := forEach(ctx, c.groups, c.concurrency, func(j int) {
		st.groups[j], _ = l.createGroup(ctx, j)
		l.prog.add(1)
	}); err != nil {
		return nil, err
	}
	jobs := memberJobs(c)
	l.prog.begin("memberships", int64(c.memberships), 0)
	err = forEach(ctx, len(jobs), c.concurrency, func(i int) {
		jb := jobs[i]
		gid, ids := st.groups[jb.group], st.ids(jb.users)
		defer l.prog.add(int64(len(jb.users)))
		if gid == "" || len(ids) == 0 {
			return
		}
		body := patchBody(map[string]any{"op": "add", "path": "members", "value": memberValues(ids)})
		if l.timed(kindAddMembers, func() error {
			_, err := l.cl.do(ctx, http.MethodPatch, "/Groups/"+gid, body, nil, http.StatusOK, http.StatusNoContent)
			return err
		}) == nil {
			st.mu.Lock()
			for _, id := range ids {
				st.members[jb.group].add(id)
			}
			st.mu.Unlock()
		}
	})
	return st, err
}

// discover reads the server's users and groups (with their members).
func (l *loader) discover(ctx context.Context, withMembers bool) (*state, error) {
	const limit = 10_000_000
	users, err := l.cl.listAll(ctx, "/Users", url.Values{"attributes": {"userName,active"}}, 1000, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	st := &state{off: map[string]bool{}}
	for _, u := range users {
		st.users = append(st.users, u.ID)
		st.names = append(st.names, u.UserName)
		if u.Active != nil && !*u.Active {
			st.off[u.ID] = true
		}
	}
	if !withMembers {
		return st, nil
	}
	groups, err := l.cl.listAll(ctx, "/Groups", url.Values{"attributes": {"displayName,members.value"}}, 50, limit)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	isUser := make(map[string]bool, len(st.users))
	for _, id := range st.users {
		isUser[id] = true
	}
	for _, g := range groups {
		st.groups = append(st.groups, g.ID)
		var ms memberSet
		for _, m := range g.Members {
			if isUser[m.Value] {
				ms.add(m.Value)
			}
		}
		st.members = append(st.members, ms)
	}
	return st, nil
}

// churn changes memberships and user activity at a steady rate.
func (l *loader) churn(ctx context.Context) error {
	c := l.cfg
	l.prog.begin("discover", 0, 0)
	st, err := l.discover(ctx, true)
	if err != nil {
		return err
	}
	if len(st.users) < 2 || len(st.groups) < 2 {
		if st, err = l.push(ctx); err != nil {
			return err
		}
	}
	l.prog.begin("churn", 0, c.duration)
	return paced(ctx, c.duration, c.rate, c.concurrency, c.seed, func(rng *rand.Rand) {
		l.change(ctx, st, rng)
		l.prog.add(1)
	})
}

// change makes one random change: add (40%), remove (30%) or move (15%) a
// member, or deactivate or reactivate a user (15%).
func (l *loader) change(ctx context.Context, st *state, rng *rand.Rand) {
	addOp := func(uid string) map[string]any {
		return map[string]any{"op": "add", "path": "members", "value": memberValues([]string{uid})}
	}
	removeOp := func(uid string) map[string]any {
		return map[string]any{"op": "remove", "path": fmt.Sprintf("members[value eq %q]", uid)}
	}
	patchGroup := func(gid string, op map[string]any) error {
		_, err := l.cl.do(ctx, http.MethodPatch, "/Groups/"+gid, patchBody(op), nil, http.StatusOK, http.StatusNoContent)
		return err
	}
	st.mu.Lock()
	ng := len(st.groups)
	r := rng.Float64()
	switch {
	case r < 0.40: // add
		g := rng.IntN(ng)
		for range 5 {
			u := st.users[rng.IntN(len(st.users))]
			if u != "" && !st.members[g].has(u) {
				st.members[g].add(u)
				gid := st.groups[g]
				st.mu.Unlock()
				_ = l.timed(kindAdd, func() error { return patchGroup(gid, addOp(u)) })
				return
			}
		}
	case r < 0.85: // remove or move
		move := r >= 0.70
		for range 5 {
			g := rng.IntN(ng)
			if len(st.members[g].list) == 0 {
				continue
			}
			u := st.members[g].list[rng.IntN(len(st.members[g].list))]
			to := -1
			if move {
				to = rng.IntN(ng)
				if to == g || st.members[to].has(u) {
					continue
				}
				st.members[to].add(u)
			}
			st.members[g].remove(u)
			from := st.groups[g]
			st.mu.Unlock()
			if !move {
				_ = l.timed(kindRemove, func() error { return patchGroup(from, removeOp(u)) })
				return
			}
			dest := st.groups[to]
			_ = l.timed(kindMove, func() error {
				if err := patchGroup(from, removeOp(u)); err != nil {
					return err
				}
				return patchGroup(dest, addOp(u))
			})
			return
		}
	default: // deactivate, or reactivate one this run deactivated
		u := st.users[rng.IntN(len(st.users))]
		active := false
		if len(st.off) > 0 && rng.IntN(2) == 0 {
			for id := range st.off {
				u, active = id, true
				break
			}
		}
		if u == "" {
			break
		}
		if active {
			delete(st.off, u)
		} else {
			st.off[u] = true
		}
		st.mu.Unlock()
		body := patchBody(map[string]any{"op": "replace", "value": map[string]any{"active": active}})
		_ = l.timed(kindActive, func() error {
			_, err := l.cl.do(ctx, http.MethodPatch, "/Users/"+u, body, nil, http.StatusOK, http.StatusNoContent)
			return err
		})
		return
	}
	st.mu.Unlock()
}

// read looks users up by userName, as IdPs do before every create.
func (l *loader) read(ctx context.Context) error {
	c := l.cfg
	l.prog.begin("discover", 0, 0)
	st, err := l.discover(ctx, false)
	if err != nil {
		return err
	}
	if len(st.names) == 0 {
		if st, err = l.push(ctx); err != nil {
			return err
		}
	}
	l.prog.begin("read", 0, c.duration)
	return paced(ctx, c.duration, c.rate, c.concurrency, c.seed, func(rng *rand.Rand) {
		name, want := st.names[rng.IntN(len(st.names))], 1
		if c.missRatio > 0 && rng.Float64() < c.missRatio {
			name, want = fmt.Sprintf("%s.absent%d@example.com", c.prefix, rng.Int64()), 0
		}
		path := "/Users" + filterQuery("userName", "eq", name, nil)
		_ = l.timed(kindRead, func() error {
			var lr struct {
				TotalResults int `json:"totalResults"`
			}
			if _, err := l.cl.do(ctx, http.MethodGet, path, nil, &lr, http.StatusOK); err != nil {
				return err
			}
			if lr.TotalResults != want {
				return fmt.Errorf("GET %s: totalResults %d, want %d", path, lr.TotalResults, want)
			}
			return nil
		})
		l.prog.add(1)
	})
}
