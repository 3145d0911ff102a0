// Package app wires scimd together: the durable store, the SCIM server, the
// policy engine, the reconciler and the admin API, behind one http.Handler.
// The scimd binary and the end-to-end tests both start scimd through it.
package app
