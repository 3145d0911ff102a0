package patch

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/scimd/scimd/scim/compat"
	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/values"
)

// normScalar checks and converts a value for a non-complex attribute. It
// returns nil for null and for the empty string (both mean "unassigned").
func normScalar(a *schema.Attribute, v any, where string, tol *compat.Tracker) (any, *Error) {
	out, err := values.Scalar(a, v, where, tol)
	if err != nil {
		return nil, errorf(InvalidValue, "%s", err.Detail)
	}
	return out, nil
}

// coerceStringBoolean converts "True"/"False" (any case, surrounding blanks
// ignored) to a boolean.
//
// Tolerance (Entra ID without the aadOptscim062020 flag sends
// {"op":"Replace","path":"active","value":"False"}, and "primary":"True" in
// roles; Entra known-issues doc, bytebase#19073, rancher#54025).
func coerceStringBoolean(s string) (bool, bool) {
	switch s = strings.TrimSpace(s); {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

// stringifyScalar turns a number or boolean sent for a string attribute into
// its JSON text.
//
// Tolerance (OneLogin's admin-edited JSON templates and Entra attribute
// mappings send employeeNumber and similar identifiers as numbers; the value
// is kept, as text, rather than refused).
func stringifyScalar(v any) string {
	switch x := v.(type) {
	case json.Number:
		return string(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// normComplex checks and converts a value for a complex attribute (one
// element of it, when multi-valued). Sub-attribute names are written in the
// schema's casing; unknown and read-only sub-attributes are dropped. A
// sub-attribute explicitly set to null or "" is kept as a nil entry, so that
// a merge can clear it. The result is nil when v itself is null or "".
func normComplex(a *schema.Attribute, v any, where string, tol *compat.Tracker) (map[string]any, *Error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			sa := a.Sub(k)
			if sa == nil || sa.Mutability == "readOnly" || sa.Type == schema.Complex {
				// Lenient: unknown sub-attributes (OneLogin's
				// manager.managerId, Entra's "$ref": null on members)
				// and read-only ones (manager.displayName) are ignored.
				continue
			}
			nv, err := normScalar(sa, x[k], where+"."+sa.Name, tol)
			if err != nil {
				return nil, err
			}
			out[sa.Name] = nv
		}
		return out, nil
	case string, json.Number:
		return wrapBareValue(a, x, where, tol)
	}
	return nil, errorf(InvalidValue, "%s must be an object", where)
}

// wrapBareValue turns a bare string (or number) given for a complex attribute
// into {"value": string}.
//
// Tolerance (Entra sends the enterprise manager as a bare id,
// {"op":"Add","path":"urn:…:enterprise:2.0:User:manager","value":"271"};
// SCIM-SDK issue #541, apache/directory-scimple#1242. Microsoft's test
// collection adds group members as bare id strings).
func wrapBareValue(a *schema.Attribute, v any, where string, tol *compat.Tracker) (map[string]any, *Error) {
	rule := compat.ManagerAsString
	if strings.EqualFold(a.Name, "members") {
		rule = compat.BareMemberIDs
	}
	sub := a.Sub("value")
	if sub == nil || !tol.Allow(rule) {
		return nil, errorf(InvalidValue, "%s must be an object", where)
	}
	s, _ := scalarString(v)
	if s == "" {
		return nil, nil
	}
	return map[string]any{sub.Name: s}, nil
}

// normElements converts a value for a multi-valued attribute into its list of
// elements. Empty elements are dropped, and so are the nil entries of complex
// elements.
func normElements(a *schema.Attribute, v any, where string, tol *compat.Tracker) ([]any, *Error) {
	var in []any
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		in = x
	default:
		// Tolerance: a single value where an array is expected is taken
		// as a one-element array (Microsoft's test collection adds a
		// member as "value": "string id 1"; Entra sends single objects).
		if !tol.Allow(compat.SingleValueForMultiValued) {
			return nil, errorf(InvalidValue, "%s must be an array", where)
		}
		in = []any{x}
	}
	out := make([]any, 0, len(in))
	for i, e := range in {
		el, err := normElement(a, e, where+"["+strconv.Itoa(i)+"]", tol)
		if err != nil {
			return nil, err
		}
		if el != nil {
			out = append(out, el)
		}
	}
	return out, nil
}

// normElement converts one element of a multi-valued attribute; nil means
// "nothing" (an empty element).
func normElement(a *schema.Attribute, v any, where string, tol *compat.Tracker) (any, *Error) {
	if a.Type != schema.Complex {
		return normScalar(a, v, where, tol)
	}
	m, err := normComplex(a, v, where, tol)
	if err != nil {
		return nil, err
	}
	for k, sv := range m {
		if sv == nil {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// unwrapSingleton returns the only element of a one-element array, and v
// otherwise.
//
// Tolerance (Entra and SCIM-SDK users report singular attributes, and single
// elements of value filters, sent as one-element arrays).
func unwrapSingleton(v any) any {
	if l, ok := v.([]any); ok && len(l) == 1 {
		return l[0]
	}
	return v
}

// equalScalar compares two simple values, ignoring case unless the attribute
// is caseExact.
func equalScalar(a *schema.Attribute, x, y any) bool {
	if a != nil && !a.CaseExact {
		if xs, ok := x.(string); ok {
			ys, ok := y.(string)
			return ok && strings.EqualFold(xs, ys)
		}
	}
	return equalValue(x, y)
}

// contains reports whether elem is already present among list: for complex
// elements, whether some existing element has every sub-attribute elem has,
// with equal values.
//
// Tolerance (idempotent adds: Entra re-sends unchanged values on every cycle,
// getsentry/sentry-docs#16258; a duplicate add must be a no-op, not an error,
// fleetdm/fleet#30086).
func contains(a *schema.Attribute, list []any, elem any) bool {
	for _, x := range list {
		if matchesElem(a, x, elem) {
			return true
		}
	}
	return false
}

// matchesElem reports whether existing element x has all of elem's content.
func matchesElem(a *schema.Attribute, x, elem any) bool {
	em, ok := elem.(map[string]any)
	if !ok || a.Type != schema.Complex {
		return equalScalar(a, x, elem)
	}
	xm, ok := x.(map[string]any)
	if !ok {
		return false
	}
	for k, ev := range em {
		_, xv, ok := lookupFold(xm, k)
		if !ok || !equalScalar(a.Sub(k), xv, ev) {
			return false
		}
	}
	return true
}
