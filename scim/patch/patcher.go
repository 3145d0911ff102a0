package patch

import (
	"slices"
	"strconv"
	"strings"

	"github.com/scimd/scimd/scim/compat"
	"github.com/scimd/scimd/scim/schema"
)

// ValueMatcher is a compiled value filter (the part between brackets in
// emails[type eq "work"]). MatchValue reports whether one element of the
// multi-valued attribute parent matches. parent is the attribute's name,
// prefixed with its schema URN and ':' for extension attributes; elem is
// usually a map[string]any with sub-attribute names in schema casing.
//
// The signature is that of (*filter.Filter).MatchValue in scim/filter, so a
// compiled *filter.Filter can be returned as a ValueMatcher directly.
type ValueMatcher interface {
	MatchValue(rt *schema.ResourceType, parent string, elem any) bool
}

// MatchFunc adapts a function to ValueMatcher.
type MatchFunc func(rt *schema.ResourceType, parent string, elem any) bool

// MatchValue calls f.
func (f MatchFunc) MatchValue(rt *schema.ResourceType, parent string, elem any) bool {
	return f(rt, parent, elem)
}

// ValueFilterParser compiles the filter text of a value path. Its error is
// reported to the client as invalidPath with the error's message (an *Error
// is passed through unchanged). It must not return a nil matcher without an
// error.
type ValueFilterParser func(expr string) (ValueMatcher, error)

// Patcher applies PATCH operations. The zero value is ready to use, but
// cannot evaluate value filters other than on members until
// ValueFilterParser is set. A Patcher holds no mutable state and is safe for
// concurrent use.
type Patcher struct {
	// ValueFilterParser compiles filters such as `type eq "work"` in
	// emails[type eq "work"].value. When nil, such paths are refused with
	// invalidPath. Filters on members never go through it.
	ValueFilterParser ValueFilterParser
	// ValueFilterChecker, when not nil, checks a value filter against the
	// resource type before it is used, as a query filter is checked:
	// valuePath is the whole path's value selection, such as
	// `emails[type eq "work"]`. An error is answered 400 invalidFilter
	// (a comparison of the wrong type, an unknown sub-attribute).
	ValueFilterChecker func(rt *schema.ResourceType, valuePath string) error
}

// Result is the outcome of Apply.
type Result struct {
	// Doc is the new document (a fresh deep copy; the input is never
	// modified).
	Doc map[string]any
	// Changed is false when the document is unchanged, which happens when
	// every operation was a no-op (repeating an add, re-sending a value
	// that is already set). Membership changes are not included: see
	// Members.
	Changed bool
	// Members is the requested change to the group's members. Whether it
	// changes anything depends on the current membership, which the caller
	// holds.
	Members MemberDelta
}

// Apply applies ops, in order, to a copy of doc, which is the SCIM JSON
// resource of type rt: core attributes at the top level, extension
// attributes under their schema URN, with "id", "meta" and "schemas", and
// without group "members" (membership changes come back in
// Result.Members). Either all operations apply or none does; every error is
// an *Error.
func (p *Patcher) Apply(rt *schema.ResourceType, doc map[string]any, ops []Operation) (Result, error) {
	return p.ApplyWith(rt, doc, ops, nil)
}

// ApplyWith is Apply under a compatibility profile: a filtered add or
// replace that matches no element creates it only with the
// compat.PatchFilteredUpsert rule, and is 400 noTarget (RFC 7644
// §3.5.2.3) without. A nil tracker allows every rule.
func (p *Patcher) ApplyWith(rt *schema.ResourceType, doc map[string]any, ops []Operation, tol *compat.Tracker) (Result, error) {
	if rt == nil || rt.Core == nil {
		return Result{}, errorf(InvalidValue, "no resource type")
	}
	a := &applier{rt: rt, doc: copyMap(doc), tol: tol}
	if p != nil {
		a.parseFilter = p.ValueFilterParser
		a.checkFilter = p.ValueFilterChecker
	}
	for i, op := range ops {
		if err := a.apply(op); err != nil {
			if len(ops) > 1 {
				// A copy: err may be a value the filter parser shares.
				err = &Error{ScimType: err.ScimType, Detail: "operation " + strconv.Itoa(i) + ": " + err.Detail}
			}
			return Result{}, err
		}
	}
	if err := a.finish(doc); err != nil {
		return Result{}, err
	}
	return Result{
		Doc:     a.doc,
		Changed: !equalValue(doc, a.doc),
		Members: a.members.delta(),
	}, nil
}

// applier is the state of one Apply call.
type applier struct {
	tol         *compat.Tracker
	rt          *schema.ResourceType
	doc         map[string]any
	parseFilter ValueFilterParser
	checkFilter func(rt *schema.ResourceType, valuePath string) error
	members     memberState
}

// target is a path resolved against the resource type.
type target struct {
	ext    *schema.Schema    // nil for the core schema
	attr   *schema.Attribute // nil: the whole schema (container-level merge)
	sub    *schema.Attribute
	filter string
	name   string // attribute name for matchers and messages, URN-qualified for extensions
}

func (a *applier) apply(op Operation) *Error {
	switch op.Op = normaliseOpName(op.Op); op.Op {
	case OpAdd, OpReplace, OpRemove:
	default:
		return errorf(InvalidSyntax, "unknown op %q", truncate(op.Op))
	}
	op.Path = strings.TrimSpace(op.Path)
	if op.Path == "" {
		if op.Op == OpRemove {
			return errorf(NoTarget, "remove requires a path")
		}
		return a.applyPathless(op.Op, nil, op.Value)
	}
	path, err := parsePath(op.Path)
	if err != nil {
		return err
	}
	t, ok, err := a.resolve(path, true)
	if err != nil || !ok {
		return err
	}
	return a.applyTarget(op.Op, t, op.Value)
}

// resolve binds a path to the schema. ok is false when the operation is to
// be ignored: an attribute under an unknown schema URN, the "schemas"
// attribute (maintained by this package), and, when not strict (keys of a
// path-less value), unknown or read-only attributes.
func (a *applier) resolve(p Path, strict bool) (t target, ok bool, err *Error) {
	sch := a.rt.Core
	if p.URN != "" {
		full := p.URN + ":" + p.Attr
		if p.Filter == "" && p.Sub == "" {
			// The path is a schema URN: the whole extension (or core)
			// object is the target.
			if ext := a.rt.Extension(full); ext != nil {
				return target{ext: ext, name: ext.ID}, true, nil
			}
			if strings.EqualFold(full, a.rt.Core.ID) {
				return target{name: a.rt.Core.ID}, true, nil
			}
		}
		switch ext := a.rt.Extension(p.URN); {
		case ext != nil:
			sch = ext
		case strings.EqualFold(p.URN, a.rt.Core.ID):
		default:
			return target{}, false, ignoreUnknownURN(p.URN)
		}
	}
	t.attr = sch.Attr(p.Attr)
	if sch == a.rt.Core {
		if t.attr == nil {
			t.attr = commonAttr(p.Attr)
		}
		if t.attr == nil && strings.EqualFold(p.Attr, "schemas") {
			// "schemas" follows the extension objects present; a client
			// writing it is ignored.
			return target{}, false, nil
		}
	} else {
		t.ext = sch
	}
	switch {
	case t.attr == nil:
		if !strict {
			return target{}, false, nil
		}
		return target{}, false, errorf(InvalidPath, "unknown attribute %q", truncate(p.String()))
	case t.attr.Mutability == "readOnly":
		// Tolerance (Okta sends {"id":…,"displayName":…} in a path-less
		// replace, and PUT-style documents with meta and groups): read-only
		// attributes inside a path-less value are ignored. Named in a path
		// they are an error.
		if !strict {
			return target{}, false, nil
		}
		return target{}, false, errorf(Mutability, "attribute %q is read-only", t.attr.Name)
	}
	t.name = t.attr.Name
	if t.ext != nil {
		t.name = t.ext.ID + ":" + t.attr.Name
	}
	if p.Sub != "" {
		if t.attr.Type != schema.Complex {
			if !strict {
				return target{}, false, nil
			}
			return target{}, false, errorf(InvalidPath, "attribute %q has no sub-attributes", t.attr.Name)
		}
		t.sub = t.attr.Sub(p.Sub)
		switch {
		case t.sub == nil:
			if !strict {
				return target{}, false, nil
			}
			return target{}, false, errorf(InvalidPath, "unknown attribute %q", truncate(p.String()))
		case t.sub.Mutability == "readOnly" && !a.isMembers(t):
			if !strict {
				return target{}, false, nil
			}
			return target{}, false, errorf(Mutability, "attribute %q is read-only", t.attr.Name+"."+t.sub.Name)
		}
	}
	if p.Filter != "" {
		if !t.attr.MultiValued {
			return target{}, false, errorf(InvalidPath, "attribute %q is not multi-valued and cannot be filtered", t.attr.Name)
		}
		t.filter = p.Filter
	}
	return t, true, nil
}

// ignoreUnknownURN decides what to do with an attribute under a schema URN
// the resource type does not have: it is ignored.
//
// Tolerance (Entra and OneLogin send attributes of schemas the service
// provider does not serve, for example Microsoft's ADSCIM group schema or an
// old urn:scim:schemas:core:1.0 prefix; they carry nothing we store).
func ignoreUnknownURN(string) *Error { return nil }

func commonAttr(name string) *schema.Attribute {
	for _, c := range schema.CommonAttributes() {
		if strings.EqualFold(c.Name, name) {
			return c
		}
	}
	return nil
}

// isMembers reports whether t is the group members attribute, which lives
// outside the document.
func (a *applier) isMembers(t target) bool {
	return t.ext == nil && t.attr != nil && strings.EqualFold(t.attr.Name, "members") && t.attr.MultiValued
}

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

// container returns the object holding t's attribute: the document, or the
// extension object (created when create is set).
func (a *applier) container(t target, create bool) map[string]any {
	if t.ext == nil {
		return a.doc
	}
	key, v, ok := lookupFold(a.doc, t.ext.ID)
	if m, isMap := v.(map[string]any); ok && isMap {
		if key != t.ext.ID {
			delete(a.doc, key)
			a.doc[t.ext.ID] = m
		}
		return m
	}
	if !create {
		return nil
	}
	if ok {
		delete(a.doc, key)
	}
	m := map[string]any{}
	a.doc[t.ext.ID] = m
	return m
}

func (a *applier) get(t target) any {
	c := a.container(t, false)
	if c == nil {
		return nil
	}
	_, v, _ := lookupFold(c, t.attr.Name)
	return v
}

// set stores v as t's attribute, or removes the attribute when v is empty.
func (a *applier) set(t target, v any) {
	if isEmpty(v) {
		if c := a.container(t, false); c != nil {
			deleteFold(c, t.attr.Name)
		}
		return
	}
	setFold(a.container(t, true), t.attr.Name, v)
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

// finish checks the result against the schema and maintains "schemas".
func (a *applier) finish(orig map[string]any) *Error {
	// Required attributes that were present may not be removed.
	for _, sch := range a.rt.Schemas() {
		t := target{}
		if sch != a.rt.Core {
			t.ext = sch
		}
		for _, at := range sch.Attributes {
			if !at.Required {
				continue
			}
			t.attr = at
			was := origAttr(orig, t)
			if !isEmpty(was) && isEmpty(a.get(t)) {
				return errorf(InvalidValue, "required attribute %q cannot be removed", at.Name)
			}
		}
	}
	// Extension objects: an emptied one is dropped, and "schemas" lists
	// exactly the extensions present, when they changed.
	for _, ext := range a.rt.Extensions {
		_, before, _ := lookupFold(orig, ext.ID)
		key, after, present := lookupFold(a.doc, ext.ID)
		if equalValue(before, after) {
			continue
		}
		if present && isEmpty(after) {
			delete(a.doc, key)
			present = false
		}
		a.setSchemaListed(ext.ID, present)
	}
	return nil
}

func origAttr(orig map[string]any, t target) any {
	c := orig
	if t.ext != nil {
		_, v, _ := lookupFold(orig, t.ext.ID)
		c, _ = v.(map[string]any)
	}
	if c == nil {
		return nil
	}
	_, v, _ := lookupFold(c, t.attr.Name)
	return v
}

// setSchemaListed adds urn to, or removes it from, the document's "schemas".
func (a *applier) setSchemaListed(urn string, listed bool) {
	key, v, ok := lookupFold(a.doc, "schemas")
	list, isList := v.([]any)
	if ok && !isList {
		return // not ours to repair
	}
	if !ok {
		if !listed {
			return
		}
		key = "schemas"
		list = []any{a.rt.Core.ID}
	}
	out := make([]any, 0, len(list)+1)
	found := false
	for _, s := range list {
		if str, _ := s.(string); strings.EqualFold(str, urn) {
			if listed && !found {
				out = append(out, s)
			}
			found = true
			continue
		}
		out = append(out, s)
	}
	if listed && !found {
		out = append(out, urn)
	}
	a.doc[key] = out
}

// fixPrimary keeps at most one element with "primary": true (RFC 7643
// §2.4): when an element at one of the written indexes is primary, every
// other element loses its primary flag. With no written index, the first
// primary element wins.
func fixPrimary(at *schema.Attribute, list []any, written []int) []any {
	ps := at.Sub("primary")
	if ps == nil {
		return list
	}
	winner := -1
	for i := len(written) - 1; i >= 0 && winner < 0; i-- {
		if w := written[i]; w < len(list) && isPrimary(list[w], ps.Name) {
			winner = w
		}
	}
	for i := 0; i < len(list) && winner < 0; i++ {
		if isPrimary(list[i], ps.Name) {
			winner = i
		}
	}
	if winner < 0 {
		return list
	}
	for i, e := range list {
		if i != winner && isPrimary(e, ps.Name) {
			el := copyElem(e)
			el[ps.Name] = false
			list[i] = el
		}
	}
	return list
}

func isPrimary(e any, name string) bool {
	m, ok := e.(map[string]any)
	if !ok {
		return false
	}
	_, v, _ := lookupFold(m, name)
	b, _ := v.(bool)
	return b
}

// copyElem returns a copy of a complex element that can be edited without
// touching list elements shared with other values.
func copyElem(e any) map[string]any {
	m, _ := e.(map[string]any)
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// setSub sets or (for nil) deletes a sub-attribute of an element.
func setSub(m map[string]any, name string, v any) {
	if v == nil {
		deleteFold(m, name)
		return
	}
	setFold(m, name, v)
}

// dropEmpty removes elements that have become empty.
func dropEmpty(list []any) []any {
	out := list[:0]
	for _, e := range list {
		if !isEmpty(e) {
			out = append(out, e)
		}
	}
	return out
}

func nonNil(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

func allIndexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}
