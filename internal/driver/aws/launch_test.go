package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
	"github.com/aquarium-fish/aquarium-fish/internal/ec2ops"
)

// tweakedEC2 launches for real but changes RunInstances' answer: tweak
// edits a copy of the launched instance, or mismatch drops the answer for
// an IdempotentParameterMismatch error (as AWS answers a client token an
// earlier attempt used with other parameters).
type tweakedEC2 struct {
	EC2API
	tweak    func(*ec2types.Instance)
	mismatch bool
	runs     int
}

func (q *tweakedEC2) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, o ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	q.runs++
	out, err := q.EC2API.RunInstances(ctx, in, o...)
	if err != nil {
		return out, err
	}
	if q.mismatch {
		return nil, &smithy.GenericAPIError{Code: "IdempotentParameterMismatch", Message: "client token used with other parameters"}
	}
	cp := *out
	cp.Instances = append([]ec2types.Instance(nil), out.Instances...)
	for i := range cp.Instances {
		inst := &cp.Instances[i]
		inst.NetworkInterfaces = append([]ec2types.InstanceNetworkInterface(nil), inst.NetworkInterfaces...)
		if q.tweak != nil {
			q.tweak(inst)
		}
	}
	return &cp, nil
}

// newTweakedEnv is an in-memory env whose driver's EC2 client is q over the
// world. The clients are the prepared driver's with EC2 replaced, so they
// carry that driver's ec2ops: Prepare must make its own from q.
func newTweakedEnv(t *testing.T, q *tweakedEC2) *env {
	t.Helper()
	e := newEnv(t, "", envOpt{inMemory: true})
	q.EC2API = e.d.api.EC2
	c := e.d.api
	c.EC2 = q
	d := New("aws", WithClock(e.clk), WithClients(c), WithoutBackgroundRunners(), WithLogger(e.d.log),
		WithSleeper(e.d.sleep), WithRetry(1, 0))
	if err := d.Prepare(e.ctx, []byte(`{"region":"us-west-2"}`)); err != nil {
		t.Fatal(err)
	}
	e.d = d
	return e
}

// The resource's address, MAC and placement are the launched instance's,
// whether RunInstances' answer has them or the driver has to describe the
// instance (no private IP yet), or adopts it by client token.
func TestAllocateReadsTheLaunchedInstance(t *testing.T) {
	const otherMAC = "02:00:00:00:ff:01"
	cases := []struct {
		name      string
		q         tweakedEC2
		describes int64 // DescribeInstances calls the allocation makes
		// wantMAC is the MAC the resource gets given the world's primary
		// one ("" = the world's).
		wantMAC string
	}{
		{name: "answer"},
		{name: "no private IP in the answer", describes: 1,
			q: tweakedEC2{tweak: func(i *ec2types.Instance) {
				i.PrivateIpAddress = nil
				// What the answer says no longer counts once described.
				i.NetworkInterfaces = []ec2types.InstanceNetworkInterface{{MacAddress: awssdk.String(otherMAC)}}
				i.Placement = nil
				i.SubnetId = nil
			}}},
		{name: "client token mismatch", describes: 1, q: tweakedEC2{mismatch: true}},
		{name: "primary interface not first",
			q: tweakedEC2{tweak: func(i *ec2types.Instance) {
				i.NetworkInterfaces = append([]ec2types.InstanceNetworkInterface{{MacAddress: awssdk.String(otherMAC),
					Attachment: &ec2types.InstanceNetworkInterfaceAttachment{DeviceIndex: awssdk.Int32(1)}}}, i.NetworkInterfaces...)
			}}},
		{name: "no primary interface", wantMAC: otherMAC,
			q: tweakedEC2{tweak: func(i *ec2types.Instance) {
				i.NetworkInterfaces = []ec2types.InstanceNetworkInterface{{MacAddress: awssdk.String(otherMAC)},
					{MacAddress: awssdk.String("02:00:00:00:ff:02")}}
			}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newTweakedEnv(t, &c.q)
			before := e.world.Calls()
			res := e.mustAllocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{Network: vpcAquarium}), nil)
			if c.q.runs != 1 {
				t.Fatalf("RunInstances through the injected client %d times, want 1", c.q.runs)
			}
			if n := e.world.Calls()["DescribeInstances"].Calls - before["DescribeInstances"].Calls; n != c.describes {
				t.Errorf("DescribeInstances calls = %d, want %d", n, c.describes)
			}
			if live := e.liveInstances(); len(live) != 1 || awssdk.ToString(live[0].InstanceId) != res.Identifier {
				t.Fatalf("resource %s, live instances %d", res.Identifier, len(live))
			}
			inst := e.instance(res.Identifier)
			if ip := awssdk.ToString(inst.PrivateIpAddress); ip == "" || res.IPAddr != ip {
				t.Errorf("IPAddr = %q, instance IP %q", res.IPAddr, ip)
			}
			want := c.wantMAC
			if want == "" {
				for _, ni := range inst.NetworkInterfaces {
					if ni.Attachment != nil && awssdk.ToInt32(ni.Attachment.DeviceIndex) == 0 {
						want = awssdk.ToString(ni.MacAddress)
					}
				}
			}
			if want == "" || res.HwAddr != want {
				t.Errorf("HwAddr = %q, want %q", res.HwAddr, want)
			}
			var dd DriverData
			if err := json.Unmarshal(res.DriverData, &dd); err != nil {
				t.Fatal(err)
			}
			if dd.Subnet != awssdk.ToString(inst.SubnetId) || inst.Placement == nil ||
				dd.Zone != awssdk.ToString(inst.Placement.AvailabilityZone) || dd.Zone == "" || dd.HostID != "" {
				t.Errorf("driver data %+v, instance subnet %s placement %+v", dd, awssdk.ToString(inst.SubnetId), inst.Placement)
			}
			if err := e.d.Deallocate(e.ctx, *res); err != nil {
				t.Fatal(err)
			}
			if live := e.liveInstances(); len(live) != 0 {
				t.Errorf("%d instances live after Deallocate", len(live))
			}
		})
	}
}

// A launch (one allocation per Allocate) stays within the 1152-byte size
// class its tagBuf length was chosen for.
func TestLaunchSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(launch{}); n > 1152 {
		t.Errorf("launch is %d bytes, more than the 1152-byte size class: shorten tagBuf", n)
	}
}

// nativeEC2 implements ec2ops.API itself (as the in-memory world does),
// counting the calls it gets that way.
type nativeEC2 struct {
	EC2API
	launches, terminates int
}

func (n *nativeEC2) LaunchInstances(ctx context.Context, in *ec2.RunInstancesInput, dst []ec2ops.Instance) ([]ec2ops.Instance, error) {
	n.launches++
	return ec2ops.Adapter{C: n.EC2API}.LaunchInstances(ctx, in, dst)
}

func (n *nativeEC2) TerminateInstanceIDs(ctx context.Context, ids []string) error {
	n.terminates++
	return ec2ops.Adapter{C: n.EC2API}.TerminateInstanceIDs(ctx, ids)
}

func (n *nativeEC2) DescribeHostStates(ctx context.Context, in *ec2.DescribeHostsInput, dst []ec2ops.Host) ([]ec2ops.Host, *string, error) {
	return ec2ops.Adapter{C: n.EC2API}.DescribeHostStates(ctx, in, dst)
}

// A client that implements ec2ops.API natively gets the launch and the
// terminate that way.
func TestNativeOpsAreUsed(t *testing.T) {
	e := newEnv(t, "", envOpt{inMemory: true})
	n := &nativeEC2{EC2API: e.d.api.EC2}
	c := e.d.api
	c.EC2 = n
	e.d = New("aws", WithClock(e.clk), WithClients(c), WithoutBackgroundRunners(), WithLogger(e.d.log),
		WithSleeper(e.d.sleep), WithRetry(1, 0))
	if err := e.d.Prepare(e.ctx, []byte(`{"region":"us-west-2"}`)); err != nil {
		t.Fatal(err)
	}
	res := e.mustAllocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{}), nil)
	if err := e.d.Deallocate(e.ctx, *res); err != nil {
		t.Fatal(err)
	}
	if n.launches != 1 || n.terminates != 1 {
		t.Fatalf("native launches %d, terminates %d; want 1 and 1", n.launches, n.terminates)
	}
	if live := e.liveInstances(); len(live) != 0 {
		t.Errorf("%d instances live after Deallocate", len(live))
	}
}

// launchRecorder notes what matters of each RunInstances input when the
// call is made (the driver recycles its launch inputs).
type launchRecorder struct {
	EC2API
	seen []string
}

func (r *launchRecorder) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, o ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	var tags []string
	for _, s := range in.TagSpecifications {
		for _, t := range s.Tags {
			tags = append(tags, string(s.ResourceType)+":"+awssdk.ToString(t.Key)+"="+awssdk.ToString(t.Value))
		}
	}
	r.seen = append(r.seen, fmt.Sprintf("token=%s key=%v user=%v groups=%v placement=%v tags=%v", awssdk.ToString(in.ClientToken),
		in.KeyName != nil, in.UserData != nil, in.SecurityGroupIds, in.Placement != nil, tags))
	return r.EC2API.RunInstances(ctx, in, o...)
}

// A recycled launch starts empty: an allocation after one with a key pair,
// user data, security groups and a label's tags (by another driver: the
// launches are shared) carries none of them.
func TestAllocateRecycledLaunchStartsEmpty(t *testing.T) {
	e := newEnv(t, "", envOpt{inMemory: true})
	r := &launchRecorder{EC2API: e.d.api.EC2}
	c := e.d.api
	c.EC2 = r
	newDriver := func(cfg string) *Driver {
		d := New("aws", WithClock(e.clk), WithClients(c), WithoutBackgroundRunners(), WithLogger(e.d.log),
			WithSleeper(e.d.sleep), WithRetry(1, 0))
		if err := d.Prepare(e.ctx, []byte(cfg)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	keyed, plainDrv := newDriver(`{"region":"us-west-2","instance_key":"generate"}`), newDriver(`{"region":"us-west-2"}`)
	full := e.def(`{"image":"ubuntu-22.04","instance_type":"t3.large","security_group":"aquarium-ssh","userdata_format":"env","tags":{"a":"b"}}`,
		core.Resources{Network: vpcAquarium})
	plain := e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{Network: vpcAquarium})
	for i := range 4 {
		d, def, luid := keyed, full, "lu"
		if i%2 == 1 {
			d, def, luid = plainDrv, plain, ""
		}
		if _, err := d.Allocate(e.ctx, driver.AllocateRequest{ApplicationUID: fmt.Sprintf("app-%d", i), LabelName: "l", LabelUID: luid,
			Definition: def, Metadata: map[string]any{"k": "v"}}); err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
	if len(r.seen) != 4 {
		t.Fatalf("RunInstances calls: %d, want 4", len(r.seen))
	}
	for i := 1; i < 4; i += 2 {
		want := fmt.Sprintf("token=app-%d-%s-0 key=false user=false groups=[] placement=false tags=[instance:AquariumApplication=app-%d instance:Name=l-app-%d volume:AquariumApplication=app-%d volume:Name=l-app-%d]",
			i, mustDefHash(t, plainDrv, plain), i, i, i, i)
		if r.seen[i] != want {
			t.Errorf("allocation %d after a full one:\n got %s\nwant %s", i, r.seen[i], want)
		}
	}
	for _, part := range []string{"key=true", "user=true", "instance:a=b", "instance:AquariumLabel=lu"} {
		if !strings.Contains(r.seen[2], part) {
			t.Errorf("full allocation without %s: %s", part, r.seen[2])
		}
	}
}

func mustDefHash(t *testing.T, d *Driver, def core.Definition) string {
	t.Helper()
	p, err := d.definition(def)
	if err != nil {
		t.Fatal(err)
	}
	return p.defHash
}
