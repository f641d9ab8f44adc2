package aws

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

const poolCfg = `{"region":"us-west-2","instance_key":"generate","instance_tags":{"Node":"fish-1"},
  "dedicated_pool":{"macs":{"type":"mac2.metal","zones":["us-west-2a","us-west-2b"],"max":2,"scrubbing_delay":"10m"}}}`

func (e *env) host(id string) ec2types.Host {
	for _, h := range e.world.State().Hosts {
		if awssdk.ToString(h.HostId) == id {
			return h
		}
	}
	e.t.Fatalf("host %s not in the world", id)
	return ec2types.Host{}
}

func TestPoolAllocation(t *testing.T) {
	e := newEnv(t, poolCfg)
	if len(e.d.Pools()) != 1 || e.d.Pools()["macs"] == nil {
		t.Fatalf("pools = %v", e.d.Pools())
	}
	def := e.def(`{"image":"macos-14","pool":"macs","pool_zones":["us-west-2b"]}`, core.Resources{Network: vpcAquarium})
	capNow := func() int64 {
		t.Helper()
		n, err := e.d.AvailableCapacity(e.ctx, def)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := capNow(); got != 2 {
		t.Fatalf("capacity of an empty pool with max 2 = %d", got)
	}
	res := e.mustAllocate(def, nil)
	inst := e.instance(res.Identifier)
	if inst.Placement == nil || inst.Placement.Tenancy != ec2types.TenancyHost || awssdk.ToString(inst.Placement.HostId) == "" {
		t.Fatalf("placement = %+v", inst.Placement)
	}
	if z := awssdk.ToString(inst.Placement.AvailabilityZone); z != "us-west-2b" {
		t.Fatalf("zone = %s, want us-west-2b (pool_zones)", z)
	}
	if awssdk.ToString(inst.SubnetId) != "subnet-0a9a1a100000000b1" {
		t.Fatalf("subnet %s is not the aquarium subnet of the host's zone", awssdk.ToString(inst.SubnetId))
	}
	hostID := awssdk.ToString(inst.Placement.HostId)
	ht := tagMap(e.host(hostID).Tags)
	if _, ok := ht["AquariumDedicatedPool-macs"]; !ok || ht["AquariumDedicatedPoolName"] != "macs" {
		t.Fatalf("host tags = %v", ht)
	}
	var dd DriverData
	if err := json.Unmarshal(res.DriverData, &dd); err != nil || dd.Pool != "macs" || dd.HostID != hostID || !dd.KeyGenerated {
		t.Fatalf("driver data = %s (%v)", res.DriverData, err)
	}
	if got := capNow(); got != 1 {
		t.Fatalf("capacity after one allocation = %d, want 1", got)
	}

	// A capacity failure on the second host leaves no instance and no
	// reservation: the slot is free again.
	e.fault(awsemu.FaultRule{Action: "RunInstances", Code: "InsufficientCapacityOnHost", HTTPStatus: http.StatusInternalServerError, Count: 1})
	_, err := e.allocate(def, nil)
	if !errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("err = %v, want ErrCapacity", err)
	}
	if n := len(e.liveInstances()); n != 1 {
		t.Fatalf("live instances = %d, want 1", n)
	}
	if kp := e.world.State().KeyPairs; len(kp) != 1 {
		t.Fatalf("key pairs = %d, want 1 (the failed allocation's key must be gone)", len(kp))
	}
	// The pool keeps a host it just failed on aside for a minute.
	e.clk.Advance(2 * time.Minute)
	if got := capNow(); got != 1 {
		t.Fatalf("capacity after a failed allocation = %d, want 1 (reservation released)", got)
	}
	res2 := e.mustAllocate(def, nil)
	if h2 := awssdk.ToString(e.instance(res2.Identifier).Placement.HostId); h2 == hostID {
		t.Fatalf("two instances on one-slot mac host %s", hostID)
	}
	if got := capNow(); got != 0 {
		t.Fatalf("capacity of a full pool = %d", got)
	}
	_, err = e.allocate(def, nil)
	if !errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("allocation beyond max: err = %v, want ErrCapacity", err)
	}

	// Deallocate: the host goes pending (scrubbing) and the pool is told.
	if err := e.d.Deallocate(e.ctx, *res); err != nil {
		t.Fatal(err)
	}
	if st := e.host(hostID).State; st != ec2types.AllocationStatePending {
		t.Fatalf("mac host state after terminate = %s, want pending", st)
	}
	if err := e.d.Deallocate(e.ctx, *res2); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, e)
}

func TestPoolValidation(t *testing.T) {
	e := newEnv(t, poolCfg)
	for _, c := range []struct{ opts, want string }{
		{`{"image":"macos-14","pool":"other"}`, "options.pool"},
		{`{"image":"macos-14","pool":"macs","pool_zones":["us-west-2c"]}`, "options.pool_zones[0]"},
	} {
		err := e.d.ValidateDefinition(e.def(c.opts, core.Resources{}))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.opts, err, c.want)
		}
	}
}

// The seed's pool form (zone, max, scrubbing_delay): after the instance is
// gone and the host is idle for scrubbing_delay, the pool (driven by the
// caller, as the simulator does) triggers a scrub instead of keeping a young
// mac host billed; it does not release it before 24h.
func TestPoolSeedFormScrubsIdleHost(t *testing.T) {
	e := newEnv(t, `{"region":"us-west-2","dedicated_pool":{"mac":{"type":"mac2.metal","zone":"us-west-2c","max":1,"scrubbing_delay":"10m"}}}`)
	def := e.def(`{"image":"macos-14","pool":"mac"}`, core.Resources{})
	res := e.mustAllocate(def, nil)
	hostID := awssdk.ToString(e.instance(res.Identifier).Placement.HostId)
	if z := awssdk.ToString(e.host(hostID).AvailabilityZone); z != "us-west-2c" {
		t.Fatalf("host zone = %s", z)
	}
	e.clk.Advance(20 * time.Minute)
	if err := e.d.Deallocate(e.ctx, *res); err != nil {
		t.Fatal(err)
	}
	m := e.d.Pools()["mac"]
	deadline := e.clk.Now().Add(6 * time.Hour)
	for m.Stats().Scrubs == 0 && e.clk.Now().Before(deadline) {
		next, err := m.Reconcile(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if step := next.Sub(e.clk.Now()); step > 0 && step < 10*time.Minute {
			e.clk.Advance(step)
		} else {
			e.clk.Advance(time.Minute)
		}
	}
	if m.Stats().Scrubs == 0 {
		t.Fatalf("no scrub within 6h: %+v", m.Stats())
	}
	if st := e.host(hostID).State; st == ec2types.AllocationStateReleased {
		t.Fatal("a mac host younger than 24h must not be released")
	}
}

// A non-mac pool (multi-slot c5 hosts, release_delay default 0): two
// instances share one host, and the idle host is released on Reconcile.
func TestPoolNonMacSharesAndReleases(t *testing.T) {
	e := newEnv(t, `{"region":"us-west-2","dedicated_pool":{"c5":{"type":"c5.large","zone":"us-west-2a","max":1}}}`)
	def := e.def(`{"image":"ubuntu-22.04","pool":"c5"}`, core.Resources{})
	r1 := e.mustAllocate(def, nil)
	r2 := e.mustAllocate(def, nil)
	h1 := awssdk.ToString(e.instance(r1.Identifier).Placement.HostId)
	if h2 := awssdk.ToString(e.instance(r2.Identifier).Placement.HostId); h1 == "" || h1 != h2 {
		t.Fatalf("hosts %s / %s: a one-host pool must place both on its host", h1, h2)
	}
	for _, r := range []*core.Resource{r1, r2} {
		if err := e.d.Deallocate(e.ctx, *r); err != nil {
			t.Fatal(err)
		}
	}
	m := e.d.Pools()["c5"]
	for i := 0; i < 20 && e.host(h1).State != ec2types.AllocationStateReleased; i++ {
		e.clk.Advance(time.Minute)
		if _, err := m.Reconcile(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st := e.host(h1).State; st != ec2types.AllocationStateReleased {
		t.Fatalf("idle non-mac host state = %s, want released", st)
	}
}
