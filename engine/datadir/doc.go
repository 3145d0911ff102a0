// Package datadir guards scimd's data directory: one process at a time
// (an exclusive lock naming its holder's pid) and a writability check at
// start, so a misconfigured directory fails before anything is served.
package datadir
