package patch

import (
	"strings"

	"github.com/scimd/scimd/scim/schema"
)

// resolve binds a path to the schema. ok is false when the operation is to
// be ignored: an attribute under an unknown schema URN, the "schemas"
// attribute (maintained by this package), and, when not strict (keys of a
// path-less value), unknown or read-only attributes.
func (a *applier) resolve(p Path, strict bool) (t target, ok bool, err *Error) {
	sch := a.rt.Core
	if p.URN != "" {
		full := p.URN + ":" + p.Attr
		if p.Filter == "" && p.Sub == "" {
			// The path is a schema URN: the whole extension (or core)
			// object is the target.
			if ext := a.rt.Extension(full); ext != nil {
				return target{ext: ext, name: ext.ID}, true, nil
			}
			if strings.EqualFold(full, a.rt.Core.ID) {
				return target{name: a.rt.Core.ID}, true, nil
			}
		}
		switch ext := a.rt.Extension(p.URN); {
		case ext != nil:
			sch = ext
		case strings.EqualFold(p.URN, a.rt.Core.ID):
		default:
			return target{}, false, ignoreUnknownURN(p.URN)
		}
	}
	t.attr = sch.Attr(p.Attr)
	if sch == a.rt.Core {
		if t.attr == nil {
			t.attr = commonAttr(p.Attr)
		}
		if t.attr == nil && strings.EqualFold(p.Attr, "schemas") {
			// "schemas" follows the extension objects present; a client
			// writing it is ignored.
			return target{}, false, nil
		}
	} else {
		t.ext = sch
	}
	switch {
	case t.attr == nil:
		if !strict {
			return target{}, false, nil
		}
		return target{}, false, errorf(InvalidPath, "unknown attribute %q", truncate(p.String()))
	case t.attr.Mutability == "readOnly":
		// Tolerance (Okta sends {"id":…,"displayName":…} in a path-less
		// replace, and PUT-style documents with meta and groups): read-only
		// attributes inside a path-less value are ignored. Named in a path
		// they are an error.
		if !strict {
			return target{}, false, nil
		}
		return target{}, false, errorf(Mutability, "attribute %q is read-only", t.attr.Name)
	}
	t.name = t.attr.Name
	if t.ext != nil {
		t.name = t.ext.ID + ":" + t.attr.Name
	}
	if p.Sub != "" {
		if t.attr.Type != schema.Complex {
			if !strict {
				return target{}, false, nil
			}
			return target{}, false, errorf(InvalidPath, "attribute %q has no sub-attributes", t.attr.Name)
		}
		t.sub = t.attr.Sub(p.Sub)
		switch {
		case t.sub == nil:
			if !strict {
				return target{}, false, nil
			}
			return target{}, false, errorf(InvalidPath, "unknown attribute %q", truncate(p.String()))
		case t.sub.Mutability == "readOnly" && !a.isMembers(t):
			if !strict {
				return target{}, false, nil
			}
			return target{}, false, errorf(Mutability, "attribute %q is read-only", t.attr.Name+"."+t.sub.Name)
		}
	}
	if p.Filter != "" {
		if !t.attr.MultiValued {
			return target{}, false, errorf(InvalidPath, "attribute %q is not multi-valued and cannot be filtered", t.attr.Name)
		}
		t.filter = p.Filter
	}
	return t, true, nil
}

// ignoreUnknownURN decides what to do with an attribute under a schema URN
// the resource type does not have: it is ignored.
//
// Tolerance (Entra and OneLogin send attributes of schemas the service
// provider does not serve, for example Microsoft's ADSCIM group schema or an
// old urn:scim:schemas:core:1.0 prefix; they carry nothing we store).
func ignoreUnknownURN(string) *Error { return nil }

func commonAttr(name string) *schema.Attribute {
	for _, c := range schema.CommonAttributes() {
		if strings.EqualFold(c.Name, name) {
			return c
		}
	}
	return nil
}

// isMembers reports whether t is the group members attribute, which lives
// outside the document.
func (a *applier) isMembers(t target) bool {
	return t.ext == nil && t.attr != nil && strings.EqualFold(t.attr.Name, "members") && t.attr.MultiValued
}

// container returns the object holding t's attribute: the document, or the
// extension object (created when create is set).
func (a *applier) container(t target, create bool) map[string]any {
	if t.ext == nil {
		return a.doc
	}
	key, v, ok := lookupFold(a.doc, t.ext.ID)
	if m, isMap := v.(map[string]any); ok && isMap {
		if key != t.ext.ID {
			delete(a.doc, key)
			a.doc[t.ext.ID] = m
		}
		return m
	}
	if !create {
		return nil
	}
	if ok {
		delete(a.doc, key)
	}
	m := map[string]any{}
	a.doc[t.ext.ID] = m
	return m
}

func (a *applier) get(t target) any {
	c := a.container(t, false)
	if c == nil {
		return nil
	}
	_, v, _ := lookupFold(c, t.attr.Name)
	return v
}

// set stores v as t's attribute, or removes the attribute when v is empty.
func (a *applier) set(t target, v any) {
	if isEmpty(v) {
		if c := a.container(t, false); c != nil {
			deleteFold(c, t.attr.Name)
		}
		return
	}
	setFold(a.container(t, true), t.attr.Name, v)
}
