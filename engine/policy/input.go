package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// Group is a SCIM group as the policy sees it. It is serialised as
// {"id", "externalId", "displayName"}; absent values are empty strings.
type Group struct {
	ID          string `json:"id"`
	ExternalID  string `json:"externalId"`
	DisplayName string `json:"displayName"`
}

// Current is a teammate's role and access before the decision. An empty
// Role is passed to the policy as null.
type Current struct {
	Role   string `json:"role"`
	Access bool   `json:"access"`
}

// TeammateInput is everything data.scimd.teammate may look at.
type TeammateInput struct {
	// User is the full SCIM User resource as decoded JSON: core attributes
	// plus the enterprise extension under its schema URN.
	User map[string]any
	// Groups are the groups the user is a member of.
	Groups []Group
	// Current is the teammate's role and access now.
	Current Current
}

// maxInputDepth bounds nesting in user attributes (and catches cycles).
const maxInputDepth = 64

// Input keys, built once; terms are never mutated after construction.
var (
	keyGroup       = ast.StringTerm("group")
	keyGroups      = ast.StringTerm("groups")
	keyUser        = ast.StringTerm("user")
	keyCurrent     = ast.StringTerm("current")
	keyID          = ast.StringTerm("id")
	keyExternalID  = ast.StringTerm("externalId")
	keyDisplayName = ast.StringTerm("displayName")
	keyRole        = ast.StringTerm("role")
	keyAccess      = ast.StringTerm("access")
	keyExcluded    = ast.StringTerm("excluded")
	keyReasons     = ast.StringTerm("reasons")
)

func (g Group) term() *ast.Term {
	return ast.ObjectTerm(
		[2]*ast.Term{keyID, ast.StringTerm(g.ID)},
		[2]*ast.Term{keyExternalID, ast.StringTerm(g.ExternalID)},
		[2]*ast.Term{keyDisplayName, ast.StringTerm(g.DisplayName)},
	)
}

// GroupInputValue builds the input of data.scimd.group: {"group": G}.
func GroupInputValue(g Group) ast.Value {
	return ast.NewObject([2]*ast.Term{keyGroup, g.term()})
}

// Value builds the input of data.scimd.teammate directly as an AST value:
// {"user": U, "groups": [G…], "current": {"role": R|null, "access": A}}.
// It fails on values JSON cannot carry (NaN, ±Inf, cycles, channels…).
func (in TeammateInput) Value() (ast.Value, error) {
	user, err := toValue(in.User, 0)
	if err != nil {
		return nil, fmt.Errorf("user: %w", err)
	}
	groups := make([]*ast.Term, len(in.Groups))
	for i, g := range in.Groups {
		groups[i] = g.term()
	}
	role := ast.NullTerm()
	if in.Current.Role != "" {
		role = ast.StringTerm(in.Current.Role)
	}
	return ast.NewObject(
		[2]*ast.Term{keyUser, ast.NewTerm(user)},
		[2]*ast.Term{keyGroups, ast.ArrayTerm(groups...)},
		[2]*ast.Term{keyCurrent, ast.ObjectTerm(
			[2]*ast.Term{keyRole, role},
			[2]*ast.Term{keyAccess, ast.BooleanTerm(in.Current.Access)},
		)},
	), nil
}

// Map returns the input as plain Go values, the form `opa eval --input`
// takes. It is what Value builds, for logs and for comparison.
func (in TeammateInput) Map() map[string]any {
	groups := make([]any, len(in.Groups))
	for i, g := range in.Groups {
		groups[i] = map[string]any{"id": g.ID, "externalId": g.ExternalID, "displayName": g.DisplayName}
	}
	var role any
	if in.Current.Role != "" {
		role = in.Current.Role
	}
	user := any(in.User)
	if in.User == nil {
		user = nil
	}
	return map[string]any{
		"user":    user,
		"groups":  groups,
		"current": map[string]any{"role": role, "access": in.Current.Access},
	}
}

// toValue converts decoded JSON (and common Go scalars) to an AST value.
func toValue(x any, depth int) (ast.Value, error) {
	if depth > maxInputDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxInputDepth)
	}
	switch x := x.(type) {
	case nil:
		return ast.Null{}, nil
	case string:
		return ast.String(x), nil
	case bool:
		return ast.Boolean(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("number %v cannot be represented in JSON", x)
		}
		return ast.Number(strconv.FormatFloat(x, 'g', -1, 64)), nil
	case int:
		return ast.Number(strconv.Itoa(x)), nil
	case int64:
		return ast.Number(strconv.FormatInt(x, 10)), nil
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			return nil, fmt.Errorf("number %q: %w", string(x), err)
		}
		return ast.Number(x), nil
	case map[string]any:
		if x == nil {
			return ast.Null{}, nil
		}
		terms := util.NewPtrSlice[ast.Term](len(x) * 2)
		items := make([][2]*ast.Term, 0, len(x))
		i := 0
		for k, v := range x {
			val, err := toValue(v, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			terms[i].Value, terms[i+1].Value = ast.String(k), val
			items = append(items, [2]*ast.Term{terms[i], terms[i+1]})
			i += 2
		}
		return ast.NewObject(items...), nil
	case []any:
		if x == nil {
			return ast.Null{}, nil
		}
		terms := util.NewPtrSlice[ast.Term](len(x))
		for i, v := range x {
			val, err := toValue(v, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			terms[i].Value = val
		}
		return ast.NewArray(terms...), nil
	case []string:
		terms := util.NewPtrSlice[ast.Term](len(x))
		for i, v := range x {
			terms[i].Value = ast.String(v)
		}
		return ast.NewArray(terms...), nil
	case []map[string]any:
		terms := util.NewPtrSlice[ast.Term](len(x))
		for i, v := range x {
			val, err := toValue(v, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			terms[i].Value = val
		}
		return ast.NewArray(terms...), nil
	default:
		// Structs and other types: through JSON, as OPA does.
		b, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("encode %T: %w", x, err)
		}
		v, err := ast.ValueFromReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("decode %T: %w", x, err)
		}
		return v, nil
	}
}

// projectedValue is Value restricted to projection p: only what the
// policy can read is converted.
func (in TeammateInput) projectedValue(p *projection) (ast.Value, error) {
	if p.whole {
		return in.Value()
	}
	items := make([][2]*ast.Term, 0, 3)
	if c := p.children["user"]; c != nil {
		user, err := toProjectedValue(in.User, c, 0)
		if err != nil {
			return nil, fmt.Errorf("user: %w", err)
		}
		items = append(items, [2]*ast.Term{keyUser, ast.NewTerm(user)})
	}
	if c := p.children["groups"]; c != nil {
		groups := make([]*ast.Term, len(in.Groups))
		for i, g := range in.Groups {
			groups[i] = ast.NewTerm(projectValue(g.term().Value, c))
		}
		items = append(items, [2]*ast.Term{keyGroups, ast.ArrayTerm(groups...)})
	}
	if c := p.children["current"]; c != nil {
		role := ast.NullTerm()
		if in.Current.Role != "" {
			role = ast.StringTerm(in.Current.Role)
		}
		cur := ast.NewObject([2]*ast.Term{keyRole, role}, [2]*ast.Term{keyAccess, ast.BooleanTerm(in.Current.Access)})
		items = append(items, [2]*ast.Term{keyCurrent, ast.NewTerm(projectValue(cur, c))})
	}
	return ast.NewObject(items...), nil
}

// toProjectedValue is toValue restricted to projection p.
func toProjectedValue(x any, p *projection, depth int) (ast.Value, error) {
	if p.whole {
		return toValue(x, depth)
	}
	m, ok := x.(map[string]any)
	if !ok || m == nil {
		// Not an object: no constant key reads anything from it, so it is
		// kept as it is (and decides as it would whole).
		return toValue(x, depth)
	}
	if depth > maxInputDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxInputDepth)
	}
	items := make([][2]*ast.Term, 0, len(p.children))
	for k, c := range p.children {
		v, ok := m[k]
		if !ok {
			continue
		}
		val, err := toProjectedValue(v, c, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		items = append(items, [2]*ast.Term{ast.StringTerm(k), ast.NewTerm(val)})
	}
	return ast.NewObject(items...), nil
}

// projectValue restricts an AST value to projection p.
func projectValue(v ast.Value, p *projection) ast.Value {
	if p.whole {
		return v
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return v
	}
	items := make([][2]*ast.Term, 0, len(p.children))
	for k, c := range p.children {
		key := ast.StringTerm(k)
		if t := obj.Get(key); t != nil {
			items = append(items, [2]*ast.Term{key, ast.NewTerm(projectValue(t.Value, c))})
		}
	}
	return ast.NewObject(items...)
}
