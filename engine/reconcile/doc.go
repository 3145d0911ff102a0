// Package reconcile makes teammates' roles and access follow the policy.
//
// Every SCIM User is a teammate with an actual state (role, access,
// excluded) kept durably in the state store. After each durable SCIM write
// the reconciler re-evaluates exactly the users it affects, against a
// snapshot, and applies changed decisions in one durable transaction with
// their audit events. A policy activation re-evaluates everyone. A single
// trigger that would remove access from, or demote, more teammates than the
// threshold is held as a pending change until an admin approves or rejects
// it.
//
// The package's files, in the order a write flows through them:
//
//   - reconciler.go: the Reconciler, its options and its loop (Run,
//     process), which takes triggers in batches.
//   - queue.go: triggers: what a store commit, an activation or an
//     approval asks for, and which users a batch touches.
//   - input.go: the policy input built from a user and its groups.
//   - evaluate.go, deadline.go: deciding each touched user (in parallel
//     chunks, each decision under a deadline) and comparing the decision
//     with the teammate's state.
//   - guard.go: the mass-change threshold that holds a change.
//   - apply.go: the one durable transaction that writes teammates, held
//     changes and their audit events.
//   - feed.go: the feed entry written for each change.
//   - model.go, changes.go: the records kept in the store (teammates,
//     pending changes, their deferrals and archive).
//   - admin.go, plan.go, whatif.go, shadow.go, backlog.go, metrics.go:
//     the admin API's views, plans, what-if, shadow policies, the backlog
//     of undecided writes and the reconciler's metrics.
package reconcile
