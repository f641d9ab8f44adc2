package awsemu

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

const (
	linuxImage  = "ami-0a1b2c3d400000002" // al2023 x86_64
	ubuntuImage = "ami-0a1b2c3d400000009" // account image ubuntu-22.04
	aquariumA   = "subnet-0a9a1a100000000a1"
	defaultA    = "subnet-0d3fa017000000a01"
)

var bg = context.Background()

func runLinux(t testing.TB, w *World, mod func(*ec2.RunInstancesInput)) *ec2.RunInstancesOutput {
	t.Helper()
	in := &ec2.RunInstancesInput{ImageId: aws.String(linuxImage), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}
	if mod != nil {
		mod(in)
	}
	out, err := w.RunInstances(bg, in)
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	return out
}

func subnetFree(t testing.TB, w *World, id string) int32 {
	t.Helper()
	out, err := w.DescribeSubnets(bg, &ec2.DescribeSubnetsInput{SubnetIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeSubnets: %v", err)
	}
	return aws.ToInt32(out.Subnets[0].AvailableIpAddressCount)
}

func TestRunInstancesDefaults(t *testing.T) {
	w, clk := newTestWorld(t, nil)
	free := subnetFree(t, w, defaultA)
	ud := base64.StdEncoding.EncodeToString([]byte("KEY=value\n"))
	out := runLinux(t, w, func(in *ec2.RunInstancesInput) {
		in.Placement = &types.Placement{AvailabilityZone: aws.String("us-west-2a")}
		in.UserData = aws.String(ud)
		in.TagSpecifications = []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("ci-1")}}},
			{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{{Key: aws.String("Owner"), Value: aws.String("ci")}}},
		}
	})
	inst := out.Instances[0]
	if aws.ToString(inst.SubnetId) != defaultA || aws.ToString(inst.VpcId) != "vpc-0d3fa0170000d3fa0" {
		t.Fatalf("placed in %s/%s, want the default subnet of us-west-2a", aws.ToString(inst.SubnetId), aws.ToString(inst.VpcId))
	}
	if ip := aws.ToString(inst.PrivateIpAddress); !strings.HasPrefix(ip, "172.31.") {
		t.Fatalf("private ip %q not in the default subnet", ip)
	}
	if len(inst.NetworkInterfaces) != 1 || aws.ToString(inst.NetworkInterfaces[0].MacAddress) == "" {
		t.Fatalf("network interfaces: %+v", inst.NetworkInterfaces)
	}
	if len(inst.SecurityGroups) != 1 || aws.ToString(inst.SecurityGroups[0].GroupName) != "default" {
		t.Fatalf("security groups: %+v", inst.SecurityGroups)
	}
	if got := subnetFree(t, w, defaultA); got != free-1 {
		t.Fatalf("free IPs %d -> %d, want -1", free, got)
	}
	if inst.Architecture != types.ArchitectureValuesX8664 || len(inst.BlockDeviceMappings) != 1 {
		t.Fatalf("arch %s bdm %d", inst.Architecture, len(inst.BlockDeviceMappings))
	}
	id := aws.ToString(inst.InstanceId)
	attr, err := w.DescribeInstanceAttribute(bg, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameUserData})
	if err != nil || aws.ToString(attr.UserData.Value) != ud {
		t.Fatalf("userData attribute: %v %+v", err, attr)
	}
	vols, err := w.DescribeVolumes(bg, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}}})
	if err != nil || len(vols.Volumes) != 1 {
		t.Fatalf("volumes: %v %d", err, len(vols.Volumes))
	}
	if v, _ := tagSet(nil).get("x"); v != "" {
		t.Fatal("empty tag set")
	}
	if len(vols.Volumes[0].Tags) != 1 || aws.ToString(vols.Volumes[0].Tags[0].Key) != "Owner" {
		t.Fatalf("volume tags %+v", vols.Volumes[0].Tags)
	}

	// pending -> running after the default 30s boot
	state := func() types.InstanceStateName {
		d, err := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatalf("DescribeInstances: %v", err)
		}
		return d.Reservations[0].Instances[0].State.Name
	}
	clk.Advance(29 * time.Second)
	if s := state(); s != types.InstanceStateNamePending {
		t.Fatalf("at 29s: %s", s)
	}
	clk.Advance(time.Second)
	if s := state(); s != types.InstanceStateNameRunning {
		t.Fatalf("at 30s: %s", s)
	}
	st, err := w.StopInstances(bg, &ec2.StopInstancesInput{InstanceIds: []string{id}})
	if err != nil || st.StoppingInstances[0].CurrentState.Name != types.InstanceStateNameStopping || st.StoppingInstances[0].PreviousState.Name != types.InstanceStateNameRunning {
		t.Fatalf("stop: %v %+v", err, st)
	}
	clk.Advance(20 * time.Second)
	if s := state(); s != types.InstanceStateNameStopped {
		t.Fatalf("after stop delay: %s", s)
	}
	if got := subnetFree(t, w, defaultA); got != free-1 {
		t.Fatalf("a stopped instance keeps its IP: free %d", got)
	}
	if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != types.InstanceStateNameShuttingDown {
		t.Fatalf("after terminate: %s", s)
	}
	clk.Advance(10 * time.Second)
	if s := state(); s != types.InstanceStateNameTerminated {
		t.Fatalf("after terminate delay: %s", s)
	}
	if got := subnetFree(t, w, defaultA); got != free {
		t.Fatalf("terminated instance must free its IP: %d want %d", got, free)
	}
	vols, _ = w.DescribeVolumes(bg, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}}})
	if len(vols.Volumes) != 0 {
		t.Fatalf("delete-on-termination volume still listed")
	}
	// instance seconds: launch -> stop call (30s)
	if got := w.Billing(t0, t0.Add(time.Hour)).InstanceSeconds[id]; got != 30 {
		t.Fatalf("instance seconds = %v, want 30", got)
	}
}

func TestRunInstancesErrors(t *testing.T) {
	w, _ := newTestWorld(t, func(s *Spec) {
		s.KeyPairs = []KeyPairSpec{{Name: "ci", Type: "ed25519"}}
	})
	hid := allocHost(t, w, "mac2.metal", "us-west-2a", false)
	c5 := allocHost(t, w, "c5.large", "us-west-2b", false)
	cases := []struct {
		name string
		mod  func(*ec2.RunInstancesInput)
		code string
	}{
		{"unknown image", func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("ami-0123456789abcdef0") }, "InvalidAMIID.NotFound"},
		{"malformed image", func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("ubuntu") }, "InvalidAMIID.Malformed"},
		{"no image", func(in *ec2.RunInstancesInput) { in.ImageId = nil }, "MissingParameter"},
		{"unknown type", func(in *ec2.RunInstancesInput) { in.InstanceType = "t9.huge" }, "InvalidParameterValue"},
		{"arch mismatch", func(in *ec2.RunInstancesInput) { in.InstanceType = types.InstanceTypeM6gLarge }, "InvalidParameterValue"},
		{"missing key", func(in *ec2.RunInstancesInput) { in.KeyName = aws.String("nope") }, "InvalidKeyPair.NotFound"},
		{"unknown subnet", func(in *ec2.RunInstancesInput) { in.SubnetId = aws.String("subnet-0123456789abcdef0") }, "InvalidSubnetID.NotFound"},
		{"unknown sg", func(in *ec2.RunInstancesInput) { in.SecurityGroupIds = []string{"sg-0123456789abcdef0"} }, "InvalidGroup.NotFound"},
		{"sg of another vpc", func(in *ec2.RunInstancesInput) {
			in.SubnetId = aws.String(defaultA)
			in.SecurityGroupIds = []string{"sg-0a9a1a1000000005a"}
		}, "InvalidParameter"},
		{"group names in a non-default vpc", func(in *ec2.RunInstancesInput) {
			in.SubnetId = aws.String(aquariumA)
			in.SecurityGroups = []string{"aquarium-ssh"}
		}, "InvalidParameterCombination"},
		{"bad user data", func(in *ec2.RunInstancesInput) { in.UserData = aws.String("not base64!") }, "InvalidParameterValue"},
		{"min > max", func(in *ec2.RunInstancesInput) { in.MinCount = aws.Int32(3) }, "InvalidParameterValue"},
		{"mac without host", func(in *ec2.RunInstancesInput) {
			in.ImageId = aws.String(macArmImage)
			in.InstanceType = "mac2.metal"
		}, "InvalidParameterCombination"},
		{"unknown host", func(in *ec2.RunInstancesInput) {
			in.Placement = &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String("h-0123456789abcdef0")}
		}, "InvalidHostID.NotFound"},
		{"type not matching host", func(in *ec2.RunInstancesInput) {
			in.Placement = &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(hid)}
		}, "InvalidParameterValue"},
		{"host zone vs subnet zone", func(in *ec2.RunInstancesInput) {
			in.InstanceType = types.InstanceTypeC5Large
			in.SubnetId = aws.String(defaultA)
			in.Placement = &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(c5)}
		}, "InvalidParameterValue"},
		{"auto placement without hosts", func(in *ec2.RunInstancesInput) {
			in.Placement = &types.Placement{Tenancy: types.TenancyHost}
		}, "InsufficientCapacityOnHost"},
		{"bad zone", func(in *ec2.RunInstancesInput) {
			in.Placement = &types.Placement{AvailabilityZone: aws.String("us-west-2z")}
		}, "InvalidParameterValue"},
		{"snapshot too big for size", func(in *ec2.RunInstancesInput) {
			in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String("snap-0a9a1a10000000001"), VolumeSize: aws.Int32(10)}}}
		}, "InvalidBlockDeviceMapping"},
		{"unknown snapshot", func(in *ec2.RunInstancesInput) {
			in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String("snap-0123456789abcdef0")}}}
		}, "InvalidSnapshot.NotFound"},
		{"kms without encrypted", func(in *ec2.RunInstancesInput) {
			in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(10), KmsKeyId: aws.String("alias/aquarium")}}}
		}, "InvalidParameterDependency"},
		{"unknown kms", func(in *ec2.RunInstancesInput) {
			in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(10), Encrypted: aws.Bool(true), KmsKeyId: aws.String("alias/nope")}}}
		}, "NotFoundException"},
		{"io1 without iops", func(in *ec2.RunInstancesInput) {
			in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(10), VolumeType: types.VolumeTypeIo1}}}
		}, "InvalidParameterCombination"},
		{"dry run", func(in *ec2.RunInstancesInput) { in.DryRun = aws.Bool(true) }, "DryRunOperation"},
		{"bad tag resource type", func(in *ec2.RunInstancesInput) {
			in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeDedicatedHost, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}}
		}, "InvalidParameterValue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &ec2.RunInstancesInput{ImageId: aws.String(linuxImage), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}
			tc.mod(in)
			_, err := w.RunInstances(bg, in)
			if got := apiCode(err); got != tc.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tc.code)
			}
		})
	}
	// nothing leaked by the failures
	d, _ := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{})
	if len(d.Reservations) != 0 {
		t.Fatalf("failed launches left %d reservations", len(d.Reservations))
	}
	st := w.Calls()["RunInstances"]
	if st.Calls != int64(len(cases)) || st.Errors != int64(len(cases)) {
		t.Fatalf("calls recorded %+v, want %d/%d", st, len(cases), len(cases))
	}
}

func TestRunInstancesFeatures(t *testing.T) {
	w, _ := newTestWorld(t, func(s *Spec) { s.KeyPairs = []KeyPairSpec{{Name: "ci", Type: "ed25519"}} })
	out := runLinux(t, w, func(in *ec2.RunInstancesInput) {
		in.SubnetId = aws.String(aquariumA)
		in.SecurityGroupIds = []string{"sg-0a9a1a1000000005a"}
		in.KeyName = aws.String("ci")
		in.BlockDeviceMappings = []types.BlockDeviceMapping{
			{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(30), VolumeType: types.VolumeTypeGp3, Iops: aws.Int32(4000)}},
			{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String("snap-0a9a1a10000000001"), Encrypted: aws.Bool(true), KmsKeyId: aws.String("alias/aquarium")}},
			{DeviceName: aws.String("/dev/sdg"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(100), VolumeType: types.VolumeTypeIo2, Iops: aws.Int32(5000)}},
		}
	})
	inst := out.Instances[0]
	if aws.ToString(inst.KeyName) != "ci" || aws.ToString(inst.SecurityGroups[0].GroupId) != "sg-0a9a1a1000000005a" {
		t.Fatalf("key %q groups %+v", aws.ToString(inst.KeyName), inst.SecurityGroups)
	}
	if ip := aws.ToString(inst.PrivateIpAddress); !strings.HasPrefix(ip, "10.0.1.") {
		t.Fatalf("ip %s not from 10.0.1.0/24", ip)
	}
	vols, err := w.DescribeVolumes(bg, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{aws.ToString(inst.InstanceId)}}}})
	if err != nil || len(vols.Volumes) != 3 {
		t.Fatalf("volumes: %v %d", err, len(vols.Volumes))
	}
	byDev := map[string]types.Volume{}
	for _, v := range vols.Volumes {
		byDev[aws.ToString(v.Attachments[0].Device)] = v
	}
	if v := byDev["/dev/xvda"]; aws.ToInt32(v.Size) != 30 || aws.ToInt32(v.Iops) != 4000 || v.VolumeType != types.VolumeTypeGp3 {
		t.Fatalf("root volume %+v", v)
	}
	if v := byDev["/dev/sdf"]; !aws.ToBool(v.Encrypted) || !strings.HasSuffix(aws.ToString(v.KmsKeyId), ":key/1234abcd-12ab-34cd-56ef-1234567890ab") ||
		aws.ToString(v.SnapshotId) != "snap-0a9a1a10000000001" || aws.ToInt32(v.Size) != 50 {
		t.Fatalf("snapshot volume %+v", v)
	}
	if v := byDev["/dev/sdg"]; v.VolumeType != types.VolumeTypeIo2 || aws.ToInt32(v.Iops) != 5000 {
		t.Fatalf("io2 volume %+v", v)
	}

	// MinCount/MaxCount: a subnet with 3 free addresses launches 3 of 5.
	w2, _ := newTestWorld(t, func(s *Spec) {
		s.VPCs[1].Subnets[2].CIDR = "10.0.3.0/28" // 11 usable
		s.VPCs[1].Subnets[2].UsedIPs = 8
	})
	out = runLinux(t, w2, func(in *ec2.RunInstancesInput) {
		in.SubnetId = aws.String("subnet-0a9a1a100000000c1")
		in.MinCount, in.MaxCount = aws.Int32(2), aws.Int32(5)
	})
	if len(out.Instances) != 3 {
		t.Fatalf("launched %d, want 3", len(out.Instances))
	}
	_, err = w2.RunInstances(bg, &ec2.RunInstancesInput{ImageId: aws.String(linuxImage), InstanceType: "t3.micro", MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String("subnet-0a9a1a100000000c1")})
	if apiCode(err) != "InsufficientFreeAddressesInSubnet" {
		t.Fatalf("full subnet: %v", err)
	}
}

func TestClientTokenIdempotency(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	mk := func(typ types.InstanceType) *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{ImageId: aws.String(linuxImage), InstanceType: typ, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ClientToken: aws.String("app-1")}
	}
	a, err := w.RunInstances(bg, mk("t3.micro"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.RunInstances(bg, mk("t3.micro"))
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(a.ReservationId) != aws.ToString(b.ReservationId) || aws.ToString(a.Instances[0].InstanceId) != aws.ToString(b.Instances[0].InstanceId) {
		t.Fatalf("same token launched twice")
	}
	if _, err := w.RunInstances(bg, mk("t3.small")); apiCode(err) != "IdempotentParameterMismatch" {
		t.Fatalf("different params: %v", err)
	}
	d, _ := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{})
	if len(d.Reservations) != 1 {
		t.Fatalf("%d reservations", len(d.Reservations))
	}

	h := &ec2.AllocateHostsInput{AvailabilityZone: aws.String("us-west-2a"), InstanceType: aws.String("mac2.metal"), ClientToken: aws.String("pool-1"), Quantity: aws.Int32(1)}
	h1, err := w.AllocateHosts(bg, h)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := w.AllocateHosts(bg, h)
	if err != nil || h1.HostIds[0] != h2.HostIds[0] {
		t.Fatalf("same host token: %v %v %v", err, h1.HostIds, h2.HostIds)
	}
	h.AvailabilityZone = aws.String("us-west-2b")
	if _, err := w.AllocateHosts(bg, h); apiCode(err) != "IdempotentParameterMismatch" {
		t.Fatalf("host token mismatch: %v", err)
	}
	dh, _ := w.DescribeHosts(bg, &ec2.DescribeHostsInput{Filter: []types.Filter{{Name: aws.String("client-token"), Values: []string{"pool-1"}}}})
	if len(dh.Hosts) != 1 {
		t.Fatalf("hosts with token: %d", len(dh.Hosts))
	}
}

func TestHostsRules(t *testing.T) {
	w, clk := newTestWorld(t, func(s *Spec) {
		s.Timings.AvailableLag = core.Duration(2 * time.Minute)
		s.Limits.HostCapacity = []CapacityLimit{{Zone: "us-west-2c", InstanceType: "mac2", Max: 1}}
		for i := range s.Quotas {
			if s.Quotas[i].Name == "Running Dedicated mac1 Hosts" {
				s.Quotas[i].Value = 2
			}
		}
	})
	// tags and auto placement
	out, err := w.AllocateHosts(bg, &ec2.AllocateHostsInput{AvailabilityZone: aws.String("us-west-2b"), InstanceType: aws.String("mac1.metal"),
		Quantity: aws.Int32(2), AutoPlacement: types.AutoPlacementOn,
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeDedicatedHost, Tags: []types.Tag{{Key: aws.String("AquariumDedicatedPool-ci"), Value: aws.String("")}}}}})
	if err != nil || len(out.HostIds) != 2 {
		t.Fatalf("AllocateHosts: %v", err)
	}
	if _, err := w.AllocateHosts(bg, &ec2.AllocateHostsInput{AvailabilityZone: aws.String("us-west-2b"), InstanceType: aws.String("mac1.metal"), Quantity: aws.Int32(1)}); apiCode(err) != "HostLimitExceeded" {
		t.Fatalf("quota: %v", err)
	}
	allocHost(t, w, "mac2.metal", "us-west-2c", false)
	_, err = w.AllocateHosts(bg, &ec2.AllocateHostsInput{AvailabilityZone: aws.String("us-west-2c"), InstanceType: aws.String("mac2.metal"), Quantity: aws.Int32(1)})
	var ae *APIError
	if apiCode(err) != "InsufficientHostCapacity" || !asAPIError(err, &ae) || ae.HTTPStatus != 500 {
		t.Fatalf("zone capacity: %v", err)
	}
	dh, err := w.DescribeHosts(bg, &ec2.DescribeHostsInput{Filter: []types.Filter{{Name: aws.String("tag-key"), Values: []string{"AquariumDedicatedPool-ci"}}}})
	if err != nil || len(dh.Hosts) != 2 || dh.Hosts[0].AutoPlacement != types.AutoPlacementOn {
		t.Fatalf("tag-key filter: %v %d", err, len(dh.Hosts))
	}
	// auto placement: tenancy host without host id lands on an auto-placement host
	run, err := w.RunInstances(bg, &ec2.RunInstancesInput{ImageId: aws.String("ami-0a1b2c3d400000006"), InstanceType: "mac1.metal", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &types.Placement{Tenancy: types.TenancyHost, AvailabilityZone: aws.String("us-west-2b")}})
	if err != nil || aws.ToString(run.Instances[0].Placement.HostId) != out.HostIds[0] {
		t.Fatalf("auto placement: %v", err)
	}
	// auto placement without a zone goes to the zone of a free auto-placement host
	run2, err := w.RunInstances(bg, &ec2.RunInstancesInput{ImageId: aws.String("ami-0a1b2c3d400000006"), InstanceType: "mac1.metal", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &types.Placement{Tenancy: types.TenancyHost}})
	if err != nil || aws.ToString(run2.Instances[0].Placement.HostId) != out.HostIds[1] || aws.ToString(run2.Instances[0].Placement.AvailabilityZone) != "us-west-2b" {
		t.Fatalf("auto placement without zone: %v", err)
	}
	if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(run2.Instances[0].InstanceId)}}); err != nil {
		t.Fatal(err)
	}
	// available lag: after scrubbing the host says available but refuses for 2 minutes
	iid := aws.ToString(run.Instances[0].InstanceId)
	if _, err := w.StopInstances(bg, &ec2.StopInstancesInput{InstanceIds: []string{iid}}); apiCode(err) != "IncorrectInstanceState" {
		t.Fatalf("stop pending instance: %v", err)
	}
	clk.Advance(7 * time.Minute)
	if _, err := w.StopInstances(bg, &ec2.StopInstancesInput{InstanceIds: []string{iid}}); err != nil {
		t.Fatal(err)
	}
	if h := describeHost(t, w, out.HostIds[0]); h.State != types.AllocationStatePending {
		t.Fatalf("stop must scrub: %s", h.State)
	}
	clk.Advance(90 * time.Minute)
	if h := describeHost(t, w, out.HostIds[0]); h.State != types.AllocationStateAvailable {
		t.Fatalf("after scrubbing: %s", h.State)
	}
	if _, err := runOnHost(w, out.HostIds[0], "mac1.metal", "ami-0a1b2c3d400000006"); apiCode(err) != "InsufficientCapacityOnHost" {
		t.Fatalf("during available lag: %v", err)
	}
	clk.Advance(2 * time.Minute)
	if _, err := runOnHost(w, out.HostIds[0], "mac1.metal", "ami-0a1b2c3d400000006"); err != nil {
		t.Fatalf("after lag: %v", err)
	}
	// state filter and failure states
	if err := w.SetHostState(out.HostIds[1], types.AllocationStatePermanentFailure); err != nil {
		t.Fatal(err)
	}
	dh, _ = w.DescribeHosts(bg, &ec2.DescribeHostsInput{Filter: []types.Filter{{Name: aws.String("state"), Values: []string{"permanent-failure"}}}})
	if len(dh.Hosts) != 1 || aws.ToString(dh.Hosts[0].HostId) != out.HostIds[1] {
		t.Fatalf("permanent-failure filter: %d", len(dh.Hosts))
	}
	clk.Advance(24 * time.Hour)
	rel, _ := w.ReleaseHosts(bg, &ec2.ReleaseHostsInput{HostIds: []string{out.HostIds[1]}})
	if len(rel.Successful) != 1 {
		t.Fatalf("release failed host: %+v", rel)
	}
	if h := describeHost(t, w, out.HostIds[1]); h.State != types.AllocationStateReleasedPermanentFailure {
		t.Fatalf("released failed host: %s", h.State)
	}
	// pending hosts may be released
	clk.Advance(time.Hour)
	first := out.HostIds[0]
	d, _ := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("host-id"), Values: []string{first}}, {Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}}})
	if len(d.Reservations) != 1 {
		t.Fatalf("host-id filter: %d", len(d.Reservations))
	}
	if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(d.Reservations[0].Instances[0].InstanceId)}}); err != nil {
		t.Fatal(err)
	}
	rel, _ = w.ReleaseHosts(bg, &ec2.ReleaseHostsInput{HostIds: []string{first}})
	if len(rel.Successful) != 1 {
		t.Fatalf("release pending host: %+v", rel.Unsuccessful)
	}
}

func TestNonMacHostSlots(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	hid := allocHost(t, w, "c5.large", "us-west-2a", false)
	h := describeHost(t, w, hid)
	total := aws.ToInt32(h.AvailableCapacity.AvailableInstanceCapacity[0].TotalCapacity)
	if total != 48 { // 96 host vCPUs / 2
		t.Fatalf("c5.large slots = %d", total)
	}
	out, err := w.RunInstances(bg, &ec2.RunInstancesInput{ImageId: aws.String(linuxImage), InstanceType: "c5.large", MinCount: aws.Int32(3), MaxCount: aws.Int32(3),
		Placement: &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(hid)}})
	if err != nil || len(out.Instances) != 3 {
		t.Fatalf("run 3: %v", err)
	}
	h = describeHost(t, w, hid)
	if got := aws.ToInt32(h.AvailableCapacity.AvailableInstanceCapacity[0].AvailableCapacity); got != total-3 || len(h.Instances) != 3 {
		t.Fatalf("available %d instances %d", got, len(h.Instances))
	}
	if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(out.Instances[0].InstanceId)}}); err != nil {
		t.Fatal(err)
	}
	if h = describeHost(t, w, hid); h.State != types.AllocationStateAvailable || len(h.Instances) != 2 {
		t.Fatalf("non-mac host after terminate: %s %d", h.State, len(h.Instances))
	}
	// family host takes several sizes
	fam, err := w.AllocateHosts(bg, &ec2.AllocateHostsInput{AvailabilityZone: aws.String("us-west-2a"), InstanceFamily: aws.String("m5"), Quantity: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []types.InstanceType{"m5.24xlarge", "m5.large"} {
		_, err := w.RunInstances(bg, &ec2.RunInstancesInput{ImageId: aws.String(linuxImage), InstanceType: typ, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			Placement: &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(fam.HostIds[0])}})
		if typ == "m5.large" {
			if apiCode(err) != "InsufficientCapacityOnHost" {
				t.Fatalf("full family host: %v", err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

func asAPIError(err error, target **APIError) bool {
	ae, ok := err.(*APIError)
	if ok {
		*target = ae
	}
	return ok
}

func TestFilters(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	imgs := func(owners []string, f ...types.Filter) []string {
		out, err := w.DescribeImages(bg, &ec2.DescribeImagesInput{Owners: owners, Filters: f})
		if err != nil {
			t.Fatalf("DescribeImages: %v", err)
		}
		var names []string
		for _, i := range out.Images {
			names = append(names, aws.ToString(i.Name))
		}
		return names
	}
	fl := func(n string, v ...string) types.Filter { return types.Filter{Name: aws.String(n), Values: v} }
	cases := []struct {
		name   string
		owners []string
		f      []types.Filter
		want   []string
	}{
		{"self by name", []string{"self"}, []types.Filter{fl("name", "ubuntu-22.04")}, []string{"ubuntu-22.04"}},
		{"amazon mac arm wildcard", []string{"amazon"}, []types.Filter{fl("name", "amzn-ec2-macos-*-arm64"), fl("architecture", "arm64_mac")},
			[]string{"amzn-ec2-macos-14.7.1-20241201-000000-arm64", "amzn-ec2-macos-14.7.1-20250101-000000-arm64"}},
		{"creation-date wildcard", nil, []types.Filter{fl("creation-date", "2025-01-01*"), fl("owner-alias", "amazon"), fl("architecture", "x86_64")},
			[]string{"al2023-ami-2023.6.20250101.0-kernel-6.1-x86_64"}},
		{"question mark", nil, []types.Filter{fl("name", "macos-1?")}, []string{"macos-14"}},
		{"tag", nil, []types.Filter{fl("tag:Os", "macos", "ubuntu")}, []string{"ubuntu-22.04", "macos-14"}},
		{"is-public false", nil, []types.Filter{fl("is-public", "false")}, []string{"ubuntu-22.04", "macos-14"}},
		{"owner id", []string{"123456789012"}, []types.Filter{fl("architecture", "arm64_mac")}, []string{"macos-14"}},
		{"no match", nil, []types.Filter{fl("name", "nothing*")}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := imgs(tc.owners, tc.f...)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v want %v", got, tc.want)
			}
		})
	}
	// subnets / vpcs / groups
	sn, _ := w.DescribeSubnets(bg, &ec2.DescribeSubnetsInput{Filters: []types.Filter{fl("tag:Project", "aquarium"), fl("availability-zone", "us-west-2b")}})
	if len(sn.Subnets) != 1 || aws.ToString(sn.Subnets[0].SubnetId) != "subnet-0a9a1a100000000b1" || aws.ToInt32(sn.Subnets[0].AvailableIpAddressCount) != 251-10 {
		t.Fatalf("subnet filter: %+v", sn.Subnets)
	}
	if z := aws.ToString(sn.Subnets[0].AvailabilityZoneId); z != "usw2-az2" {
		t.Fatalf("zone id %q", z)
	}
	sn, _ = w.DescribeSubnets(bg, &ec2.DescribeSubnetsInput{Filters: []types.Filter{fl("default-for-az", "true")}})
	if len(sn.Subnets) != 3 {
		t.Fatalf("default-for-az: %d", len(sn.Subnets))
	}
	v, _ := w.DescribeVpcs(bg, &ec2.DescribeVpcsInput{Filters: []types.Filter{fl("is-default", "true")}})
	if len(v.Vpcs) != 1 || aws.ToString(v.Vpcs[0].CidrBlock) != "172.31.0.0/16" {
		t.Fatalf("default vpc: %+v", v.Vpcs)
	}
	v, _ = w.DescribeVpcs(bg, &ec2.DescribeVpcsInput{Filters: []types.Filter{fl("tag:Name", "aquarium")}})
	if len(v.Vpcs) != 1 {
		t.Fatalf("vpc by tag: %d", len(v.Vpcs))
	}
	g, _ := w.DescribeSecurityGroups(bg, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{fl("group-name", "aquarium-ssh"), fl("vpc-id", "vpc-0a9a1a1000000a9a1")}})
	if len(g.SecurityGroups) != 1 || aws.ToString(g.SecurityGroups[0].GroupId) != "sg-0a9a1a1000000005a" {
		t.Fatalf("sg filter: %+v", g.SecurityGroups)
	}
	g, err := w.DescribeSecurityGroups(bg, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"aquarium-ssh"}})
	if err != nil || len(g.SecurityGroups) != 1 || aws.ToString(g.SecurityGroups[0].VpcId) != "vpc-0d3fa0170000d3fa0" {
		t.Fatalf("GroupNames in default VPC: %v", err)
	}
	snaps, _ := w.DescribeSnapshots(bg, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []types.Filter{fl("tag:Project", "aquarium"), fl("status", "completed")}})
	if len(snaps.Snapshots) != 1 {
		t.Fatalf("snapshot filter: %d", len(snaps.Snapshots))
	}
	// errors
	errCases := []struct {
		name string
		call func() error
		code string
	}{
		{"unknown filter", func() error {
			_, err := w.DescribeImages(bg, &ec2.DescribeImagesInput{Filters: []types.Filter{fl("colour", "red")}})
			return err
		}, "InvalidParameterValue"},
		{"unknown instance id", func() error {
			_, err := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
			return err
		}, "InvalidInstanceID.NotFound"},
		{"malformed instance id", func() error {
			_, err := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-xyz"}})
			return err
		}, "InvalidInstanceID.Malformed"},
		{"unknown image id", func() error {
			_, err := w.DescribeImages(bg, &ec2.DescribeImagesInput{ImageIds: []string{"ami-0123456789abcdef0"}})
			return err
		}, "InvalidAMIID.NotFound"},
		{"unknown subnet", func() error {
			_, err := w.DescribeSubnets(bg, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0123456789abcdef0"}})
			return err
		}, "InvalidSubnetID.NotFound"},
		{"unknown vpc", func() error {
			_, err := w.DescribeVpcs(bg, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-0123456789abcdef0"}})
			return err
		}, "InvalidVpcID.NotFound"},
		{"unknown group", func() error {
			_, err := w.DescribeSecurityGroups(bg, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}})
			return err
		}, "InvalidGroup.NotFound"},
		{"unknown snapshot", func() error {
			_, err := w.DescribeSnapshots(bg, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-0123456789abcdef0"}})
			return err
		}, "InvalidSnapshot.NotFound"},
		{"unknown volume", func() error {
			_, err := w.DescribeVolumes(bg, &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-0123456789abcdef0"}})
			return err
		}, "InvalidVolume.NotFound"},
		{"unknown host", func() error {
			_, err := w.DescribeHosts(bg, &ec2.DescribeHostsInput{HostIds: []string{"h-0123456789abcdef0"}})
			return err
		}, "InvalidHostID.NotFound"},
		{"unknown key", func() error {
			_, err := w.DescribeKeyPairs(bg, &ec2.DescribeKeyPairsInput{KeyNames: []string{"nope"}})
			return err
		}, "InvalidKeyPair.NotFound"},
		{"unknown instance type", func() error {
			_, err := w.DescribeInstanceTypes(bg, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"z9.big"}})
			return err
		}, "InvalidInstanceType"},
		{"filter without values", func() error {
			_, err := w.DescribeHosts(bg, &ec2.DescribeHostsInput{Filter: []types.Filter{{Name: aws.String("state")}}})
			return err
		}, "InvalidParameterValue"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiCode(tc.call()); got != tc.code {
				t.Fatalf("code %q want %q", got, tc.code)
			}
		})
	}
}

func TestIPString(t *testing.T) {
	for ip, want := range map[uint32]string{0: "0.0.0.0", 0x0a000105: "10.0.1.5", 0xac1f10ff: "172.31.16.255", 0xffffffff: "255.255.255.255"} {
		if got := ipString(ip); got != want {
			t.Errorf("ipString(%#x) = %q, want %q", ip, got, want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"abc", "abc", true}, {"abc", "abd", false}, {"a*", "abc", true}, {"*c", "abc", true}, {"a*c", "ac", true},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*", "", true}, {"a**b", "ab", true}, {`a\*`, "a*", true}, {`a\*`, "ab", false},
		{"*-arm64", "macos-arm64", true}, {"*-arm64", "macos-arm64x", false}, {"2025-01-*", "2025-01-01T00:00:00.000Z", true},
	}
	for _, c := range cases {
		if got := globMatch(c.p, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

func TestPaging(t *testing.T) {
	w, _ := newTestWorld(t, func(s *Spec) { s.DefaultPageSize = 2 })
	// 7 instances; DescribeInstances pages by 2 without MaxResults
	for range 7 {
		runLinux(t, w, nil)
	}
	var ids []string
	var token *string
	pages := 0
	for {
		out, err := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				ids = append(ids, aws.ToString(i.InstanceId))
			}
		}
		if out.NextToken == nil {
			break
		}
		token = out.NextToken
	}
	if len(ids) != 7 || pages != 4 {
		t.Fatalf("paged %d ids in %d pages", len(ids), pages)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate %s across pages", id)
		}
		seen[id] = true
	}
	// the SDK paginator over the world itself
	p := ec2.NewDescribeImagesPaginator(w, &ec2.DescribeImagesInput{MaxResults: aws.Int32(3)})
	n := 0
	for p.HasMorePages() {
		out, err := p.NextPage(bg)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Images) > 3 {
			t.Fatalf("page of %d", len(out.Images))
		}
		n += len(out.Images)
	}
	if n != 10 {
		t.Fatalf("paginator saw %d images, want 10", n)
	}
	// invalid tokens and bounds
	if _, err := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{NextToken: aws.String("garbage")}); apiCode(err) != "InvalidParameterValue" {
		t.Fatalf("bad token: %v", err)
	}
	img, _ := w.DescribeImages(bg, &ec2.DescribeImagesInput{MaxResults: aws.Int32(1)})
	if _, err := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{NextToken: img.NextToken}); apiCode(err) != "InvalidParameterValue" {
		t.Fatalf("token of another action: %v", err)
	}
	if _, err := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(2)}); apiCode(err) != "InvalidParameterValue" {
		t.Fatalf("MaxResults below 5: %v", err)
	}
	// KMS: Limit/Marker
	la, err := w.ListAliases(bg, &kms.ListAliasesInput{Limit: aws.Int32(1)})
	if err != nil || len(la.Aliases) != 1 || !la.Truncated || la.NextMarker == nil {
		t.Fatalf("ListAliases page 1: %v %+v", err, la)
	}
	la2, err := w.ListAliases(bg, &kms.ListAliasesInput{Limit: aws.Int32(1), Marker: la.NextMarker})
	if err != nil || len(la2.Aliases) != 1 || la2.Truncated || aws.ToString(la2.Aliases[0].AliasName) == aws.ToString(la.Aliases[0].AliasName) {
		t.Fatalf("ListAliases page 2: %v %+v", err, la2)
	}
	if _, err := w.ListAliases(bg, &kms.ListAliasesInput{Marker: aws.String("zzz")}); apiCode(err) != "InvalidMarkerException" {
		t.Fatalf("bad marker: %v", err)
	}
	// Service Quotas: NextToken via the SDK paginator
	qp := servicequotas.NewListServiceQuotasPaginator(w, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("ec2"), MaxResults: aws.Int32(4)})
	nq := 0
	for qp.HasMorePages() {
		out, err := qp.NextPage(bg)
		if err != nil {
			t.Fatal(err)
		}
		nq += len(out.Quotas)
	}
	if nq != len(DefaultQuotas()) {
		t.Fatalf("quotas paged %d want %d", nq, len(DefaultQuotas()))
	}
}

func TestFaults(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	if err := w.AddFault(FaultRule{Action: "RunInstances"}); err == nil {
		t.Fatal("rule without code accepted")
	}
	if err := w.AddFault(FaultRule{Action: "RunInstance", Code: "Y", Count: 1}); err == nil || !strings.Contains(err.Error(), "unknown action") {
		t.Fatalf("typo in action accepted: %v", err)
	}
	if got := len(Actions()); got != 29 {
		t.Fatalf("%d emulated actions, want 24 EC2 + 2 KMS + 2 quotas + 1 STS: %v", got, Actions())
	}
	if err := w.AddFault(FaultRule{Action: "RunInstances", Code: "Y", Probability: 2}); err == nil || !strings.Contains(err.Error(), "probability") {
		t.Fatalf("bad probability: %v", err)
	}
	if err := w.AddFault(FaultRule{Action: "DescribeHosts", Code: "InternalError", HTTPStatus: 500, Count: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := w.DescribeHosts(bg, &ec2.DescribeHostsInput{})
		var ae *APIError
		if i < 2 && (!asAPIError(err, &ae) || ae.Code != "InternalError" || ae.HTTPStatus != 500) {
			t.Fatalf("call %d: %v", i, err)
		}
		if i == 2 && err != nil {
			t.Fatalf("call 3 should pass: %v", err)
		}
	}
	if len(w.Faults()) != 0 {
		t.Fatalf("exhausted count rule still listed")
	}
	if st := w.Calls()["DescribeHosts"]; st.Calls != 3 || st.Errors != 2 {
		t.Fatalf("calls %+v", st)
	}
	// probability: deterministic for a seed, roughly the rate
	count := func(seed int64) int {
		w, _ := newTestWorld(t, func(s *Spec) {
			s.Seed = seed
			s.Faults = []FaultRule{{Action: "*", Code: "RequestLimitExceeded", HTTPStatus: 503, Probability: 0.25}}
		})
		n := 0
		for range 400 {
			if _, err := w.GetCallerIdentity(bg, &sts.GetCallerIdentityInput{}); err != nil {
				n++
			}
		}
		return n
	}
	a, b := count(7), count(7)
	if a != b {
		t.Fatalf("same seed gave %d and %d failures", a, b)
	}
	if a < 60 || a > 140 {
		t.Fatalf("%d/400 failures for p=0.25", a)
	}
	w.ClearFaults()
	w.ResetCalls()
	if len(w.Calls()) != 0 {
		t.Fatal("ResetCalls")
	}
	w.RecordCall("Bogus", Errorf("InvalidAction", "x"))
	if st := w.Calls()["Bogus"]; st.Calls != 1 || st.Errors != 1 {
		t.Fatalf("RecordCall %+v", st)
	}
}

func TestThrottling(t *testing.T) {
	w, clk := newTestWorld(t, func(s *Spec) {
		s.Throttling = Throttling{Enabled: true, Buckets: map[string]BucketSpec{"describe": {Capacity: 3, RefillPerSecond: 1}}}
	})
	ok, throttled := 0, 0
	for range 5 {
		_, err := w.DescribeVpcs(bg, &ec2.DescribeVpcsInput{})
		var ae *APIError
		switch {
		case err == nil:
			ok++
		case asAPIError(err, &ae) && ae.Code == "RequestLimitExceeded" && ae.HTTPStatus == 503:
			throttled++
		default:
			t.Fatal(err)
		}
	}
	if ok != 3 || throttled != 2 {
		t.Fatalf("ok %d throttled %d", ok, throttled)
	}
	clk.Advance(2 * time.Second) // refill 2 tokens on the injected clock
	for i := range 3 {
		_, err := w.DescribeSubnets(bg, &ec2.DescribeSubnetsInput{})
		if (i < 2) != (err == nil) {
			t.Fatalf("after refill call %d: %v", i, err)
		}
	}
	// mutating actions use their own (default) bucket
	if _, err := w.CreateTags(bg, &ec2.CreateTagsInput{Resources: []string{"vpc-0d3fa0170000d3fa0"}, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}); err != nil {
		t.Fatalf("mutate bucket: %v", err)
	}
}

func TestPurgeTerminated(t *testing.T) {
	w, clk := newTestWorld(t, nil)
	var ids []string
	for range 100 {
		out := runLinux(t, w, func(in *ec2.RunInstancesInput) { in.ClientToken = aws.String("tok-" + itoa(int64(len(ids)))) })
		id := aws.ToString(out.Instances[0].InstanceId)
		ids = append(ids, id)
		clk.Advance(time.Minute)
		if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
			t.Fatal(err)
		}
	}
	// Terminations at minutes 1..100; at minute 100 those terminated at
	// minute k with k+10s+1h <= 100m are purged (k = 1..39): 61 visible.
	d, err := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.Reservations); n != 61 {
		t.Fatalf("%d visible terminated instances, want 61", n)
	}
	if _, err := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{InstanceIds: []string{ids[0]}}); apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Fatalf("purged instance: %v", err)
	}
	clk.Advance(2 * time.Hour)
	d, _ = w.DescribeInstances(bg, &ec2.DescribeInstancesInput{})
	if len(d.Reservations) != 0 || w.instances.len() != 0 || len(w.runTokens) != 0 {
		t.Fatalf("after 2h: %d reservations, %d objects, %d tokens", len(d.Reservations), w.instances.len(), len(w.runTokens))
	}
	if len(w.instances.order) > 100 {
		t.Fatalf("order slice not compacted: %d", len(w.instances.order))
	}
	// billing kept
	if b := w.Billing(t0, clk.Now()); len(b.InstanceSeconds) != 100 {
		t.Fatalf("ledger has %d instances", len(b.InstanceSeconds))
	}
}

func TestImagesAndSnapshots(t *testing.T) {
	w, clk := newTestWorld(t, nil)
	run := runLinux(t, w, func(in *ec2.RunInstancesInput) {
		in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(20), VolumeType: types.VolumeTypeGp3}}}
	})
	iid := aws.ToString(run.Instances[0].InstanceId)
	clk.Advance(time.Minute)
	// CreateSnapshots without the boot volume
	cs, err := w.CreateSnapshots(bg, &ec2.CreateSnapshotsInput{InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String(iid), ExcludeBootVolume: aws.Bool(true)},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSnapshot, Tags: []types.Tag{{Key: aws.String("Task"), Value: aws.String("snap")}}}}})
	if err != nil || len(cs.Snapshots) != 1 || aws.ToInt32(cs.Snapshots[0].VolumeSize) != 20 || cs.Snapshots[0].State != types.SnapshotStatePending {
		t.Fatalf("CreateSnapshots: %v %+v", err, cs)
	}
	sid := aws.ToString(cs.Snapshots[0].SnapshotId)
	clk.Advance(30 * time.Second)
	ds, _ := w.DescribeSnapshots(bg, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{sid}})
	if ds.Snapshots[0].State != types.SnapshotStateCompleted || aws.ToString(ds.Snapshots[0].Progress) != "100%" {
		t.Fatalf("snapshot after delay: %s", ds.Snapshots[0].State)
	}
	// CreateImage -> pending -> available; its snapshots are in use
	ci, err := w.CreateImage(bg, &ec2.CreateImageInput{InstanceId: aws.String(iid), Name: aws.String("ci-image-250310.120000"), NoReboot: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	ami := aws.ToString(ci.ImageId)
	if _, err := w.CreateImage(bg, &ec2.CreateImageInput{InstanceId: aws.String(iid), Name: aws.String("ci-image-250310.120000")}); apiCode(err) != "InvalidAMIName.Duplicate" {
		t.Fatalf("duplicate name: %v", err)
	}
	di, _ := w.DescribeImages(bg, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	img := di.Images[0]
	if img.State != types.ImageStatePending || len(img.BlockDeviceMappings) != 2 || aws.ToString(img.SourceInstanceId) != iid {
		t.Fatalf("new image: %s %d", img.State, len(img.BlockDeviceMappings))
	}
	clk.Advance(time.Minute)
	di, _ = w.DescribeImages(bg, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if di.Images[0].State != types.ImageStateAvailable {
		t.Fatalf("image after delay: %s", di.Images[0].State)
	}
	rootSnap := aws.ToString(di.Images[0].BlockDeviceMappings[0].Ebs.SnapshotId)
	if _, err := w.DeleteSnapshot(bg, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(rootSnap)}); apiCode(err) != "InvalidSnapshot.InUse" {
		t.Fatalf("delete in-use snapshot: %v", err)
	}
	// CopyImage encrypted with the aquarium key
	cp, err := w.CopyImage(bg, &ec2.CopyImageInput{SourceImageId: aws.String(ami), SourceRegion: aws.String("us-west-2"), Name: aws.String("ci-image-enc"),
		Encrypted: aws.Bool(true), KmsKeyId: aws.String("alias/aquarium"), ClientToken: aws.String("copy-1")})
	if err != nil {
		t.Fatal(err)
	}
	cp2, err := w.CopyImage(bg, &ec2.CopyImageInput{SourceImageId: aws.String(ami), SourceRegion: aws.String("us-west-2"), Name: aws.String("ci-image-enc"),
		Encrypted: aws.Bool(true), KmsKeyId: aws.String("alias/aquarium"), ClientToken: aws.String("copy-1")})
	if err != nil || aws.ToString(cp2.ImageId) != aws.ToString(cp.ImageId) {
		t.Fatalf("CopyImage token: %v", err)
	}
	di, _ = w.DescribeImages(bg, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(cp.ImageId)}})
	for _, b := range di.Images[0].BlockDeviceMappings {
		if !aws.ToBool(b.Ebs.Encrypted) || !strings.Contains(aws.ToString(b.Ebs.KmsKeyId), "1234abcd-12ab-34cd-56ef-1234567890ab") {
			t.Fatalf("copied bdm not encrypted with the key: %+v", b.Ebs)
		}
	}
	// Deregister the temporary image, then its snapshots can go
	if _, err := w.DeregisterImage(bg, &ec2.DeregisterImageInput{ImageId: aws.String(ami)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.DeleteSnapshot(bg, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(rootSnap)}); err != nil {
		t.Fatalf("delete after deregister: %v", err)
	}
	if _, err := w.DeregisterImage(bg, &ec2.DeregisterImageInput{ImageId: aws.String(linuxImage)}); apiCode(err) != "AuthFailure" {
		t.Fatalf("deregister amazon image: %v", err)
	}
	if _, err := w.DeleteSnapshot(bg, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(rootSnap)}); apiCode(err) != "InvalidSnapshot.NotFound" {
		t.Fatalf("delete twice: %v", err)
	}
	// snapshot waiter-style polling via the SDK waiter on the world
	cs, _ = w.CreateSnapshots(bg, &ec2.CreateSnapshotsInput{InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String(iid)}})
	clk.Advance(time.Minute)
	if err := ec2.NewSnapshotCompletedWaiter(w).Wait(bg, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(cs.Snapshots[0].SnapshotId)}}, time.Minute); err != nil {
		t.Fatalf("SnapshotCompleted waiter: %v", err)
	}
}

func TestAccountServices(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	id, err := w.GetCallerIdentity(bg, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != "123456789012" || !strings.HasPrefix(aws.ToString(id.Arn), "arn:aws:iam::123456789012:") {
		t.Fatalf("caller identity: %v %+v", err, id)
	}
	for _, ref := range []string{"alias/aquarium", "1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "arn:aws:kms:us-west-2:123456789012:alias/aquarium"} {
		dk, err := w.DescribeKey(bg, &kms.DescribeKeyInput{KeyId: aws.String(ref)})
		if err != nil || aws.ToString(dk.KeyMetadata.KeyId) != "1234abcd-12ab-34cd-56ef-1234567890ab" {
			t.Fatalf("DescribeKey(%s): %v", ref, err)
		}
	}
	if _, err := w.DescribeKey(bg, &kms.DescribeKeyInput{KeyId: aws.String("alias/missing")}); apiCode(err) != "NotFoundException" {
		t.Fatalf("missing alias: %v", err)
	}
	la, _ := w.ListAliases(bg, &kms.ListAliasesInput{KeyId: aws.String("alias/aquarium")})
	if len(la.Aliases) != 1 || aws.ToString(la.Aliases[0].AliasName) != "alias/aquarium" {
		t.Fatalf("ListAliases by key: %+v", la.Aliases)
	}
	q, err := w.ListServiceQuotas(bg, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("ec2"), QuotaCode: aws.String(QuotaStandard)})
	if err != nil || len(q.Quotas) != 1 || aws.ToFloat64(q.Quotas[0].Value) != 1152 ||
		aws.ToString(q.Quotas[0].QuotaName) != "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances" {
		t.Fatalf("quota: %v %+v", err, q)
	}
	dq, err := w.ListAWSDefaultServiceQuotas(bg, &servicequotas.ListAWSDefaultServiceQuotasInput{ServiceCode: aws.String("ec2")})
	names := map[string]bool{}
	for _, x := range dq.Quotas {
		names[aws.ToString(x.QuotaName)] = true
	}
	for _, n := range []string{"Running Dedicated mac2 Hosts", "Running Dedicated mac-m4 Hosts", "Running On-Demand G and VT instances", "Running On-Demand P instances", "Running On-Demand X instances"} {
		if err != nil || !names[n] {
			t.Fatalf("default quotas miss %q (%v)", n, err)
		}
	}
	if _, err := w.ListServiceQuotas(bg, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("nope")}); apiCode(err) != "NoSuchResourceException" {
		t.Fatalf("unknown service: %v", err)
	}
	// instance types
	it, err := w.DescribeInstanceTypes(bg, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"mac1.metal", "mac2.metal", "mac-m4.metal", "c6g.large", "t3.micro"}})
	if err != nil {
		t.Fatal(err)
	}
	arch := map[string]types.ArchitectureType{}
	for _, x := range it.InstanceTypes {
		arch[string(x.InstanceType)] = x.ProcessorInfo.SupportedArchitectures[0]
	}
	want := map[string]types.ArchitectureType{"mac1.metal": "x86_64_mac", "mac2.metal": "arm64_mac", "mac-m4.metal": "arm64_mac", "c6g.large": "arm64", "t3.micro": "x86_64"}
	for k, v := range want {
		if arch[k] != v {
			t.Fatalf("%s arch %s want %s", k, arch[k], v)
		}
	}
	// vCPU quota: 1152 standard vCPUs = 12 x m5.24xlarge (96)
	if _, err := w.RunInstances(bg, &ec2.RunInstancesInput{ImageId: aws.String(linuxImage), InstanceType: "m5.24xlarge", MinCount: aws.Int32(13), MaxCount: aws.Int32(13)}); apiCode(err) != "VcpuLimitExceeded" {
		t.Fatalf("vcpu quota: %v", err)
	}
	out, err := w.RunInstances(bg, &ec2.RunInstancesInput{ImageId: aws.String(linuxImage), InstanceType: "m5.24xlarge", MinCount: aws.Int32(1), MaxCount: aws.Int32(13)})
	if err != nil || len(out.Instances) != 12 {
		t.Fatalf("partial launch under quota: %v", err)
	}
}

func TestKeyPairsAndTags(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	for _, kt := range []types.KeyType{types.KeyTypeEd25519, types.KeyTypeRsa} {
		name := "k-" + string(kt)
		out, err := w.CreateKeyPair(bg, &ec2.CreateKeyPairInput{KeyName: aws.String(name), KeyType: kt})
		if err != nil || !strings.Contains(aws.ToString(out.KeyMaterial), "PRIVATE KEY-----") || aws.ToString(out.KeyFingerprint) == "" {
			t.Fatalf("CreateKeyPair %s: %v", kt, err)
		}
		if _, err := w.CreateKeyPair(bg, &ec2.CreateKeyPairInput{KeyName: aws.String(name)}); apiCode(err) != "InvalidKeyPair.Duplicate" {
			t.Fatalf("duplicate: %v", err)
		}
	}
	d, _ := w.DescribeKeyPairs(bg, &ec2.DescribeKeyPairsInput{Filters: []types.Filter{{Name: aws.String("key-name"), Values: []string{"k-ed*"}}}, IncludePublicKey: aws.Bool(true)})
	if len(d.KeyPairs) != 1 || !strings.HasPrefix(aws.ToString(d.KeyPairs[0].PublicKey), "ssh-ed25519 ") {
		t.Fatalf("DescribeKeyPairs: %+v", d.KeyPairs)
	}
	if _, err := w.DeleteKeyPair(bg, &ec2.DeleteKeyPairInput{KeyName: aws.String("k-rsa")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.DeleteKeyPair(bg, &ec2.DeleteKeyPairInput{KeyName: aws.String("k-rsa")}); err != nil {
		t.Fatalf("deleting a missing key succeeds in AWS: %v", err)
	}
	d, _ = w.DescribeKeyPairs(bg, &ec2.DescribeKeyPairsInput{})
	if len(d.KeyPairs) != 1 {
		t.Fatalf("%d key pairs left", len(d.KeyPairs))
	}
	// CreateTags on several kinds; unknown id
	run := runLinux(t, w, nil)
	iid := aws.ToString(run.Instances[0].InstanceId)
	if _, err := w.CreateTags(bg, &ec2.CreateTagsInput{Resources: []string{iid, "snap-0a9a1a10000000001"}, Tags: []types.Tag{{Key: aws.String("Stage"), Value: aws.String("build")}}}); err != nil {
		t.Fatal(err)
	}
	di, _ := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:Stage"), Values: []string{"build"}}}})
	if len(di.Reservations) != 1 {
		t.Fatalf("tag filter after CreateTags: %d", len(di.Reservations))
	}
	if _, err := w.CreateTags(bg, &ec2.CreateTagsInput{Resources: []string{"i-0123456789abcdef0"}, Tags: []types.Tag{{Key: aws.String("a")}}}); apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Fatalf("unknown resource: %v", err)
	}
	if _, err := w.CreateTags(bg, &ec2.CreateTagsInput{Resources: []string{iid}, Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("y")}}}); apiCode(err) != "InvalidParameterValue" {
		t.Fatalf("reserved key: %v", err)
	}
}

func TestStateSnapshotAndFreshCopies(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	hid := allocHost(t, w, "mac2.metal", "us-west-2a", false)
	out, _ := w.DescribeHosts(bg, &ec2.DescribeHostsInput{HostIds: []string{hid}})
	out.Hosts[0].Tags = append(out.Hosts[0].Tags, types.Tag{Key: aws.String("mutated")})
	*out.Hosts[0].HostId = "h-mutated"
	again := describeHost(t, w, hid)
	if len(again.Tags) != 0 || aws.ToString(again.HostId) != hid {
		t.Fatalf("caller mutation leaked into the world")
	}
	st := w.State()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{hid, "vpc-0a9a1a1000000a9a1", "alias/aquarium", "macos-14", `"DescribeHosts"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("state JSON misses %s", want)
		}
	}
	if len(st.Hosts) != 1 || len(st.Vpcs) != 2 || len(st.Subnets) != 6 || len(st.Images) != 10 {
		t.Fatalf("state counts: hosts %d vpcs %d subnets %d images %d", len(st.Hosts), len(st.Vpcs), len(st.Subnets), len(st.Images))
	}
}

func TestContextCancelled(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := w.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err == nil {
		t.Fatal("cancelled context served")
	}
	// nil input is an empty request
	if _, err := w.DescribeVpcs(bg, nil); err != nil {
		t.Fatal(err)
	}
}
