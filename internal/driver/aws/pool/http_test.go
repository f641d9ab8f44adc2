package pool

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu/server"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
)

// newHTTPFixture is a fixture whose manager (and test driver) talk to the
// world through the real SDK client over the emulator's HTTP server.
func newHTTPFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	clk := clock.NewVirtual(t0)
	w := newWorld(t, clk, nil)
	endpoint := server.NewTestServer(t, w)
	client := ec2.NewFromConfig(server.SDKConfig(endpoint, "us-west-2"))
	f := &fixture{t: t, clk: clk, world: w, api: client, cfg: cfg}
	f.m = f.start()
	return f
}

func TestOverHTTPPlaceScrubRelease(t *testing.T) {
	f := newHTTPFixture(t, macConfig(3))
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
