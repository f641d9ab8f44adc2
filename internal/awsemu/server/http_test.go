package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	sqtypes "github.com/aws/aws-sdk-go-v2/service/servicequotas/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// Default-world fixtures (awsemu.DefaultSpec).
const (
	account       = "123456789012"
	defaultVPC    = "vpc-0d3fa0170000d3fa0"
	taggedVPC     = "vpc-0a9a1a1000000a9a1"
	subnetA       = "subnet-0d3fa017000000a01"
	sshGroupID    = "sg-0d3fa0170000005a0"
	macArmImage   = "ami-0a1b2c3d400000008"
	linuxX86Image = "ami-0a1b2c3d400000002"
)

// clients are real SDK clients pointed at a world served over HTTP.
type clients struct {
	world *awsemu.World
	clk   *clock.Virtual
	ec2   *ec2.Client
	sts   *sts.Client
	kms   *kms.Client
	sq    *servicequotas.Client
}

func newClients(t testing.TB, mod func(*awsemu.Spec)) *clients {
	t.Helper()
	clk := clock.NewVirtual(t0)
	spec := awsemu.DefaultSpec()
	if mod != nil {
		mod(spec)
	}
	w, err := awsemu.New(clk, spec)
	if err != nil {
		t.Fatalf("awsemu.New: %v", err)
	}
	cfg := SDKConfig(NewTestServer(t, w), spec.Region)
	return &clients{world: w, clk: clk, ec2: ec2.NewFromConfig(cfg), sts: sts.NewFromConfig(cfg),
		kms: kms.NewFromConfig(cfg), sq: servicequotas.NewFromConfig(cfg)}
}

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func must[T any](t testing.TB, what string) func(T, error) T {
	t.Helper()
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, tg := range tags {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return m
}

// advanceEachCall makes every SDK call first move the virtual clock by step,
// so pollers (waiters) see time pass deterministically.
func advanceEachCall(clk *clock.Virtual, step time.Duration) func(*ec2.Options) {
	return func(o *ec2.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("advanceVirtualClock",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					clk.Advance(step)
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	}
}

func host(t *testing.T, c *clients, id string) types.Host {
	t.Helper()
	out := must[*ec2.DescribeHostsOutput](t, "DescribeHosts")(c.ec2.DescribeHosts(context.Background(), &ec2.DescribeHostsInput{HostIds: []string{id}}))
	if len(out.Hosts) != 1 {
		t.Fatalf("DescribeHosts %s: %d hosts", id, len(out.Hosts))
	}
	return out.Hosts[0]
}

// TestMac2ScenarioOverHTTP walks the mac2.metal host life cycle through the
// real EC2 client: allocate, run, terminate, scrubbing, early release refused
// with AWS's exact item, release after 24h, still listed as released.
func TestMac2ScenarioOverHTTP(t *testing.T) {
	ctx := context.Background()
	c := newClients(t, nil)
	alloc := must[*ec2.AllocateHostsOutput](t, "AllocateHosts")(c.ec2.AllocateHosts(ctx, &ec2.AllocateHostsInput{
		AvailabilityZone: aws.String("us-west-2a"), InstanceType: aws.String("mac2.metal"), Quantity: aws.Int32(1),
		AutoPlacement: types.AutoPlacementOff, ClientToken: aws.String("pool-a-1"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeDedicatedHost, Tags: []types.Tag{
			{Key: aws.String("AquariumDedicatedPool-a"), Value: aws.String("")},
			{Key: aws.String("AquariumDedicatedPoolName"), Value: aws.String("a")}}}},
	}))
	if len(alloc.HostIds) != 1 {
		t.Fatalf("AllocateHosts ids %v", alloc.HostIds)
	}
	hid := alloc.HostIds[0]
	h := host(t, c, hid)
	if h.State != types.AllocationStateAvailable || h.AutoPlacement != types.AutoPlacementOff ||
		aws.ToString(h.AvailabilityZone) != "us-west-2a" || aws.ToString(h.HostProperties.InstanceType) != "mac2.metal" ||
		!aws.ToTime(h.AllocationTime).Equal(t0) || tagMap(h.Tags)["AquariumDedicatedPoolName"] != "a" {
		t.Fatalf("new host: %+v", h)
	}
	if _, ok := tagMap(h.Tags)["AquariumDedicatedPool-a"]; !ok {
		t.Fatalf("empty-valued tag lost: %v", tagMap(h.Tags))
	}
	if got := aws.ToInt32(h.AvailableCapacity.AvailableInstanceCapacity[0].AvailableCapacity); got != 1 {
		t.Fatalf("available capacity %d, want 1", got)
	}

	c.clk.Advance(10 * time.Minute)
	run := must[*ec2.RunInstancesOutput](t, "RunInstances")(c.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(macArmImage), InstanceType: types.InstanceTypeMac2Metal, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(hid)}, ClientToken: aws.String("app-1"),
	}))
	iid := aws.ToString(run.Instances[0].InstanceId)
	if run.Instances[0].State.Name != types.InstanceStateNamePending || aws.ToString(run.Instances[0].Placement.HostId) != hid {
		t.Fatalf("run: %+v", run.Instances[0])
	}
	rel := must[*ec2.ReleaseHostsOutput](t, "ReleaseHosts")(c.ec2.ReleaseHosts(ctx, &ec2.ReleaseHostsInput{HostIds: []string{hid}}))
	if len(rel.Unsuccessful) != 1 || aws.ToString(rel.Unsuccessful[0].Error.Code) != "Client.InvalidHost.Occupied" {
		t.Fatalf("release of an occupied host: %+v", rel)
	}

	c.clk.Advance(2 * time.Hour)
	must[*ec2.TerminateInstancesOutput](t, "TerminateInstances")(c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{iid}}))
	if h := host(t, c, hid); h.State != types.AllocationStatePending || len(h.Instances) != 0 {
		t.Fatalf("after terminate: %s with %d instances, want pending and empty", h.State, len(h.Instances))
	}
	c.clk.Advance(90 * time.Minute)
	if h := host(t, c, hid); h.State != types.AllocationStateAvailable {
		t.Fatalf("after scrubbing: %s, want available", h.State)
	}

	rel = must[*ec2.ReleaseHostsOutput](t, "ReleaseHosts")(c.ec2.ReleaseHosts(ctx, &ec2.ReleaseHostsInput{HostIds: []string{hid}}))
	want := fmt.Sprintf("Unable to release Dedicated Host %s. mac2.metal hosts must be allocated to your AWS account for at least 24 hour(s). You can release this host any time after 2026-03-11T12:00:00Z.", hid)
	if len(rel.Successful) != 0 || len(rel.Unsuccessful) != 1 || aws.ToString(rel.Unsuccessful[0].ResourceId) != hid ||
		aws.ToString(rel.Unsuccessful[0].Error.Code) != "Client.HostMinAllocationPeriodUnexpired" ||
		aws.ToString(rel.Unsuccessful[0].Error.Message) != want {
		t.Fatalf("early release: %+v\nwant message %q", rel.Unsuccessful, want)
	}

	c.clk.Set(t0.Add(24 * time.Hour))
	rel = must[*ec2.ReleaseHostsOutput](t, "ReleaseHosts")(c.ec2.ReleaseHosts(ctx, &ec2.ReleaseHostsInput{HostIds: []string{hid}}))
	if len(rel.Successful) != 1 || rel.Successful[0] != hid || len(rel.Unsuccessful) != 0 {
		t.Fatalf("release after 24h: %+v", rel)
	}
	h = host(t, c, hid)
	if h.State != types.AllocationStateReleased || !aws.ToTime(h.ReleaseTime).Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("released host listed as %s released at %v", h.State, h.ReleaseTime)
	}
	listed := must[*ec2.DescribeHostsOutput](t, "DescribeHosts")(c.ec2.DescribeHosts(ctx, &ec2.DescribeHostsInput{
		Filter: []types.Filter{{Name: aws.String("state"), Values: []string{"released"}}}}))
	if len(listed.Hosts) != 1 || aws.ToString(listed.Hosts[0].HostId) != hid {
		t.Fatalf("state=released filter: %+v", listed.Hosts)
	}
	// The ledger agrees: billed 24h minus 1h30m of scrubbing.
	if got, want := c.world.Billing(t0, t0.Add(48*time.Hour)).HostSeconds[hid], (24*time.Hour - 90*time.Minute).Seconds(); got != want {
		t.Fatalf("billed host seconds %v, want %v", got, want)
	}
}

// TestWaitersOverHTTP runs the SDK's own waiters against the world; every
// poll advances the virtual clock by 10 s, so the outcome is deterministic.
func TestWaitersOverHTTP(t *testing.T) {
	ctx := context.Background()
	c := newClients(t, nil)
	run := must[*ec2.RunInstancesOutput](t, "RunInstances")(c.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(linuxX86Image), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	}))
	iid := aws.ToString(run.Instances[0].InstanceId)
	fast := func(min, max *time.Duration) { *min, *max = time.Millisecond, 2*time.Millisecond }
	tick := advanceEachCall(c.clk, 10*time.Second)

	running := ec2.NewInstanceRunningWaiter(c.ec2, func(o *ec2.InstanceRunningWaiterOptions) {
		fast(&o.MinDelay, &o.MaxDelay)
		o.ClientOptions = append(o.ClientOptions, tick)
	})
	if err := running.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{iid}}, 20*time.Second); err != nil {
		t.Fatalf("InstanceRunning waiter: %v", err)
	}
	must[*ec2.StopInstancesOutput](t, "StopInstances")(c.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{iid}}))
	stopped := ec2.NewInstanceStoppedWaiter(c.ec2, func(o *ec2.InstanceStoppedWaiterOptions) {
		fast(&o.MinDelay, &o.MaxDelay)
		o.ClientOptions = append(o.ClientOptions, tick)
	})
	if err := stopped.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{iid}}, 20*time.Second); err != nil {
		t.Fatalf("InstanceStopped waiter: %v", err)
	}

	snaps := must[*ec2.CreateSnapshotsOutput](t, "CreateSnapshots")(c.ec2.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String(iid)},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSnapshot,
			Tags: []types.Tag{{Key: aws.String("Task"), Value: aws.String("snapshot")}}}},
	}))
	if len(snaps.Snapshots) == 0 || snaps.Snapshots[0].State != types.SnapshotStatePending {
		t.Fatalf("CreateSnapshots: %+v", snaps.Snapshots)
	}
	snapIDs := []string{}
	for _, s := range snaps.Snapshots {
		snapIDs = append(snapIDs, aws.ToString(s.SnapshotId))
	}
	completed := ec2.NewSnapshotCompletedWaiter(c.ec2, func(o *ec2.SnapshotCompletedWaiterOptions) {
		fast(&o.MinDelay, &o.MaxDelay)
		o.ClientOptions = append(o.ClientOptions, tick)
	})
	if err := completed.Wait(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: snapIDs}, 20*time.Second); err != nil {
		t.Fatalf("SnapshotCompleted waiter: %v", err)
	}

	img := must[*ec2.CreateImageOutput](t, "CreateImage")(c.ec2.CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId: aws.String(iid), Name: aws.String("ci-image-260310.120000"), NoReboot: aws.Bool(true),
	}))
	available := ec2.NewImageAvailableWaiter(c.ec2, func(o *ec2.ImageAvailableWaiterOptions) {
		fast(&o.MinDelay, &o.MaxDelay)
		o.ClientOptions = append(o.ClientOptions, tick)
	})
	if err := available.Wait(ctx, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(img.ImageId)}}, 20*time.Second); err != nil {
		t.Fatalf("ImageAvailable waiter: %v", err)
	}
	// A waiter that can never succeed fails with the SDK's own error once
	// the world reports a terminal state (ImageAvailable on a deregistered image).
	must[*ec2.DeregisterImageOutput](t, "DeregisterImage")(c.ec2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: img.ImageId}))
	if err := available.Wait(ctx, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(img.ImageId)}}, 2*time.Second); err == nil {
		t.Fatal("ImageAvailable waiter on a deregistered image succeeded")
	}
}

// TestPaginatorsOverHTTP pages DescribeInstances, DescribeHosts and
// DescribeImages with the SDK paginators and small pages.
func TestPaginatorsOverHTTP(t *testing.T) {
	ctx := context.Background()
	c := newClients(t, func(s *awsemu.Spec) { s.DefaultPageSize = 2 })
	hosts := must[*ec2.AllocateHostsOutput](t, "AllocateHosts")(c.ec2.AllocateHosts(ctx, &ec2.AllocateHostsInput{
		AvailabilityZone: aws.String("us-west-2b"), InstanceType: aws.String("mac2.metal"), Quantity: aws.Int32(5)}))
	run := must[*ec2.RunInstancesOutput](t, "RunInstances")(c.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(linuxX86Image), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(7), MaxCount: aws.Int32(7)}))

	var gotHosts, gotInst, gotImages []string
	pages := 0
	hp := ec2.NewDescribeHostsPaginator(c.ec2, &ec2.DescribeHostsInput{}) // world default page size: 2
	for hp.HasMorePages() {
		p := must[*ec2.DescribeHostsOutput](t, "DescribeHosts page")(hp.NextPage(ctx))
		pages++
		if len(p.Hosts) > 2 {
			t.Fatalf("DescribeHosts page of %d", len(p.Hosts))
		}
		for _, h := range p.Hosts {
			gotHosts = append(gotHosts, aws.ToString(h.HostId))
		}
	}
	if pages != 3 || strings.Join(gotHosts, ",") != strings.Join(hosts.HostIds, ",") {
		t.Fatalf("DescribeHosts pages %d ids %v, want 3 pages of %v", pages, gotHosts, hosts.HostIds)
	}

	pages = 0
	ip := ec2.NewDescribeInstancesPaginator(c.ec2, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5),
		Filters: []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}}})
	for ip.HasMorePages() {
		p := must[*ec2.DescribeInstancesOutput](t, "DescribeInstances page")(ip.NextPage(ctx))
		pages++
		for _, r := range p.Reservations {
			for _, i := range r.Instances {
				gotInst = append(gotInst, aws.ToString(i.InstanceId))
			}
		}
	}
	var want []string
	for _, i := range run.Instances {
		want = append(want, aws.ToString(i.InstanceId))
	}
	if pages != 2 || strings.Join(gotInst, ",") != strings.Join(want, ",") {
		t.Fatalf("DescribeInstances pages %d ids %v, want 2 pages of %v", pages, gotInst, want)
	}

	pages = 0
	// No MaxResults: the world's default page size (2) applies.
	mp := ec2.NewDescribeImagesPaginator(c.ec2, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	for mp.HasMorePages() {
		p := must[*ec2.DescribeImagesOutput](t, "DescribeImages page")(mp.NextPage(ctx))
		pages++
		for _, im := range p.Images {
			gotImages = append(gotImages, aws.ToString(im.ImageId))
			if aws.ToString(im.ImageOwnerAlias) != "amazon" {
				t.Fatalf("image %s owner alias %q", aws.ToString(im.ImageId), aws.ToString(im.ImageOwnerAlias))
			}
		}
	}
	if len(gotImages) != 8 || pages != 4 {
		t.Fatalf("DescribeImages amazon: %d images in %d pages, want 8 in 4", len(gotImages), pages)
	}

	// KMS pages by NextMarker.
	kp := kms.NewListAliasesPaginator(c.kms, &kms.ListAliasesInput{Limit: aws.Int32(1)})
	aliases := 0
	for kp.HasMorePages() {
		p := must[*kms.ListAliasesOutput](t, "ListAliases page")(kp.NextPage(ctx))
		aliases += len(p.Aliases)
		if len(p.Aliases) > 1 {
			t.Fatalf("ListAliases page of %d", len(p.Aliases))
		}
	}
	if aliases < 2 {
		t.Fatalf("ListAliases paged %d aliases, want alias/aquarium and alias/aws/ebs", aliases)
	}
}

// TestEveryActionOverHTTP drives every served action through the real SDK
// clients in one world and checks the world saw each of them.
func TestEveryActionOverHTTP(t *testing.T) {
	ctx := context.Background()
	c := newClients(t, nil)

	id := must[*sts.GetCallerIdentityOutput](t, "GetCallerIdentity")(c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))
	if aws.ToString(id.Account) != account || !strings.HasPrefix(aws.ToString(id.Arn), "arn:aws:") {
		t.Fatalf("caller identity %+v", id)
	}
	key := must[*kms.DescribeKeyOutput](t, "DescribeKey")(c.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/aquarium")}))
	if aws.ToString(key.KeyMetadata.KeyId) != "1234abcd-12ab-34cd-56ef-1234567890ab" || !strings.HasPrefix(aws.ToString(key.KeyMetadata.Arn), "arn:aws:kms:us-west-2:"+account+":key/") || key.KeyMetadata.CreationDate == nil {
		t.Fatalf("DescribeKey alias/aquarium: %+v", key.KeyMetadata)
	}
	if _, err := c.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/nope")}); errCode(err) != "NotFoundException" {
		t.Fatalf("DescribeKey of a missing alias: %v, want NotFoundException", err)
	}
	al := must[*kms.ListAliasesOutput](t, "ListAliases")(c.kms.ListAliases(ctx, &kms.ListAliasesInput{}))
	found := false
	for _, a := range al.Aliases {
		found = found || (aws.ToString(a.AliasName) == "alias/aquarium" && aws.ToString(a.TargetKeyId) == "1234abcd-12ab-34cd-56ef-1234567890ab")
	}
	if !found {
		t.Fatalf("ListAliases: %+v", al.Aliases)
	}
	q := must[*servicequotas.ListServiceQuotasOutput](t, "ListServiceQuotas")(c.sq.ListServiceQuotas(ctx, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("ec2")}))
	qd := must[*servicequotas.ListAWSDefaultServiceQuotasOutput](t, "ListAWSDefaultServiceQuotas")(c.sq.ListAWSDefaultServiceQuotas(ctx, &servicequotas.ListAWSDefaultServiceQuotasInput{ServiceCode: aws.String("ec2")}))
	quota := func(qs []sqQuota, code string) float64 {
		for _, x := range qs {
			if x.code == code {
				return x.value
			}
		}
		return -1
	}
	if v := quota(sqQuotas(q.Quotas), "L-1216C47A"); v != 1152 {
		t.Fatalf("standard vCPU quota %v, want 1152", v)
	}
	if v := quota(sqQuotas(qd.Quotas), "L-1216C47A"); v <= 0 {
		t.Fatalf("default standard vCPU quota %v", v)
	}

	vpcs := must[*ec2.DescribeVpcsOutput](t, "DescribeVpcs")(c.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{
		Filters: []types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}}))
	if len(vpcs.Vpcs) != 1 || aws.ToString(vpcs.Vpcs[0].VpcId) != defaultVPC || !aws.ToBool(vpcs.Vpcs[0].IsDefault) {
		t.Fatalf("default VPC: %+v", vpcs.Vpcs)
	}
	tagged := must[*ec2.DescribeVpcsOutput](t, "DescribeVpcs")(c.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{
		Filters: []types.Filter{{Name: aws.String("tag:Project"), Values: []string{"aquarium"}}}}))
	if len(tagged.Vpcs) != 1 || aws.ToString(tagged.Vpcs[0].VpcId) != taggedVPC || tagMap(tagged.Vpcs[0].Tags)["Name"] != "aquarium" {
		t.Fatalf("tagged VPC: %+v", tagged.Vpcs)
	}
	subnets := must[*ec2.DescribeSubnetsOutput](t, "DescribeSubnets")(c.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{
		Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{taggedVPC}}}}))
	if len(subnets.Subnets) != 3 || aws.ToInt32(subnets.Subnets[0].AvailableIpAddressCount) != 251-40 {
		t.Fatalf("subnets of the tagged VPC: %d, first free IPs %d", len(subnets.Subnets), aws.ToInt32(subnets.Subnets[0].AvailableIpAddressCount))
	}
	sgs := must[*ec2.DescribeSecurityGroupsOutput](t, "DescribeSecurityGroups")(c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
		Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{"aquarium-ssh"}}, {Name: aws.String("vpc-id"), Values: []string{defaultVPC}}}}))
	if len(sgs.SecurityGroups) != 1 || aws.ToString(sgs.SecurityGroups[0].GroupId) != sshGroupID {
		t.Fatalf("security group by name: %+v", sgs.SecurityGroups)
	}
	its := must[*ec2.DescribeInstanceTypesOutput](t, "DescribeInstanceTypes")(c.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{
		InstanceTypes: []types.InstanceType{types.InstanceTypeMac2Metal, types.InstanceTypeMac1Metal}}))
	arch := map[types.InstanceType]types.ArchitectureType{}
	for _, it := range its.InstanceTypes {
		arch[it.InstanceType] = it.ProcessorInfo.SupportedArchitectures[0]
	}
	if arch[types.InstanceTypeMac2Metal] != types.ArchitectureTypeArm64Mac || arch[types.InstanceTypeMac1Metal] != types.ArchitectureTypeX8664Mac {
		t.Fatalf("mac architectures: %v", arch)
	}
	imgs := must[*ec2.DescribeImagesOutput](t, "DescribeImages")(c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{"amazon"}, Filters: []types.Filter{{Name: aws.String("architecture"), Values: []string{"arm64_mac"}},
			{Name: aws.String("name"), Values: []string{"amzn-ec2-macos-14*"}}}}))
	if len(imgs.Images) != 2 || aws.ToString(imgs.Images[1].ImageId) != macArmImage || imgs.Images[1].Architecture != types.ArchitectureValuesArm64Mac {
		t.Fatalf("macOS arm64 images: %+v", imgs.Images)
	}

	kp := must[*ec2.CreateKeyPairOutput](t, "CreateKeyPair")(c.ec2.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("app-1"), KeyType: types.KeyTypeRsa}))
	if !strings.Contains(aws.ToString(kp.KeyMaterial), "PRIVATE KEY-----") {
		t.Fatalf("CreateKeyPair key material is not a PEM private key")
	}

	// A data volume from a snapshot, encrypted with the alias, tagged.
	userData := base64.StdEncoding.EncodeToString([]byte("test1=test2\n"))
	run := must[*ec2.RunInstancesOutput](t, "RunInstances")(c.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(linuxX86Image), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(subnetA), SecurityGroupIds: []string{sshGroupID}, KeyName: aws.String("app-1"), UserData: aws.String(userData),
		ClientToken: aws.String("app-uid-1"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{
			VolumeSize: aws.Int32(60), VolumeType: types.VolumeTypeGp3, Iops: aws.Int32(4000), Throughput: aws.Int32(250),
			SnapshotId: aws.String("snap-0a9a1a10000000001"), Encrypted: aws.Bool(true), KmsKeyId: aws.String("alias/aquarium"),
			DeleteOnTermination: aws.Bool(true)}}},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("ci-1")}, {Key: aws.String("AquariumApplication"), Value: aws.String("app-uid-1")}}},
			{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{{Key: aws.String("Disk"), Value: aws.String("cache")}}}},
	}))
	iid := aws.ToString(run.Instances[0].InstanceId)
	// Same ClientToken: the same instance, not a second launch.
	again := must[*ec2.RunInstancesOutput](t, "RunInstances retry")(c.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(linuxX86Image), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(subnetA), SecurityGroupIds: []string{sshGroupID}, KeyName: aws.String("app-1"), UserData: aws.String(userData),
		ClientToken: aws.String("app-uid-1"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{
			VolumeSize: aws.Int32(60), VolumeType: types.VolumeTypeGp3, Iops: aws.Int32(4000), Throughput: aws.Int32(250),
			SnapshotId: aws.String("snap-0a9a1a10000000001"), Encrypted: aws.Bool(true), KmsKeyId: aws.String("alias/aquarium"),
			DeleteOnTermination: aws.Bool(true)}}},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("ci-1")}, {Key: aws.String("AquariumApplication"), Value: aws.String("app-uid-1")}}},
			{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{{Key: aws.String("Disk"), Value: aws.String("cache")}}}},
	}))
	if aws.ToString(again.Instances[0].InstanceId) != iid {
		t.Fatalf("ClientToken retry launched %s, want %s", aws.ToString(again.Instances[0].InstanceId), iid)
	}
	c.clk.Advance(time.Minute)
	di := must[*ec2.DescribeInstancesOutput](t, "DescribeInstances")(c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("tag:AquariumApplication"), Values: []string{"app-uid-1"}}}}))
	if len(di.Reservations) != 1 || len(di.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances by tag: %+v", di.Reservations)
	}
	inst := di.Reservations[0].Instances[0]
	if aws.ToString(inst.InstanceId) != iid || inst.State.Name != types.InstanceStateNameRunning || aws.ToString(inst.SubnetId) != subnetA ||
		aws.ToString(inst.VpcId) != defaultVPC || aws.ToString(inst.KeyName) != "app-1" || !strings.HasPrefix(aws.ToString(inst.PrivateIpAddress), "172.31.") ||
		len(inst.SecurityGroups) != 1 || aws.ToString(inst.SecurityGroups[0].GroupId) != sshGroupID || tagMap(inst.Tags)["Name"] != "ci-1" ||
		!aws.ToTime(inst.LaunchTime).Equal(t0) || aws.ToString(inst.Placement.AvailabilityZone) != "us-west-2a" {
		t.Fatalf("instance as described: %+v", inst)
	}
	ud := must[*ec2.DescribeInstanceAttributeOutput](t, "DescribeInstanceAttribute")(c.ec2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(iid), Attribute: types.InstanceAttributeNameUserData}))
	if aws.ToString(ud.UserData.Value) != userData {
		t.Fatalf("user data %q, want %q", aws.ToString(ud.UserData.Value), userData)
	}
	vols := must[*ec2.DescribeVolumesOutput](t, "DescribeVolumes")(c.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{iid}}}}))
	var data *types.Volume
	for i, v := range vols.Volumes {
		if aws.ToString(v.Attachments[0].Device) == "/dev/sdf" {
			data = &vols.Volumes[i]
		}
	}
	if data == nil || aws.ToInt32(data.Size) != 60 || data.VolumeType != types.VolumeTypeGp3 || aws.ToInt32(data.Iops) != 4000 ||
		aws.ToInt32(data.Throughput) != 250 || !aws.ToBool(data.Encrypted) || aws.ToString(data.SnapshotId) != "snap-0a9a1a10000000001" ||
		!strings.HasSuffix(aws.ToString(data.KmsKeyId), "1234abcd-12ab-34cd-56ef-1234567890ab") || tagMap(data.Tags)["Disk"] != "cache" {
		t.Fatalf("data volume: %+v (all: %d)", data, len(vols.Volumes))
	}
	must[*ec2.CreateTagsOutput](t, "CreateTags")(c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{iid},
		Tags: []types.Tag{{Key: aws.String("Owner"), Value: aws.String("ci")}}}))

	snaps := must[*ec2.CreateSnapshotsOutput](t, "CreateSnapshots")(c.ec2.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String(iid), ExcludeBootVolume: aws.Bool(true)},
		CopyTagsFromSource:    types.CopyTagsFromSourceVolume}))
	if len(snaps.Snapshots) != 1 || tagMap(snaps.Snapshots[0].Tags)["Disk"] != "cache" {
		t.Fatalf("CreateSnapshots without the boot volume: %+v", snaps.Snapshots)
	}
	newSnap := aws.ToString(snaps.Snapshots[0].SnapshotId)
	ds := must[*ec2.DescribeSnapshotsOutput](t, "DescribeSnapshots")(c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"}, Filters: []types.Filter{{Name: aws.String("tag:Disk"), Values: []string{"cache"}}}}))
	if len(ds.Snapshots) != 1 || aws.ToString(ds.Snapshots[0].SnapshotId) != newSnap || aws.ToString(ds.Snapshots[0].OwnerId) != account {
		t.Fatalf("DescribeSnapshots by tag: %+v", ds.Snapshots)
	}
	c.clk.Advance(time.Minute)
	must[*ec2.DeleteSnapshotOutput](t, "DeleteSnapshot")(c.ec2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(newSnap)}))

	img := must[*ec2.CreateImageOutput](t, "CreateImage")(c.ec2.CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId: aws.String(iid), Name: aws.String("tmp-ci-1"), NoReboot: aws.Bool(true),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: []types.Tag{{Key: aws.String("Tmp"), Value: aws.String("1")}}}}}))
	c.clk.Advance(2 * time.Minute)
	cp := must[*ec2.CopyImageOutput](t, "CopyImage")(c.ec2.CopyImage(ctx, &ec2.CopyImageInput{
		SourceImageId: img.ImageId, SourceRegion: aws.String("us-west-2"), Name: aws.String("ci-1-260310.120000"),
		Encrypted: aws.Bool(true), KmsKeyId: aws.String("alias/aquarium"), ClientToken: aws.String("copy-1")}))
	c.clk.Advance(2 * time.Minute)
	copied := must[*ec2.DescribeImagesOutput](t, "DescribeImages")(c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(cp.ImageId)}}))
	if len(copied.Images) != 1 || copied.Images[0].State != types.ImageStateAvailable || aws.ToString(copied.Images[0].OwnerId) != account ||
		!aws.ToBool(copied.Images[0].BlockDeviceMappings[0].Ebs.Encrypted) {
		t.Fatalf("encrypted copy: %+v", copied.Images)
	}
	must[*ec2.DeregisterImageOutput](t, "DeregisterImage")(c.ec2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: img.ImageId, DeleteAssociatedSnapshots: aws.Bool(true)}))

	must[*ec2.StopInstancesOutput](t, "StopInstances")(c.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{iid}}))
	term := must[*ec2.TerminateInstancesOutput](t, "TerminateInstances")(c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{iid}}))
	if len(term.TerminatingInstances) != 1 || term.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameShuttingDown {
		t.Fatalf("TerminateInstances: %+v", term.TerminatingInstances)
	}
	dk := must[*ec2.DescribeKeyPairsOutput](t, "DescribeKeyPairs")(c.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{"app-1"}}))
	if len(dk.KeyPairs) != 1 || aws.ToString(dk.KeyPairs[0].KeyFingerprint) != aws.ToString(kp.KeyFingerprint) {
		t.Fatalf("DescribeKeyPairs: %+v", dk.KeyPairs)
	}
	must[*ec2.DeleteKeyPairOutput](t, "DeleteKeyPair")(c.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("app-1")}))
	hosts := must[*ec2.AllocateHostsOutput](t, "AllocateHosts")(c.ec2.AllocateHosts(ctx, &ec2.AllocateHostsInput{
		AvailabilityZone: aws.String("us-west-2c"), InstanceType: aws.String("c5.large"), Quantity: aws.Int32(1)}))
	if aws.ToString(host(t, c, hosts.HostIds[0]).HostProperties.InstanceType) != "c5.large" {
		t.Fatal("c5.large host without instance type")
	}
	must[*ec2.ReleaseHostsOutput](t, "ReleaseHosts")(c.ec2.ReleaseHosts(ctx, &ec2.ReleaseHostsInput{HostIds: hosts.HostIds}))

	calls := c.world.Calls()
	var missing []string
	for a := range ec2Actions {
		if calls[a].Calls == 0 {
			missing = append(missing, a)
		}
	}
	for _, a := range []string{"GetCallerIdentity", "ListAliases", "DescribeKey", "ListServiceQuotas", "ListAWSDefaultServiceQuotas"} {
		if calls[a].Calls == 0 {
			missing = append(missing, a)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("actions never served over HTTP: %v", missing)
	}
}

type sqQuota struct {
	code  string
	value float64
}

func sqQuotas(qs []sqtypes.ServiceQuota) []sqQuota {
	out := make([]sqQuota, 0, len(qs))
	for _, q := range qs {
		out = append(out, sqQuota{aws.ToString(q.QuotaCode), aws.ToFloat64(q.Value)})
	}
	return out
}

// TestConcurrentClientsOverHTTP runs launches and listings from several
// goroutines at once (run with -race): every launch is served exactly once.
func TestConcurrentClientsOverHTTP(t *testing.T) {
	ctx := context.Background()
	c := newClients(t, nil)
	const workers, each = 6, 5
	errs := make(chan error, workers*each*2)
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				_, err := c.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(linuxX86Image),
					InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
					ClientToken: aws.String(fmt.Sprintf("w%d-%d", w, i))})
				errs <- err
				_, err = c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
				errs <- err
			}
		}()
	}
	for range workers {
		<-done
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	out := must[*ec2.DescribeInstancesOutput](t, "DescribeInstances")(c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}))
	n := 0
	for _, r := range out.Reservations {
		n += len(r.Instances)
	}
	if n != workers*each {
		t.Fatalf("%d instances, want %d", n, workers*each)
	}
	if got := c.world.Calls()["RunInstances"].Calls; got != workers*each {
		t.Fatalf("world saw %d RunInstances, want %d", got, workers*each)
	}
}
