// Package cputime reads the CPU time the process has used, for benchmarks:
// on a shared machine it is a steadier measure than wall time.
package cputime

import "time"

// Process is the CPU time (user + system) the process has used so far, or 0
// where the platform does not report it.
func Process() time.Duration { return process() }
