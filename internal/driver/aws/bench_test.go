package aws

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

// benchAllocate runs b.N allocations of one label against the emulator over
// HTTP (each deallocated right after, outside the measurement) and reports
// EC2 calls per allocation by action plus latency percentiles. pace advances
// the virtual clock between allocations so the caches expire as they would
// at that request rate; withCapacity asks AvailableCapacity first, as the
// engine does before claiming.
func benchAllocate(b *testing.B, cfg, opts string, pace time.Duration, withCapacity bool) {
	e := newEnv(b, cfg)
	def := e.def(opts, core.Resources{Network: vpcAquarium, Disks: map[string]core.Disk{"/dev/sdf": {Size: 10}}})
	// Warm-up: the first allocation fills the caches.
	res := e.mustAllocate(def, map[string]any{"job": "warm"})
	if err := e.d.Deallocate(e.ctx, *res); err != nil {
		b.Fatal(err)
	}
	byAction := map[string]int64{}
	var ec2Calls, allCalls int64
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.clk.Advance(pace)
		before := e.world.Calls()
		start := time.Now()
		if withCapacity {
			if n, err := e.d.AvailableCapacity(e.ctx, def); err != nil || n < 1 {
				b.Fatalf("capacity %d, %v", n, err)
			}
		}
		res, err := e.d.Allocate(e.ctx, driver.AllocateRequest{ApplicationUID: fmt.Sprintf("bench-%d", i), Definition: def,
			Metadata: map[string]any{"job": i}})
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		after := e.world.Calls()
		for a, st := range after {
			n := st.Calls - before[a].Calls
			if n == 0 {
				continue
			}
			byAction[a] += n
			allCalls += n
			if isEC2Action(a) {
				ec2Calls += n
			}
		}
		b.StopTimer()
		if err := e.d.Deallocate(e.ctx, *res); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(ec2Calls)/float64(b.N), "ec2-calls/alloc")
	b.ReportMetric(float64(allCalls)/float64(b.N), "aws-calls/alloc")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds()), "p99-µs")
	var parts []string
	for _, a := range slices.Sorted(maps.Keys(byAction)) {
		parts = append(parts, fmt.Sprintf("%s=%.3f", a, float64(byAction[a])/float64(b.N)))
	}
	b.Logf("N=%d per-allocation calls by action: %s", b.N, strings.Join(parts, " "))
}

func isEC2Action(a string) bool {
	switch a {
	case "GetCallerIdentity", "ListAliases", "ListServiceQuotas", "ListAWSDefaultServiceQuotas":
		return false
	}
	return true
}

const benchLabel = `{"image":"ubuntu-22.04","instance_type":"t3.micro","security_group":"aquarium-ssh","encrypt_key":"alias/aquarium","userdata_format":"env"}`

// BenchmarkAllocateSteadyState: one label, allocations back to back.
func BenchmarkAllocateSteadyState(b *testing.B) {
	benchAllocate(b, "", benchLabel, 0, false)
}

// BenchmarkAllocatePaced: one allocation every 10s (virtual), so the 1-minute
// subnet cache and 5-minute caches expire as in production.
func BenchmarkAllocatePaced(b *testing.B) {
	benchAllocate(b, "", benchLabel, 10*time.Second, false)
}

// BenchmarkAllocateWithCapacityPaced: capacity check + allocation, every 10s.
func BenchmarkAllocateWithCapacityPaced(b *testing.B) {
	benchAllocate(b, "", benchLabel, 10*time.Second, true)
}

// BenchmarkAllocateGeneratedKey: instance_key generate adds CreateKeyPair.
func BenchmarkAllocateGeneratedKey(b *testing.B) {
	benchAllocate(b, `{"region":"us-west-2","instance_key":"generate"}`, benchLabel, 0, false)
}
