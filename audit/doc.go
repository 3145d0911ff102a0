// Package audit defines scimd's audit event model and the hash chain that
// makes the audit log tamper-evident.
//
// Every SCIM write, policy load or refusal, decision and role or access change
// is recorded as an Event. Events are appended in sequence; each carries the
// hash of the previous event and its own hash, computed over a canonical JSON
// encoding of the event's content, so editing, removing or reordering any
// stored event breaks the chain at that point.
package audit
