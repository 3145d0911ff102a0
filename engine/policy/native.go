package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// A native decision table decides data.scimd.teammate in Go for a policy
// set of the default shape: its decision logic is the shipped one
// (referenceLogic) and only its data (group → role table, exclusions,
// roles, role for no group) and its attribute rules of the simple form
// `input.user.<path> == <constant>` differ. OPA stays the definition: the
// table is built from values OPA computes for the revision, it decides only
// ordinary, well-typed inputs (anything else goes to OPA), and a sample of
// its decisions is checked against OPA (see oracle.go).

// Rule names of package scimd the native table knows.
var (
	// nativeLogicNames are the rules that must equal referenceLogic.
	nativeLogicNames = []string{
		"teammate", "excluded_decision", "deactivated", "deactivated_decision",
		"granted_decision", "grants", "granted_role", "granted_reasons",
		"no_group_decision", "group_role", "group", "excluded_lower", "excluded", "rank",
	}
	// nativeDataNames are the rules whose values the table is built from;
	// they must not depend on the input.
	nativeDataNames = []string{"group_roles", "excluded_users", "roles", "role_without_group"}
)

const attributeGrants = "attribute_grants"

// maxNativeAttrRules bounds the attribute rules a native table takes (the
// matches of one input are a bit set).
const maxNativeAttrRules = 64

var scimdPath = ast.MustParseRef("data.scimd")

// nativeTable is the decision table of a default-shape policy revision. It
// is immutable.
type nativeTable struct {
	groupRoles map[string]string   // group_roles
	excluded   map[string]struct{} // excluded_lower
	roles      []string            // roles, highest precedence first
	rank       map[string]int      // position in roles
	// noGroupRole is role_without_group; noGroupNull when it is null.
	noGroupRole string
	noGroupNull bool
	attrs       []attrRule
}

// attrRule is one attribute_grants rule: the grant, given when every
// condition holds.
type attrRule struct {
	role, reason string
	conds        []attrCond
}

// attrCond is `input.user.<path> == <value>`, value a string or a boolean.
type attrCond struct {
	path  []string
	value any // string or bool
}

// referenceRules parses referenceLogic once: its rules by name.
var referenceRules = sync.OnceValues(func() (map[string][]*ast.Rule, error) {
	m, err := ast.ParseModuleWithOpts("reference.rego", referenceLogic, ast.ParserOptions{
		RegoVersion: ast.RegoV1, ProcessAnnotation: true,
	})
	if err != nil {
		return nil, fmt.Errorf("parse the reference logic: %w", err)
	}
	return rulesByName(m.Rules), nil
})

func rulesByName(rules []*ast.Rule) map[string][]*ast.Rule {
	out := map[string][]*ast.Rule{}
	for _, r := range rules {
		name := ruleName(r)
		out[name] = append(out[name], r)
	}
	return out
}

// ruleName is the first name of a rule's head reference (`a` for `a.b.c
// := 1`), or "" for a head the parser does not name.
func ruleName(r *ast.Rule) string {
	ref := r.Head.Ref()
	if len(ref) == 0 {
		return ""
	}
	v, _ := ref[0].Value.(ast.Var)
	return string(v)
}

// sameRules reports whether a and b hold equal rules (ignoring locations
// and order).
func sameRules(a, b []*ast.Rule) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	cmp := func(x, y *ast.Rule) int { return x.Compare(y) }
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.EqualFunc(a, b, func(x, y *ast.Rule) bool { return x.Compare(y) == 0 })
}

// compileNative builds the native table of a set, or says why the set has
// none. prod are the parsed production modules, compiler their compiled
// form, store and docs the set's data. Any doubt means no table: OPA then
// decides everything, as it would without this.
func (s *Set) compileNative(ctx context.Context, prod map[string]*ast.Module, compiler *ast.Compiler,
	store storage.Store, docs map[string]any) (*nativeTable, string) {
	ref, err := referenceRules()
	if err != nil {
		return nil, err.Error()
	}
	if _, ok := docs["scimd"]; ok {
		return nil, "a data file defines values under data.scimd"
	}

	// Every rule of package scimd, by name, from the parsed modules.
	rules := map[string][]*ast.Rule{}
	for _, name := range sortedKeys(prod) {
		m := prod[name]
		path := m.Package.Path
		if !path.HasPrefix(scimdPath) {
			continue
		}
		if len(path) > len(scimdPath) {
			return nil, fmt.Sprintf("%s: package %v extends package scimd", name, path)
		}
		for _, imp := range m.Imports {
			if p := imp.Path.String(); p != "rego.v1" && !strings.HasPrefix(p, "future.keywords") {
				return nil, fmt.Sprintf("%s: import %s", name, imp.Path)
			}
		}
		for _, r := range m.Rules {
			n := ruleName(r)
			rules[n] = append(rules[n], r)
		}
	}

	for name := range rules {
		if shadowsBuiltin(name) {
			return nil, fmt.Sprintf("rule %s has the name of a built-in function", name)
		}
	}
	for _, name := range nativeLogicNames {
		if !sameRules(rules[name], ref[name]) {
			return nil, fmt.Sprintf("rule %s differs from the default policy's", name)
		}
	}

	// Data rules: plain values, independent of the input.
	for _, name := range nativeDataNames {
		if reason := s.checkConstRule(compiler, name); reason != "" {
			return nil, reason
		}
	}

	t := &nativeTable{roles: s.roles, rank: s.rank}
	eval := func(name string) (*ast.Term, string) {
		v, err := evalConst(ctx, compiler, store, "data.scimd."+name)
		if err != nil {
			return nil, fmt.Sprintf("evaluate %s: %v", name, err)
		}
		if v == nil {
			return nil, name + " is undefined"
		}
		return v, ""
	}

	gr, why := eval("group_roles")
	if why != "" {
		return nil, why
	}
	obj, ok := gr.Value.(ast.Object)
	if !ok {
		return nil, "group_roles is not an object"
	}
	t.groupRoles = make(map[string]string, obj.Len())
	bad := false
	obj.Foreach(func(k, v *ast.Term) {
		ks, ok1 := k.Value.(ast.String)
		vs, ok2 := v.Value.(ast.String)
		if !ok1 || !ok2 {
			bad = true
			return
		}
		t.groupRoles[string(ks)] = string(vs)
	})
	if bad {
		return nil, "group_roles is not an object of strings to strings"
	}

	el, why := eval("excluded_lower")
	if why != "" {
		return nil, why
	}
	set, ok := el.Value.(ast.Set)
	if !ok {
		return nil, "excluded_lower is not a set"
	}
	t.excluded = make(map[string]struct{}, set.Len())
	set.Foreach(func(x *ast.Term) {
		xs, ok := x.Value.(ast.String)
		if !ok {
			bad = true
			return
		}
		t.excluded[string(xs)] = struct{}{}
	})
	if bad {
		return nil, "excluded_lower is not a set of strings"
	}

	rw, why := eval("role_without_group")
	if why != "" {
		return nil, why
	}
	switch v := rw.Value.(type) {
	case ast.Null:
		t.noGroupNull = true
	case ast.String:
		t.noGroupRole = string(v)
	default:
		return nil, "role_without_group is neither null nor a string"
	}

	if len(s.roles) == 0 {
		return nil, "roles is not an array of strings"
	}

	// Attribute rules.
	consts := map[string]string{}
	for _, r := range rules[attributeGrants] {
		ar, why := s.attrRule(ctx, compiler, store, r, consts)
		if why != "" {
			return nil, why
		}
		t.attrs = append(t.attrs, ar)
	}
	if len(t.attrs) == 0 {
		return nil, "no attribute_grants rule"
	}
	if len(t.attrs) > maxNativeAttrRules {
		return nil, fmt.Sprintf("more than %d attribute_grants rules", maxNativeAttrRules)
	}
	return t, ""
}

// checkConstRule checks that data.scimd.<name> is defined by rules (not
// functions) whose evaluation reads no input, directly or through the
// rules they depend on, and uses no `with`.
func (s *Set) checkConstRule(c *ast.Compiler, name string) string {
	start := c.GetRulesExact(scimdPath.Append(ast.StringTerm(name)))
	if len(start) == 0 {
		return "no rule " + name
	}
	seen := map[*ast.Rule]bool{}
	queue := slices.Clone(start)
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		if seen[r] {
			continue
		}
		seen[r] = true
		if slices.Contains(start, r) && len(r.Head.Args) > 0 {
			return name + " is a function"
		}
		reason := ""
		ast.WalkExprs(r, func(e *ast.Expr) bool {
			if len(e.With) > 0 && reason == "" {
				reason = fmt.Sprintf("%s depends on a rule using `with`", name)
			}
			return false
		})
		ast.WalkRefs(r, func(ref ast.Ref) bool {
			if ref.HasPrefix(ast.InputRootRef) && reason == "" {
				reason = fmt.Sprintf("%s depends on the input", name)
			}
			return false
		})
		if reason != "" {
			return reason
		}
		for dep := range c.Graph.Dependencies(r) {
			if dr, ok := dep.(*ast.Rule); ok && !seen[dr] {
				queue = append(queue, dr)
			}
		}
	}
	return ""
}

// attrRule recognises `attribute_grants contains {"role": R, "reason": W}
// if { input.user.<path> == <constant>; … }`, R and W string constants, the
// path made of string constants and names of input-independent rules whose
// value is a string. consts caches those rules' values.
func (s *Set) attrRule(ctx context.Context, c *ast.Compiler, store storage.Store, r *ast.Rule, consts map[string]string) (attrRule, string) {
	unrecognised := "an attribute_grants rule is not of the form " +
		"`attribute_grants contains {\"role\": \"…\", \"reason\": \"…\"} if { input.user.<path> == <string or boolean>; … }`"
	if r.Location != nil {
		unrecognised = fmt.Sprintf("%s:%d: %s", r.Location.File, r.Location.Row, unrecognised)
	}
	h := r.Head
	if r.Default || r.Else != nil || len(h.Args) > 0 || len(h.Ref()) != 1 || h.RuleKind() != ast.MultiValue || h.Key == nil || h.Value != nil {
		return attrRule{}, unrecognised
	}
	obj, ok := h.Key.Value.(ast.Object)
	if !ok || obj.Len() != 2 {
		return attrRule{}, unrecognised
	}
	role, ok1 := stringAt(obj, "role")
	reason, ok2 := stringAt(obj, "reason")
	if !ok1 || !ok2 {
		return attrRule{}, unrecognised
	}
	ar := attrRule{role: role, reason: reason}
	for _, e := range r.Body {
		if e.Negated || len(e.With) > 0 {
			return attrRule{}, unrecognised
		}
		if t, ok := e.Terms.(*ast.Term); ok && t.Value.Compare(ast.Boolean(true)) == 0 && len(r.Body) == 1 {
			continue // no body, or `if { true }`: granted to everyone
		}
		terms, ok := e.Terms.([]*ast.Term)
		if !ok || len(terms) != 3 || !e.IsCall() || !e.Operator().Equal(ast.Equal.Ref()) {
			return attrRule{}, unrecognised
		}
		refT, constT := terms[1], terms[2]
		if _, isRef := refT.Value.(ast.Ref); !isRef {
			refT, constT = constT, refT
		}
		ref, ok := refT.Value.(ast.Ref)
		if !ok || len(ref) < 3 || !ref[0].Equal(ast.InputRootDocument) || ref[1].Value.Compare(ast.String("user")) != 0 {
			return attrRule{}, unrecognised
		}
		cond := attrCond{}
		switch v := constT.Value.(type) {
		case ast.String:
			cond.value = string(v)
		case ast.Boolean:
			cond.value = bool(v)
		default:
			return attrRule{}, unrecognised
		}
		for _, el := range ref[2:] {
			switch v := el.Value.(type) {
			case ast.String:
				cond.path = append(cond.path, string(v))
			case ast.Var:
				str, why := s.constString(ctx, c, store, string(v), consts)
				if why != "" {
					return attrRule{}, why
				}
				cond.path = append(cond.path, str)
			default:
				return attrRule{}, unrecognised
			}
		}
		ar.conds = append(ar.conds, cond)
	}
	return ar, ""
}

// constString evaluates data.scimd.<name>, an input-independent rule whose
// value must be a string.
func (s *Set) constString(ctx context.Context, c *ast.Compiler, store storage.Store, name string, consts map[string]string) (string, string) {
	if v, ok := consts[name]; ok {
		return v, ""
	}
	if slices.Contains(nativeLogicNames, name) || slices.Contains(nativeDataNames, name) || name == attributeGrants {
		return "", fmt.Sprintf("an attribute_grants rule reads the rule %s in a path", name)
	}
	if why := s.checkConstRule(c, name); why != "" {
		return "", why
	}
	v, err := evalConst(ctx, c, store, "data.scimd."+name)
	if err != nil {
		return "", fmt.Sprintf("evaluate %s: %v", name, err)
	}
	if v == nil {
		return "", name + " is undefined"
	}
	str, ok := v.Value.(ast.String)
	if !ok {
		return "", name + " is not a string"
	}
	consts[name] = string(str)
	return string(str), ""
}

// shadowsBuiltin reports whether name is a built-in function's name or
// its first part (`object` of `object.get`).
func shadowsBuiltin(name string) bool {
	for b := range ast.BuiltinMap {
		if b == name || strings.HasPrefix(b, name+".") {
			return true
		}
	}
	return false
}

func stringAt(obj ast.Object, key string) (string, bool) {
	t := obj.Get(ast.StringTerm(key))
	if t == nil {
		return "", false
	}
	s, ok := t.Value.(ast.String)
	return string(s), ok
}

// evalConst evaluates query with an empty input; nil when undefined.
func evalConst(ctx context.Context, c *ast.Compiler, store storage.Store, query string) (*ast.Term, error) {
	rs, err := rego.New(rego.Query(query), rego.Compiler(c), rego.Store(store), rego.GenerateJSON(asTerm),
		rego.StrictBuiltinErrors(true), rego.ParsedInput(ast.NewObject())).Eval(ctx)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return rs[0].Expressions[0].Value.(*ast.Term), nil
}

// facts are what the reference logic reads from the user: whether the
// user is excluded or deactivated, and which attribute rules match.
type facts struct {
	excluded    bool
	deactivated bool
	attrs       uint64 // bit i: attrs[i] matches
}

// decide is the reference logic over facts, groups and the current state.
// ok is false when the decision would break the contract (a role outside
// roles): OPA then decides, and reports the error.
func (t *nativeTable) decide(f facts, groups []Group, cur Current) (Decision, bool) {
	switch {
	case f.excluded:
		return Decision{Excluded: true, Access: cur.Access, Role: cur.Role, Reasons: []string{reasonExcluded}}, true
	case f.deactivated:
		return Decision{Reasons: []string{reasonDeactivated}}, true
	}
	best := -1
	var reasons []string
	for _, g := range groups {
		role, ok := t.groupRoles[g.ExternalID]
		if !ok {
			role, ok = t.groupRoles[g.DisplayName]
		}
		if !ok {
			continue
		}
		r, ok := t.rank[role]
		if !ok || (best >= 0 && r > best) {
			continue
		}
		if r < best || best < 0 {
			best, reasons = r, reasons[:0]
		}
		reasons = append(reasons, "member of group "+strconv.Quote(g.DisplayName)+" → "+role)
	}
	for i, a := range t.attrs {
		if f.attrs&(1<<i) == 0 {
			continue
		}
		r, ok := t.rank[a.role]
		if !ok || (best >= 0 && r > best) {
			continue
		}
		if r < best || best < 0 {
			best, reasons = r, reasons[:0]
		}
		reasons = append(reasons, a.reason)
	}
	if best < 0 {
		if t.noGroupNull {
			return Decision{Reasons: []string{reasonNoGroup}}, true
		}
		if _, ok := t.rank[t.noGroupRole]; !ok {
			return Decision{}, false
		}
		return Decision{Access: true, Role: t.noGroupRole,
			Reasons: []string{"in no mapped group → default role " + t.noGroupRole}}, true
	}
	slices.Sort(reasons)
	return Decision{Access: true, Role: t.roles[best], Reasons: slices.Clip(slices.Compact(reasons))}, true
}

// decideInput decides a Go input, or returns ok=false for an input the
// table does not handle.
func (t *nativeTable) decideInput(in TeammateInput) (Decision, bool) {
	if in.User == nil || !convertible(in.User, 0) {
		return Decision{}, false
	}
	f, ok := t.factsOf(in.User)
	if !ok {
		return Decision{}, false
	}
	return t.decide(f, in.Groups, in.Current)
}

// factsOf reads the facts from a user document whose values convertible
// accepted.
func (t *nativeTable) factsOf(u map[string]any) (facts, bool) {
	var f facts
	switch name := u["userName"].(type) {
	case nil:
		if _, present := u["userName"]; present {
			return f, false
		}
	case string:
		f.excluded = t.isExcluded(name)
	default:
		return f, false
	}
	if e, present := u["emails"]; present {
		emails, ok := e.([]any)
		if !ok || emails == nil {
			return f, false
		}
		for _, e := range emails {
			m, ok := e.(map[string]any)
			if !ok || m == nil {
				return f, false
			}
			v, present := m["value"]
			if !present {
				continue
			}
			s, ok := v.(string)
			if !ok {
				return f, false
			}
			if !f.excluded {
				f.excluded = t.isExcluded(s)
			}
		}
	}
	if a, present := u["active"]; present {
		f.deactivated = equalConst(a, false)
	}
	for i, a := range t.attrs {
		if matchAll(u, a.conds) {
			f.attrs |= 1 << i
		}
	}
	return f, true
}

func (t *nativeTable) isExcluded(s string) bool {
	if len(t.excluded) == 0 {
		return false
	}
	_, ok := t.excluded[strings.ToLower(s)]
	return ok
}

// matchAll reports whether every condition holds for the user document.
func matchAll(u map[string]any, conds []attrCond) bool {
	for _, c := range conds {
		var v any = u
		for _, k := range c.path {
			m, ok := v.(map[string]any)
			if !ok {
				return false // a key of a non-object is undefined
			}
			if v, ok = m[k]; !ok {
				return false
			}
		}
		if !equalConst(v, c.value) {
			return false
		}
	}
	return true
}

// equalConst is Rego's == between a value convertible accepted and a
// string or boolean constant: values of other types are never equal.
func equalConst(v, c any) bool {
	switch c := c.(type) {
	case string:
		s, ok := v.(string)
		return ok && s == c
	case bool:
		b, ok := v.(bool)
		return ok && b == c
	}
	return false
}

// convertible reports whether toValue converts x without error and without
// going through JSON: only then does the native table decide.
func convertible(x any, depth int) bool {
	if depth > maxInputDepth {
		return false
	}
	switch x := x.(type) {
	case nil, string, bool, int, int64, []string:
		return true
	case float64:
		return !math.IsNaN(x) && !math.IsInf(x, 0)
	case json.Number:
		_, err := strconv.ParseFloat(string(x), 64)
		return err == nil
	case map[string]any:
		for _, v := range x {
			if !convertible(v, depth+1) {
				return false
			}
		}
		return true
	case []any:
		for _, v := range x {
			if !convertible(v, depth+1) {
				return false
			}
		}
		return true
	case []map[string]any:
		for _, v := range x {
			if !convertible(v, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// Input keys the native table reads from an AST input.
var (
	keyUserName = ast.StringTerm("userName")
	keyEmails   = ast.StringTerm("emails")
	keyValue    = ast.StringTerm("value")
	keyActive   = ast.StringTerm("active")
)

// decideValue decides an AST input (TeammateValue), or returns ok=false
// for an input the table does not handle.
func (t *nativeTable) decideValue(input ast.Value) (Decision, bool) {
	in, ok := input.(ast.Object)
	if !ok {
		return Decision{}, false
	}
	ut := in.Get(keyUser)
	if ut == nil {
		return Decision{}, false
	}
	u, ok := ut.Value.(ast.Object)
	if !ok {
		return Decision{}, false
	}
	var f facts
	if n := u.Get(keyUserName); n != nil {
		s, ok := n.Value.(ast.String)
		if !ok {
			return Decision{}, false
		}
		f.excluded = t.isExcluded(string(s))
	}
	if e := u.Get(keyEmails); e != nil {
		arr, ok := e.Value.(*ast.Array)
		if !ok {
			return Decision{}, false
		}
		for i := range arr.Len() {
			m, ok := arr.Elem(i).Value.(ast.Object)
			if !ok {
				return Decision{}, false
			}
			v := m.Get(keyValue)
			if v == nil {
				continue
			}
			s, ok := v.Value.(ast.String)
			if !ok {
				return Decision{}, false
			}
			if !f.excluded {
				f.excluded = t.isExcluded(string(s))
			}
		}
	}
	if a := u.Get(keyActive); a != nil {
		f.deactivated = a.Value.Compare(ast.Boolean(false)) == 0
	}
	for i, a := range t.attrs {
		if matchAllValue(u, a.conds) {
			f.attrs |= 1 << i
		}
	}

	gt := in.Get(keyGroups)
	if gt == nil {
		return Decision{}, false
	}
	garr, ok := gt.Value.(*ast.Array)
	if !ok {
		return Decision{}, false
	}
	groups := make([]Group, garr.Len())
	for i := range garr.Len() {
		g, ok := garr.Elem(i).Value.(ast.Object)
		if !ok {
			return Decision{}, false
		}
		ext, ok1 := stringAt(g, "externalId")
		name, ok2 := stringAt(g, "displayName")
		if !ok1 || !ok2 {
			return Decision{}, false
		}
		groups[i] = Group{ExternalID: ext, DisplayName: name}
	}

	var cur Current
	if ct := in.Get(keyCurrent); ct != nil {
		c, ok := ct.Value.(ast.Object)
		if !ok {
			return Decision{}, false
		}
		if a := c.Get(keyAccess); a != nil {
			b, ok := a.Value.(ast.Boolean)
			if !ok {
				return Decision{}, false
			}
			cur.Access = bool(b)
		}
		if r := c.Get(keyRole); r != nil {
			switch v := r.Value.(type) {
			case ast.Null:
			case ast.String:
				if v == "" {
					return Decision{}, false
				}
				cur.Role = string(v)
			default:
				return Decision{}, false
			}
		}
	}
	return t.decide(f, groups, cur)
}

// matchAllValue is matchAll over an AST user.
func matchAllValue(u ast.Object, conds []attrCond) bool {
	for _, c := range conds {
		var v ast.Value = u
		for _, k := range c.path {
			m, ok := v.(ast.Object)
			if !ok {
				return false
			}
			t := m.Get(ast.StringTerm(k))
			if t == nil {
				return false
			}
			v = t.Value
		}
		var want ast.Value
		switch c := c.value.(type) {
		case string:
			want = ast.String(c)
		case bool:
			want = ast.Boolean(c)
		}
		if v.Compare(want) != 0 {
			return false
		}
	}
	return true
}
