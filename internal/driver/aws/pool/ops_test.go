package pool

import (
	"reflect"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/ec2ops"
)

// sdkOnly hides every method of its client but EC2API's, so that
// ec2ops.For gives the manager the SDK adapter even over a client that
// implements ec2ops.API natively (the world).
type sdkOnly struct{ EC2API }

// The manager behaves the same whether its hot calls go to the client's
// native ec2ops.API or through the SDK adapter: a bursty week with a
// restart (adoption by a full refresh) ends with the same results, pool
// stats and world call counts either way.
func TestNativeAndAdapterAgree(t *testing.T) {
	run := func(adapter bool) (weekResult, map[string]int64, *fixture) {
		clk := clock.NewVirtual(t0)
		w := newWorld(t, clk, nil)
		f := &fixture{t: t, clk: clk, world: w, api: w, cfg: weekConfig()}
		if adapter {
			f.api = sdkOnly{w}
		}
		f.m = f.start()
		if _, isAdapter := f.m.ops.(ec2ops.Adapter); isAdapter != (adapter || !isNative(w)) {
			t.Fatalf("adapter %v: the manager's ops are %T", adapter, f.m.ops)
		}
		res := runWeek(t, f, burstyWeek(t0, 11), t0.Add(9*24*time.Hour), t0.Add(3*24*time.Hour+5*time.Hour))
		checkWeek(t, f, res)
		calls := map[string]int64{}
		for a, c := range f.world.Calls() {
			calls[a] = c.Calls
			calls[a+" errors"] = c.Errors
		}
		return res, calls, f
	}
	nres, ncalls, nf := run(false)
	ares, acalls, af := run(true)
	if !reflect.DeepEqual(nres, ares) {
		t.Errorf("results differ:\nnative  %+v\nadapter %+v", nres, ares)
	}
	if !reflect.DeepEqual(ncalls, acalls) {
		t.Errorf("world calls differ:\nnative  %v\nadapter %v", ncalls, acalls)
	}
	if ncalls["DescribeHosts"] == 0 || ncalls["RunInstances"] == 0 || ncalls["TerminateInstances"] == 0 {
		t.Fatalf("the week made none of the hot calls: %v", ncalls)
	}
	checkScratchEmpty(t, nf.m)
	checkScratchEmpty(t, af.m)
}

func isNative(c any) bool {
	_, ok := c.(ec2ops.API)
	return ok
}

// checkScratchEmpty fails when the manager's ec2ops answer slices keep
// anything of an answer (strings) after the calls that used them.
func checkScratchEmpty(t *testing.T, m *Manager) {
	t.Helper()
	m.recMu.Lock()
	defer m.recMu.Unlock()
	m.allocMu.Lock()
	defer m.allocMu.Unlock()
	hostSlices := map[string][]ec2ops.Host{
		"poll":    m.recScratch.polled,
		"refresh": m.refreshHosts,
		"alloc":   m.allocScratch.hosts,
	}
	for name, hs := range hostSlices {
		if len(hs) != 0 {
			t.Errorf("%s scratch: %d hosts left", name, len(hs))
		}
		for i, h := range hs[:cap(hs)] {
			if h.ID != "" || h.Zone != "" || h.State != "" || h.InstanceType != "" || !h.AllocatedAt.IsZero() ||
				len(h.Capacity) != 0 || len(h.Instances) != 0 {
				t.Errorf("%s scratch [%d] not cleared: %+v", name, i, h)
			}
			for _, c := range h.Capacity[:cap(h.Capacity)] {
				if c != (ec2ops.Capacity{}) {
					t.Errorf("%s scratch [%d] capacity not cleared: %+v", name, i, c)
				}
			}
			for _, id := range h.Instances[:cap(h.Instances)] {
				if id != "" {
					t.Errorf("%s scratch [%d] instance %q kept", name, i, id)
				}
			}
		}
	}
	if cap(m.recScratch.polled) == 0 || cap(m.refreshHosts) == 0 || cap(m.allocScratch.hosts) == 0 {
		t.Errorf("a scratch slice was never used (poll %d, refresh %d, alloc %d)",
			cap(m.recScratch.polled), cap(m.refreshHosts), cap(m.allocScratch.hosts))
	}
	l := m.recScratch.launched
	if len(l) != 0 || cap(l) == 0 {
		t.Errorf("launch scratch: len %d cap %d", len(l), cap(l))
	}
	for i, v := range l[:cap(l)] {
		if v != (ec2ops.Instance{}) {
			t.Errorf("launch scratch [%d] not cleared: %+v", i, v)
		}
	}
}
