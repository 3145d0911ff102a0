package filter

import "strings"

// Attribute names IndexHint returns, most selective first.
const (
	HintID           = "id"
	HintUserName     = "userName"
	HintExternalID   = "externalId"
	HintDisplayName  = "displayName"
	HintMembersValue = "members.value"
)

// hintRank ranks a top-level attribute name as a hint (lower is more
// selective); ok is false if it is not a hint attribute.
func hintRank(attr string) (canonical string, rank int, ok bool) {
	for i, h := range [...]string{HintID, HintUserName, HintExternalID, HintDisplayName} {
		if strings.EqualFold(attr, h) {
			return h, i, true
		}
	}
	return "", 0, false
}

const membersRank = 4

// IndexHint returns an equality lookup that narrows the candidates for the
// filter: attr is one of HintID, HintUserName, HintExternalID,
// HintDisplayName and HintMembersValue, and value the compared value as
// written. It is found when the filter is attr eq "v", or an "and" of terms
// one of which is, or members[value eq "v"], members.value eq "v" or
// members eq "v". With several candidates the most selective one (in the
// order above) wins. "or" and "not" give no hint.
//
// The hint only narrows: apply Match to every candidate. userName and
// displayName are not caseExact, so their index must be case-insensitive
// (e.g. keyed by strings.ToLower); id, externalId and members.value are
// caseExact.
func (f *Filter) IndexHint() (attr, value string, ok bool) {
	if f == nil {
		return "", "", false
	}
	best := membersRank + 1
	collectHints(f.root, func(a, v string, rank int) {
		if rank < best {
			best, attr, value = rank, a, v
		}
	})
	return attr, value, best <= membersRank
}

// collectHints calls fn for every eligible term of the top-level "and"
// tree of n.
func collectHints(n node, fn func(attr, value string, rank int)) {
	switch n := n.(type) {
	case *andNode:
		collectHints(n.l, fn)
		collectHints(n.r, fn)
	case *cmpNode:
		if !n.isEquality() || !coreOrNone(n.ref.urn) {
			return
		}
		if strings.EqualFold(n.ref.attr, "members") {
			if n.ref.sub == "" || strings.EqualFold(n.ref.sub, "value") {
				fn(HintMembersValue, n.val.str, membersRank)
			}
			return
		}
		if h, rank, ok := hintRank(n.ref.attr); ok && n.ref.sub == "" {
			fn(h, n.val.str, rank)
		}
	case *valuePathNode:
		if strings.EqualFold(n.ref.attr, "members") && n.ref.sub == "" && coreOrNone(n.ref.urn) {
			collectValueHints(n.filter, fn)
		}
	}
}

// collectValueHints finds value eq "v" in the "and" tree of a members[...]
// value filter.
func collectValueHints(n node, fn func(attr, value string, rank int)) {
	switch n := n.(type) {
	case *andNode:
		collectValueHints(n.l, fn)
		collectValueHints(n.r, fn)
	case *cmpNode:
		if n.isEquality() && n.ref.sub == "" && strings.EqualFold(n.ref.attr, "value") {
			fn(HintMembersValue, n.val.str, membersRank)
		}
	}
}

// isEquality reports whether n is eq with a string or number value.
func (n *cmpNode) isEquality() bool {
	return n.op == "eq" && (n.val.kind == vString || n.val.kind == vNumber)
}

func coreOrNone(urn string) bool {
	return urn == "" || isCoreURN(nil, urn)
}
