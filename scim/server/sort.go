package server

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/scimd/scimd/scim/schema"
)

// sortListed orders list by the attribute path sortBy (RFC 7644 §3.4.2.3):
// a multi-valued attribute sorts by its primary value, or else its first;
// strings compare case-insensitively unless caseExact; dateTimes as
// instants. Resources without a value come last in ascending order and
// first in descending order. Ties keep the list order, so paging is stable.
func sortListed(list []listed, sortBy string, descending bool) {
	type keyed struct {
		key sortKey
		it  listed
	}
	ks := make([]keyed, len(list))
	for i, it := range list {
		ks[i] = keyed{sortKeyOf(it.rt, it.doc, sortBy), it}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		c := a.key.compare(b.key)
		if descending {
			c = -c
		}
		return c
	})
	for i := range ks {
		list[i] = ks[i].it
	}
}

// sortKey is one resource's value of the sort attribute.
type sortKey struct {
	present bool
	kind    int // 0 string, 1 number, 2 bool, 3 time
	s       string
	n       float64
	t       time.Time
}

func (a sortKey) compare(b sortKey) int {
	switch {
	case !a.present && !b.present:
		return 0
	case !a.present:
		return 1
	case !b.present:
		return -1
	case a.kind != b.kind:
		return cmp.Compare(a.kind, b.kind)
	}
	switch a.kind {
	case 1:
		return cmp.Compare(a.n, b.n)
	case 3:
		return a.t.Compare(b.t)
	}
	return strings.Compare(a.s, b.s)
}

// sortKeyOf finds the value of path in doc.
func sortKeyOf(rt *schema.ResourceType, doc map[string]any, path string) sortKey {
	def, parent := rt.Lookup(path)
	if def == nil {
		return sortKey{}
	}
	urn, _, _ := splitPath(rt, path)
	scope := doc
	if urn != "" {
		scope, _ = lookupKey(doc, urn).(map[string]any)
	}
	top := def
	if parent != nil {
		top = parent
	}
	v := lookupKey(scope, top.Name)
	if top.MultiValued {
		v = primaryOrFirst(v)
	}
	if parent != nil {
		m, _ := v.(map[string]any)
		v = lookupKey(m, def.Name)
	} else if m, ok := v.(map[string]any); ok {
		v = lookupKey(m, "value")
		def = def.Sub("value")
	}
	return keyOf(def, v)
}

func primaryOrFirst(v any) any {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil
	}
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && isTrue(m["primary"]) {
			return m
		}
	}
	return list[0]
}

func keyOf(def *schema.Attribute, v any) sortKey {
	switch v := v.(type) {
	case string:
		if def != nil && def.Type == schema.DateTime {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return sortKey{present: true, kind: 3, t: t}
			}
		}
		if def == nil || !def.CaseExact {
			v = strings.ToLower(v)
		}
		return sortKey{present: v != "", s: v}
	case float64:
		return sortKey{present: true, kind: 1, n: v}
	case bool:
		s := "0"
		if v {
			s = "1"
		}
		return sortKey{present: true, kind: 2, s: s}
	case time.Time:
		return sortKey{present: true, kind: 3, t: v}
	}
	return sortKey{}
}
