package store

import (
	"errors"
	"time"
)

// Kind is a SCIM resource type name.
type Kind string

// Resource kinds.
const (
	KindUser  Kind = "User"
	KindGroup Kind = "Group"
)

// Resource is a stored SCIM User or Group.
//
// A Resource held by the store is immutable: copy it (Clone) before changing
// it and put the copy back.
type Resource struct {
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// ExternalID is the IdP's identifier, "" when absent.
	ExternalID string `json:"externalId,omitempty"`
	// Name is the userName of a User or the displayName of a Group. It is
	// unique per kind, compared case-insensitively.
	Name string `json:"name"`
	// Attrs holds every other SCIM attribute as decoded JSON, without id,
	// externalId, meta, schemas, and, for groups, members (those live in the
	// memberships table).
	Attrs    map[string]any `json:"attrs"`
	Created  time.Time      `json:"created"`
	Modified time.Time      `json:"modified"`
	Version  uint64         `json:"version"`
}

// Clone returns a deep copy of r.
func (r *Resource) Clone() *Resource {
	c := *r
	c.Attrs = CloneMap(r.Attrs)
	return &c
}

// Membership records that MemberID (a User, or a nested Group) is a member
// of GroupID.
type Membership struct {
	GroupID  string `json:"groupId"`
	MemberID string `json:"memberId"`
	// MemberKind is the kind of the member, KindUser or KindGroup.
	MemberKind Kind `json:"memberKind"`
	// Display is the display text the IdP sent for the member, if any.
	Display string `json:"display,omitempty"`
}

// Token is a named bearer token. Only the SHA-256 digest of the secret is
// stored.
type Token struct {
	Name string `json:"name"`
	// Digest is the hex SHA-256 of the secret.
	Digest string `json:"digest"`
	// Role is the single scope of a token created before tokens had
	// scopes ("scim" or "admin"); Scopes supersedes it.
	Role string `json:"role,omitempty"`
	// Scopes are what the token may do (scim, read, plan, approve,
	// admin).
	Scopes  []string  `json:"scopes,omitempty"`
	Created time.Time `json:"created"`
	// Expires, when set, is the instant the token stops working.
	Expires time.Time `json:"expires,omitzero"`
	// LastUsed is when the token last authenticated a request, kept to
	// the minute.
	LastUsed time.Time `json:"lastUsed,omitzero"`
	// RotatedFrom is set on the previous secret of a rotated token: the
	// name of that token, which stays the actor of requests made with it
	// until it Expires.
	RotatedFrom string `json:"rotatedFrom,omitempty"`
	// ExpiryAudited records that the token's expiry has been audited.
	ExpiryAudited bool `json:"expiryAudited,omitempty"`
	// Profile is the IdP compatibility profile of a SCIM token (see
	// scim/compat); "" is "auto".
	Profile string `json:"profile,omitempty"`
	// Client is set on an OAuth 2.0 access token: the id of the client it
	// was issued to (ClientName is the client's name, the audit actor).
	Client     string `json:"client,omitempty"`
	ClientName string `json:"clientName,omitempty"`
}

// ScopeList returns the token's scopes, the legacy Role for a token
// created before scopes.
func (t *Token) ScopeList() []string {
	if len(t.Scopes) > 0 || t.Role == "" {
		return t.Scopes
	}
	return []string{t.Role}
}

// Token roles of tokens created before scopes; they are scope names too.
const (
	TokenRoleSCIM  = "scim"
	TokenRoleAdmin = "admin"
)

// Record is a value owned by another component, stored under (Table, Key).
// Each record table has a decoder registered in Options.Records, so that
// its values are decoded to their Go type when the store loads.
type Record struct {
	Table string
	Key   string
	Value any
}

// Errors returned by write helpers.
var (
	// ErrConflict reports a uniqueness violation (userName, displayName,
	// token name).
	ErrConflict = errors.New("conflict")
	// ErrNotFound reports a missing resource.
	ErrNotFound = errors.New("not found")
	// ErrClosed reports a write after Close.
	ErrClosed = errors.New("store closed")
	// ErrUnavailable reports a write refused because a commit failed (disk
	// full, I/O error): memory may be ahead of disk, so every write is
	// refused until the process restarts. Failed wraps it too.
	ErrUnavailable = errors.New("store: writes disabled after a failed commit")
)

// CloneValue deep-copies a decoded JSON value.
func CloneValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return CloneMap(t)
	case []any:
		c := make([]any, len(t))
		for i, e := range t {
			c[i] = CloneValue(e)
		}
		return c
	default:
		return v
	}
}

// CloneMap deep-copies a decoded JSON object. It returns nil for nil.
func CloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = CloneValue(v)
	}
	return c
}
