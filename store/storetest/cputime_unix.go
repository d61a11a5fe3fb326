//go:build unix

package storetest

import (
	"syscall"
	"time"
)

// ProcessCPU returns the CPU time the process has used, user and system,
// or 0 where it cannot be read. Benchmarks that run on a machine others
// share report it beside elapsed time, which their load disturbs more.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
