package policy

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Decision is data.scimd.teammate for one teammate.
type Decision struct {
	// Excluded teammates must not be changed by provisioning at all.
	Excluded bool `json:"excluded"`
	// Access tells whether the teammate should have access.
	Access bool `json:"access"`
	// Role is one of Set.Roles, or "" for none (null in the policy).
	Role string `json:"role"`
	// Reasons explain the decision in words, e.g.
	// `member of group "Intercom Admins" → admin`.
	Reasons []string `json:"reasons"`
	// Revision is the policy revision that decided.
	Revision string `json:"revision"`
	// DecisionID is unique per decision, for audit events.
	DecisionID string `json:"decisionId"`
}

// Group evaluates data.scimd.group for g. It returns the role the group
// grants and active=true, or active=false when the policy does not map the
// group (undefined). A role outside Roles is an error wrapping
// ErrUnknownRole.
func (s *Set) Group(ctx context.Context, g Group) (role string, active bool, err error) {
	rs, err := s.group.Eval(ctx, rego.EvalParsedInput(GroupInputValue(g)))
	if err != nil {
		return "", false, fmt.Errorf("policy %s: evaluate %s for group %q: %w", s.revision, QueryGroup, g.DisplayName, err)
	}
	if len(rs) == 0 {
		return "", false, nil
	}
	role, err = s.groupRole(rs[0].Expressions[0].Value.(*ast.Term))
	if err != nil {
		return "", false, fmt.Errorf("policy %s: %s for group %q: %w", s.revision, QueryGroup, g.DisplayName, err)
	}
	return role, true, nil
}

// DisplayNameWarning is the warning to show for a group that has an
// externalId but that the policy maps only through its displayName: asked
// again without the displayName, the policy no longer maps it, so a rename
// in the identity provider would unmap it (or map it to something else).
// It is "" when the group is not mapped, has no externalId, or keeps its
// mapping without its name. It works for any policy: it asks the policy
// rather than reading its tables.
func (s *Set) DisplayNameWarning(ctx context.Context, g Group) string {
	if g.ExternalID == "" {
		return ""
	}
	role, active, err := s.Group(ctx, g)
	if err != nil || !active {
		return ""
	}
	byID := g
	byID.DisplayName = ""
	idRole, idActive, err := s.Group(ctx, byID)
	if err != nil || (idActive && idRole == role) {
		return ""
	}
	return fmt.Sprintf("mapped by its display name %q although it has externalId %q: renaming it in the identity provider would change its role; key the mapping by the externalId", g.DisplayName, g.ExternalID)
}

func (s *Set) groupRole(t *ast.Term) (string, error) {
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return "", fmt.Errorf("%w: got %s, want an object {\"role\": …}", ErrBadDecision, ast.ValueName(t.Value))
	}
	rt := obj.Get(keyRole)
	if rt == nil {
		return "", fmt.Errorf("%w: no \"role\" in %v", ErrBadDecision, t)
	}
	role, ok := rt.Value.(ast.String)
	if !ok {
		return "", fmt.Errorf("%w: role is %s, want a string", ErrBadDecision, ast.ValueName(rt.Value))
	}
	if !s.HasRole(string(role)) {
		return "", &UnknownRoleError{Role: string(role), Roles: s.roles}
	}
	return string(role), nil
}

// Teammate evaluates data.scimd.teammate for one teammate. The returned
// Decision carries Revision and DecisionID even when err is not nil, so the
// caller can audit the failure; on error the caller leaves the teammate
// unchanged. A non-excluded decision naming a role outside Roles is an
// error wrapping ErrUnknownRole.
//
// OPA decides, through the revision's prepared fast path (see
// evaluator): the same decision as evaluating data.scimd.teammate on the
// whole input.
func (s *Set) Teammate(ctx context.Context, in TeammateInput) (Decision, error) {
	return s.decideInput(ctx, in, Decision{Revision: s.revision, DecisionID: newDecisionID()})
}

// decideInput decides in into d: through the compiled policy from the
// projected input written as JSON when it decides, else from the
// projected input's AST value.
func (s *Set) decideInput(ctx context.Context, in TeammateInput, d Decision) (Decision, error) {
	if s.fast.wasm != nil {
		buf := jsonBufPool.Get().(*[]byte)
		defer jsonBufPool.Put(buf)
		b, err := in.appendProjectedJSON((*buf)[:0], s.fast.proj)
		*buf = b[:0]
		if err == nil {
			return s.decideJSON(ctx, b, d)
		}
	}
	input, err := in.projectedValue(s.fast.proj)
	if err != nil {
		return d, fmt.Errorf("policy %s: teammate input: %w", s.revision, err)
	}
	return s.decide(ctx, input, d)
}

// decide decides a projected input: from the memo when an equal input was
// decided before by this revision, else by OPA.
func (s *Set) decide(ctx context.Context, input ast.Value, d Decision) (Decision, error) {
	h := input.Hash()
	if md, ok := s.fast.memo.get(h, input); ok {
		md.Revision, md.DecisionID = d.Revision, d.DecisionID
		return md, nil
	}
	t, fields, err := s.fast.eval(ctx, input)
	if err := s.readAnswer(t, fields, err, &d); err != nil {
		return d, err
	}
	s.fast.memo.put(h, input, d)
	return d, nil
}

// decideJSON decides a projected input written as JSON (keys sorted) with
// the compiled policy, or from the memo.
func (s *Set) decideJSON(ctx context.Context, input []byte, d Decision) (Decision, error) {
	h := s.fast.memo.hashJSON(input)
	if md, ok := s.fast.memo.getJSON(h, input); ok {
		md.Revision, md.DecisionID = d.Revision, d.DecisionID
		return md, nil
	}
	r, err := s.fast.wasm.eval(ctx, input)
	if err == nil && r.setReasons {
		err = fmt.Errorf("%w: reasons must be an array of strings", ErrBadDecision)
	}
	if err := s.readAnswer(r.term, r.fields, err, &d); err != nil {
		return d, err
	}
	s.fast.memo.putJSON(h, input, d)
	return d, nil
}

// readAnswer fills d from an evaluation's answer: its error, the
// decision's fields when read directly, or its value (nil: undefined).
func (s *Set) readAnswer(t *ast.Term, fields *decisionFields, err error, d *Decision) error {
	if err != nil {
		return fmt.Errorf("policy %s: evaluate %s: %w", s.revision, QueryTeammate, err)
	}
	switch {
	case fields != nil:
		d.Excluded, d.Access, d.Role, d.Reasons = fields.excluded, fields.access, fields.role, fields.reasons
		err = s.checkRole(d)
	case t == nil:
		return fmt.Errorf("policy %s: %w", s.revision, ErrNoDecision)
	default:
		err = s.readDecision(t, d)
	}
	if err != nil {
		return fmt.Errorf("policy %s: %s: %w", s.revision, QueryTeammate, err)
	}
	return nil
}

// decisionOf reads the decision from a result set of data.scimd.teammate.
func (s *Set) decisionOf(rs rego.ResultSet, d *Decision) error {
	if len(rs) == 0 {
		return fmt.Errorf("policy %s: %w", s.revision, ErrNoDecision)
	}
	if err := s.readDecision(rs[0].Expressions[0].Value.(*ast.Term), d); err != nil {
		return fmt.Errorf("policy %s: %s: %w", s.revision, QueryTeammate, err)
	}
	return nil
}

// plainTeammate evaluates data.scimd.teammate on the whole input with the
// query as written, without any of the fast path: the reference the fast
// path is tested against, and what explanations trace.
func (s *Set) plainTeammate(ctx context.Context, input ast.Value, opts ...rego.EvalOption) (Decision, error) {
	d := Decision{Revision: s.revision, DecisionID: newDecisionID()}
	rs, err := s.teammate.Eval(ctx, append([]rego.EvalOption{rego.EvalParsedInput(input)}, opts...)...)
	if err != nil {
		return d, fmt.Errorf("policy %s: evaluate %s: %w", s.revision, QueryTeammate, err)
	}
	return d, s.decisionOf(rs, &d)
}

// readDecision fills d from the policy's answer, checking the contract
// {"excluded": bool, "access": bool, "role": string|null, "reasons": [string…]}.
func (s *Set) readDecision(t *ast.Term, d *Decision) error {
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return fmt.Errorf("%w: got %s, want an object", ErrBadDecision, ast.ValueName(t.Value))
	}
	var err error
	if d.Excluded, err = boolField(obj, keyExcluded); err != nil {
		return err
	}
	if d.Access, err = boolField(obj, keyAccess); err != nil {
		return err
	}
	switch r := obj.Get(keyRole); {
	case r == nil:
		return fmt.Errorf("%w: no \"role\" (use null for none)", ErrBadDecision)
	case r.Value.Compare(ast.Null{}) == 0:
		d.Role = ""
	default:
		role, ok := r.Value.(ast.String)
		if !ok {
			return fmt.Errorf("%w: role is %s, want a string or null", ErrBadDecision, ast.ValueName(r.Value))
		}
		d.Role = string(role)
	}
	rt := obj.Get(keyReasons)
	if rt == nil {
		return fmt.Errorf("%w: no \"reasons\"", ErrBadDecision)
	}
	reasons, ok := stringArray(rt)
	if !ok {
		return fmt.Errorf("%w: reasons must be an array of strings", ErrBadDecision)
	}
	d.Reasons = reasons
	return s.checkRole(d)
}

// checkRole refuses a role granted that is not one of data.scimd.roles.
func (s *Set) checkRole(d *Decision) error {
	if !d.Excluded && d.Role != "" && !s.HasRole(d.Role) {
		return &UnknownRoleError{Role: d.Role, Roles: s.roles}
	}
	return nil
}

func boolField(obj ast.Object, key *ast.Term) (bool, error) {
	t := obj.Get(key)
	if t == nil {
		return false, fmt.Errorf("%w: no %v", ErrBadDecision, key)
	}
	b, ok := t.Value.(ast.Boolean)
	if !ok {
		return false, fmt.Errorf("%w: %v is %s, want a boolean", ErrBadDecision, key, ast.ValueName(t.Value))
	}
	return bool(b), nil
}
