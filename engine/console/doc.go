// Package console is scimd's web console under /ui/: server-rendered pages
// (html/template, assets embedded in the binary, no external resources) for
// the people who review access, approve held changes and answer auditors.
//
// The console reads the engine's in-process state (the store's snapshots,
// the reconciler, the policy manager) rather than calling the admin API.
// Signing in exchanges a bearer token for a session cookie; what a session
// may do follows the token's scopes (read: everything visible, nothing
// actionable; approve: approve and reject held changes; admin: both).
package console
