// Package filter parses and evaluates SCIM 2.0 filters (RFC 7644 §3.4.2.2)
// and PATCH paths (RFC 7644 §3.5.2).
//
// Parsing is done by github.com/scim2/filter-parser/v2, behind a small
// normalisation stage that rewrites the known non-RFC shapes identity
// providers send (see [Rule]). Evaluation works on resources decoded by
// encoding/json into map[string]any and uses the attribute definitions of
// package schema for case sensitivity and data types.
//
// Semantics chosen where RFC 7644 leaves room:
//
//   - Attribute names are case-insensitive, in the filter and in the
//     document. Strings compare case-insensitively unless the attribute is
//     caseExact in the schema; unknown attributes compare case-insensitively.
//   - A multi-valued attribute matches when any of its values matches. A
//     complex attribute compared without a sub-attribute (emails eq "x")
//     compares its "value" sub-attribute.
//   - "ne" is the negation of "eq": it matches when the attribute is absent
//     and, for multi-valued attributes, when no value is equal.
//   - "eq null" matches when the attribute is not present ("pr" is false);
//     "ne null" is the same as "pr".
//   - "pr" is false for missing attributes, null, "", empty arrays and
//     complex values whose sub-attributes are all absent or empty.
//   - dateTime attributes (meta.created, meta.lastModified) compare as
//     instants; numbers compare numerically (as float64); booleans only
//     support eq and ne.
//   - An attribute written without a schema URN that the core schema does
//     not define is looked up in the resource type's extensions
//     (department eq "Sales" finds the enterprise department).
//   - A number or boolean compared with a string attribute is compared by
//     its literal text (externalId eq 12345 matches "12345"), and a string
//     compared with a boolean or numeric attribute is parsed ("True" matches
//     true), because IdPs are loose about JSON types.
package filter
