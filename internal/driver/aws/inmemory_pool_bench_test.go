package aws

import (
	"log/slog"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

// processCPU is the CPU time (user+system) of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAllocateDeallocatePoolInMemory: the simulator's exact path, a
// pooled mac2.metal label with the simulator's definition (image, type,
// pool; default VPC) and its cache TTL, Allocate then Deallocate per op against the in-memory
// world. Between ops the host comes back (world scrub 0, pool Reconcile)
// with the timer stopped, so the numbers are Allocate + Deallocate only
// (the world's and the pool's side of those calls included). cpu-ns/op is
// process CPU over the timed parts.
func BenchmarkAllocateDeallocatePoolInMemory(b *testing.B) {
	spec := awsemu.DefaultSpec()
	spec.Timings.ScrubbingDuration = 0
	spec.Timings.AvailableLag = 0
	e := newEnv(b, `{"region":"us-west-2","dedicated_pool":{"macs":{"type":"mac2.metal","zones":["us-west-2a"],"max":1}}}`,
		envOpt{inMemory: true, spec: spec, opts: []Option{WithLogger(slog.New(slog.DiscardHandler)), WithCacheTTL(6 * time.Hour), WithRetry(1, time.Second)}})
	def := e.def(`{"image":"macos-14","instance_type":"mac2.metal","pool":"macs"}`, core.Resources{})
	m := e.d.Pools()["macs"]
	uids := make([]string, b.N+1)
	for i := range uids {
		uids[i] = "0b4e7c1a-3c2f-4b55-9a0e-" + strconv.Itoa(100000000000+i)
	}
	alloc := func(i int) {
		res, err := e.d.Allocate(e.ctx, driver.AllocateRequest{ApplicationUID: uids[i], Definition: def})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.d.Deallocate(e.ctx, *res); err != nil {
			b.Fatal(err)
		}
	}
	// settle brings the pool back to a free slot: virtual time passes and
	// Reconcile sees the host available again.
	settle := func() {
		for try := 0; m.Capacity(nil) == 0 || try == 0; try++ {
			if try == 100 {
				b.Fatal("the pool has no free slot")
			}
			e.clk.Advance(time.Minute)
			if _, err := m.Reconcile(e.ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	alloc(b.N) // warm up: the pool allocates its host, the caches fill
	settle()
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0 := processCPU()
		alloc(i)
		cpu += processCPU() - c0
		b.StopTimer()
		settle()
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}
