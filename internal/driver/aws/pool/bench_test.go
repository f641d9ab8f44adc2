package pool

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/cputime"
)

// BenchmarkPlace measures in-memory placements: Place + Bind + InstanceGone
// on a pool of 500 c5.large hosts (multi-slot, so the slot is reusable at
// once). Nothing here calls AWS.
func BenchmarkPlace(b *testing.B) {
	cfg := Config{Name: "c5", Type: "c5.large", Zones: []string{"us-west-2a", "us-west-2b", "us-west-2c"}, Max: 500}
	f := newFixture(b, cfg, nil)
	ctx := context.Background()
	per := f.m.slotsPer
	// fill: one reservation per host forces 500 hosts, then free them all
	var toks []string
	for i := range 500 * per {
		tok := fmt.Sprintf("fill-%d", i)
		if _, err := f.m.Place(ctx, PlaceRequest{Token: tok}); err != nil {
			b.Fatal(err)
		}
		toks = append(toks, tok)
	}
	for i, tok := range toks {
		s := f.m.byToken[tok]
		f.m.Bind(tok, s.host.id, fmt.Sprintf("i-fill%d", i))
		f.m.InstanceGone(s.host.id, fmt.Sprintf("i-fill%d", i))
	}
	if n := f.m.Stats().Hosts; n != 500 {
		b.Fatalf("hosts = %d", n)
	}
	calls := f.world.Calls()["AllocateHosts"].Calls
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := range b.N {
		tok := fmt.Sprintf("t-%d", i)
		p, err := f.m.Place(ctx, PlaceRequest{Token: tok})
		if err != nil {
			b.Fatal(err)
		}
		inst := "i-" + tok
		f.m.Bind(tok, p.HostID, inst)
		f.m.InstanceGone(p.HostID, inst)
	}
	b.StopTimer()
	cpu := cputime.Process() - cpu0
	if f.world.Calls()["AllocateHosts"].Calls != calls {
		b.Fatal("placements called AWS")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "placements/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// macPool500 is a mac pool with 500 hosts: 250 running an instance, 250 idle.
func macPool500(b *testing.B) *fixture {
	cfg := Config{Name: "macs", Type: "mac2.metal", Zones: []string{"us-west-2a", "us-west-2b", "us-west-2c"}, Max: 500,
		ScrubbingDelay: core.Duration(time.Hour)}
	f := newFixture(b, cfg, nil)
	ctx := context.Background()
	for i := range 500 {
		tok := fmt.Sprintf("j-%d", i)
		p, err := f.m.Place(ctx, PlaceRequest{Token: tok})
		if err != nil {
			b.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := f.run(tok, p); err != nil {
				b.Fatal(err)
			}
		} else {
			f.m.Unreserve(tok, p.HostID)
		}
	}
	f.clk.Advance(2 * time.Minute)
	if _, err := f.m.Reconcile(ctx); err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkReconcile500Hosts: a Reconcile pass with 500 hosts when nothing
// is due (the common case in the simulator) and when a full DescribeHosts
// refresh of the 500 hosts is due (in-memory world).
func BenchmarkReconcile500Hosts(b *testing.B) {
	b.Run("nothing-due", func(b *testing.B) {
		f := macPool500(b)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cputime.Process()
		for range b.N {
			if _, err := f.m.Reconcile(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
	b.Run("full-refresh", func(b *testing.B) {
		f := macPool500(b)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cputime.Process()
		for range b.N {
			f.m.mu.Lock()
			f.m.lastFull, f.m.fullDue = time.Time{}, time.Time{} // force the refresh
			f.m.mu.Unlock()
			if _, err := f.m.Reconcile(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
}

// BenchmarkDescribeHostsPerHour runs 24h of steady state (50 hosts, all busy
// with long jobs, nothing pending) and a bursty week, and reports the
// DescribeHosts calls per hour per pool.
func BenchmarkDescribeHostsPerHour(b *testing.B) {
	b.Run("steady", func(b *testing.B) {
		for range b.N {
			cfg := Config{Name: "macs", Type: "mac2.metal", Zones: []string{"us-west-2a"}, Max: 50, ScrubbingDelay: core.Duration(5 * time.Minute)}
			f := newFixture(b, cfg, nil)
			for i := range 50 {
				f.placeRun(fmt.Sprintf("long-%d", i))
			}
			before := f.m.Stats().APICalls["DescribeHosts"]
			start := f.clk.Now()
			f.advance(start.Add(24 * time.Hour))
			n := f.m.Stats().APICalls["DescribeHosts"] - before
			b.ReportMetric(float64(n)/24, "DescribeHosts/h")
		}
	})
	b.Run("bursty-week", func(b *testing.B) {
		for range b.N {
			f := newFixture(b, weekConfig(), nil)
			res := runWeek(b, f, burstyWeek(t0, 7), t0.Add(9*24*time.Hour), time.Time{})
			b.ReportMetric(float64(res.describes)/res.hours, "DescribeHosts/h")
			b.ReportMetric(float64(res.stats.Scrubs), "scrubs")
		}
	})
}

// BenchmarkScrubCycles measures the scrub path of Reconcile against the
// in-memory world: 50 idle mac hosts (scrubbing_delay 5m, world scrub 1h30m)
// run for 20 virtual hours, so each host goes through ~12 cycles of scrub
// launch + terminate + pending poll. Reported per scrub (CPU and
// allocations include the world's side of the calls).
func BenchmarkScrubCycles(b *testing.B) {
	ctx := context.Background()
	var scrubs, describes, mallocs uint64
	var cpu time.Duration
	for range b.N {
		b.StopTimer()
		cfg := Config{Name: "macs", Type: "mac2.metal", Zones: []string{"us-west-2a"}, Max: 50,
			ScrubbingDelay: core.Duration(5 * time.Minute)}
		f := newFixture(b, cfg, nil)
		for i := range 50 {
			tok := fmt.Sprintf("idle-%d", i)
			p, err := f.m.Place(ctx, PlaceRequest{Token: tok})
			if err != nil {
				b.Fatal(err)
			}
			f.m.Unreserve(tok, p.HostID)
		}
		st0 := f.m.Stats()
		start := f.clk.Now()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		cpu0 := cputime.Process()
		b.StartTimer()
		f.advance(start.Add(20 * time.Hour))
		b.StopTimer()
		cpu += cputime.Process() - cpu0
		runtime.ReadMemStats(&ms1)
		st := f.m.Stats()
		if st.Releases != 0 || st.Hosts != 50 {
			b.Fatalf("hosts %d, releases %d: want 50 hosts kept", st.Hosts, st.Releases)
		}
		scrubs += uint64(st.Scrubs - st0.Scrubs)
		describes += uint64(st.APICalls["DescribeHosts"] - st0.APICalls["DescribeHosts"])
		mallocs += ms1.Mallocs - ms0.Mallocs
	}
	if scrubs == 0 {
		b.Fatal("no scrub")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(scrubs), "ns/scrub")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(scrubs), "cpu-ns/scrub")
	b.ReportMetric(float64(mallocs)/float64(scrubs), "allocs/scrub")
	b.ReportMetric(float64(scrubs)/float64(b.N), "scrubs/op")
	b.ReportMetric(float64(describes)/float64(b.N)/20, "DescribeHosts/h")
}
