package filter

import (
	"fmt"

	"github.com/scimd/scimd/scim/schema"
)

// Validate checks the filter against the schema of rt for what RFC 7644
// §3.4.2.2 requires to fail with invalidFilter: gt, ge, lt and le on
// boolean or binary attributes. Match itself never fails: such comparisons
// are simply false. Errors are *Error of kind KindInvalidFilter.
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
		def := b.res[n.id].def
		switch n.op {
		case "gt", "ge", "lt", "le":
			if def != nil && (def.Type == schema.Boolean || def.Type == schema.Binary) {
				return &Error{Kind: KindInvalidFilter, Detail: fmt.Sprintf("operator %q cannot compare %s attribute %q", n.op, def.Type, n.ref)}
			}
		}
	}
	return nil
}
