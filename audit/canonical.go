package audit

import (
	"encoding/json"
	"unicode/utf8"
)

// canonicalEvent encodes e canonically: the bytes canonicalJSON(e) gives,
// that is, e's JSON with object keys sorted at every level. When every
// value in e is already plain JSON data (strings, numbers, booleans, maps
// with string keys, slices) and every string is valid UTF-8, it builds the
// sorted form in one encoding pass; otherwise (Go structs in Details or
// Change) it takes the encode–decode–encode route.
func canonicalEvent(e Event) ([]byte, error) {
	if !plainEvent(e) {
		return canonicalJSON(e)
	}
	t, err := json.Marshal(e.Time)
	if err != nil {
		return nil, err
	}
	m := map[string]any{
		"seq":      e.Seq,
		"time":     string(t[1 : len(t)-1]), // RFC 3339: nothing to escape
		"type":     e.Type,
		"actor":    map[string]any{"kind": e.Actor.Kind, "name": e.Actor.Name},
		"prevHash": e.PrevHash,
		"hash":     e.Hash,
	}
	target := map[string]any{"type": e.Target.Type}
	if e.Target.ID != "" {
		target["id"] = e.Target.ID
	}
	if e.Target.Name != "" {
		target["name"] = e.Target.Name
	}
	m["target"] = target
	if e.Change != nil {
		c := map[string]any{}
		if e.Change.From != nil {
			c["from"] = e.Change.From
		}
		if e.Change.To != nil {
			c["to"] = e.Change.To
		}
		m["change"] = c
	}
	if len(e.Reasons) > 0 {
		m["reasons"] = e.Reasons
	}
	for k, v := range map[string]string{"policyRevision": e.PolicyRevision, "decisionId": e.DecisionID, "requestId": e.RequestID} {
		if v != "" {
			m[k] = v
		}
	}
	if len(e.Details) > 0 {
		m["details"] = e.Details
	}
	return AppendJSON(nil, m)
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
