package filter

// Error kinds, matching the SCIM scimType an HTTP layer should answer with
// (RFC 7644 §3.12, status 400).
const (
	KindInvalidFilter = "invalidFilter"
	KindInvalidPath   = "invalidPath"
)

// Error is a filter or path that cannot be parsed, or a filter the schema
// rejects.
type Error struct {
	// Kind is KindInvalidFilter or KindInvalidPath.
	Kind string
	// Detail is a human-readable explanation, safe to return to the client.
	Detail string
	// Err is the underlying parser error, if any. It is for logs, not for
	// clients.
	Err error
}

// Error returns Detail, which is safe to show to clients; the parser's own
// message is only reachable through Unwrap.
func (e *Error) Error() string { return e.Detail }

// Unwrap returns the underlying parser error.
func (e *Error) Unwrap() error { return e.Err }
