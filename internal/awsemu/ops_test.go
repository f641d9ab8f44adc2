package awsemu_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/awsemu/server"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/ec2ops"
)

var opsT0 = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

const (
	opsMacImage   = "ami-0a1b2c3d400000008" // arm64_mac
	opsLinuxImage = "ami-0a1b2c3d400000001" // x86_64
	opsZone       = "us-west-2a"
	opsSubnet     = "subnet-0a9a1a100000000a1"
)

// twins are two worlds of the same spec and seed on clocks kept at the same
// times: native answers through the world's own ec2ops methods, sdk through
// ec2ops.Adapter over the twin's SDK-shaped methods (or over an SDK client
// of the twin served over HTTP). Every call goes to both and must give the
// same records, the same errors and the same call counters.
type twins struct {
	t           *testing.T
	native, sdk *awsemu.World
	clks        [2]*clock.Virtual
	nat, ad     ec2ops.API
	// reused answer slices (as the pools keep theirs), one per side
	hostsN, hostsA []ec2ops.Host
	instsN, instsA []ec2ops.Instance
}

func newTwins(t *testing.T, mod func(*awsemu.Spec)) *twins {
	t.Helper()
	tw := &twins{t: t}
	var ws [2]*awsemu.World
	for i := range ws {
		tw.clks[i] = clock.NewVirtual(opsT0)
		spec := awsemu.DefaultSpec()
		if mod != nil {
			mod(spec)
		}
		w, err := awsemu.New(tw.clks[i], spec)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		ws[i] = w
	}
	tw.native, tw.sdk = ws[0], ws[1]
	tw.nat = ec2ops.For(tw.native)
	if tw.nat != ec2ops.API(tw.native) {
		t.Fatalf("ec2ops.For(world) = %T, want the world itself", tw.nat)
	}
	tw.ad = ec2ops.Adapter{C: tw.sdk}
	for _, m := range []string{"LaunchInstances", "TerminateInstanceIDs", "DescribeHostStates"} {
		if slices.Contains(awsemu.Actions(), m) { // (they are not AWS actions: no faults, no HTTP dispatch)
			t.Fatalf("Actions() lists %s", m)
		}
	}
	return tw
}

func (tw *twins) advance(d time.Duration) {
	for _, c := range tw.clks {
		c.Advance(d)
	}
}

// both runs a setup step on each world (through its SDK-shaped methods).
func (tw *twins) both(f func(w *awsemu.World) error) {
	tw.t.Helper()
	for _, w := range []*awsemu.World{tw.native, tw.sdk} {
		if err := f(w); err != nil {
			tw.t.Fatal(err)
		}
	}
}

func (tw *twins) allocHosts(in *ec2.AllocateHostsInput) []string {
	tw.t.Helper()
	var ids [2][]string
	for i, w := range []*awsemu.World{tw.native, tw.sdk} {
		out, err := w.AllocateHosts(context.Background(), in)
		if err != nil {
			tw.t.Fatalf("AllocateHosts: %v", err)
		}
		ids[i] = out.HostIds
	}
	if !slices.Equal(ids[0], ids[1]) {
		tw.t.Fatalf("twins allocated different hosts: %v and %v", ids[0], ids[1])
	}
	return ids[0]
}

// sameErr requires equal errors: equal API codes, messages and faults, or
// equal texts for other errors.
func sameErr(t *testing.T, what string, nat, ad error) {
	t.Helper()
	if (nat == nil) != (ad == nil) {
		t.Fatalf("%s: native error %v, adapter error %v", what, nat, ad)
	}
	if nat == nil {
		return
	}
	var ne, ae smithy.APIError
	if errors.As(nat, &ne) != errors.As(ad, &ae) {
		t.Fatalf("%s: native error %v (%T), adapter error %v (%T)", what, nat, nat, ad, ad)
	}
	if ne != nil {
		if ne.ErrorCode() != ae.ErrorCode() || ne.ErrorMessage() != ae.ErrorMessage() {
			t.Fatalf("%s: native error %s %q, adapter error %s %q", what, ne.ErrorCode(), ne.ErrorMessage(), ae.ErrorCode(), ae.ErrorMessage())
		}
		// in process both are the world's errors: the same HTTP status too
		var nw, aw *awsemu.APIError
		if errors.As(nat, &nw) && errors.As(ad, &aw) && nw.Status() != aw.Status() {
			t.Fatalf("%s: native status %d, adapter status %d", what, nw.Status(), aw.Status())
		}
		return
	}
	if nat.Error() != ad.Error() {
		t.Fatalf("%s: native error %q, adapter error %q", what, nat, ad)
	}
}

// hostText renders a host record for comparison: times by their instant
// (they cross HTTP as text), empty and nil slices alike.
func hostText(h *ec2ops.Host) string {
	return fmt.Sprintf("%s %s %s %s %q cap=%v insts=%v", h.ID, h.Zone, h.State, h.AllocatedAt.UTC().Format(time.RFC3339Nano),
		h.InstanceType, h.Capacity, h.Instances)
}

func (tw *twins) sameCalls(what string) {
	tw.t.Helper()
	nc, ac := tw.native.Calls(), tw.sdk.Calls()
	if !maps.Equal(nc, ac) {
		tw.t.Fatalf("%s: calls differ:\nnative  %v\nadapter %v", what, nc, ac)
	}
}

// launch launches on both sides (into the reused slices, after a marker
// element that must stay) and returns the records.
func (tw *twins) launch(what string, in *ec2.RunInstancesInput) ([]ec2ops.Instance, error) {
	tw.t.Helper()
	ctx := context.Background()
	mark := ec2ops.Instance{ID: "marker"}
	var errN, errA error
	tw.instsN, errN = tw.nat.LaunchInstances(ctx, in, append(tw.instsN[:0], mark))
	tw.instsA, errA = tw.ad.LaunchInstances(ctx, in, append(tw.instsA[:0], mark))
	sameErr(tw.t, what, errN, errA)
	if !slices.Equal(tw.instsN, tw.instsA) {
		tw.t.Fatalf("%s: native %+v\nadapter %+v", what, tw.instsN, tw.instsA)
	}
	if len(tw.instsN) == 0 || tw.instsN[0] != mark {
		tw.t.Fatalf("%s: dst's element lost: %+v", what, tw.instsN)
	}
	tw.sameCalls(what)
	return tw.instsN[1:], errN
}

func (tw *twins) terminate(what string, ids ...string) error {
	tw.t.Helper()
	ctx := context.Background()
	errN := tw.nat.TerminateInstanceIDs(ctx, ids)
	errA := tw.ad.TerminateInstanceIDs(ctx, ids)
	sameErr(tw.t, what, errN, errA)
	tw.sameCalls(what)
	return errN
}

// describe reads hosts on both sides into the reused slices (whose spare
// elements hold earlier answers' capacity and instances).
func (tw *twins) describe(what string, in *ec2.DescribeHostsInput) ([]ec2ops.Host, *string, error) {
	tw.t.Helper()
	ctx := context.Background()
	var nextN, nextA *string
	var errN, errA error
	tw.hostsN, nextN, errN = tw.nat.DescribeHostStates(ctx, in, ec2ops.Reset(tw.hostsN))
	tw.hostsA, nextA, errA = tw.ad.DescribeHostStates(ctx, in, ec2ops.Reset(tw.hostsA))
	sameErr(tw.t, what, errN, errA)
	if aws.ToString(nextN) != aws.ToString(nextA) || (nextN == nil) != (nextA == nil) {
		tw.t.Fatalf("%s: next token native %v, adapter %v", what, aws.ToString(nextN), aws.ToString(nextA))
	}
	if len(tw.hostsN) != len(tw.hostsA) {
		tw.t.Fatalf("%s: native %d hosts, adapter %d", what, len(tw.hostsN), len(tw.hostsA))
	}
	for i := range tw.hostsN {
		if n, a := hostText(&tw.hostsN[i]), hostText(&tw.hostsA[i]); n != a {
			tw.t.Fatalf("%s: host %d:\nnative  %s\nadapter %s", what, i, n, a)
		}
	}
	tw.sameCalls(what)
	return tw.hostsN, nextN, errN
}

func macRun(hostID string) *ec2.RunInstancesInput {
	return &ec2.RunInstancesInput{ImageId: aws.String(opsMacImage), InstanceType: "mac2.metal", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(opsSubnet), Placement: &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(hostID)}}
}

func sharedRun(minC, maxC int32) *ec2.RunInstancesInput {
	return &ec2.RunInstancesInput{ImageId: aws.String(opsLinuxImage), InstanceType: "t3.micro", MinCount: aws.Int32(minC), MaxCount: aws.Int32(maxC)}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// want fails unless err has the API code (so that a scenario step does what
// it claims: both sides erring the same way for another reason is no test).
func want(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := apiCode(err); got != code {
		t.Fatalf("%s: error %v, want code %q", what, err, code)
	}
}

func TestNativeLaunchTerminateLikeAdapter(t *testing.T) {
	tw := newTwins(t, nil)
	macs := tw.allocHosts(&ec2.AllocateHostsInput{AvailabilityZone: aws.String(opsZone), InstanceType: aws.String("mac2.metal"), Quantity: aws.Int32(2)})
	m5 := tw.allocHosts(&ec2.AllocateHostsInput{AvailabilityZone: aws.String(opsZone), InstanceFamily: aws.String("m5"), AutoPlacement: types.AutoPlacementOn})

	// one instance on a mac host, with a client token, tags and a volume
	in := macRun(macs[0])
	in.ClientToken = aws.String("job-1")
	tags := []types.Tag{{Key: aws.String("Name"), Value: aws.String("fish-app-1")}}
	in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}, {ResourceType: types.ResourceTypeVolume, Tags: tags}}
	in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(200), VolumeType: types.VolumeTypeGp3}}}
	got, err := tw.launch("mac launch", in)
	if err != nil || len(got) != 1 {
		t.Fatalf("mac launch: %v, %+v", err, got)
	}
	mac1 := got[0]
	if mac1.HostID != macs[0] || mac1.MAC == "" || mac1.PrivateIP == "" || mac1.SubnetID != opsSubnet || mac1.State != types.InstanceStateNamePending {
		t.Fatalf("mac launch: %+v", mac1)
	}
	// the same token and parameters: the same instance, nothing launched
	got, err = tw.launch("token replay", in)
	if err != nil || len(got) != 1 || got[0] != mac1 {
		t.Fatalf("token replay: %v, %+v", err, got)
	}
	// the same token, other parameters
	other := *in
	other.Placement = &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(macs[1])}
	_, err = tw.launch("token mismatch", &other)
	want(t, "token mismatch", err, "IdempotentParameterMismatch")
	// the host is full
	_, err = tw.launch("host full", macRun(macs[0]))
	want(t, "host full", err, "InsufficientCapacityOnHost")

	// several instances in shared tenancy (default subnet), one reservation,
	// then a replay of them with a token
	multi := sharedRun(2, 3)
	multi.ClientToken = aws.String("multi-1")
	got, err = tw.launch("multi launch", multi)
	if err != nil || len(got) != 3 {
		t.Fatalf("multi launch: %v, %+v", err, got)
	}
	multiIDs := []string{got[0].ID, got[1].ID, got[2].ID}
	// auto-placement on the m5 family host
	auto := &ec2.RunInstancesInput{ImageId: aws.String(opsLinuxImage), InstanceType: "m5.large", MinCount: aws.Int32(1), MaxCount: aws.Int32(2),
		Placement: &types.Placement{Tenancy: types.TenancyHost}}
	got, err = tw.launch("auto placement", auto)
	if err != nil || len(got) != 2 || got[0].HostID != m5[0] {
		t.Fatalf("auto placement: %v, %+v", err, got)
	}
	tw.advance(time.Minute)
	got, err = tw.launch("multi replay running", multi)
	if err != nil || len(got) != 3 || got[0].State != types.InstanceStateNameRunning {
		t.Fatalf("multi replay: %v, %+v", err, got)
	}

	// invalid inputs
	bad := []struct {
		name string
		in   *ec2.RunInstancesInput
		code string
	}{
		{"nil input", nil, "MissingParameter"},
		{"no max", &ec2.RunInstancesInput{ImageId: aws.String(opsLinuxImage), MinCount: aws.Int32(1)}, "MissingParameter"},
		{"min above max", sharedRun(3, 2), "InvalidParameterValue"},
		{"malformed image", &ec2.RunInstancesInput{ImageId: aws.String("img-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}, "InvalidAMIID.Malformed"},
		{"unknown image", &ec2.RunInstancesInput{ImageId: aws.String("ami-0a1b2c3d4ffffffff"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}, "InvalidAMIID.NotFound"},
		{"mac without host", &ec2.RunInstancesInput{ImageId: aws.String(opsMacImage), InstanceType: "mac2.metal", MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}, "InvalidParameterCombination"},
		{"unknown host", macRun("h-0123456789abcdef0"), "InvalidHostID.NotFound"},
		{"malformed host", macRun("host-1"), "InvalidHostID.Malformed"},
		{"long token", func() *ec2.RunInstancesInput {
			r := sharedRun(1, 1)
			r.ClientToken = aws.String(strings.Repeat("x", 65))
			return r
		}(), "InvalidParameterValue"},
		{"dry run", func() *ec2.RunInstancesInput { r := sharedRun(1, 1); r.DryRun = aws.Bool(true); return r }(), "DryRunOperation"},
	}
	for _, c := range bad {
		_, err := tw.launch(c.name, c.in)
		want(t, c.name, err, c.code)
	}

	// terminate: one, several with a duplicate, again (no-op), then bad ids
	if err := tw.terminate("terminate mac", mac1.ID); err != nil {
		t.Fatal(err)
	}
	if err := tw.terminate("terminate multi", multiIDs[0], multiIDs[1], multiIDs[0]); err != nil {
		t.Fatal(err)
	}
	if err := tw.terminate("terminate again", mac1.ID); err != nil {
		t.Fatal(err)
	}
	want(t, "terminate unknown", tw.terminate("terminate unknown", "i-0123456789abcdef0", mac1.ID), "InvalidInstanceID.NotFound")
	want(t, "terminate malformed", tw.terminate("terminate malformed", "inst-1"), "InvalidInstanceID.Malformed")
	want(t, "terminate none", tw.terminate("terminate none"), "MissingParameter")
	protected := sharedRun(1, 1)
	protected.DisableApiTermination = aws.Bool(true)
	got, err = tw.launch("protected launch", protected)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "terminate protected", tw.terminate("terminate protected", got[0].ID), "OperationNotPermitted")

	// replays of terminated instances: shutting-down, then terminated (no
	// network in the answer), then gone with their token
	got, err = tw.launch("replay shutting-down", in)
	if err != nil || len(got) != 1 || got[0].State != types.InstanceStateNameShuttingDown {
		t.Fatalf("replay shutting-down: %v, %+v", err, got)
	}
	tw.advance(time.Minute)
	got, err = tw.launch("replay terminated", in)
	if err != nil || len(got) != 1 || got[0].State != types.InstanceStateNameTerminated || got[0].MAC != "" {
		t.Fatalf("replay terminated: %v, %+v", err, got)
	}
	got, err = tw.launch("multi replay partly terminated", multi)
	if err != nil || len(got) != 3 || got[0].State != types.InstanceStateNameTerminated || got[2].State != types.InstanceStateNameRunning {
		t.Fatalf("multi replay partly terminated: %v, %+v", err, got)
	}
	tw.advance(2 * time.Hour) // purged: the token is free again (the mac host is past scrubbing)
	got, err = tw.launch("token reused", in)
	if err != nil || len(got) != 1 || got[0].ID == mac1.ID {
		t.Fatalf("token reused: %v, %+v", err, got)
	}
	// a cancelled context
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, errN := tw.nat.LaunchInstances(ctx, sharedRun(1, 1), nil)
	_, errA := tw.ad.LaunchInstances(ctx, sharedRun(1, 1), nil)
	sameErr(t, "cancelled launch", errN, errA)
	sameErr(t, "cancelled terminate", tw.nat.TerminateInstanceIDs(ctx, []string{mac1.ID}), tw.ad.TerminateInstanceIDs(ctx, []string{mac1.ID}))
	if !errors.Is(errN, context.Canceled) {
		t.Fatalf("cancelled launch: %v", errN)
	}
	tw.sameCalls("cancelled")
	if c := tw.native.Calls()["RunInstances"]; c.Calls == 0 || c.Errors == 0 {
		t.Fatalf("RunInstances calls not recorded: %+v", c)
	}
}

func TestNativeDescribeHostsLikeAdapter(t *testing.T) {
	tw := newTwins(t, func(s *awsemu.Spec) { s.Timings.MacMinAllocation = 0 })
	macs := tw.allocHosts(&ec2.AllocateHostsInput{AvailabilityZone: aws.String(opsZone), InstanceType: aws.String("mac2.metal"), Quantity: aws.Int32(9)})
	m5 := tw.allocHosts(&ec2.AllocateHostsInput{AvailabilityZone: aws.String("us-west-2b"), InstanceFamily: aws.String("m5")})
	for i := range 3 {
		if _, err := tw.launch("launch "+strconv.Itoa(i), macRun(macs[i])); err != nil {
			t.Fatal(err)
		}
	}
	family := &ec2.RunInstancesInput{ImageId: aws.String(opsLinuxImage), InstanceType: "m5.2xlarge", MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
		Placement: &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(m5[0])}}
	if _, err := tw.launch("family launch", family); err != nil {
		t.Fatal(err)
	}
	got, err := tw.launch("terminate target", macRun(macs[3]))
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.terminate("scrub", got[0].ID); err != nil {
		t.Fatal(err)
	}
	tw.both(func(w *awsemu.World) error {
		_, err := w.ReleaseHosts(context.Background(), &ec2.ReleaseHostsInput{HostIds: []string{macs[8]}})
		return err
	})

	hosts, _, err := tw.describe("one host", &ec2.DescribeHostsInput{HostIds: []string{macs[0]}})
	if err != nil || len(hosts) != 1 || len(hosts[0].Instances) != 1 || hosts[0].TotalCapacity("mac2.metal") != 1 {
		t.Fatalf("one host: %v, %+v", err, hosts)
	}
	hosts, _, err = tw.describe("family host", &ec2.DescribeHostsInput{HostIds: []string{m5[0]}})
	if err != nil || len(hosts) != 1 || len(hosts[0].Capacity) < 2 || len(hosts[0].Instances) != 2 || hosts[0].InstanceType != "" {
		t.Fatalf("family host: %v, %+v", err, hosts)
	}
	hosts, _, err = tw.describe("pending and released", &ec2.DescribeHostsInput{HostIds: []string{macs[8], macs[3], macs[3]}})
	if err != nil || len(hosts) != 2 || hosts[0].State != types.AllocationStatePending || hosts[1].State != types.AllocationStateReleased || len(hosts[1].Capacity) != 0 {
		t.Fatalf("pending and released: %v, %+v", err, hosts)
	}
	ten := append(slices.Clone(macs), m5...) // more ids than the fast path holds
	if hosts, _, err = tw.describe("ten ids", &ec2.DescribeHostsInput{HostIds: ten}); err != nil || len(hosts) != 10 {
		t.Fatalf("ten ids: %v, %d hosts", err, len(hosts))
	}
	if hosts, _, err = tw.describe("all", nil); err != nil || len(hosts) != 10 {
		t.Fatalf("all: %v, %d hosts", err, len(hosts))
	}
	filtered := &ec2.DescribeHostsInput{Filter: []types.Filter{{Name: aws.String("state"), Values: []string{"available"}}, {Name: aws.String("instance-type"), Values: []string{"mac2.metal"}}}}
	if hosts, _, err = tw.describe("filtered", filtered); err != nil || len(hosts) != 7 {
		t.Fatalf("filtered: %v, %d hosts", err, len(hosts))
	}
	ids := &ec2.DescribeHostsInput{HostIds: macs[:4], Filter: []types.Filter{{Name: aws.String("state"), Values: []string{"pending"}}}}
	if hosts, _, err = tw.describe("ids and filter", ids); err != nil || len(hosts) != 1 {
		t.Fatalf("ids and filter: %v, %d hosts", err, len(hosts))
	}
	// pages of 5 over the 10 hosts
	page := &ec2.DescribeHostsInput{MaxResults: aws.Int32(5)}
	n := 0
	for i := 0; ; i++ {
		hosts, next, err := tw.describe("page "+strconv.Itoa(i), page)
		if err != nil {
			t.Fatal(err)
		}
		n += len(hosts)
		if next == nil {
			break
		}
		page.NextToken = next
	}
	if n != 10 {
		t.Fatalf("pages: %d hosts", n)
	}

	bad := []struct {
		name string
		in   *ec2.DescribeHostsInput
		code string
	}{
		{"unknown id", &ec2.DescribeHostsInput{HostIds: []string{macs[0], "h-0123456789abcdef0"}}, "InvalidHostID.NotFound"},
		{"unknown ids", &ec2.DescribeHostsInput{HostIds: []string{"h-0123456789abcdef0", "h-0123456789abcdef1"}}, "InvalidHostID.NotFound"},
		{"malformed id", &ec2.DescribeHostsInput{HostIds: []string{"host-1"}}, "InvalidHostID.Malformed"},
		{"ids and max", &ec2.DescribeHostsInput{HostIds: []string{macs[0]}, MaxResults: aws.Int32(5)}, "InvalidParameterCombination"},
		{"max too small", &ec2.DescribeHostsInput{MaxResults: aws.Int32(1)}, "InvalidParameterValue"},
		{"bad token", &ec2.DescribeHostsInput{NextToken: aws.String("nope")}, "InvalidParameterValue"},
		{"bad filter", &ec2.DescribeHostsInput{Filter: []types.Filter{{Name: aws.String("colour"), Values: []string{"red"}}}}, "InvalidParameterValue"},
	}
	for _, c := range bad {
		_, _, err := tw.describe(c.name, c.in)
		want(t, c.name, err, c.code)
	}

	// the released host is purged after its retention
	tw.advance(2 * time.Hour)
	_, _, err = tw.describe("purged", &ec2.DescribeHostsInput{HostIds: []string{macs[8]}})
	want(t, "purged", err, "InvalidHostID.NotFound")
}

func TestNativeFaultsAndThrottlingLikeAdapter(t *testing.T) {
	tw := newTwins(t, func(s *awsemu.Spec) {
		s.Throttling = awsemu.Throttling{Enabled: true, Buckets: map[string]awsemu.BucketSpec{
			"RunInstances": {Capacity: 3, RefillPerSecond: 0.1},
			"describe":     {Capacity: 2, RefillPerSecond: 0.1},
		}}
	})
	macs := tw.allocHosts(&ec2.AllocateHostsInput{AvailabilityZone: aws.String(opsZone), InstanceType: aws.String("mac2.metal"), Quantity: aws.Int32(2)})
	rules := []awsemu.FaultRule{
		{Action: "RunInstances", Code: "InsufficientInstanceCapacity", Message: "injected", HTTPStatus: 500, Count: 1},
		{Action: "TerminateInstances", Code: "InternalError", Count: 1},
		{Action: "DescribeHosts", Code: "Unavailable", HTTPStatus: 503, Count: 1},
	}
	for _, r := range rules {
		tw.both(func(w *awsemu.World) error { return w.AddFault(r) })
	}
	_, err := tw.launch("faulted launch", macRun(macs[0]))
	want(t, "faulted launch", err, "InsufficientInstanceCapacity")
	got, err := tw.launch("launch", macRun(macs[0]))
	if err != nil {
		t.Fatal(err)
	}
	want(t, "faulted terminate", tw.terminate("faulted terminate", got[0].ID), "InternalError")
	if err := tw.terminate("terminate", got[0].ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = tw.describe("faulted describe", &ec2.DescribeHostsInput{HostIds: macs[:1]})
	want(t, "faulted describe", err, "Unavailable")
	// the buckets: RunInstances had 3 tokens (2 used), describe 2 (1 used)
	if _, err := tw.launch("last token", macRun(macs[1])); err != nil {
		t.Fatal(err)
	}
	_, err = tw.launch("throttled launch", macRun(macs[1]))
	want(t, "throttled launch", err, "RequestLimitExceeded")
	if _, _, err := tw.describe("describe", &ec2.DescribeHostsInput{HostIds: macs}); err != nil {
		t.Fatal(err)
	}
	_, _, err = tw.describe("throttled describe", &ec2.DescribeHostsInput{HostIds: macs})
	want(t, "throttled describe", err, "RequestLimitExceeded")
	tw.advance(time.Minute) // refilled
	if _, _, err := tw.describe("refilled", &ec2.DescribeHostsInput{HostIds: macs}); err != nil {
		t.Fatal(err)
	}
}

// TestNativeLikeSDKOverHTTP drives a world natively and its twin through
// the HTTP emulator with the real SDK client (ec2ops.For gives the adapter).
func TestNativeLikeSDKOverHTTP(t *testing.T) {
	tw := newTwins(t, nil)
	client := ec2.NewFromConfig(server.SDKConfig(server.NewTestServer(t, tw.sdk), "us-west-2"))
	tw.ad = ec2ops.For(client)
	if _, ok := tw.ad.(ec2ops.Adapter); !ok {
		t.Fatalf("ec2ops.For(*ec2.Client) = %T, want the adapter", tw.ad)
	}
	macs := tw.allocHosts(&ec2.AllocateHostsInput{AvailabilityZone: aws.String(opsZone), InstanceType: aws.String("mac2.metal"), Quantity: aws.Int32(6)})
	tw.allocHosts(&ec2.AllocateHostsInput{AvailabilityZone: aws.String(opsZone), InstanceFamily: aws.String("c5")})

	in := macRun(macs[0])
	in.ClientToken = aws.String("http-1")
	got, err := tw.launch("mac launch", in)
	if err != nil || len(got) != 1 {
		t.Fatalf("mac launch: %v, %+v", err, got)
	}
	id := got[0].ID
	if _, err := tw.launch("replay", in); err != nil {
		t.Fatal(err)
	}
	other := macRun(macs[1])
	other.ClientToken = in.ClientToken
	_, err = tw.launch("token mismatch", other)
	want(t, "token mismatch", err, "IdempotentParameterMismatch")
	if got, err = tw.launch("multi", sharedRun(2, 2)); err != nil || len(got) != 2 {
		t.Fatalf("multi: %v, %+v", err, got)
	}
	_, err = tw.launch("unknown image", &ec2.RunInstancesInput{ImageId: aws.String("ami-0a1b2c3d4ffffffff"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	want(t, "unknown image", err, "InvalidAMIID.NotFound")

	if _, _, err := tw.describe("one host", &ec2.DescribeHostsInput{HostIds: macs[:1]}); err != nil {
		t.Fatal(err)
	}
	if err := tw.terminate("terminate", id); err != nil {
		t.Fatal(err)
	}
	want(t, "terminate unknown", tw.terminate("terminate unknown", "i-0123456789abcdef0"), "InvalidInstanceID.NotFound")
	tw.advance(time.Minute)
	if _, err := tw.launch("replay terminated", in); err != nil {
		t.Fatal(err)
	}
	hosts, _, err := tw.describe("scrubbing host", &ec2.DescribeHostsInput{HostIds: macs[:1]})
	if err != nil || hosts[0].State != types.AllocationStatePending {
		t.Fatalf("scrubbing host: %v, %+v", err, hosts)
	}
	page := &ec2.DescribeHostsInput{MaxResults: aws.Int32(5)}
	for i := 0; ; i++ {
		_, next, err := tw.describe("page "+strconv.Itoa(i), page)
		if err != nil {
			t.Fatal(err)
		}
		if next == nil {
			break
		}
		page.NextToken = next
	}
	_, _, err = tw.describe("unknown host", &ec2.DescribeHostsInput{HostIds: []string{"h-0123456789abcdef0"}})
	want(t, "unknown host", err, "InvalidHostID.NotFound")
	tw.both(func(w *awsemu.World) error {
		return w.AddFault(awsemu.FaultRule{Action: "RunInstances", Code: "InsufficientInstanceCapacity", Message: "injected", HTTPStatus: 500, Count: 1})
	})
	_, err = tw.launch("faulted launch", macRun(macs[2]))
	want(t, "faulted launch", err, "InsufficientInstanceCapacity")
}
