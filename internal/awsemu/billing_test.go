package awsemu

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// naiveBilling recomputes the ledger sums without the index.
func naiveBilling(w *World, from, to time.Time) (host, inst float64) {
	for _, h := range w.ledger.hosts {
		end := h.release
		if end.IsZero() {
			end = w.now
		}
		d := overlap(h.alloc, end, from, to)
		for _, p := range h.pending {
			d -= overlap(p.fromT(), minTime(p.toT(), end), from, to)
		}
		host += d.Seconds()
	}
	for _, i := range w.ledger.instances {
		inst += overlap(i.startT(), i.endAt(w.now), from, to).Seconds()
	}
	return host, inst
}

// TestBillingIndexMatchesNaive drives random mac and Linux workloads (long
// and short instances, scrubbing, releases, hosts still open) and checks the
// indexed Billing against a full scan on many random windows.
func TestBillingIndexMatchesNaive(t *testing.T) {
	w, clk := newTestWorld(t, func(s *Spec) {
		s.Timings.ScrubbingDuration = core.Duration(40 * time.Minute)
		s.Timings.MacMinAllocation = core.Duration(3 * time.Hour)
	})
	rng := rand.New(rand.NewPCG(3, 4))
	var hosts []string
	var running []string
	for step := range 600 {
		switch r := rng.IntN(10); {
		case r < 2 && len(hosts) < 20:
			hosts = append(hosts, allocHost(t, w, "mac2.metal", "us-west-2a", false))
		case r < 5:
			// place on an available host if any
			for _, h := range hosts {
				if out, err := runOnHost(w, h, "mac2.metal", macArmImage); err == nil {
					running = append(running, aws.ToString(out.Instances[0].InstanceId))
					break
				}
			}
		case r < 7:
			out := runLinux(t, w, nil)
			running = append(running, aws.ToString(out.Instances[0].InstanceId))
		case r < 9 && len(running) > 0:
			k := rng.IntN(len(running))
			if rng.IntN(3) == 0 && step < 500 {
				break // keep some long-running instances
			}
			if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{running[k]}}); err != nil {
				t.Fatal(err)
			}
			running = append(running[:k], running[k+1:]...)
		default:
			if len(hosts) > 0 {
				k := rng.IntN(len(hosts))
				rel, _ := w.ReleaseHosts(bg, &ec2.ReleaseHostsInput{HostIds: []string{hosts[k]}})
				if len(rel.Successful) == 1 {
					hosts = append(hosts[:k], hosts[k+1:]...)
				}
			}
		}
		clk.Advance(time.Duration(rng.IntN(20)) * time.Minute)
	}
	end := clk.Now()
	span := end.Sub(t0)
	for range 300 {
		a := t0.Add(time.Duration(rng.Int64N(int64(span))) - time.Hour)
		b := a.Add(time.Duration(rng.Int64N(int64(span))))
		got := w.Billing(a, b)
		if tot := w.BillingTotals(a, b); tot.TotalHostSeconds != got.TotalHostSeconds || tot.TotalInstanceSeconds != got.TotalInstanceSeconds || tot.HostSeconds != nil {
			t.Fatalf("BillingTotals %+v differs from Billing", tot)
		}
		wh, wi := naiveBilling(w, a, b)
		if diff := got.TotalHostSeconds - wh; diff > 1e-6 || diff < -1e-6 {
			t.Fatalf("[%v,%v) host seconds %v, naive %v", a, b, got.TotalHostSeconds, wh)
		}
		if diff := got.TotalInstanceSeconds - wi; diff > 1e-6 || diff < -1e-6 {
			t.Fatalf("[%v,%v) instance seconds %v, naive %v", a, b, got.TotalInstanceSeconds, wi)
		}
	}
	scrubs := 0
	for _, h := range w.ledger.hosts {
		scrubs += len(h.pending)
	}
	if w.Billing(t0, end).TotalHostSeconds <= 0 || scrubs == 0 {
		t.Fatal("workload produced no host billing or no scrubbing")
	}
	// Per-type totals add up.
	b := w.Billing(t0, end)
	sum := 0.0
	for _, v := range b.InstanceSecondsByType {
		sum += v
	}
	if d := sum - b.TotalInstanceSeconds; d > 1e-6 || d < -1e-6 {
		t.Fatalf("by-type %v != total %v", sum, b.TotalInstanceSeconds)
	}
}

// TestBillingMonthBoundaries splits a host's life across two calendar months.
func TestBillingMonthBoundaries(t *testing.T) {
	w, clk := newTestWorld(t, nil)
	clk.Set(time.Date(2025, 3, 31, 20, 0, 0, 0, time.UTC))
	hid := allocHost(t, w, "mac2.metal", "us-west-2a", false)
	clk.Set(time.Date(2025, 4, 1, 1, 0, 0, 0, time.UTC))
	out, err := w.RunInstances(bg, &ec2.RunInstancesInput{ImageId: aws.String(macArmImage), InstanceType: "mac2.metal", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(hid)}})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(out.Instances[0].InstanceId)}}); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC))
	mar, apr := w.BillingMonth(2025, time.March), w.BillingMonth(2025, time.April)
	if mar.HostSeconds[hid] != 4*3600 {
		t.Fatalf("March host seconds %v", mar.HostSeconds[hid])
	}
	// April: 00:00 -> 2nd 00:00 = 24h minus 1h30m scrubbing
	if apr.HostSeconds[hid] != (24*time.Hour - 90*time.Minute).Seconds() {
		t.Fatalf("April host seconds %v", apr.HostSeconds[hid])
	}
	if apr.InstanceHours() != 1 || mar.InstanceHours() != 0 {
		t.Fatalf("instance hours Mar %v Apr %v", mar.InstanceHours(), apr.InstanceHours())
	}
	if apr.HostSecondsByType["mac2.metal"] != apr.TotalHostSeconds {
		t.Fatalf("by type %v", apr.HostSecondsByType)
	}
}

// foldWorkload drives w through about eight months of random mac and Linux
// activity (scrubbing, releases, a host and an instance open throughout)
// with a fixed seed, so two worlds given it end in the same state.
func foldWorkload(t *testing.T, w *World, clk *clock.Virtual) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	keep := allocHost(t, w, "mac2.metal", "us-west-2a", false) // never released
	if _, err := runOnHost(w, keep, "mac2.metal", macArmImage); err != nil {
		t.Fatal(err)
	}
	runLinux(t, w, nil) // never terminated
	var hosts, running []string
	for range 3000 {
		switch r := rng.IntN(10); {
		case r < 2 && len(hosts) < 15:
			hosts = append(hosts, allocHost(t, w, "mac2.metal", "us-west-2a", false))
		case r < 5:
			for _, h := range hosts {
				if out, err := runOnHost(w, h, "mac2.metal", macArmImage); err == nil {
					running = append(running, aws.ToString(out.Instances[0].InstanceId))
					break
				}
			}
		case r < 7:
			running = append(running, aws.ToString(runLinux(t, w, nil).Instances[0].InstanceId))
		case r < 9 && len(running) > 0:
			k := rng.IntN(len(running))
			if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{running[k]}}); err != nil {
				t.Fatal(err)
			}
			running = append(running[:k], running[k+1:]...)
		default:
			if len(hosts) > 0 {
				k := rng.IntN(len(hosts))
				rel, _ := w.ReleaseHosts(bg, &ec2.ReleaseHostsInput{HostIds: []string{hosts[k]}})
				if len(rel.Successful) == 1 {
					hosts = append(hosts[:k], hosts[k+1:]...)
				}
			}
		}
		clk.Advance(time.Duration(rng.IntN(240)) * time.Minute)
	}
}

// TestBillingFoldMatchesDetail runs the same months-long workload on a world
// that folds its ledger and on one that keeps every entry, and checks that
// month queries, per-host and per-type totals and windows ending after the
// horizon answer the same numbers, while the folded ledger stays small.
func TestBillingFoldMatchesDetail(t *testing.T) {
	mod := func(s *Spec) {
		s.Timings.ScrubbingDuration = core.Duration(40 * time.Minute)
		s.Timings.MacMinAllocation = core.Duration(3 * time.Hour)
	}
	wf, cf := newTestWorld(t, mod)
	wd, cd := newTestWorld(t, mod)
	wd.ledger.noFold = true
	foldWorkload(t, wf, cf)
	foldWorkload(t, wd, cd)
	end := cf.Now()
	if wf.ledger.horizon.IsZero() || len(wf.ledger.folded) < 3 {
		t.Fatalf("no folding happened: horizon %v, %d folded months (end %v)", wf.ledger.horizon, len(wf.ledger.folded), end)
	}
	if nf, nd := len(wf.ledger.instances), len(wd.ledger.instances); nf*2 >= nd {
		t.Fatalf("folded ledger keeps %d instance entries of %d", nf, nd)
	}
	near := func(a, b float64) bool { return a-b < 1e-6 && b-a < 1e-6 }
	for ms := monthStart(t0); ms.Before(end); ms = ms.AddDate(0, 1, 0) {
		f, d := wf.BillingMonth(ms.Year(), ms.Month()), wd.BillingMonth(ms.Year(), ms.Month())
		if f.TotalHostSeconds != d.TotalHostSeconds || f.TotalInstanceSeconds != d.TotalInstanceSeconds || d.TotalHostSeconds <= 0 {
			t.Fatalf("%s: folded host %v inst %v, detail host %v inst %v", ms.Format("Jan"), f.TotalHostSeconds, f.TotalInstanceSeconds, d.TotalHostSeconds, d.TotalInstanceSeconds)
		}
		if len(f.HostSeconds) != len(d.HostSeconds) {
			t.Fatalf("%s: %d hosts billed, want %d", ms.Format("Jan"), len(f.HostSeconds), len(d.HostSeconds))
		}
		for id, s := range d.HostSeconds {
			if f.HostSeconds[id] != s {
				t.Fatalf("%s: host %s %v seconds, want %v", ms.Format("Jan"), id, f.HostSeconds[id], s)
			}
		}
		for k, s := range d.HostSecondsByType {
			if f.HostSecondsByType[k] != s {
				t.Fatalf("%s: host type %s %v seconds, want %v", ms.Format("Jan"), k, f.HostSecondsByType[k], s)
			}
		}
		for k, s := range d.InstanceSecondsByType {
			if f.InstanceSecondsByType[k] != s {
				t.Fatalf("%s: instance type %s %v seconds, want %v", ms.Format("Jan"), k, f.InstanceSecondsByType[k], s)
			}
		}
		// a window from the month start to the end of the run (like the simulator's last month)
		fa, da := wf.BillingTotals(ms, end), wd.BillingTotals(ms, end)
		if !near(fa.TotalHostSeconds, da.TotalHostSeconds) || !near(fa.TotalInstanceSeconds, da.TotalInstanceSeconds) {
			t.Fatalf("[%v, end): folded %v/%v, detail %v/%v", ms, fa.TotalHostSeconds, fa.TotalInstanceSeconds, da.TotalHostSeconds, da.TotalInstanceSeconds)
		}
	}
	// Any window after the horizon is exact, per instance too.
	rng := rand.New(rand.NewPCG(9, 10))
	span := end.Sub(wf.ledger.horizon)
	for range 200 {
		a := wf.ledger.horizon.Add(time.Duration(rng.Int64N(int64(span))))
		b := a.Add(time.Duration(rng.Int64N(int64(span))))
		f, d := wf.Billing(a, b), wd.Billing(a, b)
		if f.TotalHostSeconds != d.TotalHostSeconds || f.TotalInstanceSeconds != d.TotalInstanceSeconds || len(f.InstanceSeconds) != len(d.InstanceSeconds) {
			t.Fatalf("[%v,%v): folded %v/%v (%d instances), detail %v/%v (%d)", a, b, f.TotalHostSeconds, f.TotalInstanceSeconds,
				len(f.InstanceSeconds), d.TotalHostSeconds, d.TotalInstanceSeconds, len(d.InstanceSeconds))
		}
	}
	sf, sd := wf.State().Billing, wd.State().Billing
	if sf.HostsEverAllocated != sd.HostsEverAllocated || sf.InstancesEverStarted != sd.InstancesEverStarted ||
		!near(sf.TotalHostHours, sd.TotalHostHours) || sf.MonthHostHours != sd.MonthHostHours {
		t.Fatalf("state billing folded %+v, detail %+v", sf, sd)
	}
}

func TestParseInstID(t *testing.T) {
	for _, id := range []string{"i-00123456789abcdef", "i-0fedcba9876543210", "i-0FEDCBA9876543210", "i-0123", "i-1123456789abcdef0", "i-00123456789abcdeg", "h-00123456789abcdef", "i-00123456789abcdef0"} {
		v, ok := parseInstID(id)
		want, err := strconv.ParseUint(strings.TrimPrefix(id, "i-0"), 16, 64)
		wantOK := err == nil && len(id) == 19 && strings.HasPrefix(id, "i-0")
		if ok != wantOK || (ok && v != want) {
			t.Errorf("parseInstID(%q) = %x, %v; want %x, %v", id, v, ok, want, wantOK)
		}
	}
}

// TestHostLedgerPendingInline checks that a host's first 16 pending
// (scrubbing) windows cost no allocation beyond the ledger entry: a mac pool
// host is scrubbed after every instance.
func TestHostLedgerPendingInline(t *testing.T) {
	var l ledger
	l.init()
	h := &host{family: "mac2", zone: "us-east-1a"}
	h.id = "h-0123456789abcdef0"
	l.hosts = make([]*hostLedger, 0, 1000) // (the ledger's own growth is not measured)
	allocs := testing.AllocsPerRun(100, func() {
		e := l.addHost(h)
		for i := range int64(16) {
			e.pending = append(e.pending, window{from: i, to: i + 1})
		}
	})
	if allocs != 1 {
		t.Fatalf("addHost and 16 windows: %v allocations, want 1 (the entry)", allocs)
	}
}
