package filter

import (
	"fmt"
	"strings"

	"github.com/scimd/scimd/scim/schema"
)

// Validate checks the filter against the schema of rt and refuses, as
// RFC 7644 §3.4.2.2 requires (400 invalidFilter), every comparison whose
// operator or value does not fit the attribute's type. The table, for an
// attribute the schema defines (unknown attributes match nothing and are
// not refused; a complex attribute compared as a whole is its "value"
// sub-attribute):
//
//	type          eq ne        co sw ew      gt ge lt le   value
//	string        yes          yes           yes           any (unquoted and numbers as text)
//	reference     yes          yes           yes           any
//	binary        yes          yes           invalid       any
//	boolean       yes          invalid       invalid       true/false ("true"/"false" too)
//	integer       yes          invalid       yes           a number (or a string holding one)
//	decimal       yes          invalid       yes           a number (or a string holding one)
//	dateTime      yes          yes (text)    yes           an xsd:dateTime string (co/sw/ew: any string)
//	complex       invalid      invalid       invalid       (no "value" sub-attribute)
//
// pr applies to every type. null is a value only for eq and ne (absent,
// present). Match itself never fails: a comparison Validate refuses is
// simply false. Errors are *Error of kind KindInvalidFilter.
func (f *Filter) Validate(rt *schema.ResourceType) error {
	if f == nil || f.root == nil {
		return nil
	}
	return validate(f.root, f.bind(rt, false, ""))
}

func validate(n node, b *binding) error {
	switch n := n.(type) {
	case *andNode:
		if err := validate(n.l, b); err != nil {
			return err
		}
		return validate(n.r, b)
	case *orNode:
		if err := validate(n.l, b); err != nil {
			return err
		}
		return validate(n.r, b)
	case *notNode:
		return validate(n.x, b)
	case *valuePathNode:
		return validate(n.filter, b)
	case *cmpNode:
		if n.op == "pr" {
			return nil
		}
		r := &b.res[n.id]
		if msg := checkComparison(n.op, r, &n.val); msg != "" {
			return &Error{Kind: KindInvalidFilter, Detail: fmt.Sprintf("%s %s %s: %s", n.ref.String(), n.op, n.val.text(), msg)}
		}
	}
	return nil
}

// checkComparison returns why op with value v cannot apply to the attribute
// r resolves to, or "" when it can.
func checkComparison(op string, r *resolved, v *value) string {
	ordering := op == "gt" || op == "ge" || op == "lt" || op == "le"
	substring := op == "co" || op == "sw" || op == "ew"
	if v.kind == vNull {
		if op == "eq" || op == "ne" {
			return ""
		}
		return "null can only be compared with eq or ne"
	}
	def := r.def
	if def == nil {
		if r.top != nil && r.top.Type == schema.Complex && r.sub == "" {
			return fmt.Sprintf("complex attribute %q has no value to compare; name a sub-attribute", r.top.Name)
		}
		return "" // unknown attribute: matches nothing
	}
	switch def.Type {
	case schema.String, schema.Reference:
		return ""
	case schema.Binary:
		if ordering {
			return "binary attributes cannot be ordered"
		}
		return ""
	case schema.Boolean:
		if ordering || substring {
			return "boolean attributes only take eq and ne"
		}
		if _, ok := v.asBool(); !ok {
			return "a boolean attribute compares with true or false"
		}
		return ""
	case schema.Integer, schema.Decimal:
		if substring {
			return "numeric attributes cannot be compared as substrings"
		}
		if !v.numOK {
			return "a numeric attribute compares with a number"
		}
		return ""
	case schema.DateTime:
		if substring {
			if v.kind != vString {
				return "a dateTime attribute is matched as text with a string"
			}
			return "" // the text of the timestamp: meta.lastModified sw "2026"
		}
		if v.kind != vString || !v.tOK {
			return "a dateTime attribute compares with an xsd:dateTime string such as \"2026-01-02T15:04:05Z\""
		}
		return ""
	case schema.Complex:
		return fmt.Sprintf("complex attribute %q has no value to compare; name a sub-attribute", def.Name)
	}
	return ""
}

// text is the value as written in a filter.
func (v *value) text() string {
	var b strings.Builder
	v.write(&b)
	return b.String()
}
