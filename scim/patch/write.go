package patch

import (
	"slices"

	"github.com/scimd/scimd/scim/compat"
	"github.com/scimd/scimd/scim/schema"
)

func (a *applier) applyTarget(op string, t target, value any) *Error {
	if t.attr == nil {
		return a.applyContainer(op, t, value)
	}
	if a.isMembers(t) {
		return a.applyMembers(op, t, value)
	}
	if op == OpRemove {
		return a.remove(t, value)
	}
	return a.write(op, t, value)
}

// applyContainer handles a path that is a whole schema URN.
func (a *applier) applyContainer(op string, t target, value any) *Error {
	if op == OpRemove {
		if t.ext == nil {
			return errorf(InvalidPath, "the core schema cannot be removed")
		}
		deleteFold(a.doc, t.ext.ID)
		return nil
	}
	return a.applyPathless(op, t.ext, value)
}

// applyPathless applies a path-less add or replace (or one whose path is a
// schema URN, for ext != nil): value is an object of attributes.
//
// Tolerance (Entra with aadOptscim062020 sends one path-less replace whose
// keys are dotted or URN-qualified paths, e.g. {"name.givenName":"K",
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":
// "A"}; Entra known-issues doc, elimity-com/scim#112): every key is read as
// a path. Keys under unknown schemas, unknown attributes and read-only
// attributes (Okta's "id", and "schemas" and "meta") are ignored.
func (a *applier) applyPathless(op string, ext *schema.Schema, value any) *Error {
	obj, ok := value.(map[string]any)
	if !ok {
		if value == nil {
			return nil
		}
		return errorf(InvalidValue, "a %s without a path needs an object value", op)
	}
	for _, k := range sortedKeys(obj) {
		key := k
		if ext != nil {
			key = ext.ID + ":" + k
		}
		p, err := parsePath(key)
		if err != nil {
			continue // not an attribute name: ignored, like unknown names
		}
		t, ok, err := a.resolve(p, false)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if t.attr == nil && t.ext == ext {
			continue // a URN key naming the container itself
		}
		if t.sub != nil && !a.tol.Allow(compat.PatchDottedKeys) {
			return errorf(InvalidPath, "%q in a path-less %s value: keys are attribute names; give %s as an object", truncate(k), op, t.name)
		}
		if ext == nil && t.ext != nil && t.attr != nil && !a.tol.Allow(compat.URNQualifiedAttributes) {
			return errorf(InvalidPath, "%q in a path-less %s value: put extension attributes under their schema URN key", truncate(k), op)
		}
		if err := a.applyTarget(op, t, obj[k]); err != nil {
			return err
		}
	}
	return nil
}

// write applies add or replace to a resolved, non-members attribute.
func (a *applier) write(op string, t target, value any) *Error {
	at := t.attr
	switch {
	case t.filter != "":
		return a.writeFiltered(op, t, value)
	case t.sub != nil:
		return a.writeSub(t, value)
	case at.MultiValued:
		elems, err := normElements(at, value, t.name, a.tol)
		if err != nil {
			return err
		}
		if op == OpReplace {
			a.set(t, fixPrimary(at, elems, allIndexes(len(elems))))
			return nil
		}
		// add: append the values not already present.
		list := slices.Clone(asList(a.get(t)))
		var added []int
		for _, e := range elems {
			if !contains(at, list, e) {
				added = append(added, len(list))
				list = append(list, e)
			}
		}
		if len(added) > 0 {
			a.set(t, fixPrimary(at, list, added))
		}
		return nil
	case at.Type == schema.Complex:
		// addOnSingularIsReplace: add and replace on a singular complex
		// attribute both merge the given sub-attributes (RFC 7644
		// §3.5.2.1 and §3.5.2.3).
		m, err := normComplex(at, unwrapSingleton(value), t.name, a.tol)
		if err != nil {
			return err
		}
		if m == nil {
			a.set(t, nil) // nullClears
			return nil
		}
		cur, _ := a.get(t).(map[string]any)
		merged := make(map[string]any, len(cur)+len(m))
		for k, v := range cur {
			merged[k] = v
		}
		for k, v := range m {
			if v == nil {
				deleteFold(merged, k)
			} else {
				setFold(merged, k, v)
			}
		}
		a.set(t, merged)
		return nil
	default:
		// addOnSingularIsReplace: Entra sends {"op":"Add","path":"active",…}
		// and "Add" for attributes that already have a value (rancher#54025,
		// MS Q&A 1373350); add on a singular attribute replaces it.
		v, err := normScalar(at, unwrapSingleton(value), t.name, a.tol)
		if err != nil {
			return err
		}
		// nullClears: null or "" unassigns the attribute (RFC 7643 §2.5;
		// the Entra Logic-App "null update" and manager-removal tests).
		a.set(t, v)
		return nil
	}
}

// writeSub sets attr.sub without a filter: on a singular complex attribute,
// or on every element of a multi-valued one.
func (a *applier) writeSub(t target, value any) *Error {
	v, err := normScalar(t.sub, unwrapSingleton(value), t.name+"."+t.sub.Name, a.tol)
	if err != nil {
		return err
	}
	if !t.attr.MultiValued {
		cur, _ := a.get(t).(map[string]any)
		m := make(map[string]any, len(cur)+1)
		for k, x := range cur {
			m[k] = x
		}
		setSub(m, t.sub.Name, v)
		a.set(t, m)
		return nil
	}
	list := slices.Clone(asList(a.get(t)))
	if len(list) == 0 {
		if v != nil {
			a.set(t, []any{map[string]any{t.sub.Name: v}})
		}
		return nil
	}
	for i, e := range list {
		m := copyElem(e)
		setSub(m, t.sub.Name, v)
		list[i] = m
	}
	a.set(t, fixPrimary(t.attr, dropEmpty(list), nil))
	return nil
}

// writeFiltered applies add or replace to the elements selected by a value
// filter, creating the element when none matches.
func (a *applier) writeFiltered(op string, t target, value any) *Error {
	m, err := a.matcher(t)
	if err != nil {
		return err
	}
	var (
		elemVal map[string]any // for attr[filter]
		subVal  any            // for attr[filter].sub
	)
	if t.sub != nil {
		if subVal, err = normScalar(t.sub, unwrapSingleton(value), t.name+"."+t.sub.Name, a.tol); err != nil {
			return err
		}
	} else if t.attr.Type == schema.Complex {
		if elemVal, err = normComplex(t.attr, unwrapSingleton(value), t.name, a.tol); err != nil {
			return err
		}
	} else {
		return errorf(InvalidPath, "attribute %q has no sub-attributes to filter on", t.attr.Name)
	}

	list := slices.Clone(asList(a.get(t)))
	var touched []int
	for i, e := range list {
		if !m.MatchValue(a.rt, t.name, e) {
			continue
		}
		el := copyElem(e)
		switch {
		case t.sub != nil:
			setSub(el, t.sub.Name, subVal)
		case op == OpReplace && len(nonNil(elemVal)) == 0:
			// nullClears: replacing the selected elements with null
			// removes them.
			el = nil
		case op == OpReplace:
			// replace: the matching element becomes the value. The
			// filter's equality values are kept, so the element still
			// matches the path it was written through.
			repl := make(map[string]any, len(elemVal)+2)
			if tmpl, ok := a.template(t); ok {
				for k, v := range tmpl {
					repl[k] = v
				}
			}
			for k, v := range elemVal {
				setSub(repl, k, v)
			}
			el = repl
		default:
			for k, v := range elemVal {
				setSub(el, k, v)
			}
		}
		if el == nil {
			list[i] = nil
		} else {
			list[i] = el
		}
		touched = append(touched, i)
	}
	if len(touched) == 0 {
		el, err := a.upsertOnNoMatch(t, elemVal, subVal)
		if err != nil || el == nil {
			return err
		}
		touched = append(touched, len(list))
		list = append(list, el)
	}
	a.set(t, dropEmpty(fixPrimary(t.attr, list, touched)))
	return nil
}

// upsertOnNoMatch builds the element to append when a filtered add or
// replace matches no element: the filter's equality values plus the given
// value. It returns nil (nothing to do) when the value is empty, and
// noTarget when the filter is not a conjunction of equality tests on known
// sub-attributes.
//
// Tolerance (Entra issues filtered PATCHes on multi-valued attributes that
// have no such element yet and expects it created:
// {"op":"Replace","path":"emails[type eq \"work\"].value","value":"x"} on a
// user without a work e-mail appends {"type":"work","value":"x"}; Entra's
// validator "Patch User - Add Attributes", SCIM-SDK#416, ssoready#249). RFC
// 7644 would answer noTarget.
func (a *applier) upsertOnNoMatch(t target, elemVal map[string]any, subVal any) (map[string]any, *Error) {
	if t.sub != nil && subVal == nil {
		return nil, nil
	}
	if t.sub == nil && len(nonNil(elemVal)) == 0 {
		return nil, nil
	}
	tmpl, ok := a.template(t)
	if !ok || !a.tol.Allow(compat.PatchFilteredUpsert) {
		return nil, errorf(NoTarget, "no value of %q matches [%s]", t.name, truncate(t.filter))
	}
	el := tmpl
	if t.sub != nil {
		el[t.sub.Name] = subVal
		return el, nil
	}
	for k, v := range elemVal {
		setSub(el, k, v)
	}
	return el, nil
}

// template reads a filter that is a conjunction of `sub eq value` tests into
// the element those tests describe.
func (a *applier) template(t target) (map[string]any, bool) {
	tests, ok := eqList(t.filter, "and")
	if !ok {
		return nil, false
	}
	el := make(map[string]any, len(tests)+1)
	for _, ts := range tests {
		sa := t.attr.Sub(ts.name)
		if sa == nil || sa.Type == schema.Complex {
			return nil, false
		}
		v, err := normScalar(sa, ts.value, t.name+"."+sa.Name, a.tol)
		if err != nil || v == nil {
			return nil, false
		}
		if old, dup := el[sa.Name]; dup && !equalValue(old, v) {
			return nil, false // type eq "a" and type eq "b": no such element
		}
		el[sa.Name] = v
	}
	return el, true
}

// matcher compiles a value filter with the configured parser.
func (a *applier) matcher(t target) (ValueMatcher, *Error) {
	expr := t.filter
	if a.checkFilter != nil {
		if err := a.checkFilter(a.rt, t.name+"["+expr+"]"); err != nil {
			return nil, errorf(InvalidFilter, "%s", truncate(err.Error()))
		}
	}
	if a.parseFilter == nil {
		return nil, errorf(InvalidPath, "value filters are not supported here: [%s]", truncate(expr))
	}
	m, err := a.parseFilter(expr)
	if err != nil {
		if e, ok := err.(*Error); ok && e != nil {
			return nil, e
		}
		return nil, errorf(InvalidPath, "invalid filter [%s]: %s", truncate(expr), truncate(err.Error()))
	}
	if m == nil {
		return nil, errorf(InvalidPath, "invalid filter [%s]", truncate(expr))
	}
	return m, nil
}
