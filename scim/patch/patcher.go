package patch

import (
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
