package ec2ops_test

import (
	"context"
	"errors"
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

var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// sdkClient is a real aws-sdk-go-v2 EC2 client on the emulator's HTTP
// server, with the world behind it.
func sdkClient(t *testing.T) (*ec2.Client, *clock.Virtual) {
	t.Helper()
	clk := clock.NewVirtual(t0)
	w, err := awsemu.New(clk, awsemu.DefaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	return ec2.NewFromConfig(server.SDKConfig(server.NewTestServer(t, w), "us-west-2")), clk
}

func macHost(t *testing.T, c *ec2.Client) string {
	t.Helper()
	out, err := c.AllocateHosts(context.Background(), &ec2.AllocateHostsInput{
		AvailabilityZone: aws.String("us-west-2a"), InstanceType: aws.String("mac2.metal"), Quantity: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.HostIds[0]
}

func TestForPicksTheAdapterForTheSDKClient(t *testing.T) {
	c, _ := sdkClient(t)
	if _, ok := ec2ops.For(c).(ec2ops.Adapter); !ok {
		t.Fatalf("For(*ec2.Client) = %T, want the Adapter", ec2ops.For(c))
	}
}

// The adapter's records carry what the SDK answers say, over HTTP.
func TestAdapterOverHTTP(t *testing.T) {
	ctx := context.Background()
	c, clk := sdkClient(t)
	ops := ec2ops.For(c)
	hostID := macHost(t, c)

	in := &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0a1b2c3d40000000a"), InstanceType: types.InstanceTypeMac2Metal,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ClientToken: aws.String("tok-1"),
		Placement: &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(hostID)},
	}
	got, err := ops.LaunchInstances(ctx, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("launched %d instances, want 1", len(got))
	}
	inst := got[0]
	desc, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if want := ec2ops.FromSDKInstance(&desc.Reservations[0].Instances[0]); inst != want {
		t.Fatalf("launched %+v\ndescribed %+v", inst, want)
	}
	if inst.HostID != hostID || inst.Zone != "us-west-2a" || inst.State != types.InstanceStateNamePending ||
		inst.PrivateIP == "" || inst.SubnetID == "" || inst.MAC == "" {
		t.Fatalf("launched %+v: missing fields", inst)
	}
	// the same token answers with the same instance, appended to dst
	again, err := ops.LaunchInstances(ctx, in, got[:1])
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 2 || again[1].ID != inst.ID {
		t.Fatalf("token replay = %+v, want the instance %s appended", again, inst.ID)
	}

	hosts, next, err := ops.DescribeHostStates(ctx, &ec2.DescribeHostsInput{HostIds: []string{hostID}}, nil)
	if err != nil || next != nil || len(hosts) != 1 {
		t.Fatalf("DescribeHostStates = %+v, %v, %v", hosts, next, err)
	}
	h := hosts[0]
	if h.ID != hostID || h.Zone != "us-west-2a" || h.State != types.AllocationStateAvailable || h.AllocatedAt.IsZero() ||
		h.InstanceType != "mac2.metal" || h.TotalCapacity("mac2.metal") != 1 || len(h.Instances) != 1 || h.Instances[0] != inst.ID {
		t.Fatalf("host %+v", h)
	}

	if err := ops.TerminateInstanceIDs(ctx, []string{inst.ID}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	hosts, _, err = ops.DescribeHostStates(ctx, &ec2.DescribeHostsInput{HostIds: []string{hostID}}, ec2ops.Reset(hosts))
	if err != nil || len(hosts) != 1 {
		t.Fatalf("DescribeHostStates after terminate = %+v, %v", hosts, err)
	}
	if h := hosts[0]; h.State != types.AllocationStatePending || len(h.Instances) != 0 {
		t.Fatalf("host after terminate %+v, want pending (scrubbing) and empty", h)
	}

	// errors come through as the SDK's API errors
	err = ops.TerminateInstanceIDs(ctx, []string{"i-00000000000000000"})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidInstanceID.NotFound" {
		t.Fatalf("terminate unknown = %v, want InvalidInstanceID.NotFound", err)
	}
	if _, _, err := ops.DescribeHostStates(ctx, &ec2.DescribeHostsInput{HostIds: []string{"h-00000000000000000"}}, nil); err == nil {
		t.Fatal("DescribeHostStates of an unknown host: no error")
	}
}

func TestAdapterPagesHosts(t *testing.T) {
	ctx := context.Background()
	c, _ := sdkClient(t)
	want := map[string]bool{}
	for range 6 {
		want[macHost(t, c)] = true
	}
	ops := ec2ops.For(c)
	in := &ec2.DescribeHostsInput{MaxResults: aws.Int32(5)}
	var all []ec2ops.Host
	pages := 0
	for {
		var next *string
		var err error
		all, next, err = ops.DescribeHostStates(ctx, in, all)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if next == nil {
			break
		}
		in.NextToken = next
	}
	if pages != 2 || len(all) != 6 {
		t.Fatalf("%d pages, %d hosts; want 2 pages of 6 hosts", pages, len(all))
	}
	for _, h := range all {
		if !want[h.ID] {
			t.Fatalf("unexpected host %s", h.ID)
		}
	}
}

// Grow reuses the slices of the spare elements; Reset keeps no strings.
func TestGrowReusesAndResetClears(t *testing.T) {
	hosts := []ec2ops.Host{{ID: "h-1", Capacity: []ec2ops.Capacity{{InstanceType: "mac2.metal", Total: 1}}, Instances: []string{"i-1", "i-2"}}}
	instsArray := &hosts[0].Instances[0]
	hosts = ec2ops.Reset(hosts)
	if len(hosts) != 0 || cap(hosts) != 1 {
		t.Fatalf("Reset: len %d cap %d", len(hosts), cap(hosts))
	}
	if full := hosts[:1]; full[0].ID != "" || full[0].Instances[:2][0] != "" {
		t.Fatalf("Reset kept %+v", full[0])
	}
	h := ec2ops.Grow(&hosts)
	if len(hosts) != 1 || h.ID != "" || len(h.Instances) != 0 || cap(h.Instances) != 2 {
		t.Fatalf("Grow: %+v (cap %d)", h, cap(h.Instances))
	}
	h.Instances = append(h.Instances, "i-3")
	if &h.Instances[0] != instsArray {
		t.Fatal("Grow did not reuse the Instances array")
	}
	if h2 := ec2ops.Grow(&hosts); len(hosts) != 2 || h2.ID != "" || h2.Instances != nil {
		t.Fatalf("Grow past capacity: %+v", h2)
	}
}
