package patch

import (
	"strings"

	"github.com/scimd/scimd/scim/compat"
)

// Member is one group member named in a PATCH request.
type Member struct {
	// Value is the member's id (a User or Group id).
	Value string
	// Display is the display name the client sent, if any (informational).
	Display string
	// Type is "User" or "Group" as the client sent it, or "" when it did not
	// say (Okta omits it; SCIM-SDK#419).
	Type string
}

// MemberDelta is the net change to a group's members requested by one PATCH,
// expressed as set operations for the caller's membership table.
//
// The caller applies it as follows: when Replace is set, the members become
// exactly Add; otherwise, when RemoveAll is set, all members are removed
// first; then the ids in Remove are removed and the members in Add are added
// (adding an existing member is a no-op). Add and Remove are disjoint, and at
// most one of Replace and RemoveAll is set. Operations of one request are
// folded in order: "add u1" then "remove u1" leaves u1 in Remove only, so u1
// is not a member afterwards whether or not it was one before.
type MemberDelta struct {
	// Replace is true when the members become exactly Add ("replace members
	// [...]"; "replace members []" empties the group).
	Replace bool
	// Add lists the members to add, in request order, without duplicates.
	Add []Member
	// Remove lists the member ids to remove, in request order.
	Remove []string
	// RemoveAll is true for an RFC remove of "members" without a value.
	RemoveAll bool
}

// Empty reports whether the delta changes nothing.
func (d MemberDelta) Empty() bool {
	return !d.Replace && !d.RemoveAll && len(d.Add) == 0 && len(d.Remove) == 0
}

// memberState folds member operations in request order.
type memberState struct {
	replace, removeAll bool
	add                map[string]Member
	addOrder           []string
	remove             map[string]bool
	removeOrder        []string
}

func (s *memberState) addMember(m Member) {
	delete(s.remove, m.Value)
	if s.add == nil {
		s.add = make(map[string]Member)
	}
	if old, ok := s.add[m.Value]; ok {
		if m.Display == "" {
			m.Display = old.Display
		}
		if m.Type == "" {
			m.Type = old.Type
		}
		s.add[m.Value] = m
		return
	}
	s.add[m.Value] = m
	s.addOrder = append(s.addOrder, m.Value)
}

// reserve makes room for n more members to add.
func (s *memberState) reserve(n int) {
	if s.add == nil && n > 0 {
		s.add = make(map[string]Member, n)
		s.addOrder = make([]string, 0, n)
	}
}

func (s *memberState) removeMember(id string) {
	delete(s.add, id)
	if s.replace || s.removeAll {
		return // the final set is exactly what is in add
	}
	if s.remove == nil {
		s.remove = make(map[string]bool)
	}
	if !s.remove[id] {
		s.remove[id] = true
		s.removeOrder = append(s.removeOrder, id)
	}
}

func (s *memberState) replaceAll(ms []Member) {
	*s = memberState{replace: true}
	s.reserve(len(ms))
	for _, m := range ms {
		s.addMember(m)
	}
}

func (s *memberState) clear() {
	*s = memberState{removeAll: true}
}

func (s *memberState) delta() MemberDelta {
	d := MemberDelta{Replace: s.replace, RemoveAll: s.removeAll}
	if len(s.add) > 0 {
		d.Add = make([]Member, 0, len(s.add))
		for _, id := range s.addOrder {
			if m, ok := s.add[id]; ok {
				d.Add = append(d.Add, m)
				delete(s.add, id) // emit once even if re-added after a remove
			}
		}
	}
	if len(s.remove) > 0 {
		d.Remove = make([]string, 0, len(s.remove))
		for _, id := range s.removeOrder {
			if s.remove[id] {
				d.Remove = append(d.Remove, id)
				delete(s.remove, id)
			}
		}
	}
	return d
}

// parseMembers reads the members given as a PATCH value: an array of member
// objects, a single object, or bare id strings.
//
// Tolerance: member objects may carry "$ref": null and no "type" (Entra,
// Okta; SCIM-SDK#419), "displayName" instead of "display" (Microsoft's test
// collection), and may be bare id strings (Microsoft's test collection:
// {"op":"add","path":"members","value":"string id 1"}).
func parseMembers(v any) ([]Member, *Error) {
	var in []any
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		in = x
	default:
		in = []any{x}
	}
	out := make([]Member, 0, len(in))
	for i, e := range in {
		if e == nil {
			continue
		}
		m, err := parseMember(e)
		if err != nil {
			return nil, errorf(InvalidValue, "members[%d]: %s", i, err.Detail)
		}
		out = append(out, m)
	}
	return out, nil
}

func parseMember(v any) (Member, *Error) {
	if id, ok := scalarString(v); ok {
		if strings.TrimSpace(id) == "" {
			return Member{}, errorf(InvalidValue, "empty member id")
		}
		return Member{Value: id}, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Member{}, errorf(InvalidValue, "a member must be an object with a \"value\" or an id string")
	}
	var m Member
	for _, k := range sortedKeys(obj) {
		s, isStr := scalarString(obj[k])
		switch {
		case strings.EqualFold(k, "value"):
			if !isStr {
				return Member{}, errorf(InvalidValue, "member \"value\" must be a string")
			}
			m.Value = s
		case strings.EqualFold(k, "display"), strings.EqualFold(k, "displayName"):
			if isStr && m.Display == "" {
				m.Display = s
			}
		case strings.EqualFold(k, "type"):
			if isStr {
				m.Type = s
			}
		}
		// "$ref" and anything else: ignored.
	}
	if strings.TrimSpace(m.Value) == "" {
		return Member{}, errorf(InvalidValue, "member has no \"value\"")
	}
	return m, nil
}

// applyMembers turns an operation on group members into the member delta.
func (a *applier) applyMembers(op string, t target, value any) *Error {
	if t.sub != nil {
		return errorf(Mutability, "member sub-attribute %q cannot be modified", t.sub.Name)
	}
	var filterIDs []string
	if t.filter != "" {
		ids, ok := memberIDs(t.filter)
		if !ok {
			return errorf(InvalidPath, "unsupported members filter [%s]: use value eq \"id\"", truncate(t.filter))
		}
		filterIDs = ids
	}
	switch op {
	case OpRemove:
		if filterIDs != nil {
			for _, id := range filterIDs {
				a.members.removeMember(id)
			}
			return nil
		}
		if value == nil {
			// RFC 7644 §3.5.2.2: remove of a multi-valued attribute
			// without a filter or a value removes all values.
			a.members.clear()
			return nil
		}
		// removeWithValueArray: Entra's
		// {"op":"Remove","path":"members","value":[{"value":"u1"}]} removes
		// exactly u1, never everyone (azure-docs#30826, SimpleIdServer#244).
		if !a.tol.Allow(compat.PatchRemoveByValue) {
			return errorf(InvalidSyntax, "remove takes no value (RFC 7644 §3.5.2.2): select members with a filter, members[value eq \"…\"]")
		}
		ms, err := parseMembers(value)
		if err != nil {
			return err
		}
		for _, m := range ms {
			a.members.removeMember(m.Value)
		}
		return nil
	}
	ms, err := parseMembers(value)
	if err != nil {
		return err
	}
	switch {
	case filterIDs != nil && op == OpReplace:
		// replace members[value eq "x"] with a member: x is swapped for it.
		for _, id := range filterIDs {
			a.members.removeMember(id)
		}
	case filterIDs != nil && len(ms) == 0:
		// add members[value eq "x"] without a usable value adds x.
		for _, id := range filterIDs {
			ms = append(ms, Member{Value: id})
		}
	case op == OpReplace:
		// Okta: "replace members [...]" is a full sync, and
		// "replace members []" empties the group (SCIM-SDK#757).
		a.members.replaceAll(ms)
		return nil
	}
	a.members.reserve(len(ms))
	for _, m := range ms {
		a.members.addMember(m)
	}
	return nil
}
