package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/store"
)

// TeammateInput builds the decision input of a user, named by id or by
// userName, from the current state: what the reconciler would evaluate.
func (r *Reconciler) TeammateInput(user string) (policy.TeammateInput, *store.Resource, error) {
	snap := r.store.Read()
	u, ok := snap.Resource(store.KindUser, user)
	if !ok {
		u, ok = snap.ResourceByName(store.KindUser, user)
	}
	if !ok {
		return policy.TeammateInput{}, nil, fmt.Errorf("user %q: %w", user, ErrNotFound)
	}
	var cur *Teammate
	if v, ok := snap.Record(TableTeammates, u.ID); ok {
		cur = v.(*Teammate)
	}
	return teammateInput(groupsLookup(snap, 1), newSchemaValues(), u, cur), u, nil
}

// Explain explains the active policy's decision for a user (id or
// userName), on the current state. Nothing is written.
func (r *Reconciler) Explain(ctx context.Context, user string) (*policy.Explanation, *store.Resource, error) {
	set := r.policy.Active()
	if set == nil {
		return nil, nil, ErrNoPolicy
	}
	in, u, err := r.TeammateInput(user)
	if err != nil {
		return nil, nil, err
	}
	ex, err := set.Explain(ctx, in)
	if err != nil {
		return nil, nil, err
	}
	return ex, u, nil
}

// Hypothesis is a change to one teammate that is evaluated, never applied.
type Hypothesis struct {
	// AddGroups and RemoveGroups name groups by id, displayName or
	// externalId; a name no group has is a new group of that name.
	AddGroups    []string `json:"addGroups,omitempty"`
	RemoveGroups []string `json:"removeGroups,omitempty"`
	// Set sets user attributes: a path (dot-separated; a schema URN such
	// as urn:…:enterprise:2.0:User.department counts as one key) to a
	// JSON value.
	Set map[string]any `json:"set,omitempty"`
}

// WhatIf is the decision of a teammate now and under a hypothesis.
type WhatIf struct {
	UserID   string `json:"userId"`
	UserName string `json:"userName"`
	// Revision is the live policy's; CandidateRevision the policy the
	// "after" decision used when it is another.
	Revision          string          `json:"revision"`
	CandidateRevision string          `json:"candidateRevision,omitempty"`
	Before            policy.Decision `json:"before"`
	After             policy.Decision `json:"after"`
	// Changed tells whether excluded, access or role differ.
	Changed bool `json:"changed"`
	// Groups are the groups of the hypothetical teammate.
	Groups []string `json:"groups"`
}

// WhatIf decides user (id or userName) now with the live policy, and with
// the hypothesis applied to its input, by candidate (nil: the live
// policy). Nothing is written or applied.
func (r *Reconciler) WhatIf(ctx context.Context, user string, h Hypothesis, candidate *policy.Set) (*WhatIf, error) {
	live := r.policy.Active()
	if live == nil {
		return nil, ErrNoPolicy
	}
	in, u, err := r.TeammateInput(user)
	if err != nil {
		return nil, err
	}
	before, err := live.Teammate(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("decide now: %w", err)
	}
	alt, err := r.hypothetical(in, h)
	if err != nil {
		return nil, err
	}
	set := live
	res := &WhatIf{UserID: u.ID, UserName: u.Name, Revision: live.Revision(), Before: before, Groups: []string{}}
	if candidate != nil {
		set, res.CandidateRevision = candidate, candidate.Revision()
	}
	if res.After, err = set.Teammate(ctx, alt); err != nil {
		return nil, fmt.Errorf("decide after the change: %w", err)
	}
	res.Changed = before.Excluded != res.After.Excluded || before.Access != res.After.Access || before.Role != res.After.Role
	for _, g := range alt.Groups {
		res.Groups = append(res.Groups, g.DisplayName)
	}
	return res, nil
}

// hypothetical applies h to a copy of in.
func (r *Reconciler) hypothetical(in policy.TeammateInput, h Hypothesis) (policy.TeammateInput, error) {
	snap := r.store.Read()
	find := func(name string) (policy.Group, bool) {
		g, ok := snap.Resource(store.KindGroup, name)
		if !ok {
			g, ok = snap.ResourceByName(store.KindGroup, name)
		}
		if !ok {
			if gs := snap.ResourcesByExternalID(store.KindGroup, name); len(gs) > 0 {
				g, ok = gs[0], true
			}
		}
		if !ok {
			return policy.Group{}, false
		}
		return policy.Group{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.Name}, true
	}
	out := in
	out.Groups = slices.Clone(in.Groups)
	for _, name := range h.RemoveGroups {
		n := len(out.Groups)
		out.Groups = slices.DeleteFunc(out.Groups, func(g policy.Group) bool {
			return g.ID == name || g.DisplayName == name || (g.ExternalID != "" && g.ExternalID == name)
		})
		if len(out.Groups) == n {
			return in, fmt.Errorf("%w: the user is not in a group %q", ErrInvalid, name)
		}
	}
	for _, name := range h.AddGroups {
		g, ok := find(name)
		if !ok {
			g = policy.Group{DisplayName: name}
		}
		if !slices.ContainsFunc(out.Groups, func(x policy.Group) bool { return x == g }) {
			out.Groups = append(out.Groups, g)
		}
	}
	out.User = maps.Clone(in.User)
	for _, path := range slices.Sorted(maps.Keys(h.Set)) {
		keys := SplitAttributePath(path)
		if len(keys) == 0 || slices.Contains(keys, "") {
			return in, fmt.Errorf("%w: attribute path %q", ErrInvalid, path)
		}
		out.User = setPath(out.User, keys, h.Set[path])
	}
	return out, nil
}

// SplitAttributePath splits a user attribute path at dots, keeping a SCIM
// schema URN (urn:…:User) as one key: the URN ends at the first dot after
// its last colon.
func SplitAttributePath(path string) []string {
	if strings.HasPrefix(path, "urn:") {
		colon := strings.LastIndex(path, ":")
		if dot := strings.Index(path[colon:], "."); dot >= 0 {
			return append([]string{path[:colon+dot]}, strings.Split(path[colon+dot+1:], ".")...)
		}
		return []string{path}
	}
	return strings.Split(path, ".")
}

// setPath returns a copy of m with value at keys (maps along the path are
// copied or created).
func setPath(m map[string]any, keys []string, value any) map[string]any {
	c := maps.Clone(m)
	if c == nil {
		c = map[string]any{}
	}
	if len(keys) == 1 {
		c[keys[0]] = value
		return c
	}
	sub, _ := c[keys[0]].(map[string]any)
	c[keys[0]] = setPath(sub, keys[1:], value)
	return c
}

// ParseAttributeValue reads VALUE of PATH=VALUE: JSON when it is JSON
// (true, 7, "x", {…}), else the text itself.
func ParseAttributeValue(s string) any {
	var v any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&v); err == nil && !dec.More() {
		return v
	}
	return s
}
