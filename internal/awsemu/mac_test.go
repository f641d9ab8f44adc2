package awsemu

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
)

var t0 = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

func newTestWorld(t testing.TB, mod func(*Spec)) (*World, *clock.Virtual) {
	t.Helper()
	clk := clock.NewVirtual(t0)
	spec := DefaultSpec()
	if mod != nil {
		mod(spec)
	}
	w, err := New(clk, spec)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w, clk
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func allocHost(t testing.TB, w *World, typ, zone string, auto bool) string {
	t.Helper()
	in := &ec2.AllocateHostsInput{AvailabilityZone: aws.String(zone), InstanceType: aws.String(typ), Quantity: aws.Int32(1)}
	if auto {
		in.AutoPlacement = types.AutoPlacementOn
	}
	out, err := w.AllocateHosts(context.Background(), in)
	if err != nil {
		t.Fatalf("AllocateHosts: %v", err)
	}
	return out.HostIds[0]
}

func describeHost(t testing.TB, w *World, id string) types.Host {
	t.Helper()
	out, err := w.DescribeHosts(context.Background(), &ec2.DescribeHostsInput{HostIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeHosts: %v", err)
	}
	if len(out.Hosts) != 1 {
		t.Fatalf("DescribeHosts: %d hosts", len(out.Hosts))
	}
	return out.Hosts[0]
}

func runOnHost(w *World, hostID, typ, image string) (*ec2.RunInstancesOutput, error) {
	return w.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String(image), InstanceType: types.InstanceType(typ), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(hostID)},
	})
}

const macArmImage = "ami-0a1b2c3d400000008" // amzn-ec2-macos-14.7.1-20250101-000000-arm64

// TestMac2Scenario walks the full mac2.metal life cycle on a virtual clock
// and checks the billing ledger to the second.
func TestMac2Scenario(t *testing.T) {
	ctx := context.Background()
	w, clk := newTestWorld(t, nil)
	hid := allocHost(t, w, "mac2.metal", "us-west-2a", false)
	if h := describeHost(t, w, hid); h.State != types.AllocationStateAvailable || aws.ToInt32(h.AvailableCapacity.AvailableInstanceCapacity[0].AvailableCapacity) != 1 {
		t.Fatalf("new host: state %s capacity %+v", h.State, h.AvailableCapacity)
	}

	clk.Advance(10 * time.Minute) // t0+10m: launch
	run, err := runOnHost(w, hid, "mac2.metal", macArmImage)
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	iid := aws.ToString(run.Instances[0].InstanceId)
	if got := run.Instances[0].State.Name; got != types.InstanceStateNamePending {
		t.Fatalf("state after run = %s", got)
	}
	h := describeHost(t, w, hid)
	if len(h.Instances) != 1 || aws.ToString(h.Instances[0].InstanceId) != iid || aws.ToInt32(h.AvailableCapacity.AvailableInstanceCapacity[0].AvailableCapacity) != 0 {
		t.Fatalf("host after run: %+v", h.Instances)
	}
	// a second instance does not fit on a one-slot host
	if _, err := runOnHost(w, hid, "mac2.metal", macArmImage); apiCode(err) != "InsufficientCapacityOnHost" {
		t.Fatalf("second instance: %v", err)
	}
	// releasing an occupied host fails
	rel, err := w.ReleaseHosts(ctx, &ec2.ReleaseHostsInput{HostIds: []string{hid}})
	if err != nil || len(rel.Unsuccessful) != 1 || aws.ToString(rel.Unsuccessful[0].Error.Code) != "Client.InvalidHost.Occupied" {
		t.Fatalf("release occupied: %v %+v", err, rel)
	}

	clk.Advance(7 * time.Minute) // boot finished
	di, err := w.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{iid}})
	if err != nil || di.Reservations[0].Instances[0].State.Name != types.InstanceStateNameRunning {
		t.Fatalf("after boot: %v", err)
	}

	clk.Advance(2*time.Hour - 7*time.Minute) // t0+2h10m: terminate
	if _, err := w.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{iid}}); err != nil {
		t.Fatalf("TerminateInstances: %v", err)
	}
	if h := describeHost(t, w, hid); h.State != types.AllocationStatePending || len(h.Instances) != 0 {
		t.Fatalf("after terminate: state %s instances %d", h.State, len(h.Instances))
	}
	if _, err := runOnHost(w, hid, "mac2.metal", macArmImage); apiCode(err) != "InsufficientCapacityOnHost" {
		t.Fatalf("run on pending host: %v", err)
	}
	clk.Advance(90*time.Minute - time.Second)
	if h := describeHost(t, w, hid); h.State != types.AllocationStatePending {
		t.Fatalf("1s before scrubbing ends: %s", h.State)
	}
	clk.Advance(time.Second) // t0+3h40m
	if h := describeHost(t, w, hid); h.State != types.AllocationStateAvailable {
		t.Fatalf("after scrubbing: %s", h.State)
	}

	// release refused before 24h, with the exact code and message
	rel, err = w.ReleaseHosts(ctx, &ec2.ReleaseHostsInput{HostIds: []string{hid}})
	if err != nil || len(rel.Successful) != 0 || len(rel.Unsuccessful) != 1 {
		t.Fatalf("early release: %v %+v", err, rel)
	}
	wantMsg := fmt.Sprintf("Unable to release Dedicated Host %s. mac2.metal hosts must be allocated to your AWS account for at least 24 hour(s). You can release this host any time after 2025-03-11T12:00:00Z.", hid)
	if c, m := aws.ToString(rel.Unsuccessful[0].Error.Code), aws.ToString(rel.Unsuccessful[0].Error.Message); c != "Client.HostMinAllocationPeriodUnexpired" || m != wantMsg {
		t.Fatalf("early release item: %s %q\nwant message %q", c, m, wantMsg)
	}
	if aws.ToString(rel.Unsuccessful[0].ResourceId) != hid {
		t.Fatalf("unsuccessful resource id %q", aws.ToString(rel.Unsuccessful[0].ResourceId))
	}

	clk.Set(t0.Add(24 * time.Hour)) // exactly 24h: allowed
	rel, err = w.ReleaseHosts(ctx, &ec2.ReleaseHostsInput{HostIds: []string{hid}})
	if err != nil || len(rel.Successful) != 1 || rel.Successful[0] != hid || len(rel.Unsuccessful) != 0 {
		t.Fatalf("release at 24h: %v %+v", err, rel)
	}
	h = describeHost(t, w, hid)
	if h.State != types.AllocationStateReleased || h.ReleaseTime == nil || !h.ReleaseTime.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("released host: %s %v", h.State, h.ReleaseTime)
	}
	// releasing again: not found
	rel, _ = w.ReleaseHosts(ctx, &ec2.ReleaseHostsInput{HostIds: []string{hid, "h-0123456789abcdef0"}})
	if len(rel.Unsuccessful) != 2 || aws.ToString(rel.Unsuccessful[0].Error.Code) != "Client.InvalidHostID.NotFound" || aws.ToString(rel.Unsuccessful[1].Error.Code) != "Client.InvalidHostID.NotFound" {
		t.Fatalf("second release: %+v", rel.Unsuccessful)
	}

	// Ledger: host billed 24h minus 1h30m pending; instance 2h from launch to terminate.
	b := w.Billing(t0, t0.Add(48*time.Hour))
	if got, want := b.HostSeconds[hid], (24*time.Hour - 90*time.Minute).Seconds(); got != want {
		t.Fatalf("host seconds = %v, want %v", got, want)
	}
	if got, want := b.InstanceSeconds[iid], (2 * time.Hour).Seconds(); got != want {
		t.Fatalf("instance seconds = %v, want %v", got, want)
	}
	// A window inside the pending period bills nothing for the host.
	if got := w.Billing(t0.Add(2*time.Hour+20*time.Minute), t0.Add(3*time.Hour)).HostSeconds[hid]; got != 0 {
		t.Fatalf("host seconds while pending = %v", got)
	}
	// Later the released host is purged from DescribeHosts but the ledger keeps it.
	clk.Advance(2 * time.Hour)
	if _, err := w.DescribeHosts(ctx, &ec2.DescribeHostsInput{HostIds: []string{hid}}); apiCode(err) != "InvalidHostID.NotFound" {
		t.Fatalf("purged host: %v", err)
	}
	if got := w.BillingMonth(2025, time.March).HostSeconds[hid]; got != (24*time.Hour - 90*time.Minute).Seconds() {
		t.Fatalf("month billing = %v", got)
	}
}
