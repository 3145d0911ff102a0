// Package api is the admin HTTP API of the engine under /api/v1: teammates,
// groups, policy status and reload, pending changes and the audit log.
package api
