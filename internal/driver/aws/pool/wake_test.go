package pool

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
)

// callLog records every EC2 call that changes or reads hosts, with its
// virtual time and ids, so two runs can be compared call for call.
type callLog struct {
	EC2API
	f   *fixture
	log []string
}

func (c *callLog) add(action string, ids []string) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	c.log = append(c.log, fmt.Sprintf("%v %s %v", c.f.clk.Now().Sub(t0), action, ids))
}

func (c *callLog) DescribeHosts(ctx context.Context, in *ec2.DescribeHostsInput, opts ...func(*ec2.Options)) (*ec2.DescribeHostsOutput, error) {
	kind := "DescribeHosts(full)"
	if len(in.HostIds) > 0 {
		kind = "DescribeHosts(ids)"
	}
	c.add(kind, in.HostIds)
	return c.EC2API.DescribeHosts(ctx, in, opts...)
}

func (c *callLog) AllocateHosts(ctx context.Context, in *ec2.AllocateHostsInput, opts ...func(*ec2.Options)) (*ec2.AllocateHostsOutput, error) {
	out, err := c.EC2API.AllocateHosts(ctx, in, opts...)
	if err == nil {
		c.add("AllocateHosts", out.HostIds)
	}
	return out, err
}

func (c *callLog) ReleaseHosts(ctx context.Context, in *ec2.ReleaseHostsInput, opts ...func(*ec2.Options)) (*ec2.ReleaseHostsOutput, error) {
	c.add("ReleaseHosts", in.HostIds)
	return c.EC2API.ReleaseHosts(ctx, in, opts...)
}

func (c *callLog) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, opts ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	host := ""
	if in.Placement != nil && in.Placement.HostId != nil {
		host = *in.Placement.HostId
	}
	c.add("RunInstances", []string{host})
	return c.EC2API.RunInstances(ctx, in, opts...)
}

func (c *callLog) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, opts ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	c.add("TerminateInstances", in.InstanceIds)
	return c.EC2API.TerminateInstances(ctx, in, opts...)
}

// legacyNextWake is nextWake before pending hosts blocked by the describe
// gap were skipped: the due heap's top counts whatever it is.
func (m *Manager) legacyNextWake() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	next := m.lastFull.Add(m.fullEvery)
	if !next.Equal(m.fullDue) || !m.describeGate.Equal(m.lastDescribe.Add(minDescribeGap)) {
		panic("fullDue or describeGate out of date")
	}
	if m.wantRefresh || len(m.pollQ) > 0 {
		t := m.lastDescribe.Add(minDescribeGap)
		if t.Before(now) {
			t = now
		}
		if t.Before(next) {
			next = t
		}
	}
	if len(m.dueQ) > 0 && m.dueQ[0].h.due.Before(next) {
		next = m.dueQ[0].h.due
	}
	if len(m.waiting) > 0 && m.waiting[0].placeableAt().Before(next) {
		next = m.waiting[0].placeableAt()
	}
	return next
}

// hostsView is the decision state of every host (sorted by id).
func (m *Manager) hostsView() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var lines []string
	for id, h := range m.hosts {
		lines = append(lines, fmt.Sprintf("%s %s expect %s due %s retry %s used %d", id, h.state,
			sinceT0(h.expectAvail), sinceT0(h.due), sinceT0(h.retryAt), len(h.used)))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func sinceT0(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Sub(t0).String()
}

// wakeRun is the outcome of one scripted run.
type wakeRun struct {
	calls  []string             // EC2 calls with their times
	passes []time.Time          // Reconcile passes
	idle   int                  // passes that made no EC2 call
	polls  []string             // DescribeHosts by id made by passes
	views  map[time.Time]string // the hosts after each pass
}

// runScript drives a pool like the simulator does: jobs start and end at
// fixed virtual times (Place+RunInstances+Bind, TerminateInstances+
// InstanceGone), and Reconcile runs at the wake-ups the pool asks for
// (NextWake after a driver call, Reconcile's answer after a pass). With
// legacy, it also runs a pass at every wake-up the old nextWake asked for.
func runScript(t *testing.T, cfg Config, legacy bool, jobs []scriptJob, until time.Duration) wakeRun {
	t.Helper()
	f := newFixture(t, cfg, nil)
	rec := &callLog{EC2API: f.world, f: f}
	f.api = rec
	f.m = f.start()
	rec.log = nil

	type event struct {
		at    time.Duration
		start bool
		job   int
	}
	var evs []event
	for i, j := range jobs {
		evs = append(evs, event{j.start, true, i}, event{j.start + j.length, false, i})
	}
	slices.SortStableFunc(evs, func(a, b event) int { return int(a.at - b.at) })
	placed := make([]Placement, len(jobs))
	inst := make([]string, len(jobs))

	var out wakeRun
	out.views = map[time.Time]string{}
	wakeAt := func(next, cur time.Time) time.Time {
		if legacy {
			if l := f.m.legacyNextWake(); l.Before(next) {
				next = l
			}
		}
		if cur.IsZero() || next.Before(cur) {
			return next
		}
		return cur
	}
	pass := f.clk.Now()
	end := t0.Add(until)
	for {
		evAt := end
		if len(evs) > 0 {
			evAt = t0.Add(evs[0].at)
		}
		if len(evs) > 0 && !evAt.After(pass) {
			// driver calls first at equal times (in both runs)
			f.clk.Set(evAt)
			e := evs[0]
			evs = evs[1:]
			if e.start {
				placed[e.job], inst[e.job] = f.placeRun(fmt.Sprintf("job-%d", e.job))
			} else {
				f.terminate(placed[e.job].HostID, inst[e.job])
			}
			checkHostCounts(t, f.m)
			pass = wakeAt(f.m.NextWake(), pass)
			continue
		}
		if pass.After(end) {
			break
		}
		f.clk.Set(pass)
		n := len(rec.log)
		next := f.reconcile()
		out.passes = append(out.passes, pass)
		out.views[pass] = f.m.hostsView()
		checkHostCounts(t, f.m)
		if len(rec.log) == n {
			out.idle++
		}
		for _, c := range rec.log[n:] {
			if strings.Contains(c, "DescribeHosts(ids)") {
				out.polls = append(out.polls, c)
			}
		}
		pass = wakeAt(next, time.Time{})
	}
	out.calls = rec.log
	return out
}

type scriptJob struct{ start, length time.Duration }

// TestGatedPollsNeedNoExtraPass: a pending host whose expected end of
// scrubbing comes less than minDescribeGap after the last DescribeHosts
// is not woken up for at that time (the pass could only queue it); it is
// polled at the end of the gap together with the others, exactly as when
// the extra pass ran: same calls at the same times, fewer passes.
func TestGatedPollsNeedNoExtraPass(t *testing.T) {
	cfg := macConfig(12)
	cfg.Zones = []string{"us-west-2a"}
	// staggered job ends (seconds apart, within a minute and across it) so
	// that scrubbing hosts come due for a poll inside each other's gap
	jobs := []scriptJob{
		{0, 10 * time.Minute},
		{0, 10*time.Minute + 20*time.Second},
		{0, 10*time.Minute + 45*time.Second},
		{0, 11*time.Minute + 30*time.Second},
		{time.Minute, 3 * time.Hour},
		{2 * time.Minute, 2*time.Hour + 7*time.Second},
		{4 * time.Hour, 50 * time.Minute},
		{4*time.Hour + 13*time.Second, 50 * time.Minute},
		{4*time.Hour + 50*time.Second, 50*time.Minute + 5*time.Second},
		{9 * time.Hour, 10 * time.Minute},
	}
	until := 30 * time.Hour // past the release age: releases and full refreshes too
	legacy := runScript(t, cfg, true, jobs, until)
	now := runScript(t, cfg, false, jobs, until)
	if !slices.Equal(now.calls, legacy.calls) {
		for i := range min(len(now.calls), len(legacy.calls)) {
			if now.calls[i] != legacy.calls[i] {
				t.Fatalf("call %d: %q, with the extra passes %q", i, now.calls[i], legacy.calls[i])
			}
		}
		t.Fatalf("%d calls, with the extra passes %d", len(now.calls), len(legacy.calls))
	}
	for _, p := range now.passes { // the extra passes are a superset
		lv, ok := legacy.views[p]
		if !ok {
			t.Fatalf("pass at %v: none with the extra passes", p.Sub(t0))
		}
		if nv := now.views[p]; nv != lv {
			t.Fatalf("hosts after the pass at %v:\n%s\nwith the extra passes:\n%s", p.Sub(t0), nv, lv)
		}
	}
	if len(now.passes) >= len(legacy.passes) {
		t.Fatalf("%d passes, with the extra passes %d: none saved", len(now.passes), len(legacy.passes))
	}
	saved := len(legacy.passes) - len(now.passes)
	if legacy.idle-now.idle != saved {
		t.Errorf("saved %d passes but %d idle ones (%d -> %d): a pass that did something went missing", saved, legacy.idle-now.idle, legacy.idle, now.idle)
	}
	t.Logf("passes %d -> %d (idle %d -> %d), %d calls", len(legacy.passes), len(now.passes), legacy.idle, now.idle, len(now.calls))
}

// TestGatedPollTimes pins the poll times on the virtual clock: two hosts
// start scrubbing 30 s apart; the second is expected available inside the
// gap after the first one's poll, so it waits for the next poll (one
// minute after the first) and both are then polled together every minute,
// with no pass at the second one's expected time.
func TestGatedPollTimes(t *testing.T) {
	cfg := macConfig(2)
	cfg.Zones = []string{"us-west-2a"}
	jobs := []scriptJob{
		{0, 10 * time.Minute},
		{0, 10*time.Minute + 30*time.Second},
	}
	r := runScript(t, cfg, false, jobs, 3*time.Hour)
	// scrubbing starts at 10m and 10m30s; the default estimate is 1h, the
	// world scrubs for 90m (available at 100m and 100m30s)
	got := r.polls
	var want []string
	first := fmt.Sprintf("%v DescribeHosts(ids) [%s]", 70*time.Minute, hostOf(r.calls, 0))
	want = append(want, first)
	for m := 71; m <= 100; m++ { // the first host is read available at 100m
		want = append(want, fmt.Sprintf("%v DescribeHosts(ids) %v", time.Duration(m)*time.Minute, sortedHosts(r.calls)))
	}
	want = append(want, fmt.Sprintf("%v DescribeHosts(ids) [%s]", 101*time.Minute, hostOf(r.calls, 1)))
	if !slices.Equal(got, want) {
		t.Fatalf("polls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range r.passes {
		if d := p.Sub(t0); d == 70*time.Minute+30*time.Second {
			t.Fatalf("a pass ran at %v, where the second host's poll could only be queued", d)
		}
	}
}

// hostOf is the id of the i-th host allocated in a call log.
func hostOf(calls []string, i int) string {
	n := 0
	for _, c := range calls {
		if strings.Contains(c, "AllocateHosts") {
			if n == i {
				s := c[strings.Index(c, "[")+1 : strings.Index(c, "]")]
				return s
			}
			n++
		}
	}
	return ""
}

func sortedHosts(calls []string) []string {
	ids := []string{hostOf(calls, 0), hostOf(calls, 1)}
	slices.Sort(ids)
	return ids
}

// checkHostCounts compares the host counts kept by touch with a scan of
// every host, and each host's due heap entry with its fields.
func checkHostCounts(t testing.TB, m *Manager) {
	t.Helper()
	// HostCounts says what Stats says (not in benchmarks, which count
	// allocations: Stats allocates)
	if _, bench := t.(*testing.B); !bench {
		st, hc := m.Stats(), m.HostCounts()
		if want := (HostCounts{Hosts: st.Hosts, Busy: st.HostsBusy, Idle: st.HostsIdle, Pending: st.HostsPending, Failed: st.HostsFailed, Max: st.MaxHosts}); hc != want {
			t.Fatalf("HostCounts %+v, Stats says %+v", hc, want)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var scan [numHostCats]int
	for _, h := range m.hosts {
		scan[h.category()]++
		if h.cat != h.category() {
			t.Fatalf("host %s counted as %d, is %d", h.id, h.cat, h.category())
		}
		// the due heap agrees with the host's fields (touch skipped for
		// unchanged pending hosts must not leave a stale key)
		due, rest := m.computeDue(h)
		if !due.Equal(h.due) || !rest.Equal(h.dueRest) {
			t.Fatalf("host %s: due %v (rest %v), its fields say %v (%v)", h.id, h.due, h.dueRest, due, rest)
		}
		if due.IsZero() != (h.dueIdx < 0) || (h.dueIdx >= 0 && (m.dueQ[h.dueIdx].h != h || m.dueQ[h.dueIdx].at != due.UnixNano())) {
			t.Fatalf("host %s: due heap entry %d does not match due %v", h.id, h.dueIdx, due)
		}
		// the free and waiting heaps too (a merge that skips touch must
		// not leave a host in the wrong one). A waiting host may have
		// become ready since (promote moves it at the next call), a free
		// one stays ready.
		placeable := h.state == hostAvailable && !h.busyWithAction() && h.free() > 0
		inFree, inWait := h.freeIdx >= 0, h.waitIdx >= 0
		switch {
		case inFree && (!placeable || inWait || h.zv.free[h.freeIdx] != h || h.countedFree != h.free()):
			t.Fatalf("host %s: in the free heap, placeable %v, waiting %v, counted %d of %d free", h.id, placeable, inWait, h.countedFree, h.free())
		case inWait && (!placeable || m.waiting[h.waitIdx] != h):
			t.Fatalf("host %s: in the waiting heap, placeable %v", h.id, placeable)
		case !inFree && (h.countedFree != 0 || (placeable && !inWait)):
			t.Fatalf("host %s: placeable %v in neither heap (counted %d)", h.id, placeable, h.countedFree)
		}
	}
	for c := catPending; c < numHostCats; c++ {
		if scan[c] != m.hostCount[c] {
			t.Fatalf("host counts %v, a scan finds %v", m.hostCount[1:], scan[1:])
		}
	}
}

// shiftedAllocation answers polls (DescribeHosts by id) after `from` with
// an allocation time an hour earlier than the world's: a change the view
// must take in although the host stays pending.
type shiftedAllocation struct {
	EC2API
	clk  *clock.Virtual
	from time.Time
}

func (s *shiftedAllocation) DescribeHosts(ctx context.Context, in *ec2.DescribeHostsInput, opts ...func(*ec2.Options)) (*ec2.DescribeHostsOutput, error) {
	out, err := s.EC2API.DescribeHosts(ctx, in, opts...)
	if err != nil || len(in.HostIds) == 0 || s.clk.Now().Before(s.from) {
		return out, err
	}
	cp := *out
	cp.Hosts = slices.Clone(out.Hosts)
	for i := range cp.Hosts {
		if t := cp.Hosts[i].AllocationTime; t != nil {
			earlier := t.Add(-time.Hour)
			cp.Hosts[i].AllocationTime = &earlier
		}
	}
	return &cp, nil
}

// TestPollOfAPendingHostTakesChanges: a poll that changes a host that
// stays pending (here its allocation time) updates its due times.
func TestPollOfAPendingHostTakesChanges(t *testing.T) {
	cfg := macConfig(1)
	cfg.Zones = []string{"us-west-2a"}
	f := newFixture(t, cfg, nil)
	f.api = &shiftedAllocation{EC2API: f.world, clk: f.clk, from: t0.Add(80 * time.Minute)}
	f.m = f.start()
	p, inst := f.placeRun("job")
	f.advance(t0.Add(10 * time.Minute))
	f.terminate(p.HostID, inst) // scrubbing for 90m, polled from 70m
	f.advance(t0.Add(85 * time.Minute))
	f.m.mu.Lock()
	h := f.m.hosts[p.HostID]
	state, alloc := h.state, h.allocatedAt
	f.m.mu.Unlock()
	if state != hostPending || !alloc.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("host %s allocated at %v, want %v (pending: %v)", h.id, alloc.Sub(t0), -time.Hour, state == hostPending)
	}
	checkHostCounts(t, f.m)
}

// releasedAnswer answers polls (DescribeHosts by id) after `from` with the
// hosts in state released, as if someone released them outside the pool.
type releasedAnswer struct {
	EC2API
	clk   *clock.Virtual
	from  time.Time
	polls int
}

func (r *releasedAnswer) DescribeHosts(ctx context.Context, in *ec2.DescribeHostsInput, opts ...func(*ec2.Options)) (*ec2.DescribeHostsOutput, error) {
	out, err := r.EC2API.DescribeHosts(ctx, in, opts...)
	if err != nil || len(in.HostIds) == 0 || r.clk.Now().Before(r.from) {
		return out, err
	}
	r.polls++
	cp := *out
	cp.Hosts = slices.Clone(out.Hosts)
	for i := range cp.Hosts {
		cp.Hosts[i].State = types.AllocationStateReleased
	}
	return &cp, nil
}

// TestPollAnsweredReleasedDropsTheHost: a one-host poll (mergePoll's path
// without lookups by id) still drops a host that AWS reports released.
func TestPollAnsweredReleasedDropsTheHost(t *testing.T) {
	cfg := macConfig(1)
	cfg.Zones = []string{"us-west-2a"}
	f := newFixture(t, cfg, nil)
	api := &releasedAnswer{EC2API: f.world, clk: f.clk, from: t0.Add(80 * time.Minute)}
	f.api = api
	f.m = f.start()
	p, inst := f.placeRun("job")
	f.advance(t0.Add(10 * time.Minute))
	f.terminate(p.HostID, inst) // scrubbing for 90m, polled from 70m
	f.advance(t0.Add(85 * time.Minute))
	if api.polls == 0 {
		t.Fatal("no poll after 80m")
	}
	f.m.mu.Lock()
	h, surprises := f.m.hosts[p.HostID], f.m.surprises
	f.m.mu.Unlock()
	if h != nil || surprises == 0 {
		t.Fatalf("host %s still in the view (%v) after a released answer, surprises %d", p.HostID, h != nil, surprises)
	}
	checkHostCounts(t, f.m)
}

// slowRefresh moves the clock by `by` during each full DescribeHosts (tag
// filter, no ids) from `from` on, as a real call takes time.
type slowRefresh struct {
	EC2API
	clk       *clock.Virtual
	from      time.Time
	by        time.Duration
	refreshes int
}

func (s *slowRefresh) DescribeHosts(ctx context.Context, in *ec2.DescribeHostsInput, opts ...func(*ec2.Options)) (*ec2.DescribeHostsOutput, error) {
	if len(in.HostIds) == 0 && !s.clk.Now().Before(s.from) {
		s.refreshes++
		s.clk.Set(s.clk.Now().Add(s.by))
	}
	return s.EC2API.DescribeHosts(ctx, in, opts...)
}

// TestRefreshMakesAWaitingHostPlaceable: a full refresh that finds a host
// unchanged still moves it from the waiting heap to the free heap when its
// placeable time came during the refresh (merges skip touch only when it
// would change nothing).
func TestRefreshMakesAWaitingHostPlaceable(t *testing.T) {
	ctx := context.Background()
	cfg := macConfig(1)
	cfg.Zones = []string{"us-west-2a"}
	f := newFixture(t, cfg, nil)
	api := &slowRefresh{EC2API: f.world, clk: f.clk, from: t0.Add(2 * time.Minute), by: 2 * time.Minute}
	f.api = api
	f.m = f.start()
	p, err := f.m.Place(ctx, PlaceRequest{Token: "a"})
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Set(t0.Add(2 * time.Minute))
	f.m.Unreserve("a", p.HostID) // suspect until 3m, and a refresh is wanted
	f.m.mu.Lock()
	h := f.m.hosts[p.HostID]
	waiting := h.waitIdx >= 0
	f.m.mu.Unlock()
	if !waiting {
		t.Fatalf("host %s not waiting after Unreserve", p.HostID)
	}
	if _, err := f.m.Reconcile(ctx); err != nil { // refresh from 2m to 4m
		t.Fatal(err)
	}
	f.m.mu.Lock()
	free, waiting := h.freeIdx >= 0, h.waitIdx >= 0
	f.m.mu.Unlock()
	if api.refreshes != 1 || !free || waiting {
		t.Fatalf("after %d refreshes: host %s in the free heap %v, waiting %v; want free", api.refreshes, h.id, free, waiting)
	}
	checkHostCounts(t, f.m)
}
