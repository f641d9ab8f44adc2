//go:build unix

package awsemu

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) the test process has used. On a
// shared machine it is a steadier measure than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
