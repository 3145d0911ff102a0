// Package patch parses SCIM 2.0 PATCH requests (RFC 7644 §3.5.2) and applies
// them to a resource document.
//
// The engine follows the RFC, plus a set of tolerance rules for what real
// identity providers send (Microsoft Entra ID, Okta, Microsoft's SCIM test
// collection). Each tolerance rule is a named function or branch whose comment
// cites the client that needs it:
//
//   - "Operations" key and "op" values in any case (Entra, various clients);
//   - an empty Operations array is a no-op (Microsoft SCIM validator);
//   - string booleans "True"/"False" for boolean attributes (Entra);
//   - dotted ("name.givenName") and URN-qualified keys inside a path-less
//     value, with id, schemas, meta and other read-only keys ignored (Entra,
//     Okta);
//   - a complex attribute sent as a bare string becomes {"value": string}
//     (Entra's manager, Microsoft's member ids);
//   - a filtered path that matches nothing on add/replace creates the element
//     (Entra);
//   - remove with path "members" and a value array removes exactly those
//     members, never all of them (Entra);
//   - add on a singular attribute acts as replace, and adding values that are
//     already present changes nothing (Entra, periodic re-sends).
//
// Group membership is never written into the document: operations on
// "members" produce a MemberDelta that the caller applies to its membership
// table as set operations.
//
// Value filters inside a path (emails[type eq "work"]) are compiled by a
// pluggable ValueFilterParser, so that the server can use its own filter
// package. Filters on members are read by this package itself (only
// `value eq "id"`, joined by "or"), because the members are not in the
// document.
//
// The package's files, in the order a request flows through them:
// request.go parses the body into Operations, path.go their paths;
// patcher.go applies them one by one (the Patcher and its Result);
// resolve.go finds what a path names in the document; write.go adds and
// replaces, remove.go removes, members.go turns operations on members into
// a MemberDelta; normalize.go and values.go hold the value rules; finish.go
// checks the result (required attributes, primary flags, listed schemas).
package patch
