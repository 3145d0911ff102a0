// Package values holds the one table of rules by which scimd reads a
// scalar attribute value a client sent, so that a POST, a PUT and a PATCH
// accept and refuse exactly the same values. The rules an identity
// provider needs beyond RFC 7643 (string booleans, numbers sent as text)
// apply only where the request's compatibility profile enables them.
//
// The table, for one scalar attribute of type T and a JSON value v:
//
//	v                  boolean          integer               decimal        string, reference, dateTime, binary
//	null               unassigned       unassigned            unassigned     unassigned
//	true/false         v                invalidValue          invalidValue   text "true"/"false" ¹
//	number             invalidValue     v if integral, else   v              its text ¹
//	                                    invalidValue
//	"" (empty)         unassigned ²     unassigned ¹          unassigned ¹   unassigned
//	"True", "false"    v ²              invalidValue          invalidValue   v
//	"12", "1.5"        invalidValue     12 ¹ / invalidValue   1.5 ¹          v
//	other text         invalidValue     invalidValue          invalidValue   v
//
// ¹ with the scalars-as-strings rule (else invalidValue). ² with the
// string-booleans rule (else invalidValue). Text is kept as sent: the
// checks of identifiers and control characters come after.
package values

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/scimd/scimd/scim/compat"
	"github.com/scimd/scimd/scim/schema"
)

// Error is a value refused: always scimType invalidValue (400).
type Error struct {
	Detail string
}

func (e *Error) Error() string { return e.Detail }

// ScimType is the SCIM error type of every Error.
const ScimType = "invalidValue"

func refuse(format string, args ...any) *Error { return &Error{Detail: fmt.Sprintf(format, args...)} }

// Scalar reads v, sent for the scalar attribute a (named where in
// messages), by the table of the package documentation under the rules
// tol allows. It returns nil for an unassigned value. Numbers come back as
// json.Number, booleans as bool, everything else as string.
func Scalar(a *schema.Attribute, v any, where string, tol *compat.Tracker) (any, *Error) {
	if v == nil {
		return nil, nil
	}
	switch a.Type {
	case schema.Boolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if !tol.Allow(compat.StringBooleans) {
				break
			}
			switch s := strings.TrimSpace(x); {
			case s == "":
				return nil, nil
			case strings.EqualFold(s, "true"):
				return true, nil
			case strings.EqualFold(s, "false"):
				return false, nil
			}
		}
		return nil, refuse("%s must be a boolean", where)
	case schema.Integer:
		switch x := v.(type) {
		case json.Number:
			if n, err := x.Int64(); err == nil {
				return json.Number(strconv.FormatInt(n, 10)), nil
			}
			if f, err := x.Float64(); err == nil && f == float64(int64(f)) {
				return json.Number(strconv.FormatInt(int64(f), 10)), nil
			}
		case float64:
			if x == float64(int64(x)) {
				return json.Number(strconv.FormatInt(int64(x), 10)), nil
			}
		case string:
			if !tol.Allow(compat.ScalarsAsStrings) {
				break
			}
			s := strings.TrimSpace(x)
			if s == "" {
				return nil, nil
			}
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return json.Number(strconv.FormatInt(n, 10)), nil
			}
		}
		return nil, refuse("%s must be an integer", where)
	case schema.Decimal:
		switch x := v.(type) {
		case json.Number:
			if _, err := x.Float64(); err == nil {
				return x, nil
			}
		case float64:
			return json.Number(strconv.FormatFloat(x, 'g', -1, 64)), nil
		case string:
			if !tol.Allow(compat.ScalarsAsStrings) {
				break
			}
			s := strings.TrimSpace(x)
			if s == "" {
				return nil, nil
			}
			if _, err := strconv.ParseFloat(s, 64); err == nil {
				return json.Number(s), nil
			}
		}
		return nil, refuse("%s must be a number", where)
	case schema.Complex:
		return nil, refuse("%s must be an object", where)
	default: // string, reference, dateTime, binary
		switch x := v.(type) {
		case string:
			if x == "" {
				return nil, nil
			}
			return x, nil
		case json.Number:
			if tol.Allow(compat.ScalarsAsStrings) {
				return string(x), nil
			}
		case float64:
			if tol.Allow(compat.ScalarsAsStrings) {
				return strconv.FormatFloat(x, 'f', -1, 64), nil
			}
		case bool:
			if tol.Allow(compat.ScalarsAsStrings) {
				return strconv.FormatBool(x), nil
			}
		}
		return nil, refuse("%s must be a string", where)
	}
}
