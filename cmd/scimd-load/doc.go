// Command scimd-load is an identity-provider simulator: it speaks plain
// SCIM 2.0 to any service provider (a base URL and a bearer token) and
// measures throughput and latency.
//
//	scimd-load SCENARIO --url BASE_URL --token TOKEN [flags]
//
// Scenarios:
//
//	sync   initial push, as an IdP does it: create N users, create M empty
//	       groups, then fill the groups with K memberships through member
//	       PATCHes of --batch members each; with --bulk N every request
//	       is a POST /Bulk of N of those operations.
//	churn  a steady rate of membership changes (add, remove, move between
//	       groups) and user deactivations against the server's current
//	       state (seeded with a small sync when the server is empty).
//	read   userName eq "…" lookups, which IdPs make before every create.
//
// It prints a progress bar on stderr (when stderr is a terminal, or with
// --progress), then throughput and latency percentiles per request kind as
// a table, and as JSON with --json FILE ("-" for stdout). Against scimd it
// also reports the commit-to-role-applied latency, from the difference of
// the server's scimd_commit_to_applied_seconds histogram before and after
// the run.
package main
