package pool

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// value reads a counter or gauge.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestRunReconcilesAndWakesEarly runs the production runner: it reconciles
// at once, is woken by Place long before its timer (which waits up to a
// minute of wall time), and stops with its context.
func TestRunReconcilesAndWakesEarly(t *testing.T) {
	f := newFixture(t, macConfig(2), nil)
	ctx := context.Background()
	p, err := f.m.Place(ctx, PlaceRequest{Token: "a"})
	if err != nil {
		t.Fatal(err)
	}
	f.m.Unreserve("a", p.HostID)
	f.clk.Advance(25 * time.Hour) // the idle host is due for release
	select {                      // the Unreserve above signalled: start from a quiet runner
	case <-f.m.wake:
	default:
	}
	passes := make(chan struct{}, 16)
	f.m.afterRunPass = func() { passes <- struct{}{} }
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.m.Run(runCtx); close(done) }()
	wait := func(what string) {
		select {
		case <-passes:
		case <-time.After(20 * time.Second): // failure guard only (the timer would wait 1 min)
			t.Fatalf("Run did not reconcile: %s", what)
		}
	}
	wait("first pass")
	if st := f.m.Stats(); st.Releases != 1 {
		t.Fatalf("releases after the first pass = %d", st.Releases)
	}
	select {
	case <-passes:
		t.Fatal("Run reconciled again without being woken")
	default:
	}
	if _, err := f.m.Place(ctx, PlaceRequest{Token: "b"}); err != nil {
		t.Fatal(err)
	}
	wait("woken by Place")
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	mt, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("registering twice must fail")
	}
	f := newFixture(t, macConfig(2), nil)
	f.m.metrics = mt
	p, inst := f.placeRun("a")
	f.terminate(p.HostID, inst)
	f.advance(t0.Add(24*time.Hour + 5*time.Minute))
	if v := value(t, mt.Placements.WithLabelValues("macs", "ok")); v != 1 {
		t.Errorf("placements ok = %v", v)
	}
	if v := value(t, mt.Releases.WithLabelValues("macs")); v != 1 {
		t.Errorf("releases = %v", v)
	}
	if v := value(t, mt.RefusedReleases.WithLabelValues("macs")); v != 0 {
		t.Errorf("refused = %v", v)
	}
	if v := value(t, mt.Scrubs.WithLabelValues("macs")); v < 1 {
		t.Errorf("scrubs = %v", v)
	}
	if v := value(t, mt.APICalls.WithLabelValues("macs", "ReleaseHosts", "ok")); v != 1 {
		t.Errorf("ReleaseHosts calls = %v", v)
	}
	if v := value(t, mt.Hosts.WithLabelValues("macs", "idle")); v != 0 {
		t.Errorf("idle hosts gauge = %v", v)
	}
	st := f.m.Stats()
	if st.APICalls["ReleaseHosts"] != 1 || st.Releases != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// failingRuns is a fake EC2 whose RunInstances fails every other call and
// answers no instance on the others' half.
type failingRuns struct {
	*fakeEC2
	n int
}

func (f *failingRuns) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, o ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	f.n++
	switch f.n % 4 {
	case 1:
		return nil, errors.New("boom")
	case 2:
		return &ec2.RunInstancesOutput{}, nil
	}
	return f.fakeEC2.RunInstances(ctx, in, o...)
}

// The call counters of Stats and of the metrics agree, failed scrub
// launches (an error, or no instance in the answer) included.
func TestCallCountersAgreeWithMetrics(t *testing.T) {
	mt, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(t0)
	api := &failingRuns{fakeEC2: newFakeEC2(clk, 90*time.Minute)}
	cfg := Config{Name: "macs", Type: "mac2.metal", Zones: []string{"us-west-2a"}, Max: 3, ScrubbingDelay: core.Duration(5 * time.Minute)}
	m, err := New(cfg, api, Options{Clock: clk, Metrics: mt})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"a", "b", "c"} {
		p, err := m.Place(ctx, PlaceRequest{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		m.Unreserve(tok, p.HostID)
	}
	for until := t0.Add(12 * time.Hour); clk.Now().Before(until); {
		next, _ := m.Reconcile(ctx) // failed scrubs are errors
		checkHostCounts(t, m)
		clk.Set(next)
	}
	st := m.Stats()
	if st.ScrubFailures == 0 || st.Scrubs == 0 {
		t.Fatalf("want failed and successful scrubs: %+v", st)
	}
	for a := range numAPIActions {
		name := a.String()
		ok := value(t, mt.APICalls.WithLabelValues("macs", name, "ok"))
		bad := value(t, mt.APICalls.WithLabelValues("macs", name, "error"))
		if int64(ok+bad) != st.APICalls[name] || int64(bad) != st.APIErrors[name] {
			t.Errorf("%s: metrics %v ok + %v errors, stats %d calls, %d errors", name, ok, bad, st.APICalls[name], st.APIErrors[name])
		}
	}
	if st.APIErrors["RunInstances"] == 0 || st.APICalls["RunInstances"] <= st.APIErrors["RunInstances"] {
		t.Errorf("RunInstances: %d calls, %d errors", st.APICalls["RunInstances"], st.APIErrors["RunInstances"])
	}
}

// failingTerminate is a fake EC2 whose first TerminateInstances fails.
type failingTerminate struct {
	*fakeEC2
	failed bool
}

func (f *failingTerminate) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, o ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	if !f.failed {
		f.failed = true
		return nil, errors.New("throttled")
	}
	return f.fakeEC2.TerminateInstances(ctx, in, o...)
}

// A scrub instance whose termination failed is known as the pool's own:
// a refresh that sees it on the host neither adopts it as a stranger nor
// counts a surprise, and the next pass terminates it.
func TestScrubInstanceLeftByFailedTerminate(t *testing.T) {
	clk := clock.NewVirtual(t0)
	api := &failingTerminate{fakeEC2: newFakeEC2(clk, 90*time.Minute)}
	cfg := Config{Name: "macs", Type: "mac2.metal", Zones: []string{"us-west-2a"}, Max: 1, ScrubbingDelay: core.Duration(5 * time.Minute)}
	m, err := New(cfg, api, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := m.Place(ctx, PlaceRequest{Token: "a"})
	if err != nil {
		t.Fatal(err)
	}
	m.Unreserve("a", p.HostID)
	for !api.failed {
		next, _ := m.Reconcile(ctx)
		checkHostCounts(t, m)
		clk.Set(next)
	}
	h := m.hosts[p.HostID]
	if s := scrubInstance(h); s == nil || m.byInstance[s.instanceID] != s {
		t.Fatalf("the scrub instance is not known after the failed terminate: %+v", h.used)
	}
	before := m.surprises
	m.mu.Lock()
	m.lastFull, m.fullDue = time.Time{}, time.Time{} // a full refresh in the next pass, which also retries the terminate
	m.mu.Unlock()
	if err := m.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if len(h.used) != 1 || h.used[0].kind != slotScrub || m.surprises != before {
		t.Fatalf("after a refresh: %d slots (%v), %d surprises", len(h.used), h.used[0].kind, m.surprises-before)
	}
	clk.Set(h.retryAt)
	if _, err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.Scrubs != 1 || len(h.used) != 0 || len(m.byInstance) != 0 {
		t.Fatalf("after the retry: %+v, %d slots, %d instances known", st, len(h.used), len(m.byInstance))
	}
}
