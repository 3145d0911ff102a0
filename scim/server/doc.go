// Package server is scimd's SCIM 2.0 HTTP API (RFC 7644): /Users and /Groups
// with filtering, paging, projection, PATCH and ETags; the discovery
// endpoints; bearer-token authentication; and the admin endpoints for
// tokens. It writes through the state store, one durable transaction per
// request, each with its audit event.
package server
