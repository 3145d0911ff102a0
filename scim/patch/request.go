package patch

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"github.com/scimd/scimd/scim/compat"
	"github.com/scimd/scimd/scim/schema"
)

// Operation names, as normalised by ParseRequest.
const (
	OpAdd     = "add"
	OpReplace = "replace"
	OpRemove  = "remove"
)

// Operation is one normalised PATCH operation.
type Operation struct {
	// Op is "add", "replace" or "remove" (always lower case).
	Op string
	// Path is the target path, trimmed; "" when the operation has none.
	Path string
	// Value is the decoded value (numbers as json.Number); nil when absent or
	// JSON null.
	Value any
}

// ParseRequest decodes a PatchOp request body into its operations.
//
// It tolerates an "Operations" key in any case, op values in any case, an
// empty Operations array (no operations, no error), a missing "schemas"
// member or extra schema URNs, and unknown members in an operation (such as
// the "name" Microsoft's test collection adds). It rejects invalid JSON,
// unknown ops, a remove without a path (noTarget, RFC 7644 §3.5.2.2) and an
// add or replace without a value. Paths are checked for syntax here; value
// filters inside them are compiled when the operations are applied.
//
// Every error is an *Error.
func ParseRequest(body []byte) ([]Operation, error) { return ParseRequestWith(body, nil) }

// ParseRequestWith is ParseRequest under a compatibility profile: op names
// other than lower-case add, replace and remove need the
// compat.PatchOpNameCase rule (a nil tracker allows every rule).
func ParseRequestWith(body []byte, tol *compat.Tracker) ([]Operation, error) {
	var top map[string]json.RawMessage
	if err := decodeJSON(body, &top); err != nil {
		return nil, err
	}
	if top == nil {
		return nil, errorf(InvalidSyntax, "the request body must be a JSON object")
	}
	if !hasPatchOpSchema(top) && !tol.Allow(compat.PatchLenientRequest) {
		return nil, errorf(InvalidSyntax, "the request's \"schemas\" must list %s (RFC 7644 §3.5.2)", schema.PatchOpURN)
	}
	rawOps, found, err := memberFold(top, "Operations")
	if err != nil {
		return nil, err
	}
	if !found || isJSONNull(rawOps) {
		return nil, errorf(InvalidSyntax, "the request has no \"Operations\" array")
	}
	var list []json.RawMessage
	if err := json.Unmarshal(rawOps, &list); err != nil {
		return nil, errorf(InvalidSyntax, "\"Operations\" must be an array of operations")
	}
	// Tolerance (Microsoft SCIM validator, scimmy#59, SCIMReferenceCode#112):
	// an empty Operations array is a successful no-op rather than a 400.
	if len(list) == 0 && !tol.Allow(compat.PatchLenientRequest) {
		return nil, errorf(InvalidSyntax, "\"Operations\" must hold one or more operations (RFC 7644 §3.5.2)")
	}
	ops := make([]Operation, 0, len(list))
	for i, raw := range list {
		op, err := parseOperation(i, raw, tol)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func parseOperation(i int, raw json.RawMessage, tol *compat.Tracker) (Operation, *Error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Operation{}, errorf(InvalidSyntax, "operation %d must be a JSON object", i)
	}
	var op Operation
	rawOp, found, err := memberFold(m, "op")
	if err != nil {
		return Operation{}, err
	}
	if !found {
		return Operation{}, errorf(InvalidSyntax, "operation %d has no \"op\"", i)
	}
	var name string
	if err := json.Unmarshal(rawOp, &name); err != nil {
		return Operation{}, errorf(InvalidSyntax, "operation %d: \"op\" must be a string", i)
	}
	op.Op = normaliseOpName(name)
	if op.Op != name && !tol.Allow(compat.PatchOpNameCase) {
		return Operation{}, errorf(InvalidSyntax, "operation %d: op %q must be add, replace or remove in lower case (RFC 7644 §3.5.2)", i, truncate(name))
	}
	switch op.Op {
	case OpAdd, OpReplace, OpRemove:
	default:
		return Operation{}, errorf(InvalidSyntax, "operation %d: unknown op %q (want add, replace or remove)", i, truncate(name))
	}

	rawPath, found, err := memberFold(m, "path")
	if err != nil {
		return Operation{}, err
	}
	if found && !isJSONNull(rawPath) {
		var p string
		if err := json.Unmarshal(rawPath, &p); err != nil {
			return Operation{}, errorf(InvalidPath, "operation %d: \"path\" must be a string", i)
		}
		// Tolerance: an empty path is treated as no path (a path-less
		// add/replace); several hand-written clients send "path": "".
		op.Path = strings.TrimSpace(p)
		if op.Path == "" && !tol.Allow(compat.PatchLenientRequest) {
			return Operation{}, errorf(InvalidPath, "operation %d: \"path\" must not be empty: leave it out for a path-less %s", i, op.Op)
		}
	}
	if op.Path != "" {
		if _, err := parsePath(op.Path); err != nil {
			return Operation{}, err
		}
	}

	rawValue, hasValue, err := memberFold(m, "value")
	if err != nil {
		return Operation{}, err
	}
	if hasValue {
		if err := decodeJSON(rawValue, &op.Value); err != nil {
			return Operation{}, err
		}
	}

	switch op.Op {
	case OpRemove:
		if op.Path == "" {
			return Operation{}, errorf(NoTarget, "operation %d: remove requires a path", i)
		}
	default:
		if !hasValue {
			return Operation{}, errorf(InvalidSyntax, "operation %d: %s requires a value", i, op.Op)
		}
	}
	return op, nil
}

// normaliseOpName lower-cases an op name.
//
// Tolerance (Entra ID sends "Add", "Replace", "Remove"; Microsoft's tutorial
// asks for case-insensitive matching of structural elements, in particular
// PATCH op; MicrosoftDocs/azure-docs#42220).
func normaliseOpName(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// memberFold finds a JSON object member by case-insensitive name.
//
// Tolerance ("operations" in lower case from various clients; RFC 7643 §2.1
// makes attribute names case-insensitive). Two members whose names differ
// only in case are ambiguous and rejected.
func memberFold(m map[string]json.RawMessage, name string) (json.RawMessage, bool, *Error) {
	if v, ok := m[name]; ok {
		for k := range m {
			if k != name && strings.EqualFold(k, name) {
				return nil, false, errorf(InvalidSyntax, "duplicate member %q", name)
			}
		}
		return v, true, nil
	}
	var (
		val   json.RawMessage
		found bool
	)
	for k, v := range m {
		if strings.EqualFold(k, name) {
			if found {
				return nil, false, errorf(InvalidSyntax, "duplicate member %q", name)
			}
			val, found = v, true
		}
	}
	return val, found, nil
}

// decodeJSON decodes exactly one JSON value with numbers kept as json.Number.
func decodeJSON(data []byte, v any) *Error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return errorf(InvalidSyntax, "invalid JSON: %s", truncate(err.Error()))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(InvalidSyntax, "invalid JSON: unexpected data after the top-level value")
	}
	return nil
}

func isJSONNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// truncate shortens client-supplied text quoted in error details.
func truncate(s string) string {
	const max = 100
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// hasPatchOpSchema reports whether the body's "schemas" lists the PatchOp
// message URN.
func hasPatchOpSchema(top map[string]json.RawMessage) bool {
	raw, found, err := memberFold(top, "schemas")
	if err != nil || !found {
		return false
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		return false
	}
	for _, s := range list {
		if strings.EqualFold(s, schema.PatchOpURN) {
			return true
		}
	}
	return false
}
