package patch

import (
	"strings"

	"github.com/scimd/scimd/scim/schema"
)

// finish checks the result against the schema and maintains "schemas".
func (a *applier) finish(orig map[string]any) *Error {
	// Required attributes that were present may not be removed.
	for _, sch := range a.rt.Schemas() {
		t := target{}
		if sch != a.rt.Core {
			t.ext = sch
		}
		for _, at := range sch.Attributes {
			if !at.Required {
				continue
			}
			t.attr = at
			was := origAttr(orig, t)
			if !isEmpty(was) && isEmpty(a.get(t)) {
				return errorf(InvalidValue, "required attribute %q cannot be removed", at.Name)
			}
		}
	}
	// Extension objects: an emptied one is dropped, and "schemas" lists
	// exactly the extensions present, when they changed.
	for _, ext := range a.rt.Extensions {
		_, before, _ := lookupFold(orig, ext.ID)
		key, after, present := lookupFold(a.doc, ext.ID)
		if equalValue(before, after) {
			continue
		}
		if present && isEmpty(after) {
			delete(a.doc, key)
			present = false
		}
		a.setSchemaListed(ext.ID, present)
	}
	return nil
}

func origAttr(orig map[string]any, t target) any {
	c := orig
	if t.ext != nil {
		_, v, _ := lookupFold(orig, t.ext.ID)
		c, _ = v.(map[string]any)
	}
	if c == nil {
		return nil
	}
	_, v, _ := lookupFold(c, t.attr.Name)
	return v
}

// setSchemaListed adds urn to, or removes it from, the document's "schemas".
func (a *applier) setSchemaListed(urn string, listed bool) {
	key, v, ok := lookupFold(a.doc, "schemas")
	list, isList := v.([]any)
	if ok && !isList {
		return // not ours to repair
	}
	if !ok {
		if !listed {
			return
		}
		key = "schemas"
		list = []any{a.rt.Core.ID}
	}
	out := make([]any, 0, len(list)+1)
	found := false
	for _, s := range list {
		if str, _ := s.(string); strings.EqualFold(str, urn) {
			if listed && !found {
				out = append(out, s)
			}
			found = true
			continue
		}
		out = append(out, s)
	}
	if listed && !found {
		out = append(out, urn)
	}
	a.doc[key] = out
}

// fixPrimary keeps at most one element with "primary": true (RFC 7643
// §2.4): when an element at one of the written indexes is primary, every
// other element loses its primary flag. With no written index, the first
// primary element wins.
func fixPrimary(at *schema.Attribute, list []any, written []int) []any {
	ps := at.Sub("primary")
	if ps == nil {
		return list
	}
	winner := -1
	for i := len(written) - 1; i >= 0 && winner < 0; i-- {
		if w := written[i]; w < len(list) && isPrimary(list[w], ps.Name) {
			winner = w
		}
	}
	for i := 0; i < len(list) && winner < 0; i++ {
		if isPrimary(list[i], ps.Name) {
			winner = i
		}
	}
	if winner < 0 {
		return list
	}
	for i, e := range list {
		if i != winner && isPrimary(e, ps.Name) {
			el := copyElem(e)
			el[ps.Name] = false
			list[i] = el
		}
	}
	return list
}

func isPrimary(e any, name string) bool {
	m, ok := e.(map[string]any)
	if !ok {
		return false
	}
	_, v, _ := lookupFold(m, name)
	b, _ := v.(bool)
	return b
}

// copyElem returns a copy of a complex element that can be edited without
// touching list elements shared with other values.
func copyElem(e any) map[string]any {
	m, _ := e.(map[string]any)
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// setSub sets or (for nil) deletes a sub-attribute of an element.
func setSub(m map[string]any, name string, v any) {
	if v == nil {
		deleteFold(m, name)
		return
	}
	setFold(m, name, v)
}

// dropEmpty removes elements that have become empty.
func dropEmpty(list []any) []any {
	out := list[:0]
	for _, e := range list {
		if !isEmpty(e) {
			out = append(out, e)
		}
	}
	return out
}

func nonNil(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

func allIndexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}
