//go:build unix

package policy_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system, all threads, GC included) the
// process has used. On a shared machine it is a steadier measure than wall
// time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
