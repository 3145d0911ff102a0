package server

import (
	"maps"
	"strings"

	"github.com/scimd/scimd/scim/compat"
	"github.com/scimd/scimd/scim/patch"
	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/values"
)

// decoded is a POST or PUT body after normalisation and validation.
type decoded struct {
	ExternalID string
	Name       string
	Attrs      map[string]any
	// Members is set for groups when the body had a "members" attribute.
	Members      []patch.Member
	MembersGiven bool
}

// decodeResource normalises a resource body sent by an IdP and validates it
// against the resource type's schema. Tolerance rules, each named after the
// behaviour it absorbs:
//
//   - ignoreServerAttributes: id, meta, schemas (Okta's full-object PUT
//     echoes them) and readOnly attributes such as a user's groups (Okta
//     sends "groups": [] on create) are ignored.
//   - dropWriteOnlyPassword: passwords are never stored.
//   - entraStringBooleans: "True"/"False" in any case for boolean attributes.
//   - entraManagerAsString: "manager": "id" becomes {"value": "id"}.
//   - singleValueForMultiValued: an object where an array is expected is
//     wrapped in an array.
//   - ignoreUnknownAttributes: attributes no schema defines, and objects
//     under schema URNs scimd does not serve (Entra's ADSCIM extension), are
//     ignored, as RFC 7643 §3 allows.
//   - urnQualifiedAttributes: "urn:…:enterprise:2.0:User:department" keys at
//     the top level land in the extension object.
//   - bareMemberIDs: group members given as plain id strings (Microsoft's
//     test collection), or with "$ref": null, no type, or "displayName"
//     instead of "display".
func decodeResource(rt *schema.ResourceType, body map[string]any, tol *compat.Tracker) (*decoded, *Error) {
	d := &decoded{Attrs: map[string]any{}}
	isGroup := rt == schema.GroupType
	for key, raw := range body {
		key = trimCoreURN(rt, key) // urnQualifiedAttributes
		lower := strings.ToLower(key)
		switch {
		case lower == "schemas" || lower == "id" || lower == "meta":
			continue // ignoreServerAttributes
		case isGroup && lower == "members":
			members, err := decodeMembers(raw, tol)
			if err != nil {
				return nil, err
			}
			d.Members, d.MembersGiven = members, true
			continue
		case lower == "externalid":
			if raw == nil {
				continue
			}
			s, ok := raw.(string)
			if !ok {
				return nil, badRequest("invalidValue", "externalId must be a string")
			}
			if err := checkIdentifier("externalId", s); err != nil {
				return nil, err
			}
			d.ExternalID = s
			continue
		}
		if strings.HasPrefix(lower, "urn:") {
			if err := decodeURNKey(rt, d.Attrs, key, raw, tol); err != nil {
				return nil, err
			}
			continue
		}
		attr := rt.Core.Attr(key)
		if attr == nil || attr.Mutability == "readOnly" || attr.Mutability == "writeOnly" {
			continue // ignoreUnknownAttributes, ignoreServerAttributes, dropWriteOnlyPassword
		}
		v, err := normalizeValue(attr, raw, attr.Name, tol)
		if err != nil {
			return nil, err
		}
		if v != nil {
			d.Attrs[attr.Name] = v
		}
	}
	nameAttr := "userName"
	if isGroup {
		nameAttr = "displayName"
	}
	name, _ := d.Attrs[nameAttr].(string)
	if strings.TrimSpace(name) == "" {
		return nil, badRequest("invalidValue", "%s is required", nameAttr)
	}
	d.Name = name
	delete(d.Attrs, nameAttr)
	return d, nil
}

// decodeURNKey handles a top-level key that starts with "urn:": an extension
// object, a URN-qualified extension attribute, or an unknown schema
// (ignored). Core-qualified keys are unqualified before (trimCoreURN).
func decodeURNKey(rt *schema.ResourceType, attrs map[string]any, key string, raw any, tol *compat.Tracker) *Error {
	if ext := rt.Extension(key); ext != nil {
		if raw == nil {
			return nil
		}
		obj, ok := raw.(map[string]any)
		if !ok {
			return badRequest("invalidValue", "%s must be an object", ext.ID)
		}
		out, _ := attrs[ext.ID].(map[string]any)
		if out == nil {
			out = map[string]any{}
		}
		for k, v := range obj {
			a := ext.Attr(k)
			if a == nil || a.Mutability == "readOnly" {
				continue // the Teammate extension is the service provider's
			}
			nv, err := normalizeValue(a, v, ext.ID+":"+a.Name, tol)
			if err != nil {
				return err
			}
			if nv != nil {
				out[a.Name] = nv
			}
		}
		if len(out) > 0 {
			attrs[ext.ID] = out
		}
		return nil
	}
	for _, ext := range rt.Extensions {
		if len(key) > len(ext.ID)+1 && strings.EqualFold(key[:len(ext.ID)], ext.ID) && key[len(ext.ID)] == ':' {
			a := ext.Attr(key[len(ext.ID)+1:])
			if a == nil || a.Mutability == "readOnly" {
				return nil
			}
			if !tol.Allow(compat.URNQualifiedAttributes) {
				return badRequest("invalidValue", "%s: put extension attributes inside the %s object (RFC 7643 §3.3)", key, ext.ID)
			}
			nv, err := normalizeValue(a, raw, ext.ID+":"+a.Name, tol)
			if err != nil || nv == nil {
				return err
			}
			out, _ := attrs[ext.ID].(map[string]any)
			if out == nil {
				out = map[string]any{}
				attrs[ext.ID] = out
			}
			out[a.Name] = nv
			return nil
		}
	}
	return nil // ignoreUnknownAttributes: a schema scimd does not serve
}

// trimCoreURN turns a key qualified with the core schema URN
// ("urn:…:core:2.0:Group:members") into the plain attribute name, so that it
// is decoded exactly like the unqualified key.
func trimCoreURN(rt *schema.ResourceType, key string) string {
	core := rt.Core.ID
	if len(key) > len(core)+1 && strings.EqualFold(key[:len(core)], core) && key[len(core)] == ':' {
		return key[len(core)+1:]
	}
	return key
}

// normalizeValue converts a JSON value to the attribute's type, applying the
// tolerance rules. It returns nil for "no value" (null, empty array).
func normalizeValue(a *schema.Attribute, raw any, path string, tol *compat.Tracker) (any, *Error) {
	if raw == nil {
		return nil, nil
	}
	if a.MultiValued {
		list, ok := raw.([]any)
		if !ok {
			if !tol.Allow(compat.SingleValueForMultiValued) {
				return nil, badRequest("invalidValue", "%s is multi-valued: send an array", path)
			}
			list = []any{raw}
		}
		if len(list) > maxMultiValues {
			return nil, badRequest("invalidValue", "%s has %d values; at most %d are allowed", path, len(list), maxMultiValues)
		}
		out := make([]any, 0, len(list))
		for _, e := range list {
			v, err := normalizeSingle(a, e, path, tol)
			if err != nil {
				return nil, err
			}
			if v != nil {
				out = append(out, v)
			}
		}
		out, err := settleMultiValued(a, out, path)
		if err != nil {
			return nil, err
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
	return normalizeSingle(a, raw, path, tol)
}

func normalizeSingle(a *schema.Attribute, raw any, path string, tol *compat.Tracker) (any, *Error) {
	if raw == nil {
		return nil, nil
	}
	switch a.Type {
	case schema.Complex:
		obj, ok := raw.(map[string]any)
		if !ok {
			if s, isStr := raw.(string); isStr && a.Sub("value") != nil && tol.Allow(compat.ManagerAsString) {
				if s == "" {
					return nil, nil // unassigned, as an empty string is everywhere
				}
				return map[string]any{"value": s}, nil
			}
			return nil, badRequest("invalidValue", "%s must be an object", path)
		}
		out := make(map[string]any, len(obj))
		for k, v := range obj {
			sub := a.Sub(k)
			if sub == nil {
				continue
			}
			nv, err := normalizeSingle(sub, v, path+"."+sub.Name, tol)
			if err != nil {
				return nil, err
			}
			if nv != nil {
				out[sub.Name] = nv
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
	v, verr := values.Scalar(a, raw, path, tol)
	if verr != nil {
		return nil, badRequest(values.ScimType, "%s", verr.Detail)
	}
	if text, ok := v.(string); ok {
		check := checkText
		if isIdentifier(path) {
			check = checkIdentifier
		}
		if err := check(path, text); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func decodeMembers(raw any, tol *compat.Tracker) ([]patch.Member, *Error) {
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		list = []any{raw}
	}
	out := make([]patch.Member, 0, len(list))
	for _, e := range list {
		m, err := decodeMember(e, tol)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func decodeMember(e any, tol *compat.Tracker) (patch.Member, *Error) {
	switch v := e.(type) {
	case string:
		if !tol.Allow(compat.BareMemberIDs) {
			return patch.Member{}, badRequest("invalidValue", "members must be objects with a value (RFC 7643 §4.2)")
		}
		if err := checkIdentifier("members.value", v); err != nil {
			return patch.Member{}, err
		}
		return patch.Member{Value: v}, nil
	case map[string]any:
		var m patch.Member
		for k, x := range v {
			s, _ := x.(string)
			switch strings.ToLower(k) {
			case "value":
				m.Value = s
			case "display":
				m.Display = s
			case "displayname":
				if m.Display == "" && tol.Allow(compat.BareMemberIDs) {
					m.Display = s
				}
			case "type":
				m.Type = s
			}
		}
		if m.Value == "" {
			return m, badRequest("invalidValue", "a member needs a value (the member's id)")
		}
		if err := checkIdentifier("members.value", m.Value); err != nil {
			return m, err
		}
		if err := checkText("members.display", m.Display); err != nil {
			return m, err
		}
		return m, nil
	}
	return patch.Member{}, badRequest("invalidValue", "members must be objects with a value, or ids")
}

// resourceDoc renders the attributes PATCH works on: everything but the
// members and a user's groups.
func resourceDoc(rt *schema.ResourceType, r *store.Resource) map[string]any {
	return fillResourceDoc(rt, r, store.CloneMap(r.Attrs))
}

// sharedResourceDoc is resourceDoc for a document that is only encoded:
// only its top level is copied, so everything below it is the stored
// resource's own and must not be changed.
func sharedResourceDoc(rt *schema.ResourceType, r *store.Resource) map[string]any {
	doc := make(map[string]any, len(r.Attrs)+6)
	maps.Copy(doc, r.Attrs)
	return fillResourceDoc(rt, r, doc)
}

func fillResourceDoc(rt *schema.ResourceType, r *store.Resource, doc map[string]any) map[string]any {
	if doc == nil {
		doc = map[string]any{}
	}
	doc["id"] = r.ID
	if r.ExternalID != "" {
		doc["externalId"] = r.ExternalID
	}
	if r.Kind == store.KindGroup {
		doc["displayName"] = r.Name
	} else {
		doc["userName"] = r.Name
	}
	doc["schemas"] = schemaURNs(rt, doc)
	return doc
}

func schemaURNs(rt *schema.ResourceType, doc map[string]any) []any {
	urns := []any{rt.Core.ID}
	for _, ext := range rt.Extensions {
		if _, ok := doc[ext.ID]; ok {
			urns = append(urns, ext.ID)
		}
	}
	return urns
}
