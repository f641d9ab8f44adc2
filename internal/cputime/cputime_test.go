package cputime

import (
	"runtime"
	"testing"
)

func TestProcessAdvancesWithWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no process CPU time on this platform")
	}
	before := Process()
	x := 0
	for i := range 50_000_000 {
		x += i % 7
	}
	if x == 0 || Process() <= before {
		t.Fatalf("process CPU did not advance: %v -> %v", before, Process())
	}
}
