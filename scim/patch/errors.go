package patch

import "fmt"

// SCIM error types (RFC 7644 §3.12, table 9) returned by this package. All of
// them map to HTTP 400.
const (
	InvalidPath   = "invalidPath"
	NoTarget      = "noTarget"
	InvalidValue  = "invalidValue"
	Mutability    = "mutability"
	InvalidSyntax = "invalidSyntax"
	InvalidFilter = "invalidFilter"
)

// Error is a PATCH error. ScimType is one of the scimType values above and
// Detail a human-readable message that is safe to return to the client.
type Error struct {
	ScimType string
	Detail   string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return "scim patch: " + e.ScimType + ": " + e.Detail
}

// Status is the HTTP status code for the error (always 400).
func (e *Error) Status() int { return 400 }

func errorf(scimType, format string, args ...any) *Error {
	return &Error{ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}
