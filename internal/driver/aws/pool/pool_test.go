package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

var t0 = time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)

// fixture is a pool manager on an in-memory world and a virtual clock, plus
// a tiny stand-in for the AWS driver's part of the contract (RunInstances on
// the placement, Bind; TerminateInstances, InstanceGone).
type fixture struct {
	t     testing.TB
	clk   *clock.Virtual
	world *awsemu.World
	api   EC2API
	m     *Manager
	cfg   Config
	// subnets for the test's own launches (nil = the world's default subnet)
	subnets map[string]string
	image   string // image of the test's own launches (default: macos-14)
}

func newWorld(t testing.TB, clk *clock.Virtual, mut func(*awsemu.Spec)) *awsemu.World {
	t.Helper()
	spec := awsemu.DefaultSpec()
	if mut != nil {
		mut(spec)
	}
	w, err := awsemu.New(clk, spec)
	if err != nil {
		t.Fatalf("world: %v", err)
	}
	return w
}

func macConfig(max int) Config {
	return Config{Name: "macs", Type: "mac2.metal", Zones: []string{"us-west-2a", "us-west-2b"}, Max: max,
		ScrubbingDelay: core.Duration(5 * time.Minute)}
}

func newFixture(t testing.TB, cfg Config, mut func(*awsemu.Spec)) *fixture {
	t.Helper()
	clk := clock.NewVirtual(t0)
	w := newWorld(t, clk, mut)
	f := &fixture{t: t, clk: clk, world: w, api: w, cfg: cfg}
	f.m = f.start()
	return f
}

func (f *fixture) start() *Manager {
	f.t.Helper()
	m, err := New(f.cfg, f.api, Options{Clock: f.clk, Tags: map[string]string{"AquariumNode": "test-node"}})
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	if err := m.Start(context.Background()); err != nil {
		f.t.Fatalf("Start: %v", err)
	}
	return m
}

// run launches the application's instance on its placement like the driver.
func (f *fixture) run(token string, p Placement) (string, error) {
	var subnet *string
	if sn, ok := f.subnets[p.Zone]; ok {
		subnet = aws.String(sn)
	}
	out, err := f.api.RunInstances(context.Background(), &ec2.RunInstancesInput{
		SubnetId:     subnet,
		ImageId:      aws.String(f.imageID()),
		InstanceType: types.InstanceType(f.cfg.Type),
		MinCount:     aws.Int32(1), MaxCount: aws.Int32(1),
		ClientToken: aws.String(token),
		Placement:   &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(p.HostID), AvailabilityZone: aws.String(p.Zone)},
	})
	if err != nil {
		f.m.Unreserve(token, p.HostID)
		return "", err
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	f.m.Bind(token, p.HostID, id)
	return id, nil
}

func (f *fixture) imageID() string {
	if f.image != "" {
		return f.image
	}
	return "ami-0a1b2c3d40000000a" // macos-14, arm64_mac
}

// placeRun places and launches; it fails the test on anything but success.
func (f *fixture) placeRun(token string) (Placement, string) {
	f.t.Helper()
	p, err := f.m.Place(context.Background(), PlaceRequest{Token: token, InstanceType: f.cfg.Type})
	if err != nil {
		f.t.Fatalf("Place(%s): %v", token, err)
	}
	id, err := f.run(token, p)
	if err != nil {
		f.t.Fatalf("RunInstances on %s for %s: %v", p.HostID, token, err)
	}
	return p, id
}

func (f *fixture) terminate(hostID, instanceID string) {
	f.t.Helper()
	if _, err := f.api.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{instanceID}}); err != nil {
		f.t.Fatalf("terminate %s: %v", instanceID, err)
	}
	f.m.InstanceGone(hostID, instanceID)
}

// reconcile runs Reconcile and fails the test on an error.
func (f *fixture) reconcile() time.Time {
	f.t.Helper()
	next, err := f.m.Reconcile(context.Background())
	if err != nil {
		f.t.Fatalf("Reconcile at %s: %v", f.clk.Now().Sub(t0), err)
	}
	checkHostCounts(f.t, f.m)
	if !next.After(f.clk.Now()) {
		f.t.Fatalf("Reconcile at %s returned next %s, not in the future", f.clk.Now().Sub(t0), next.Sub(t0))
	}
	return next
}

// advance moves the clock to `until`, running Reconcile at every wake-up it asks for.
func (f *fixture) advance(until time.Time) {
	f.t.Helper()
	for {
		next := f.reconcile()
		if next.After(until) {
			f.clk.Set(until)
			f.reconcile()
			return
		}
		f.clk.Set(next)
	}
}

// worldHosts is what AWS says about the pool's hosts (not released).
func (f *fixture) worldHosts() []types.Host {
	f.t.Helper()
	var hosts []types.Host
	in := &ec2.DescribeHostsInput{Filter: []types.Filter{{Name: aws.String("tag:" + TagPoolName), Values: []string{f.cfg.Name}}}}
	for {
		out, err := f.world.DescribeHosts(context.Background(), in)
		if err != nil {
			f.t.Fatalf("DescribeHosts: %v", err)
		}
		for _, h := range out.Hosts {
			if !isReleasedState(h.State) {
				hosts = append(hosts, h)
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return hosts
		}
		in.NextToken = out.NextToken
	}
}

func (f *fixture) worldHost(id string) types.Host {
	f.t.Helper()
	out, err := f.world.DescribeHosts(context.Background(), &ec2.DescribeHostsInput{HostIds: []string{id}})
	if err != nil || len(out.Hosts) != 1 {
		f.t.Fatalf("DescribeHosts(%s): %v", id, err)
	}
	return out.Hosts[0]
}

func TestPlaceAllocatesThenReuses(t *testing.T) {
	f := newFixture(t, macConfig(3), nil)
	ctx := context.Background()
	if got := f.m.Capacity(nil); got != 3 {
		t.Fatalf("empty pool capacity = %d, want 3", got)
	}
	p1, i1 := f.placeRun("app-1")
	if p1.Zone != "us-west-2a" {
		t.Fatalf("first host in %s, want the first pool zone", p1.Zone)
	}
	// same token -> same placement, no new host
	again, err := f.m.Place(ctx, PlaceRequest{Token: "app-1"})
	if err != nil || again != p1 {
		t.Fatalf("idempotent Place = %v, %v; want %v", again, err, p1)
	}
	p2, _ := f.placeRun("app-2")
	if p2.HostID == p1.HostID {
		t.Fatal("two instances placed on a one-slot mac host")
	}
	if got := f.m.Capacity(nil); got != 1 {
		t.Fatalf("capacity = %d, want 1 (max 3, 2 busy hosts)", got)
	}
	// the host tags
	h := f.worldHost(p1.HostID)
	tags := map[string]string{}
	for _, tg := range h.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if v, ok := tags["AquariumDedicatedPool-macs"]; !ok || v != "" {
		t.Errorf("missing AquariumDedicatedPool-macs tag: %v", tags)
	}
	if tags["AquariumDedicatedPoolName"] != "macs" || tags["AquariumNode"] != "test-node" {
		t.Errorf("tags = %v", tags)
	}
	if h.AutoPlacement != types.AutoPlacementOff {
		t.Errorf("auto placement = %s, want off", h.AutoPlacement)
	}
	// instance ends: mac host goes pending (scrubbing), no slot until available again
	f.terminate(p1.HostID, i1)
	if got := f.m.Capacity(nil); got != 1 {
		t.Fatalf("capacity with a scrubbing host = %d, want 1", got)
	}
	st := f.m.Stats()
	if st.Hosts != 2 || st.HostsPending != 1 || st.HostsBusy != 1 || st.Allocations != 2 {
		t.Fatalf("stats = %+v", st)
	}
	// after AWS's scrub (1h30m) the pool sees it available again and reuses it
	f.advance(t0.Add(92 * time.Minute)) // available again at 1h30m, scrub due at 1h35m
	p3, _ := f.placeRun("app-3")
	if p3.HostID != p1.HostID {
		t.Fatalf("app-3 on %s, want the scrubbed host %s reused", p3.HostID, p1.HostID)
	}
	if n := f.m.Stats().Allocations; n != 2 {
		t.Fatalf("allocations = %d, want 2", n)
	}
	if c := f.world.Calls()["AllocateHosts"]; c.Calls != 2 {
		t.Fatalf("AllocateHosts calls = %d, want 2", c.Calls)
	}
}

func TestPlacePrefersTheYoungestHost(t *testing.T) {
	cfg := macConfig(3)
	cfg.ScrubbingDelay = 0 // no scrubbing: both hosts stay available once AWS scrubbed them
	f := newFixture(t, cfg, nil)
	pOld, i1 := f.placeRun("old")
	f.clk.Advance(time.Hour)
	pYoung, i2 := f.placeRun("young")
	f.terminate(pOld.HostID, i1)
	f.terminate(pYoung.HostID, i2)
	f.advance(f.clk.Now().Add(95 * time.Minute))
	if got := f.m.Capacity(nil); got != 3 {
		t.Fatalf("capacity = %d, want 2 free hosts + 1 more", got)
	}
	p, _ := f.placeRun("next")
	if p.HostID != pYoung.HostID {
		t.Fatalf("placed on %s, want the youngest host %s (old %s)", p.HostID, pYoung.HostID, pOld.HostID)
	}
	p2, _ := f.placeRun("next2")
	if p2.HostID != pOld.HostID {
		t.Fatalf("placed on %s, want the old host %s", p2.HostID, pOld.HostID)
	}
}

func TestRequestZonesAndType(t *testing.T) {
	f := newFixture(t, macConfig(2), nil)
	ctx := context.Background()
	if _, err := f.m.Place(ctx, PlaceRequest{Token: "x", Zones: []string{"us-west-2c"}}); err == nil || errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("zone outside the pool: err = %v, want a definition error", err)
	}
	if _, err := f.m.Place(ctx, PlaceRequest{Token: "x", InstanceType: "mac1.metal"}); err == nil {
		t.Fatal("wrong instance type accepted")
	}
	p, err := f.m.Place(ctx, PlaceRequest{Token: "x", Zones: []string{"us-west-2b"}})
	if err != nil || p.Zone != "us-west-2b" {
		t.Fatalf("narrowed zone: %v %v", p, err)
	}
	if got := f.m.Capacity([]string{"us-west-2c"}); got != 0 {
		t.Fatalf("capacity outside the pool zones = %d", got)
	}
}

func TestZoneFallbackOnCapacityErrors(t *testing.T) {
	f := newFixture(t, macConfig(5), func(s *awsemu.Spec) {
		s.Limits.HostCapacity = []awsemu.CapacityLimit{{Zone: "us-west-2a", InstanceType: "mac2.metal", Max: 0}}
	})
	p, _ := f.placeRun("a1")
	if p.Zone != "us-west-2b" {
		t.Fatalf("placed in %s, want fallback to us-west-2b", p.Zone)
	}
	if c := f.world.Calls()["AllocateHosts"]; c.Calls != 2 || c.Errors != 1 {
		t.Fatalf("AllocateHosts calls = %+v, want 2 calls with 1 capacity error", c)
	}
	// the full zone is skipped for a while: no more failing calls
	f.placeRun("a2")
	if c := f.world.Calls()["AllocateHosts"]; c.Calls != 3 || c.Errors != 1 {
		t.Fatalf("AllocateHosts calls = %+v, want the exhausted zone skipped", c)
	}
}

func TestAllZonesFullIsCapacityError(t *testing.T) {
	f := newFixture(t, macConfig(5), func(s *awsemu.Spec) {
		s.Limits.HostCapacity = []awsemu.CapacityLimit{{Zone: "us-west-2a", Max: 0}, {Zone: "us-west-2b", Max: 0}}
	})
	_, err := f.m.Place(context.Background(), PlaceRequest{Token: "a"})
	if !errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("err = %v, want ErrCapacity", err)
	}
	if got := f.m.Capacity(nil); got != 0 {
		t.Fatalf("capacity while every zone reports no capacity = %d, want 0", got)
	}
	if len(f.worldHosts()) != 0 {
		t.Fatal("hosts allocated")
	}
}

func TestMaxIsNeverExceeded(t *testing.T) {
	f := newFixture(t, macConfig(2), nil)
	f.placeRun("a")
	f.placeRun("b")
	_, err := f.m.Place(context.Background(), PlaceRequest{Token: "c"})
	if !errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("third placement err = %v, want ErrCapacity", err)
	}
	if c := f.world.Calls()["AllocateHosts"]; c.Calls != 2 {
		t.Fatalf("AllocateHosts calls = %d, want 2 (never asks above max)", c.Calls)
	}
	if f.m.Capacity(nil) != 0 {
		t.Fatal("capacity must be 0 at max with busy hosts")
	}
}

func TestUnreserveFreesTheSlot(t *testing.T) {
	f := newFixture(t, macConfig(1), nil)
	p, err := f.m.Place(context.Background(), PlaceRequest{Token: "a"})
	if err != nil {
		t.Fatal(err)
	}
	f.m.Unreserve("a", p.HostID)
	// the host is kept out for a short while after a failed launch, then reused
	if _, err := f.m.Place(context.Background(), PlaceRequest{Token: "b"}); !errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("right after Unreserve: %v, want ErrCapacity (host suspect, max reached)", err)
	}
	f.advance(f.clk.Now().Add(2 * time.Minute))
	p2, _ := f.placeRun("b")
	if p2.HostID != p.HostID {
		t.Fatalf("b on %s, want %s", p2.HostID, p.HostID)
	}
}

func TestScrubAndReleaseLifecycle(t *testing.T) {
	f := newFixture(t, macConfig(2), nil)
	p, inst := f.placeRun("job")
	f.advance(t0.Add(time.Hour))
	f.terminate(p.HostID, inst)
	// AWS scrubs 1h30m after the job; the pool sees it available, waits
	// scrubbing_delay (5m) idle and then scrubs it again (billing pauses).
	f.advance(t0.Add(2*time.Hour + 30*time.Minute + 7*time.Minute))
	st := f.m.Stats()
	if st.Scrubs != 1 {
		t.Fatalf("scrubs = %d, want 1 (stats %+v)", st.Scrubs, st)
	}
	if h := f.worldHost(p.HostID); h.State != types.AllocationStatePending {
		t.Fatalf("host state after scrub = %s, want pending", h.State)
	}
	// the scrub instance used an Amazon mac image of the host architecture on the host
	if c := f.world.Calls()["RunInstances"]; c.Calls != 2 || c.Errors != 0 {
		t.Fatalf("RunInstances = %+v", c)
	}
	// a day later (24h after allocation) the idle host is released, never refused
	f.advance(t0.Add(24*time.Hour + 5*time.Minute))
	st = f.m.Stats()
	if st.Releases != 1 || st.RefusedReleases != 0 || st.Hosts != 0 {
		t.Fatalf("after 26h stats = %+v", st)
	}
	if h := f.worldHost(p.HostID); h.State != types.AllocationStateReleased {
		t.Fatalf("host state = %s, want released", h.State)
	}
	rel := f.worldHost(p.HostID).ReleaseTime
	if rel == nil || rel.Before(t0.Add(24*time.Hour)) || rel.After(t0.Add(24*time.Hour+releaseSafety+time.Minute)) {
		t.Fatalf("released at %v, want right after 24h", rel)
	}
	// scrubs kept the host pending most of the idle time: billed much less than 24h
	b := f.world.Billing(t0, t0.Add(48*time.Hour))
	t.Logf("billing: %+v", b)
}

func TestNeverScrubsAReservedHost(t *testing.T) {
	f := newFixture(t, macConfig(1), nil)
	p, inst := f.placeRun("a")
	f.terminate(p.HostID, inst)
	// wait until the host is available again and just before the scrub is due
	f.advance(t0.Add(90*time.Minute + 2*time.Minute))
	// host available and idle; reserve it right before the scrub time
	p2, err := f.m.Place(context.Background(), PlaceRequest{Token: "b"})
	if err != nil {
		t.Fatalf("place after scrub: %v", err)
	}
	f.advance(f.clk.Now().Add(30 * time.Minute)) // well past scrubbing_delay, RunInstances still "in flight"
	if n := f.m.Stats().Scrubs; n != 0 {
		t.Fatalf("scrubbed a reserved host (%d scrubs)", n)
	}
	if _, err := f.run("b", p2); err != nil {
		t.Fatalf("launch on the reserved host failed: %v", err)
	}
}

func TestScrubWithoutDefaultVPC(t *testing.T) {
	f := newFixture(t, macConfig(1), func(s *awsemu.Spec) {
		var vpcs []awsemu.VPCSpec
		for _, v := range s.VPCs {
			if !v.Default {
				vpcs = append(vpcs, v)
			}
		}
		s.VPCs = vpcs
		var sgs []awsemu.SecurityGroupSpec
		for _, g := range s.SecurityGroups {
			if g.VPC != "default" {
				sgs = append(sgs, g)
			}
		}
		s.SecurityGroups = sgs
	})
	f.subnets = map[string]string{"us-west-2a": "subnet-0a9a1a100000000a1", "us-west-2b": "subnet-0a9a1a100000000b1"}
	out, err := f.world.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
	if err != nil || len(out.Vpcs) != 0 {
		t.Fatalf("world still has a default VPC: %v %v", out, err)
	}
	// allocate a host by placing and releasing a reservation
	p, err := f.m.Place(context.Background(), PlaceRequest{Token: "a"})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := f.run("a", p)
	if err != nil {
		// the test launch itself needs a subnet too; give it the zone's one
		t.Fatalf("launch: %v", err)
	}
	f.terminate(p.HostID, inst)
	// a launch without a subnet fails in this world: the scrub must pick one
	if _, err := f.world.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0a1b2c3d400000008"), InstanceType: types.InstanceTypeMac2Metal,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(p.HostID)},
	}); err == nil {
		t.Fatal("the world launched without a default VPC and without a subnet")
	}
	f.advance(t0.Add(90*time.Minute + 10*time.Minute))
	st := f.m.Stats()
	if st.Scrubs != 1 || st.ScrubFailures != 0 {
		t.Fatalf("scrubs = %d failures = %d; api errors %v", st.Scrubs, st.ScrubFailures, st.APIErrors)
	}
	if h := f.worldHost(p.HostID); h.State != types.AllocationStatePending {
		t.Fatalf("host %s after the scrub, want pending", h.State)
	}
	// the scrub instance went into the subnet of the host's zone, on the host,
	// from the newest Amazon image of the host architecture
	insts, err := f.world.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("tag:Name"), Values: []string{"aquarium-scrub-macs"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var scrubInst []types.Instance
	for _, r := range insts.Reservations {
		scrubInst = append(scrubInst, r.Instances...)
	}
	if len(scrubInst) != 1 {
		t.Fatalf("scrub instances in the world: %d, want 1", len(scrubInst))
	}
	i := scrubInst[0]
	if i.State == nil || (i.State.Name != types.InstanceStateNameShuttingDown && i.State.Name != types.InstanceStateNameTerminated) {
		t.Errorf("scrub instance state %v, want terminated", i.State)
	}
	if aws.ToString(i.Placement.HostId) != p.HostID {
		t.Errorf("scrub instance on host %s, want %s", aws.ToString(i.Placement.HostId), p.HostID)
	}
	if aws.ToString(i.ImageId) != "ami-0a1b2c3d400000008" {
		t.Errorf("scrub image %s, want the newest Amazon arm64_mac image", aws.ToString(i.ImageId))
	}
	if c, ok := f.m.subnets["us-west-2a"]; !ok || c.value != "subnet-0a9a1a100000000a1" {
		t.Errorf("scrub subnet = %+v, want the aquarium subnet of us-west-2a", c)
	}
}

func TestPendingToAvailableDelayHonoursAvailableLag(t *testing.T) {
	cfg := macConfig(1)
	cfg.PendingToAvailableDelay = core.Duration(3 * time.Minute)
	cfg.ScrubbingDelay = core.Duration(30 * time.Minute)
	f := newFixture(t, cfg, func(s *awsemu.Spec) { s.Timings.AvailableLag = core.Duration(2 * time.Minute) })
	// a new host is usable only after the delay too
	_, err := f.m.Place(context.Background(), PlaceRequest{Token: "a"})
	if !errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("new host before pending_to_available_delay: %v, want ErrCapacity", err)
	}
	if got := f.m.Capacity(nil); got != 0 {
		t.Fatalf("capacity = %d, want 0 (the host is promised to a and not usable yet)", got)
	}
	f.advance(t0.Add(3 * time.Minute))
	p, inst := f.placeRun("a") // same token gets the promised host
	if c := f.world.Calls()["AllocateHosts"]; c.Calls != 1 {
		t.Fatalf("AllocateHosts = %d, want 1 (the retry reuses the promised host)", c.Calls)
	}
	f.terminate(p.HostID, inst)
	// scrubbing ends at +93m; AWS then lags 2m; we wait 3m after seeing it available
	deadline := f.clk.Now().Add(90 * time.Minute)
	f.advance(deadline)
	for i := 0; ; i++ {
		pl, err := f.m.Place(context.Background(), PlaceRequest{Token: fmt.Sprintf("b%d", i)})
		if err == nil {
			if _, err := f.run(fmt.Sprintf("b%d", i), pl); err != nil {
				t.Fatalf("launch right when the pool said the host is usable: %v", err)
			}
			break
		}
		if !errors.Is(err, driver.ErrCapacity) {
			t.Fatal(err)
		}
		f.advance(f.clk.Now().Add(30 * time.Second))
		if f.clk.Now().After(deadline.Add(10 * time.Minute)) {
			t.Fatal("host never became usable")
		}
	}
	if ra := f.world.Calls()["RunInstances"]; ra.Errors != 0 {
		t.Fatalf("RunInstances errors = %d", ra.Errors)
	}
}

func TestPermanentFailureHostIsReleased(t *testing.T) {
	f := newFixture(t, macConfig(2), nil)
	p, err := f.m.Place(context.Background(), PlaceRequest{Token: "a"})
	if err != nil {
		t.Fatal(err)
	}
	f.m.Unreserve("a", p.HostID)
	if err := f.world.SetHostState(p.HostID, types.AllocationStatePermanentFailure); err != nil {
		t.Fatal(err)
	}
	f.advance(t0.Add(fullRefreshEvery + 5*time.Minute))
	if _, err := f.m.Place(context.Background(), PlaceRequest{Token: "b"}); err != nil {
		t.Fatal(err)
	}
	if f.m.byToken["b"].host.id == p.HostID {
		t.Fatal("placed on a permanent-failure host")
	}
	f.advance(t0.Add(25 * time.Hour))
	if h := f.worldHost(p.HostID); h.State != types.AllocationStateReleasedPermanentFailure {
		t.Fatalf("failed host state = %s, want released-permanent-failure", h.State)
	}
	if n := f.m.Stats().RefusedReleases; n != 0 {
		t.Fatalf("refused releases = %d", n)
	}
}

func TestConcurrentPlacementsNoDoubleBooking(t *testing.T) {
	f := newFixture(t, Config{Name: "macs", Type: "mac2.metal", Zones: []string{"us-west-2a", "us-west-2b", "us-west-2c"}, Max: 50}, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	byHost := map[string][]string{}
	var capErrs, otherErrs int
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := fmt.Sprintf("app-%03d", i)
			p, err := f.m.Place(context.Background(), PlaceRequest{Token: tok})
			if err == nil {
				_, err = f.run(tok, p)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				byHost[p.HostID] = append(byHost[p.HostID], tok)
			case errors.Is(err, driver.ErrCapacity):
				capErrs++
			default:
				otherErrs++
				t.Errorf("%s: %v", tok, err)
			}
		}()
	}
	wg.Wait()
	for h, toks := range byHost {
		if len(toks) > 1 {
			t.Errorf("host %s double booked: %v", h, toks)
		}
	}
	if len(byHost) != 50 || capErrs != 150 || otherErrs != 0 {
		t.Fatalf("placed on %d hosts, %d capacity errors, %d other errors; want 50/150/0", len(byHost), capErrs, otherErrs)
	}
	if n := len(f.worldHosts()); n != 50 {
		t.Fatalf("world has %d pool hosts, want 50", n)
	}
	if ra := f.world.Calls()["RunInstances"]; ra.Errors != 0 {
		t.Fatalf("RunInstances errors = %d (a placement the world refused)", ra.Errors)
	}
}

func TestNonMacHostSlots(t *testing.T) {
	cfg := Config{Name: "c5", Type: "c5.large", Zones: []string{"us-west-2a"}, Max: 2}
	f := newFixture(t, cfg, nil)
	f.image = "ami-0a1b2c3d400000002" // al2023 x86_64
	per := f.m.slotsPer
	if per < 2 {
		t.Fatalf("slots per c5.large host = %d, want the metal vCPUs / 2", per)
	}
	if got := f.m.Capacity(nil); got != int64(2*per) {
		t.Fatalf("capacity = %d, want %d", got, 2*per)
	}
	hosts := map[string]int{}
	var last Placement
	var lastInst string
	for i := range per + 1 {
		out, err := f.m.Place(context.Background(), PlaceRequest{Token: fmt.Sprintf("j%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		inst, err := f.run(fmt.Sprintf("j%d", i), out)
		if err != nil {
			t.Fatalf("launch %d: %v", i, err)
		}
		hosts[out.HostID]++
		last, lastInst = out, inst
	}
	if len(hosts) != 2 {
		t.Fatalf("hosts used = %v, want %d instances on the first host then a second host", hosts, per)
	}
	// non-mac: release_delay 0, the emptied host goes at the next reconcile
	f.terminate(last.HostID, lastInst)
	f.advance(f.clk.Now().Add(time.Minute))
	if st := f.m.Stats(); st.Releases != 1 || st.Hosts != 1 || st.Scrubs != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestFaultsAreRetried(t *testing.T) {
	f := newFixture(t, macConfig(2), nil)
	p, inst := f.placeRun("a")
	f.terminate(p.HostID, inst)
	for _, r := range []awsemu.FaultRule{
		{Action: "DescribeHosts", Code: "RequestLimitExceeded", HTTPStatus: 503, Count: 3},
		{Action: "RunInstances", Code: "InsufficientCapacityOnHost", HTTPStatus: 500, Count: 1},
		{Action: "TerminateInstances", Code: "RequestLimitExceeded", HTTPStatus: 503, Count: 1},
	} {
		if err := f.world.AddFault(r); err != nil {
			t.Fatal(err)
		}
	}
	// Reconcile reports the errors but carries on
	advance := func(until time.Time) (errs int) {
		for f.clk.Now().Before(until) {
			next, err := f.m.Reconcile(context.Background())
			if err != nil {
				t.Logf("%s: %v", f.clk.Now().Sub(t0), err)
				errs++
			}
			checkHostCounts(t, f.m)
			if !next.After(f.clk.Now()) {
				t.Fatalf("next %s not after now", next.Sub(t0))
			}
			if next.After(until) {
				next = until
			}
			f.clk.Set(next)
		}
		return errs
	}
	if errs := advance(t0.Add(4 * time.Hour)); errs < 3 {
		t.Fatalf("only %d reconcile errors reported", errs)
	}
	st := f.m.Stats()
	if st.Scrubs < 1 {
		t.Fatalf("no scrub after the faults: %+v", st)
	}
	// the failed TerminateInstances left a scrub instance: it must be terminated on retry
	if n := len(f.worldHost(p.HostID).Instances); n != 0 && f.worldHost(p.HostID).State == types.AllocationStateAvailable {
		t.Fatalf("scrub instance left on the host")
	}
	if err := f.world.AddFault(awsemu.FaultRule{Action: "ReleaseHosts", Code: "RequestLimitExceeded", HTTPStatus: 503, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if errs := advance(t0.Add(24*time.Hour + 10*time.Minute)); errs != 1 {
		t.Fatalf("%d errors, want the one throttled release", errs)
	}
	st = f.m.Stats()
	if st.Releases != 1 || st.RefusedReleases != 0 || len(f.worldHosts()) != 0 {
		t.Fatalf("after a throttled release: %+v", st)
	}
}

// hookAPI runs a hook after the world answered DescribeHosts and before the
// pool gets the (by then stale) answer: a deterministic stand-in for a
// placement racing a refresh.
type hookAPI struct {
	EC2API
	after func()
}

func (h *hookAPI) DescribeHosts(ctx context.Context, in *ec2.DescribeHostsInput, opts ...func(*ec2.Options)) (*ec2.DescribeHostsOutput, error) {
	out, err := h.EC2API.DescribeHosts(ctx, in, opts...)
	if h.after != nil {
		fn := h.after
		h.after = nil
		fn()
	}
	return out, err
}

func TestRefreshRacingAPlacementKeepsTheBooking(t *testing.T) {
	cfg := macConfig(2)
	cfg.ScrubbingDelay = 0
	f := newFixture(t, cfg, nil)
	hook := &hookAPI{EC2API: f.world}
	f.api = hook
	f.m = f.start() // a manager that reads through the hook
	p, inst := f.placeRun("a")
	f.terminate(p.HostID, inst)
	f.advance(t0.Add(2 * time.Hour)) // scrubbed by AWS, available and idle
	var raced Placement
	hook.after = func() {
		// while the refresh is on the wire, the driver places and launches
		raced, _ = f.placeRun("b")
	}
	f.m.mu.Lock()
	f.m.wantRefresh = true
	f.m.mu.Unlock()
	f.clk.Advance(time.Minute)
	f.reconcile()
	if raced.HostID != p.HostID {
		t.Fatalf("raced placement on %s, want the idle host %s", raced.HostID, p.HostID)
	}
	if s := f.m.byToken["b"]; s == nil || s.kind != slotBound {
		t.Fatal("the stale refresh dropped b's booking")
	}
	p2, _ := f.placeRun("c")
	if p2.HostID == p.HostID {
		t.Fatal("double booking after a refresh raced a placement")
	}
	// the next refresh (not stale) agrees with the view
	f.m.mu.Lock()
	f.m.wantRefresh = true
	f.m.mu.Unlock()
	f.clk.Advance(time.Minute)
	f.reconcile()
	if s := f.m.byToken["b"]; s == nil || s.host.id != p.HostID {
		t.Fatal("b's booking lost after a fresh refresh")
	}
}

// A host allocated for a token that never comes back is not leaked: the
// promise lapses and the host is scrubbed and released like any idle host.
func TestPromiseLapses(t *testing.T) {
	cfg := macConfig(1)
	cfg.PendingToAvailableDelay = core.Duration(3 * time.Minute)
	f := newFixture(t, cfg, nil)
	if _, err := f.m.Place(context.Background(), PlaceRequest{Token: "gone"}); !errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("err = %v", err)
	}
	// another token cannot take the promised host, nor allocate above max
	if _, err := f.m.Place(context.Background(), PlaceRequest{Token: "other"}); !errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("other: %v", err)
	}
	f.advance(t0.Add(3*time.Minute + promiseGrace - time.Second))
	if _, err := f.m.Place(context.Background(), PlaceRequest{Token: "other"}); !errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("before the promise lapses: %v", err)
	}
	f.advance(t0.Add(3*time.Minute + promiseGrace))
	if f.m.byToken["gone"] != nil {
		t.Fatal("promise still held")
	}
	f.placeRun("other")
	if c := f.world.Calls()["AllocateHosts"]; c.Calls != 1 {
		t.Fatalf("AllocateHosts = %d, want the lapsed host reused", c.Calls)
	}
}

// TestFinishedTokensAreForgotten: once an application's instance is gone the
// pool keeps nothing indexed by its token (no growth over a node's life).
func TestFinishedTokensAreForgotten(t *testing.T) {
	f := newFixture(t, macConfig(3), nil)
	for i := range 3 {
		tok := fmt.Sprintf("app-%d", i)
		p, id := f.placeRun(tok)
		f.terminate(p.HostID, id)
	}
	if n := f.m.Stats().Allocations; n != 3 {
		t.Fatalf("allocations = %d, want 3", n)
	}
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if len(f.m.attempts) != 0 || len(f.m.byToken) != 0 || len(f.m.byInstance) != 0 {
		t.Fatalf("left indexed: attempts %v, byToken %d, byInstance %d", f.m.attempts, len(f.m.byToken), len(f.m.byInstance))
	}
}

// pollRecorder records the HostIds of every DescribeHosts by id.
type pollRecorder struct {
	EC2API
	polls [][]string
}

func (r *pollRecorder) DescribeHosts(ctx context.Context, in *ec2.DescribeHostsInput, opts ...func(*ec2.Options)) (*ec2.DescribeHostsOutput, error) {
	if len(in.HostIds) > 0 {
		r.polls = append(r.polls, slices.Clone(in.HostIds))
	}
	return r.EC2API.DescribeHosts(ctx, in, opts...)
}

// TestPendingHostsDueTogetherArePolledInOneCall: hosts whose scrubbing ends
// at the same time are read back with one DescribeHosts carrying all their
// ids, not one call per host.
func TestPendingHostsDueTogetherArePolledInOneCall(t *testing.T) {
	cfg := macConfig(4)
	cfg.Zones = []string{"us-west-2a"}
	cfg.ScrubbingDelay = 0
	f := newFixture(t, cfg, nil)
	rec := &pollRecorder{EC2API: f.world}
	f.api = rec
	f.m = f.start()
	type run struct {
		p    Placement
		inst string
	}
	var runs []run
	for i := range 4 {
		p, inst := f.placeRun(fmt.Sprintf("job-%d", i))
		runs = append(runs, run{p, inst})
	}
	f.advance(t0.Add(10 * time.Minute))
	for _, r := range runs { // all four end at once: four hosts scrubbing
		f.terminate(r.p.HostID, r.inst)
	}
	rec.polls = nil
	f.advance(t0.Add(4 * time.Hour))
	if st := f.m.Stats(); st.HostsIdle != 4 {
		t.Fatalf("idle hosts = %d, want 4 (stats %+v)", st.HostsIdle, st)
	}
	if len(rec.polls) == 0 {
		t.Fatal("pending hosts were never polled")
	}
	for _, ids := range rec.polls {
		if len(ids) != 4 {
			t.Fatalf("polls %v: want every poll to carry the 4 hosts scrubbing together", rec.polls)
		}
	}
}
