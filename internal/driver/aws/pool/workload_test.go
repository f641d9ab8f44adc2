package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

// reconcilePeriod is the tolerance "one reconcile period" of the acceptance
// criteria: the pool notices a pending->available transition at its next
// poll (pendingPoll after it was due, refreshes at most every minDescribeGap).
const reconcilePeriod = pendingPoll + minDescribeGap

type wjob struct {
	tok    string
	arrive time.Time
	exec   time.Duration
}

// burstyWeek is a deterministic mac CI workload: quiet nights and weekends,
// busy working hours and a few bursts of many jobs at once.
func burstyWeek(start time.Time, seed uint64) []wjob {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var jobs []wjob
	add := func(at time.Time) {
		jobs = append(jobs, wjob{tok: fmt.Sprintf("job-%05d", len(jobs)), arrive: at,
			exec: time.Duration(10+r.IntN(80)) * time.Minute})
	}
	for h := range 7 * 24 {
		hourStart := start.Add(time.Duration(h) * time.Hour)
		rate := 0.5 // per hour at night
		wd := hourStart.Weekday()
		if hour := hourStart.Hour(); hour >= 8 && hour < 19 && wd != time.Saturday && wd != time.Sunday {
			rate = 5
		}
		if wd == time.Saturday || wd == time.Sunday {
			rate = 0.3
		}
		for range int(rate) + boolInt(r.Float64() < rate-float64(int(rate))) {
			add(hourStart.Add(time.Duration(r.Int64N(int64(time.Hour)))))
		}
		if r.IntN(30) == 0 { // a burst: a release train of 8-20 jobs within 5 minutes
			n := 8 + r.IntN(13)
			for range n {
				add(hourStart.Add(time.Duration(r.Int64N(int64(5 * time.Minute)))))
			}
		}
	}
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].arrive.Before(jobs[j].arrive) })
	return jobs
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type runningJob struct {
	host, inst string
	end        time.Time
}

type weekResult struct {
	served, jobs int
	maxHosts     int
	maxQueue     int
	describes    int64
	hours        float64
	stats        Stats
}

// runWeek drives jobs through the pool and the world like the AWS driver
// and the simulator do, checking the acceptance invariants against what the
// world says at every step. restartAt (if non-zero) replaces the manager by
// a new one that must adopt the hosts and carry on.
func runWeek(t testing.TB, f *fixture, jobs []wjob, until time.Time, restartAt time.Time) weekResult {
	t.Helper()
	ctx := context.Background()
	scrubDelay := f.cfg.ScrubbingDelay.D()
	var (
		queue     []wjob
		running   = map[string]runningJob{}
		ji        int
		nextRec   = f.clk.Now()
		res       = weekResult{jobs: len(jobs)}
		idleFrom  = map[string]time.Time{} // available & empty in the world since
		emptyFrom = map[string]time.Time{} // no instance in the world since
		restarted = restartAt.IsZero()
		describes int64
		lastCheck time.Time
	)
	// FIFO placement, like the engine: stop at the first capacity error
	place := func(now time.Time) {
		for len(queue) > 0 {
			j := queue[0]
			p, err := f.m.Place(ctx, PlaceRequest{Token: j.tok, InstanceType: f.cfg.Type})
			if errors.Is(err, driver.ErrCapacity) {
				return
			}
			if err != nil {
				t.Fatalf("%s: Place: %v", j.tok, err)
			}
			inst, err := f.run(j.tok, p)
			if err != nil {
				t.Fatalf("%s: the world refused the pool's placement on %s: %v", j.tok, p.HostID, err)
			}
			running[j.tok] = runningJob{host: p.HostID, inst: inst, end: now.Add(7*time.Minute + j.exec)}
			queue = queue[1:]
		}
	}
	for {
		now := f.clk.Now()
		if !restarted && !now.Before(restartAt) {
			describes += f.m.Stats().APICalls["DescribeHosts"]
			f.m = f.start() // the node restarts: a new manager on the same world
			restarted = true
			st := f.m.Stats()
			if st.Hosts != len(f.worldHosts()) || st.HostsBusy < len(running) {
				t.Fatalf("after restart the manager adopted %d hosts (%d busy), world has %d, %d jobs running",
					st.Hosts, st.HostsBusy, len(f.worldHosts()), len(running))
			}
			nextRec = now
		}
		// job ends: the driver terminates the instance and tells the pool
		for tok, r := range running {
			if !r.end.After(now) {
				f.terminate(r.host, r.inst)
				delete(running, tok)
				res.served++
			}
		}
		for ji < len(jobs) && !jobs[ji].arrive.After(now) {
			queue = append(queue, jobs[ji])
			ji++
		}
		place(now)
		for pass := 0; ; pass++ {
			if w := f.m.NextWake(); w.Before(nextRec) {
				nextRec = w
			}
			if nextRec.After(now) {
				break
			}
			if pass > 3 {
				t.Fatalf("%s: the pool keeps asking for a reconcile now", now.Sub(t0))
			}
			nextRec = f.reconcile()
			place(now)
		}
		res.maxQueue = max(res.maxQueue, len(queue))
		// invariants, as AWS sees them (checked at most once per virtual
		// minute: every violation lasts longer than that)
		done := ji == len(jobs) && len(queue) == 0 && len(running) == 0
		if done || !now.Before(lastCheck.Add(time.Minute)) {
			lastCheck = now
			checkHostCounts(t, f.m)
			hosts := f.worldHosts()
			if len(hosts) > f.cfg.Max {
				t.Fatalf("%s: %d hosts, above max %d", now.Sub(t0), len(hosts), f.cfg.Max)
			}
			res.maxHosts = max(res.maxHosts, len(hosts))
			live := map[string]bool{}
			for _, h := range hosts {
				id := aws.ToString(h.HostId)
				live[id] = true
				alloc := aws.ToTime(h.AllocationTime)
				empty := len(h.Instances) == 0
				idle := empty && h.State == types.AllocationStateAvailable
				track := func(m map[string]time.Time, on bool) time.Time {
					if !on {
						delete(m, id)
						return time.Time{}
					}
					if _, ok := m[id]; !ok {
						m[id] = now
					}
					return m[id]
				}
				if from := track(idleFrom, idle); idle {
					dueAt := from.Add(scrubDelay + reconcilePeriod)
					if dueAt.Before(alloc.Add(MacMinAllocation)) && now.After(dueAt) {
						t.Fatalf("%s: young host %s idle since %s not scrubbed", now.Sub(t0), id, from.Sub(t0))
					}
				}
				if from := track(emptyFrom, empty); empty {
					releaseAt := alloc.Add(f.m.releaseAge)
					if from.After(releaseAt) {
						releaseAt = from
					}
					if now.After(releaseAt.Add(reconcilePeriod)) {
						vh := f.m.hosts[id]
						if vh != nil {
							t.Logf("view: state %s used %d releasing %v scrubbing %v retryAt %s due %s idleSince %s alloc %s", vh.state, len(vh.used), vh.releasing, vh.scrubbing, vh.retryAt.Sub(t0), vh.due.Sub(t0), vh.idleSince.Sub(t0), vh.allocatedAt.Sub(t0))
							for _, s := range vh.used {
								t.Logf("slot %+v", *s)
							}
						}
						t.Fatalf("%s: host %s (allocated %s, empty since %s) not released", now.Sub(t0), id, alloc.Sub(t0), from.Sub(t0))
					}
				}
			}
			for id := range idleFrom {
				if !live[id] {
					delete(idleFrom, id)
				}
			}
			for id := range emptyFrom {
				if !live[id] {
					delete(emptyFrom, id)
				}
			}
			if done && !now.Before(until) && len(hosts) == 0 {
				break
			}
		}
		// next event
		next := nextRec
		if ji < len(jobs) && jobs[ji].arrive.Before(next) {
			next = jobs[ji].arrive
		}
		for _, r := range running {
			if r.end.Before(next) {
				next = r.end
			}
		}
		if !restarted && restartAt.Before(next) {
			next = restartAt
		}
		if tick := lastCheck.Add(time.Minute); tick.Before(next) {
			next = tick // look at the world at least every virtual minute
		}
		if next.After(until) && now.Before(until) {
			next = until
		}
		if !next.After(now) {
			t.Fatalf("%s: event loop stuck (next %s)", now.Sub(t0), next.Sub(t0))
		}
		f.clk.Set(next)
		if now.Sub(t0) > 30*24*time.Hour {
			t.Fatalf("did not finish: %d queued, %d running", len(queue), len(running))
		}
	}
	res.stats = f.m.Stats()
	res.describes = describes + res.stats.APICalls["DescribeHosts"]
	res.hours = f.clk.Now().Sub(t0).Hours()
	return res
}

func checkWeek(t testing.TB, f *fixture, res weekResult) {
	t.Helper()
	t.Logf("jobs %d served %d, max hosts %d, max queue %d, stats %+v", res.jobs, res.served, res.maxHosts, res.maxQueue, res.stats)
	if res.served != res.jobs {
		t.Fatalf("served %d of %d jobs", res.served, res.jobs)
	}
	calls := f.world.Calls()
	if c := calls["ReleaseHosts"]; c.Errors != 0 {
		t.Fatalf("ReleaseHosts errors: %+v", c)
	}
	if res.stats.RefusedReleases != 0 {
		t.Fatalf("refused releases = %d", res.stats.RefusedReleases)
	}
	if c := calls["RunInstances"]; c.Errors != 0 {
		t.Fatalf("RunInstances errors (bookkeeping): %+v", c)
	}
	if res.stats.PlacementErrors != 0 {
		t.Fatalf("placement errors = %d", res.stats.PlacementErrors)
	}
	if res.stats.Scrubs == 0 || res.stats.Releases == 0 {
		t.Fatalf("a bursty week must scrub and release hosts: %+v", res.stats)
	}
	if perHour := float64(res.describes) / res.hours; perHour > 60 {
		t.Fatalf("DescribeHosts %.1f per hour, above 60", perHour)
	}
	// everything is released in the end (the last hosts after their 24h)
	if n := len(f.worldHosts()); n != 0 {
		t.Fatalf("%d hosts left", n)
	}
}

func weekConfig() Config {
	return Config{Name: "macs", Type: "mac2.metal", Zones: []string{"us-west-2a", "us-west-2b"}, Max: 12,
		ScrubbingDelay: core.Duration(5 * time.Minute)}
}

func TestWeekBurstyMacWorkload(t *testing.T) {
	f := newFixture(t, weekConfig(), nil)
	jobs := burstyWeek(t0, 7)
	res := runWeek(t, f, jobs, t0.Add(9*24*time.Hour), time.Time{})
	checkWeek(t, f, res)
	if res.maxQueue == 0 {
		t.Log("note: max hosts never reached")
	}
}

func TestRestartInTheMiddle(t *testing.T) {
	f := newFixture(t, weekConfig(), nil)
	jobs := burstyWeek(t0, 11)
	// restart on a busy weekday afternoon, with jobs running and hosts scrubbing
	res := runWeek(t, f, jobs, t0.Add(9*24*time.Hour), t0.Add(2*24*time.Hour+15*time.Hour+7*time.Minute))
	checkWeek(t, f, res)
}
