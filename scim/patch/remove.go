package patch

import "github.com/scimd/scimd/scim/compat"

// remove applies a remove operation to a resolved, non-members attribute.
// Removing something that is not there is a no-op.
func (a *applier) remove(t target, value any) *Error {
	at := t.attr
	cur := a.get(t)
	if cur == nil {
		return nil
	}
	switch {
	case t.filter != "":
		m, err := a.matcher(t)
		if err != nil {
			return err
		}
		list := asList(cur)
		out := make([]any, 0, len(list))
		for _, e := range list {
			switch {
			case !m.MatchValue(a.rt, t.name, e):
				out = append(out, e)
			case t.sub != nil:
				el := copyElem(e)
				deleteFold(el, t.sub.Name)
				out = append(out, el)
			}
		}
		a.set(t, dropEmpty(out))
	case t.sub != nil && !at.MultiValued:
		m := copyElem(cur)
		deleteFold(m, t.sub.Name)
		a.set(t, m)
	case t.sub != nil:
		list := asList(cur)
		out := make([]any, 0, len(list))
		for _, e := range list {
			el := copyElem(e)
			deleteFold(el, t.sub.Name)
			out = append(out, el)
		}
		a.set(t, dropEmpty(out))
	case at.MultiValued && value != nil:
		if !a.tol.Allow(compat.PatchRemoveByValue) {
			return errorf(InvalidSyntax, "remove takes no value (RFC 7644 §3.5.2.2): select the values with a filter, %s[value eq \"…\"]", t.name)
		}
		return a.removeValues(t, cur, value)
	default:
		a.set(t, nil)
	}
	return nil
}

// removeValues removes the given values from a multi-valued attribute.
//
// Tolerance (Entra without aadOptscim062020 removes with
// {"op":"Remove","path":"members","value":[{"value":"u1"}]}; the same shape
// on any multi-valued attribute removes exactly the listed values, never all
// of them; MicrosoftDocs/azure-docs#30826). An empty list removes nothing.
func (a *applier) removeValues(t target, cur, value any) *Error {
	elems, err := normElements(t.attr, value, t.name, a.tol)
	if err != nil {
		return err
	}
	list := asList(cur)
	out := make([]any, 0, len(list))
	for _, e := range list {
		drop := false
		for _, v := range elems {
			if matchesElem(t.attr, e, v) {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, e)
		}
	}
	if len(out) != len(list) {
		a.set(t, out)
	}
	return nil
}
