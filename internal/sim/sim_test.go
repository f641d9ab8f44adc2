package sim

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/strarena"
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

// Two jobs closer than the scrubbing time: the first host is still pending
// (scrubbing) when the second job arrives, so a second host is allocated.
func TestTwoJobsCloserThanScrubbing(t *testing.T) {
	r := simulate(t, csvOf([2]time.Duration{0, time.Hour}, [2]time.Duration{2 * time.Hour, time.Hour}), Params{})
	if r.JobsServed != 2 || r.MaxHosts != 2 || r.WaitMax != 0 {
		t.Fatalf("served %d hosts %d wait %v", r.JobsServed, r.MaxHosts, r.WaitMax)
	}
	// Host 1: 0..67m busy, pending 67m..157m (not billed), idle 5m, then
	// scrubbed at 162m (pending again). Host 2: 120m..187m busy. End 187m.
	if !r.End.Equal(t0.Add(187 * time.Minute)) {
		t.Fatalf("end %v", r.End)
	}
	if !near(r.BilledHostHours, hours(67*time.Minute+5*time.Minute+67*time.Minute)) {
		t.Fatalf("billed %v", r.BilledHostHours)
	}
	if !near(r.IdleHostHours, hours(5*time.Minute)) || r.Pool["scrubs"] != 1 {
		t.Fatalf("idle %v scrubs %d", r.IdleHostHours, r.Pool["scrubs"])
	}
}

// With a scrubbing delay longer than the gap, the second job reuses the
// first host once it is available again.
func TestSecondJobReusesHostBeforeScrubbing(t *testing.T) {
	sd := 30 * time.Minute
	r := simulate(t, csvOf([2]time.Duration{0, time.Hour}, [2]time.Duration{3 * time.Hour, time.Hour}), Params{ScrubbingDelay: &sd})
	if r.MaxHosts != 1 || r.Pool["scrubs"] != 0 || r.Pool["host_allocations"] != 1 {
		t.Fatalf("hosts %d scrubs %d allocations %d", r.MaxHosts, r.Pool["scrubs"], r.Pool["host_allocations"])
	}
	// Available at 157m, idle until the job at 180m, busy until 247m.
	if !near(r.BilledHostHours, hours(67*time.Minute+23*time.Minute+67*time.Minute)) || !near(r.IdleHostHours, hours(23*time.Minute)) {
		t.Fatalf("billed %v idle %v", r.BilledHostHours, r.IdleHostHours)
	}
}

// An idle young host is scrubbed every scrubbing delay + scrubbing duration
// until it is 24h old, then released; a later job gets a new host.
func TestIdleHostReaches24h(t *testing.T) {
	r := simulate(t, csvOf([2]time.Duration{0, time.Hour}, [2]time.Duration{30 * time.Hour, time.Hour}), Params{})
	// Host 1 is available at 157m, 252m, ... (every 95m); each time it idles
	// 5m and is scrubbed: 14 scrubs fit before it is 24h old (the 14th at
	// 23h17m); then it is released.
	if r.Pool["scrubs"] != 14 || r.Pool["releases"] != 1 || r.Pool["host_allocations"] != 2 {
		t.Fatalf("scrubs %d releases %d allocations %d", r.Pool["scrubs"], r.Pool["releases"], r.Pool["host_allocations"])
	}
	if !near(r.IdleHostHours, hours(14*5*time.Minute)) {
		t.Fatalf("idle %v, want 70m", r.IdleHostHours)
	}
	if !near(r.BilledHostHours, hours(67*time.Minute+70*time.Minute+67*time.Minute)) {
		t.Fatalf("billed %v", r.BilledHostHours)
	}
	if r.HostsAtEnd != 1 || r.MaxHosts != 1 {
		t.Fatalf("hosts at end %d max %d", r.HostsAtEnd, r.MaxHosts)
	}
}

// With max hosts reached the second job queues until the only host is
// available again after scrubbing.
func TestMaxHostsQueues(t *testing.T) {
	r := simulate(t, csvOf([2]time.Duration{0, time.Hour}, [2]time.Duration{10 * time.Minute, time.Hour}), Params{MaxHosts: 1})
	// Host busy 0..67m, pending until 157m: job 2 waits 147m.
	if r.JobsServed != 2 || r.MaxQueue != 1 || r.MaxHosts != 1 {
		t.Fatalf("served %d queue %d hosts %d", r.JobsServed, r.MaxQueue, r.MaxHosts)
	}
	if r.WaitMax != 147*60 || r.MaxWaitMinutes != 147 || !near(r.WaitMean, 147*60/2) {
		t.Fatalf("wait max %v mean %v", r.WaitMax, r.WaitMean)
	}
	if !near(r.QueueHours, hours(147*time.Minute)) || !near(r.Months[0].MeanWaitSeconds, 147*60/2) {
		t.Fatalf("queue hours %v mean wait %v", r.QueueHours, r.Months[0].MeanWaitSeconds)
	}
	if !near(r.BilledHostHours, hours(134*time.Minute)) || !r.End.Equal(t0.Add(224*time.Minute)) {
		t.Fatalf("billed %v end %v", r.BilledHostHours, r.End)
	}
}

// Jobs still queued at the horizon and jobs arriving after it are reported
// unserved, never dropped.
func TestHorizonReportsUnserved(t *testing.T) {
	in := csvOf([2]time.Duration{0, time.Hour}, [2]time.Duration{10 * time.Minute, time.Hour}, [2]time.Duration{5 * time.Hour, time.Hour})
	r := simulate(t, in, Params{MaxHosts: 1, Until: t0.Add(time.Hour)})
	if r.JobsRead != 3 || r.JobsServed != 1 || r.Unserved[ReasonQueuedAtHorizon] != 1 || r.Unserved[ReasonAfterHorizon] != 1 {
		t.Fatalf("read %d served %d unserved %v", r.JobsRead, r.JobsServed, r.Unserved)
	}
	if !near(r.InstanceHours, 1) {
		t.Fatalf("instance-hours %v", r.InstanceHours)
	}
}

// A definition the world cannot serve ends as unserved after the retries.
func TestAllocationFailuresReported(t *testing.T) {
	r := simulate(t, csvOf([2]time.Duration{0, time.Hour}, [2]time.Duration{time.Minute, time.Hour}), Params{Image: "no-such-image"})
	if r.JobsServed != 0 || r.Unserved[ReasonAllocFailed] != 2 || r.Loop.AllocationErrors != 2*(DefaultAllocationRetry+1) {
		t.Fatalf("served %d unserved %v errors %d", r.JobsServed, r.Unserved, r.Loop.AllocationErrors)
	}
}

// Month boundaries split instance, initialization and queue time exactly.
func TestMonthSplit(t *testing.T) {
	start := 31*24*time.Hour - 30*time.Minute // Jan 31 23:30
	r := simulate(t, csvOf([2]time.Duration{start, time.Hour}), Params{})
	if len(r.Months) != 2 || r.Months[0].Label != "Jan" || r.Months[1].Label != "Feb" {
		t.Fatalf("months %+v", r.Months)
	}
	// Boot 23:30..23:37, job 23:37..00:37.
	if !near(r.Months[0].InitHours, hours(7*time.Minute)) || !near(r.Months[0].InstanceHours, hours(23*time.Minute)) || !near(r.Months[1].InstanceHours, hours(37*time.Minute)) {
		t.Fatalf("months %+v", r.Months)
	}
	if !near(r.Months[0].HostHours, hours(30*time.Minute)) || !near(r.Months[1].HostHours, hours(37*time.Minute)) {
		t.Fatalf("host hours %v %v", r.Months[0].HostHours, r.Months[1].HostHours)
	}
}

// Capacity failures injected into the world delay jobs but lose none.
func TestFailureRateConservesJobs(t *testing.T) {
	var b strings.Builder
	b.WriteString("startTime,endTime,executionTime,jobName,stageName\n")
	for i := range 300 {
		s := t0.Unix() + int64(i)*97
		fmt.Fprintf(&b, "%d,%d,%d,j,s\n", s, s+1800, 1800)
	}
	r := simulate(t, b.String(), Params{FailureRate: 0.3, MaxHosts: 20, Seed: 7})
	if r.JobsServed != 300 || r.JobsUnserved != 0 {
		t.Fatalf("served %d unserved %v", r.JobsServed, r.Unserved)
	}
	if r.APICalls["RunInstances"].Errors == 0 || r.Loop.CapacityMisses == 0 {
		t.Fatalf("no injected failures seen: %+v %+v", r.APICalls["RunInstances"], r.Loop)
	}
	if !near(r.InstanceHours, 300*0.5) {
		t.Fatalf("instance-hours %v", r.InstanceHours)
	}
}

func TestParamsValidation(t *testing.T) {
	neg := -time.Minute
	cases := []struct {
		p    Params
		want string
	}{
		{Params{MaxHosts: -1}, "max-hosts"},
		{Params{ScrubbingDelay: &neg}, "scrubbing-delay"},
		{Params{FailureRate: 1}, "failure-rate"},
		{Params{Zones: []string{" "}}, "zones[0]"},
		{Params{BootTime: -time.Second}, "boot-time"},
	}
	for _, c := range cases {
		_, err := Run(context.Background(), strings.NewReader(csvOf([2]time.Duration{0, time.Hour})), c.p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error naming %q", c.p, err, c.want)
		}
	}
}

// TestWorkloads runs every shared workload and checks conservation against
// the file itself. Files above 1 MB (the year) run only with
// AQUARIUM_SIM_LONG=1, to keep the package's tests short.
func TestWorkloads(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(workloadDir(), "*.csv"))
	if len(files) == 0 {
		t.Skip("no workloads in " + workloadDir())
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if st, err := os.Stat(path); err == nil && st.Size() > 1<<20 && os.Getenv("AQUARIUM_SIM_LONG") == "" {
				t.Skip("long: set AQUARIUM_SIM_LONG=1")
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var rows, execSec int64
			rd, err := NewReader(strings.NewReader(string(raw)))
			if err != nil {
				t.Fatal(err)
			}
			for {
				j, err := rd.Next()
				if err != nil {
					break
				}
				rows++
				execSec += j.Exec
			}
			r := simulate(t, string(raw), Params{})
			if r.JobsRead != rows || r.JobsServed != rows {
				t.Fatalf("rows %d read %d served %d unserved %v", rows, r.JobsRead, r.JobsServed, r.Unserved)
			}
			if !near(r.InstanceHours, float64(execSec)/3600) {
				t.Fatalf("instance-hours %v, want %v", r.InstanceHours, float64(execSec)/3600)
			}
			if r.BilledHostHours < r.BusyHostHours {
				t.Fatalf("billed %v < busy %v", r.BilledHostHours, r.BusyHostHours)
			}
		})
	}
}

// Rows after the horizon are counted but add no months to the table.
func TestHorizonAddsNoMonths(t *testing.T) {
	in := csvOf([2]time.Duration{0, time.Hour}, [2]time.Duration{90 * 24 * time.Hour, time.Hour})
	r := simulate(t, in, Params{Until: t0.Add(2 * time.Hour)})
	if len(r.Months) != 1 || r.Unserved[ReasonAfterHorizon] != 1 || r.JobsServed != 1 {
		t.Fatalf("months %d unserved %v", len(r.Months), r.Unserved)
	}
}

// A job running over New Year adds a month labelled with its year.
func TestMonthLabelsAcrossYears(t *testing.T) {
	r := simulate(t, csvOf([2]time.Duration{365*24*time.Hour - 30*time.Minute, time.Hour}), Params{})
	if len(r.Months) != 2 || r.Months[0].Label != "Dec" || r.Months[1].Label != "Jan26" {
		t.Fatalf("labels %q %q", r.Months[0].Label, r.Months[1].Label)
	}
}

// A queue that cannot move while nothing runs or arrives is reported
// unserved after StallLimit (here: the only host keeps refusing instances
// during a very long available lag).
func TestStalledQueueReported(t *testing.T) {
	in := csvOf([2]time.Duration{0, time.Hour}, [2]time.Duration{10 * time.Minute, time.Hour})
	r := simulate(t, in, Params{MaxHosts: 1, AvailableLag: 30 * 24 * time.Hour, StallLimit: 3 * time.Hour})
	if r.JobsServed != 1 || r.Unserved[ReasonStalled] != 1 {
		t.Fatalf("served %d unserved %v", r.JobsServed, r.Unserved)
	}
	if r.Loop.CapacityMisses == 0 {
		t.Fatalf("the lag never refused an instance: %+v", r.Loop)
	}
}

// uid makes "sim-<line>".
func TestUID(t *testing.T) {
	var a strarena.Arena
	for _, l := range []int{0, 7, -5, 175404} {
		if got, want := uid(&a, l), "sim-"+strconv.Itoa(l); got != want {
			t.Fatalf("uid(%d) = %q, want %q", l, got, want)
		}
	}
}
