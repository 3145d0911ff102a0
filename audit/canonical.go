package audit

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/scimd/scimd/audit/jsonenc"
)

// appendCanonicalEvent appends e's canonical encoding to dst: the bytes
// canonicalJSON(e) gives, that is, e's JSON with object keys sorted at
// every level. When every value in e is already plain JSON data (strings,
// numbers, booleans, maps with string keys, slices) and every string is
// valid UTF-8, it writes the sorted form directly, in one pass; otherwise
// (Go structs in Details or Change) it takes the encode–decode–encode
// route.
func appendCanonicalEvent(dst []byte, e Event) ([]byte, error) {
	if !plainEvent(e) {
		b, err := canonicalJSON(e)
		return append(dst, b...), err
	}
	t, err := json.Marshal(e.Time)
	if err != nil {
		return dst, err
	}
	// The members in sorted key order: actor, change, decisionId, details,
	// hash, policyRevision, prevHash, reasons, requestId, seq, target,
	// time, type.
	b := append(dst, `{"actor":{"kind":`...)
	b = jsonenc.AppendString(b, e.Actor.Kind)
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, e.Actor.Name)
	b = append(b, '}')
	if e.Change != nil {
		b = append(b, `,"change":{`...)
		if e.Change.From != nil {
			b = append(b, `"from":`...)
			if b, err = jsonenc.Append(b, e.Change.From); err != nil {
				return dst, err
			}
		}
		if e.Change.To != nil {
			if e.Change.From != nil {
				b = append(b, ',')
			}
			b = append(b, `"to":`...)
			if b, err = jsonenc.Append(b, e.Change.To); err != nil {
				return dst, err
			}
		}
		b = append(b, '}')
	}
	b = appendOptionalString(b, "decisionId", e.DecisionID)
	if len(e.Details) > 0 {
		b = append(b, `,"details":`...)
		if b, err = jsonenc.Append(b, e.Details); err != nil {
			return dst, err
		}
	}
	b = append(b, `,"hash":`...)
	b = jsonenc.AppendString(b, e.Hash)
	b = appendOptionalString(b, "policyRevision", e.PolicyRevision)
	b = append(b, `,"prevHash":`...)
	b = jsonenc.AppendString(b, e.PrevHash)
	if len(e.Reasons) > 0 {
		b = append(b, `,"reasons":`...)
		b, _ = jsonenc.Append(b, e.Reasons) // []string: cannot fail
	}
	b = appendOptionalString(b, "requestId", e.RequestID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"target":{`...)
	if e.Target.ID != "" {
		b = append(b, `"id":`...)
		b = jsonenc.AppendString(b, e.Target.ID)
		b = append(b, ',')
	}
	if e.Target.Name != "" {
		b = append(b, `"name":`...)
		b = jsonenc.AppendString(b, e.Target.Name)
		b = append(b, ',')
	}
	b = append(b, `"type":`...)
	b = jsonenc.AppendString(b, e.Target.Type)
	b = append(b, `},"time":`...)
	b = append(b, t...) // RFC 3339 in quotes: nothing to escape
	b = append(b, `,"type":`...)
	b = jsonenc.AppendString(b, e.Type)
	return append(b, '}'), nil
}

// appendOptionalString appends `,"key":"value"` when value is not empty.
func appendOptionalString(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return jsonenc.AppendString(b, value)
}

// plainEvent reports whether every value of e encodes the same before and
// after a JSON round trip, so that sorting keys is all canonicalisation
// needs.
func plainEvent(e Event) bool {
	for _, s := range []string{e.Type, e.Actor.Kind, e.Actor.Name, e.Target.Type, e.Target.ID, e.Target.Name,
		e.PolicyRevision, e.DecisionID, e.RequestID, e.PrevHash, e.Hash} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for _, r := range e.Reasons {
		if !utf8.ValidString(r) {
			return false
		}
	}
	if e.Change != nil && (!plainValue(e.Change.From, 0) || !plainValue(e.Change.To, 0)) {
		return false
	}
	for k, v := range e.Details {
		if !utf8.ValidString(k) || !plainValue(v, 0) {
			return false
		}
	}
	return true
}

func plainValue(v any, depth int) bool {
	if depth > 32 {
		return false
	}
	switch x := v.(type) {
	case nil, bool, float64, int, int64, uint64, int32, uint32, json.Number:
		return true
	case string:
		return utf8.ValidString(x)
	case []string:
		for _, s := range x {
			if !utf8.ValidString(s) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range x {
			if !plainValue(e, depth+1) {
				return false
			}
		}
		return true
	case map[string]any:
		for k, e := range x {
			if !utf8.ValidString(k) || !plainValue(e, depth+1) {
				return false
			}
		}
		return true
	default:
		return false
	}
}
