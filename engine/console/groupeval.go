package console

import (
	"context"
	"sync"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/store"
)

// groupEval is what the active policy says about one group.
type groupEval struct {
	name, externalID string
	role, err        string
	active           bool
	warning          string
}

// maxGroupEvals bounds the cache of group evaluations.
const maxGroupEvals = 200_000

// groupEvals caches the active policy's answer per group, for one policy
// revision at a time: the group query depends only on the group's id,
// externalId and displayName, so an answer holds until one of those or
// the revision changes.
type groupEvals struct {
	mu  sync.Mutex
	set *policy.Set
	m   map[string]groupEval
}

func (c *groupEvals) eval(ctx context.Context, set *policy.Set, g *store.Resource) groupEval {
	c.mu.Lock()
	if c.set != set || len(c.m) > maxGroupEvals {
		c.set, c.m = set, map[string]groupEval{}
	}
	e, ok := c.m[g.ID]
	c.mu.Unlock()
	if ok && e.name == g.Name && e.externalID == g.ExternalID {
		return e
	}
	e = groupEval{name: g.Name, externalID: g.ExternalID}
	if set == nil {
		return e
	}
	role, active, err := set.Group(ctx, policy.Group{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.Name})
	if err != nil {
		e.err = err.Error()
	}
	e.role, e.active = role, active
	if active {
		e.warning = set.DisplayNameWarning(ctx, policy.Group{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.Name})
	}
	if ctx.Err() != nil {
		return e // possibly cut short: do not cache
	}
	c.mu.Lock()
	if c.set == set {
		c.m[g.ID] = e
	}
	c.mu.Unlock()
	return e
}
