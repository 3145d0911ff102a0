// Package review turns what scimd knows into what reviewers read: the plan
// of a candidate policy (for a terminal, a pull-request comment or a
// machine), the verification of the audit hash chain, a teammate's history
// of role and access changes with their causes, and the periodic access
// report.
//
// The admin API builds these values; the CLI formats them. The package does
// no I/O of its own beyond writing to the io.Writer it is given.
package review
