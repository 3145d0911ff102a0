package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/scimd/scimd/scim/schema"
)

// enterpriseUserURN is the schema URN of the SCIM enterprise user
// extension: its attributes are under this key of the user input.
const enterpriseUserURN = schema.EnterpriseUserURN

// Probe limits: how many string constants of a policy are tried as group
// names and attribute values, and how many problems are reported.
const (
	maxProbeStrings = 2000
	maxProblems     = 20
	// probeTimeout bounds one probe: a policy that takes longer to decide
	// one teammate is refused rather than let it stall activation.
	probeTimeout = 2 * time.Second
)

// checkRules checks statically that the decision rules exist and are rules,
// not functions.
func checkRules(c *ast.Compiler) []Problem {
	var ps []Problem
	for _, q := range []string{QueryGroup, QueryTeammate} {
		ref := ast.MustParseRef(q)
		if len(c.GetRules(ref)) == 0 {
			ps = append(ps, Problem{Message: fmt.Sprintf("%s is not defined: package scimd must define the %s rule", q, ref[len(ref)-1].Value.(ast.String))})
		}
	}
	for _, q := range []string{QueryRoles, QueryGroup, QueryTeammate} {
		for _, r := range c.GetRulesExact(ast.MustParseRef(q)) {
			if len(r.Head.Args) > 0 {
				ps = append(ps, locProblem(r.Location, fmt.Sprintf("%s must be a rule, not a function", q)))
			}
		}
	}
	return ps
}

// checkContract checks data.scimd.roles, then probes the decision queries
// with every string constant of the policy as a group name and as user
// attributes, so that a mapping to a misspelt role is refused before it can
// decide anything. It is a heuristic: the policy's tests remain the
// authority on behaviour.
func (s *Set) checkContract(ctx context.Context, c *ast.Compiler, roles *ast.Term) []Problem {
	if ps := checkRoles(c, roles); len(ps) > 0 {
		return ps
	}
	strs := stringConstants(c)
	p := prober{set: s, compiler: c, seen: map[string]bool{}}

	// Everyone must get a decision, even with no groups.
	p.teammate(ctx, TeammateInput{User: map[string]any{"id": "contract-probe", "userName": "contract-probe", "active": true}}, "a user in no group")

	all := make([]Group, 0, len(strs))
	for _, str := range strs {
		if p.full() {
			break
		}
		g := Group{ID: str, ExternalID: str, DisplayName: str}
		all = append(all, g)
		gctx, cancel := context.WithTimeout(ctx, probeTimeout)
		if _, _, err := s.Group(gctx, g); err != nil {
			p.addTimed(ctx, gctx, err, fmt.Sprintf("group %q", str))
		}
		cancel()
		p.teammate(ctx, TeammateInput{
			User: map[string]any{
				"id": "contract-probe", "userName": str, "active": true, "title": str,
				"emails":          []any{map[string]any{"value": str, "primary": true}},
				enterpriseUserURN: map[string]any{"department": str, "division": str, "organization": str, "costCenter": str},
			},
			Groups: []Group{g},
		}, fmt.Sprintf("a user in group %q", str))
	}
	p.teammate(ctx, TeammateInput{
		User:   map[string]any{"id": "contract-probe", "userName": "contract-probe", "active": true},
		Groups: all,
	}, "a user in every group the policy names")
	return p.problems
}

func checkRoles(c *ast.Compiler, roles *ast.Term) []Problem {
	var loc *ast.Location
	if rules := c.GetRulesExact(ast.MustParseRef(QueryRoles)); len(rules) > 0 {
		loc = rules[0].Location
	}
	if roles == nil {
		return []Problem{{Message: QueryRoles + ` is undefined: define roles := ["admin", …], highest precedence first`}}
	}
	list, ok := stringArray(roles)
	switch {
	case !ok:
		return []Problem{locProblem(loc, fmt.Sprintf("%s must be an array of strings, got %v", QueryRoles, roles))}
	case len(list) == 0:
		return []Problem{locProblem(loc, QueryRoles+" must not be empty")}
	}
	seen := map[string]bool{}
	for _, r := range list {
		switch {
		case r == "":
			return []Problem{locProblem(loc, QueryRoles+" must not contain an empty role")}
		case seen[r]:
			return []Problem{locProblem(loc, fmt.Sprintf("%s lists %q twice", QueryRoles, r))}
		}
		seen[r] = true
	}
	return nil
}

type prober struct {
	set      *Set
	compiler *ast.Compiler
	problems []Problem
	seen     map[string]bool
	slow     bool // a probe took longer than probeTimeout: stop probing
}

func (p *prober) full() bool { return p.slow || len(p.problems) >= maxProblems }

func (p *prober) teammate(ctx context.Context, in TeammateInput, what string) {
	if p.full() {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if _, err := p.set.Teammate(pctx, in); err != nil {
		p.addTimed(ctx, pctx, err, what)
	}
}

// addTimed records a probe failure, saying so when the probe ran out of
// time (and not the whole check).
func (p *prober) addTimed(ctx, probeCtx context.Context, err error, what string) {
	if probeCtx.Err() != nil && ctx.Err() == nil {
		p.slow = true
		p.problems = append(p.problems, Problem{Message: fmt.Sprintf(
			"deciding %s took longer than %s: a policy must decide each input quickly (look for loops over large ranges or collections)", what, probeTimeout)})
		return
	}
	if errors.Is(err, ErrPolicyMemory) {
		p.slow = true
		p.problems = append(p.problems, Problem{Message: fmt.Sprintf(
			"deciding %s needed more than %d MiB of memory: a policy must decide each input quickly and in little memory (look for loops over large ranges or collections)", what, wasmMaxPages/16)})
		return
	}
	p.add(err, what)
}

// add records a probe failure once per distinct cause, located at the
// literal of an unknown role when there is one.
func (p *prober) add(err error, what string) {
	msg := err.Error()
	if p.seen[msg] {
		return
	}
	p.seen[msg] = true
	pr := Problem{Message: stripRevision(msg, p.set.revision)}
	if what != "" {
		pr.Message += " (for " + what + ")"
	}
	var unknown *UnknownRoleError
	if errors.As(err, &unknown) {
		if loc := p.findUnknownRole(unknown.Role); loc != nil {
			pr.File, pr.Row, pr.Col = loc.File, loc.Row, loc.Col
		}
	}
	p.problems = append(p.problems, pr)
}

// findUnknownRole locates the string literal role, the unknown role a
// decision named, in the policy's modules: a value of an object (a mapping
// table, or a {"role": …} answer) first, any other occurrence after. It is
// nil when the policy computes the name (no literal holds it): no location
// is better than a wrong one.
func (p *prober) findUnknownRole(role string) *ast.Location {
	var inObject, anywhere *ast.Location
	want := ast.String(role)
	for _, name := range sortedKeys(p.compiler.Modules) {
		ast.WalkTerms(p.compiler.Modules[name], func(t *ast.Term) bool {
			if inObject != nil {
				return true
			}
			switch v := t.Value.(type) {
			case ast.Object:
				v.Foreach(func(_, val *ast.Term) {
					if inObject == nil && val.Value.Compare(want) == 0 {
						inObject = val.Location
					}
				})
			case ast.String:
				if anywhere == nil && v == want {
					anywhere = t.Location
				}
			}
			return false
		})
	}
	if inObject != nil {
		return inObject
	}
	return anywhere
}

// stringConstants returns the distinct string literals of the compiled
// production modules, sorted, at most maxProbeStrings.
func stringConstants(c *ast.Compiler) []string {
	seen := map[string]bool{}
	for _, m := range c.Modules {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if s, ok := t.Value.(ast.String); ok && len(seen) < maxProbeStrings {
				seen[string(s)] = true
			}
			return false
		})
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func locProblem(loc *ast.Location, msg string) Problem {
	p := Problem{Message: msg}
	if loc != nil {
		p.File, p.Row, p.Col = loc.File, loc.Row, loc.Col
	}
	return p
}

func stripRevision(msg, rev string) string {
	prefix := "policy " + rev + ": "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return msg[len(prefix):]
	}
	return msg
}
