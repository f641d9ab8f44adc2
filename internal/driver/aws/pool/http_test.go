package pool

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/awsemu/server"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// newHTTPFixture is a fixture whose manager (and test driver) talk to the
// world through the real SDK client over the emulator's HTTP server.
func newHTTPFixture(t *testing.T, cfg Config, mut func(*awsemu.Spec)) *fixture {
	t.Helper()
	clk := clock.NewVirtual(t0)
	w := newWorld(t, clk, mut)
	endpoint := server.NewTestServer(t, w)
	client := ec2.NewFromConfig(server.SDKConfig(endpoint, "us-west-2"))
	f := &fixture{t: t, clk: clk, world: w, api: client, cfg: cfg}
	f.m = f.start()
	return f
}

func TestOverHTTPPlaceScrubRelease(t *testing.T) {
	f := newHTTPFixture(t, macConfig(3), nil)
	p1, i1 := f.placeRun("a")
	p2, i2 := f.placeRun("b")
	if p1.HostID == p2.HostID {
		t.Fatal("double booked")
	}
	f.advance(t0.Add(40 * time.Minute))
	f.terminate(p1.HostID, i1)
	f.advance(t0.Add(3 * time.Hour))
	if n := f.m.Stats().Scrubs; n != 1 {
		t.Fatalf("scrubs = %d, want 1", n)
	}
	f.terminate(p2.HostID, i2)
	// both hosts idle: released right after 24h (+ safety), never refused
	f.advance(t0.Add(24*time.Hour + 5*time.Minute))
	st := f.m.Stats()
	if st.Releases != 2 || st.RefusedReleases != 0 || st.Hosts != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if n := len(f.worldHosts()); n != 0 {
		t.Fatalf("%d hosts left in the world", n)
	}
	// a fresh manager over HTTP adopts nothing and places again
	f.m = f.start()
	f.placeRun("c")
	if c := f.world.Calls()["AllocateHosts"]; c.Calls != 3 {
		t.Fatalf("AllocateHosts calls = %d", c.Calls)
	}
}

// TestOverHTTPRefusedReleaseIsCountedAndRetried: in a world whose mac minimum
// allocation is longer than 24h, AWS answers ReleaseHosts with an Unsuccessful
// item (HTTP 200); the pool counts it, keeps the host and retries later.
func TestOverHTTPRefusedReleaseIsCountedAndRetried(t *testing.T) {
	f := newHTTPFixture(t, macConfig(1), func(s *awsemu.Spec) {
		s.Timings.MacMinAllocation = core.Duration(25 * time.Hour)
	})
	p, inst := f.placeRun("a")
	f.terminate(p.HostID, inst)
	var errs int
	for f.clk.Now().Before(t0.Add(25*time.Hour + 10*time.Minute)) {
		next, err := f.m.Reconcile(context.Background())
		if err != nil {
			errs++
		}
		f.clk.Set(next)
	}
	st := f.m.Stats()
	if st.RefusedReleases < 2 || errs < 2 {
		t.Fatalf("refused releases = %d, reconcile errors = %d; want the refusals counted and retried", st.RefusedReleases, errs)
	}
	if st.Releases != 1 || len(f.worldHosts()) != 0 {
		t.Fatalf("host not released after AWS's minimum: %+v", st)
	}
	// refused every 5 minutes from 24h01m until 25h, not more often
	if st.RefusedReleases > 13 {
		t.Fatalf("refused releases = %d, retried too often", st.RefusedReleases)
	}
}
