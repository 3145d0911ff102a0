// Package policywatch keeps scimd's active policy set: it loads the
// policies directory at start, watches it with fsnotify, reloads on change
// or on request, and activates a new set only when it passes the gate of
// package policy. A refused set leaves the previous one active; every
// activation and refusal is audited, logged and counted.
package policywatch
