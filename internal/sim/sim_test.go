package sim

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// t0 is 2025-01-01T00:00:00Z.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// csvOf builds a workload from (start offset, execution time) pairs.
func csvOf(jobs ...[2]time.Duration) string {
	var b strings.Builder
	b.WriteString("startTime,endTime,executionTime,jobName,stageName\n")
	for i, j := range jobs {
		s := t0.Add(j[0]).Unix()
		fmt.Fprintf(&b, "%d,%d,%d,job-%d,build\n", s, s+int64(j[1].Seconds()), int64(j[1].Seconds()), i)
	}
	return b.String()
}

func simulate(t *testing.T, in string, p Params) *Result {
	t.Helper()
	r, err := Run(context.Background(), strings.NewReader(in), p)
	if err != nil {
		t.Fatal(err)
	}
	checkConservation(t, r)
	return r
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// checkConservation asserts the invariants every run must keep.
func checkConservation(t *testing.T, r *Result) {
	t.Helper()
	if r.JobsServed+r.JobsUnserved != r.JobsRead {
		t.Errorf("served %d + unserved %d != read %d", r.JobsServed, r.JobsUnserved, r.JobsRead)
	}
	var inst, host, init float64
	for _, m := range r.Months {
		inst += m.InstanceHours
		host += m.HostHours
		init += m.InitHours
	}
	if !near(inst, r.InstanceHours) || !near(init, r.InitHostHours) || !near(host, r.BilledHostHours) {
		t.Errorf("monthly sums (inst %v init %v host %v) != totals (%v %v %v)", inst, init, host, r.InstanceHours, r.InitHostHours, r.BilledHostHours)
	}
	if r.BilledHostHours+1e-9 < r.BusyHostHours+r.InitHostHours {
		t.Errorf("billed host-hours %v < busy %v + initializing %v", r.BilledHostHours, r.BusyHostHours, r.InitHostHours)
	}
	if r.Loop.EarlyStarts != 0 {
		t.Errorf("%d jobs started before their startTime", r.Loop.EarlyStarts)
	}
	if r.Pool["refused_releases"] != 0 {
		t.Errorf("AWS refused %d releases", r.Pool["refused_releases"])
	}
	if r.MaxHosts > r.Params.MaxHosts {
		t.Errorf("max hosts %d above the pool max %d", r.MaxHosts, r.Params.MaxHosts)
	}
}

func hours(d time.Duration) float64 { return d.Hours() }

func TestOneJob(t *testing.T) {
	r := simulate(t, csvOf([2]time.Duration{0, time.Hour}), Params{})
	if r.JobsRead != 1 || r.JobsServed != 1 || r.WaitMax != 0 {
		t.Fatalf("read %d served %d wait %v", r.JobsRead, r.JobsServed, r.WaitMax)
	}
	// One host allocated at t0; the instance boots 7m and runs 1h; the
	// simulation ends when the job ends.
	if !near(r.InstanceHours, 1) || !near(r.InitHostHours, hours(7*time.Minute)) {
		t.Fatalf("instance-hours %v init %v", r.InstanceHours, r.InitHostHours)
	}
	if !near(r.BilledHostHours, hours(67*time.Minute)) || !near(r.IdleHostHours, 0) {
		t.Fatalf("billed %v idle %v, want 67m and 0", r.BilledHostHours, r.IdleHostHours)
	}
	if r.MaxHosts != 1 || r.MaxInstances != 1 || r.MaxQueue != 1 {
		t.Fatalf("max hosts %d instances %d queue %d", r.MaxHosts, r.MaxInstances, r.MaxQueue)
	}
	if !r.End.Equal(t0.Add(67 * time.Minute)) {
		t.Fatalf("end %v", r.End)
	}
	if c := r.APICalls["AllocateHosts"].Calls; c != 1 {
		t.Fatalf("AllocateHosts calls %d", c)
	}
	if c := r.APICalls["RunInstances"].Calls; c != 1 {
		t.Fatalf("RunInstances calls %d", c)
	}
	if !near(r.Cost, r.BilledHostHours*0.65) {
		t.Fatalf("cost %v", r.Cost)
	}
}
