package policy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Explanation says why a teammate gets its decision: OPA's own trace of
// the evaluation of data.scimd.teammate as written, filtered to the
// policy's rules, plus which of the teammate's groups and attributes
// change the decision when left out.
type Explanation struct {
	Decision Decision `json:"decision"`
	// Rules are the policy rules that produced a value while deciding,
	// in evaluation order, each once per distinct value.
	Rules []RuleStep `json:"rules"`
	// Mattered are the groups and attributes without which the decision
	// (excluded, access or role) would differ.
	Mattered []Factor `json:"mattered"`
	// Precedence is the step that chose the decision.
	Precedence Precedence `json:"precedence"`
	// Truncated is set when there were more rules than maxExplainRules.
	Truncated bool `json:"truncated,omitempty"`
}

// RuleStep is one rule that produced a value.
type RuleStep struct {
	Rule string `json:"rule"` // data.scimd.group_role
	File string `json:"file"`
	Row  int    `json:"row"`
	// Args are a function's arguments; Value the value it produced.
	Args  []any `json:"args,omitempty"`
	Value any   `json:"value"`
}

// Factor is a group or attribute that mattered.
type Factor struct {
	Kind string `json:"kind"` // "group" or "attribute"
	// Name is the group's displayName or the attribute's path in the user.
	Name  string `json:"name"`
	Value any    `json:"value,omitempty"`
	// Without is the decision without it.
	Without string `json:"without"`
}

// Precedence names the rule (and the branch of an else chain) whose value
// is the decision, and the rank of the role in data.scimd.roles.
type Precedence struct {
	Rule   string `json:"rule"`
	File   string `json:"file"`
	Row    int    `json:"row"`
	Branch int    `json:"branch"` // 0: the rule itself, n: its n-th else
	// Rank is the role's position in Roles (highest precedence first), -1
	// for no role.
	Rank  int      `json:"rank"`
	Roles []string `json:"roles"`
}

// maxExplainRules bounds an explanation.
const maxExplainRules = 200

var scimdPackage = ast.MustParseRef("data.scimd")

// Explain decides in with the query as written, traced, and explains the
// decision. It costs several evaluations: use it on request, not per
// change.
func (s *Set) Explain(ctx context.Context, in TeammateInput) (*Explanation, error) {
	v, err := in.Value()
	if err != nil {
		return nil, fmt.Errorf("policy %s: teammate input: %w", s.revision, err)
	}
	buf := topdown.NewBufferTracer()
	d, err := s.plainTeammate(ctx, v, rego.EvalQueryTracer(buf))
	if err != nil {
		return nil, err
	}
	ex := &Explanation{Decision: d, Rules: []RuleStep{}, Mattered: []Factor{}}
	ex.Precedence = Precedence{Rank: -1, Roles: s.Roles()}
	if r, ok := s.rank[d.Role]; ok && !d.Excluded {
		ex.Precedence.Rank = r
	}
	seen := map[string]bool{}
	teammatePath := ast.MustParseRef(QueryTeammate)
	for _, ev := range *buf {
		switch {
		case ev.Op == topdown.ExitOp && ev.HasRule():
			rule := ev.Node.(*ast.Rule)
			if rule.Module == nil || !rule.Module.Package.Path.HasPrefix(scimdPackage) {
				continue
			}
			step := RuleStep{Rule: rule.Path().String(), Value: jsonOf(plugLocals(ev, ruleValue(rule)))}
			if rule.Location != nil {
				step.File, step.Row = rule.Location.File, rule.Location.Row
			}
			for _, a := range rule.Head.Args {
				step.Args = append(step.Args, jsonOf(plugLocals(ev, a)))
			}
			key := fmt.Sprint(step.File, step.Row, step.Args, step.Value)
			if seen[key] {
				continue
			}
			seen[key] = true
			if rule.Path().Equal(teammatePath) {
				ex.Precedence.Rule, ex.Precedence.File, ex.Precedence.Row = step.Rule, step.File, step.Row
				ex.Precedence.Branch = s.branchOf(rule)
			}
			if len(ex.Rules) == maxExplainRules {
				ex.Truncated = true
				continue
			}
			ex.Rules = append(ex.Rules, step)
		}
	}
	ex.Mattered, err = s.mattered(ctx, in, d)
	if err != nil {
		return nil, err
	}
	return ex, nil
}

// ruleValue is what a rule produces: its value, or for a multi-value
// rule (`p contains x`) its key.
func ruleValue(r *ast.Rule) *ast.Term {
	if r.Head.RuleKind() == ast.MultiValue && r.Head.Key != nil {
		return r.Head.Key
	}
	if r.Head.Value != nil {
		return r.Head.Value
	}
	return ast.BooleanTerm(true)
}

// branchOf is the position of rule in its else chain (0 for the rule).
func (s *Set) branchOf(rule *ast.Rule) int {
	for _, top := range s.compiler.GetRulesExact(rule.Path()) {
		i := 0
		for r := top; r != nil; r = r.Else {
			if r == rule || (r.Location != nil && rule.Location != nil && r.Location.Equal(rule.Location)) {
				return i
			}
			i++
		}
	}
	return 0
}

// plugLocals replaces the variables of t by their values at ev.
func plugLocals(ev *topdown.Event, t *ast.Term) *ast.Term {
	t = ev.Plug(t)
	if ev.Locals == nil || t.IsGround() {
		return t
	}
	out, err := ast.TransformVars(t.Copy(), func(v ast.Var) (ast.Value, error) {
		if x := ev.Locals.Get(v); x != nil {
			return x, nil
		}
		return v, nil
	})
	if err != nil {
		return t
	}
	switch x := out.(type) {
	case *ast.Term:
		return x
	case ast.Value:
		return ast.NewTerm(x)
	}
	return t
}

func jsonOf(t *ast.Term) any {
	if t == nil {
		return nil
	}
	v, err := ast.JSON(t.Value)
	if err != nil {
		return t.String() // not ground: show it as Rego
	}
	return v
}

// mattered decides in without each group and without each attribute the
// policy can read, and lists those whose absence changes the decision.
func (s *Set) mattered(ctx context.Context, in TeammateInput, d Decision) ([]Factor, error) {
	out := []Factor{}
	differs := func(alt TeammateInput) (string, bool, error) {
		ad, err := s.Teammate(ctx, alt)
		if err != nil {
			if ctx.Err() != nil {
				return "", false, err
			}
			return "error: " + stripRevision(err.Error(), s.revision), true, nil
		}
		if ad.Excluded == d.Excluded && ad.Access == d.Access && ad.Role == d.Role {
			return "", false, nil
		}
		return ad.Summary(), true, nil
	}
	for i, g := range in.Groups {
		alt := in
		alt.Groups = slices.Delete(slices.Clone(in.Groups), i, i+1)
		without, ok, err := differs(alt)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, Factor{Kind: "group", Name: g.DisplayName, Value: g.ID, Without: without})
		}
	}
	for _, path := range s.userPaths(in.User) {
		alt := in
		alt.User = withoutPath(in.User, path)
		without, ok, err := differs(alt)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, Factor{Kind: "attribute", Name: strings.Join(path, "."), Value: valueAt(in.User, path), Without: without})
		}
	}
	return out, nil
}

// userPaths are the paths of the user the policy can read and the user
// has: the projection's leaves below input.user, or every top-level
// attribute when the policy reads the user whole.
func (s *Set) userPaths(user map[string]any) [][]string {
	p := s.fast.proj
	if !p.whole {
		p = p.children["user"]
	}
	var out [][]string
	var walk func(n *projection, m map[string]any, prefix []string)
	walk = func(n *projection, m map[string]any, prefix []string) {
		if n == nil {
			return
		}
		if n.whole {
			for _, k := range slices.Sorted(maps.Keys(m)) {
				out = append(out, append(slices.Clone(prefix), k))
			}
			return
		}
		for _, k := range slices.Sorted(maps.Keys(n.children)) {
			v, ok := m[k]
			if !ok {
				continue
			}
			c := n.children[k]
			if sub, isMap := v.(map[string]any); isMap && !c.whole {
				walk(c, sub, append(slices.Clone(prefix), k))
				continue
			}
			out = append(out, append(slices.Clone(prefix), k))
		}
	}
	walk(p, user, nil)
	return out
}

// withoutPath returns a copy of m without the value at path (copying only
// the maps along it).
func withoutPath(m map[string]any, path []string) map[string]any {
	c := maps.Clone(m)
	if len(path) == 1 {
		delete(c, path[0])
		return c
	}
	if sub, ok := c[path[0]].(map[string]any); ok {
		c[path[0]] = withoutPath(sub, path[1:])
	}
	return c
}

func valueAt(m map[string]any, path []string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// Summary is the decision in a few words: "excluded", "no access" or
// "role admin".
func (d Decision) Summary() string {
	switch {
	case d.Excluded:
		return "excluded"
	case !d.Access:
		return "no access"
	case d.Role == "":
		return "access, no role"
	default:
		return "role " + d.Role
	}
}
