package pool

import (
	"container/heap"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/cputime"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

const workloads = "/work/shared/workloads/"

// loadJobs reads a workload CSV (startTime,endTime,executionTime,...).
func loadJobs(tb testing.TB, path string) []wjob {
	tb.Helper()
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		tb.Skipf("workload %s not present", path)
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	if _, err := r.Read(); err != nil {
		tb.Fatal(err)
	}
	var jobs []wjob
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return jobs
		}
		if err != nil {
			tb.Fatal(err)
		}
		start, err1 := strconv.ParseInt(rec[0], 10, 64)
		exec, err2 := strconv.ParseInt(rec[2], 10, 64)
		if err1 != nil || err2 != nil {
			tb.Fatalf("line %d: bad numbers", len(jobs)+2)
		}
		jobs = append(jobs, wjob{tok: fmt.Sprintf("w-%06d", len(jobs)), arrive: time.Unix(start, 0).UTC(), exec: time.Duration(exec) * time.Second})
	}
}

// TestWeekWorkloadFile runs the project's week trace through the pool and
// the world with every acceptance invariant checked at each step.
func TestWeekWorkloadFile(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("~5 s of CPU; skipped with -short and -race (the synthetic week covers the race detector)")
	}
	jobs := loadJobs(t, workloads+"week-2025-03.csv")
	cfg := Config{Name: "macs", Type: "mac2.metal", Zones: []string{"us-west-2a", "us-west-2b", "us-west-2c"}, Max: 120,
		ScrubbingDelay: core.Duration(5 * time.Minute)}
	clk := clock.NewVirtual(jobs[0].arrive)
	w := newWorld(t, clk, nil)
	f := &fixture{t: t, clk: clk, world: w, api: w, cfg: cfg}
	f.m = f.start()
	res := runWeek(t, f, jobs, jobs[len(jobs)-1].arrive.Add(26*time.Hour), time.Time{})
	res.hours = clk.Now().Sub(jobs[0].arrive).Hours()
	checkWeek(t, f, res)
}

type endHeap []endEv

type endEv struct {
	at         time.Time
	host, inst string
}

func (e endHeap) Len() int           { return len(e) }
func (e endHeap) Less(i, j int) bool { return e[i].at.Before(e[j].at) }
func (e endHeap) Swap(i, j int)      { e[i], e[j] = e[j], e[i] }
func (e *endHeap) Push(x any)        { *e = append(*e, x.(endEv)) }
func (e *endHeap) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

// replay is a light event loop (no invariant checks) for benchmarks.
func replay(tb testing.TB, cfg Config, jobs []wjob) (*fixture, time.Duration) {
	clk := clock.NewVirtual(jobs[0].arrive)
	w := newWorld(tb, clk, nil)
	f := &fixture{t: tb, clk: clk, world: w, api: w, cfg: cfg, image: "ami-0a1b2c3d400000007"} // an image that exists on Jan 1st
	f.m = f.start()
	ctx := context.Background()
	var ends endHeap
	var queue []wjob
	ji := 0
	nextRec := clk.Now()
	started := time.Now()
	for ji < len(jobs) || len(queue) > 0 || len(ends) > 0 {
		now := clk.Now()
		for len(ends) > 0 && !ends[0].at.After(now) {
			e := heap.Pop(&ends).(endEv)
			f.terminate(e.host, e.inst)
		}
		for ji < len(jobs) && !jobs[ji].arrive.After(now) {
			queue = append(queue, jobs[ji])
			ji++
		}
		for pass := 0; pass < 2; pass++ {
			if w := f.m.NextWake(); w.Before(nextRec) {
				nextRec = w
			}
			if !nextRec.After(now) {
				next, err := f.m.Reconcile(ctx)
				if err != nil {
					tb.Fatal(err)
				}
				nextRec = next
			}
			for len(queue) > 0 {
				p, err := f.m.Place(ctx, PlaceRequest{Token: queue[0].tok})
				if errors.Is(err, driver.ErrCapacity) {
					break
				}
				if err != nil {
					tb.Fatal(err)
				}
				inst, err := f.run(queue[0].tok, p)
				if err != nil {
					tb.Fatal(err)
				}
				heap.Push(&ends, endEv{at: now.Add(7*time.Minute + queue[0].exec), host: p.HostID, inst: inst})
				queue = queue[1:]
			}
		}
		next := nextRec
		if ji < len(jobs) && jobs[ji].arrive.Before(next) {
			next = jobs[ji].arrive
		}
		if len(ends) > 0 && ends[0].at.Before(next) {
			next = ends[0].at
		}
		clk.Set(next)
	}
	return f, time.Since(started)
}

// BenchmarkYearWorkload replays the year trace (175k jobs, max 500 hosts)
// through the pool and the in-memory world, and reports the pool's share of
// the simulator's work: wall time, DescribeHosts per hour, scrubs, releases.
func BenchmarkYearWorkload(b *testing.B) {
	jobs := loadJobs(b, workloads+"year-2025-mac.csv")
	if n, err := strconv.Atoi(os.Getenv("POOL_BENCH_JOBS")); err == nil && n > 0 && n < len(jobs) {
		jobs = jobs[:n] // e.g. a month for profiling
	}
	cfg := Config{Name: "macs", Type: "mac2.metal", Zones: []string{"us-west-2a", "us-west-2b", "us-west-2c"}, Max: 500,
		ScrubbingDelay: core.Duration(5 * time.Minute)}
	for range b.N {
		cpu0 := cputime.Process()
		f, wall := replay(b, cfg, jobs)
		b.ReportMetric((cputime.Process() - cpu0).Seconds(), "cpu-s")
		st := f.m.Stats()
		hours := f.clk.Now().Sub(jobs[0].arrive).Hours()
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(float64(st.APICalls["DescribeHosts"])/hours, "DescribeHosts/h")
		b.ReportMetric(float64(st.Scrubs), "scrubs")
		b.ReportMetric(float64(st.Releases), "releases")
		b.ReportMetric(float64(st.MaxHosts), "max-hosts")
		if st.RefusedReleases != 0 || st.PlacementErrors != 0 {
			b.Fatalf("refused %d, placement errors %d", st.RefusedReleases, st.PlacementErrors)
		}
	}
}
