// Package schema holds the SCIM 2.0 schemas scimd serves (RFC 7643 §4 User,
// Group and the Enterprise User extension): attribute definitions used for
// case sensitivity in filters, singular/multi-valued handling in PATCH,
// projection (attributes/excludedAttributes) and the /Schemas endpoint.
package schema

import "strings"

// Schema URNs.
const (
	UserURN           = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupURN          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseUserURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	TeammateURN       = "urn:ietf:params:scim:schemas:extension:scimd:2.0:Teammate"
	ListResponseURN   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	PatchOpURN        = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	ErrorURN          = "urn:ietf:params:scim:api:messages:2.0:Error"
	SPConfigURN       = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	ResourceTypeURN   = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaURN         = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// Type is a SCIM attribute data type.
type Type string

// Attribute data types (RFC 7643 §2.3).
const (
	String    Type = "string"
	Boolean   Type = "boolean"
	Decimal   Type = "decimal"
	Integer   Type = "integer"
	DateTime  Type = "dateTime"
	Binary    Type = "binary"
	Reference Type = "reference"
	Complex   Type = "complex"
)

// Attribute describes one SCIM attribute.
type Attribute struct {
	Name           string       `json:"name"`
	Type           Type         `json:"type"`
	MultiValued    bool         `json:"multiValued"`
	Description    string       `json:"description,omitempty"`
	Required       bool         `json:"required"`
	CaseExact      bool         `json:"caseExact"`
	Mutability     string       `json:"mutability"`
	Returned       string       `json:"returned"`
	Uniqueness     string       `json:"uniqueness"`
	ReferenceTypes []string     `json:"referenceTypes,omitempty"`
	SubAttributes  []*Attribute `json:"subAttributes,omitempty"`
}

// Sub returns the named sub-attribute (case-insensitive), or nil.
func (a *Attribute) Sub(name string) *Attribute {
	if a == nil {
		return nil
	}
	for _, s := range a.SubAttributes {
		if strings.EqualFold(s.Name, name) {
			return s
		}
	}
	return nil
}

// Schema is one SCIM schema (core or extension).
type Schema struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Attributes  []*Attribute `json:"attributes"`
}

// Attr returns the named top-level attribute (case-insensitive), or nil.
func (s *Schema) Attr(name string) *Attribute {
	if s == nil {
		return nil
	}
	for _, a := range s.Attributes {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

// ResourceType binds a core schema and its extensions to an endpoint.
type ResourceType struct {
	Name       string
	Endpoint   string
	Core       *Schema
	Extensions []*Schema
}

// Lookup resolves an attribute path such as "userName", "name.givenName",
// "emails.value" or "urn:…:enterprise:2.0:User:manager.value" to its
// definition. It returns nil for unknown attributes. The second result is the
// parent attribute for a sub-attribute path (nil for top-level attributes).
func (rt *ResourceType) Lookup(path string) (attr, parent *Attribute) {
	sch := rt.Core
	p := path
	for _, ext := range rt.Extensions {
		if len(p) > len(ext.ID) && strings.EqualFold(p[:len(ext.ID)], ext.ID) && p[len(ext.ID)] == ':' {
			sch = ext
			p = p[len(ext.ID)+1:]
			break
		}
		if strings.EqualFold(p, ext.ID) {
			return nil, nil
		}
	}
	if len(p) > len(rt.Core.ID) && strings.EqualFold(p[:len(rt.Core.ID)], rt.Core.ID) && p[len(rt.Core.ID)] == ':' {
		p = p[len(rt.Core.ID)+1:]
	}
	name, sub, hasSub := strings.Cut(p, ".")
	a := sch.Attr(name)
	if a == nil {
		a = commonAttr(name)
	}
	if a == nil || !hasSub {
		return a, nil
	}
	return a.Sub(sub), a
}

// Extension returns the extension schema with the given URN, or nil.
func (rt *ResourceType) Extension(urn string) *Schema {
	for _, ext := range rt.Extensions {
		if strings.EqualFold(ext.ID, urn) {
			return ext
		}
	}
	return nil
}

// Schemas lists the core schema and the extensions, core first.
func (rt *ResourceType) Schemas() []*Schema {
	return append([]*Schema{rt.Core}, rt.Extensions...)
}

var common = []*Attribute{
	{Name: "id", Type: String, CaseExact: true, Mutability: "readOnly", Returned: "always", Uniqueness: "server"},
	{Name: "externalId", Type: String, CaseExact: true, Mutability: "readWrite", Returned: "default", Uniqueness: "none"},
	{Name: "meta", Type: Complex, Mutability: "readOnly", Returned: "default", Uniqueness: "none", SubAttributes: []*Attribute{
		{Name: "resourceType", Type: String, CaseExact: true, Mutability: "readOnly", Returned: "default", Uniqueness: "none"},
		{Name: "created", Type: DateTime, Mutability: "readOnly", Returned: "default", Uniqueness: "none"},
		{Name: "lastModified", Type: DateTime, Mutability: "readOnly", Returned: "default", Uniqueness: "none"},
		{Name: "location", Type: Reference, CaseExact: true, Mutability: "readOnly", Returned: "default", Uniqueness: "none"},
		{Name: "version", Type: String, CaseExact: true, Mutability: "readOnly", Returned: "default", Uniqueness: "none"},
	}},
}

func commonAttr(name string) *Attribute {
	for _, a := range common {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

// CommonAttributes are id, externalId and meta, shared by every resource type.
func CommonAttributes() []*Attribute { return common }
