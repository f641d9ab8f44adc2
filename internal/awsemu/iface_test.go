package awsemu

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ec2API lists every emulated EC2 action with the SDK client's signature;
// both *ec2.Client and *World must satisfy it.
type ec2API interface {
	AllocateHosts(context.Context, *ec2.AllocateHostsInput, ...func(*ec2.Options)) (*ec2.AllocateHostsOutput, error)
	CopyImage(context.Context, *ec2.CopyImageInput, ...func(*ec2.Options)) (*ec2.CopyImageOutput, error)
	CreateImage(context.Context, *ec2.CreateImageInput, ...func(*ec2.Options)) (*ec2.CreateImageOutput, error)
	CreateKeyPair(context.Context, *ec2.CreateKeyPairInput, ...func(*ec2.Options)) (*ec2.CreateKeyPairOutput, error)
	CreateSnapshots(context.Context, *ec2.CreateSnapshotsInput, ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error)
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DeleteKeyPair(context.Context, *ec2.DeleteKeyPairInput, ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error)
	DeleteSnapshot(context.Context, *ec2.DeleteSnapshotInput, ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error)
	DeregisterImage(context.Context, *ec2.DeregisterImageInput, ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error)
	DescribeHosts(context.Context, *ec2.DescribeHostsInput, ...func(*ec2.Options)) (*ec2.DescribeHostsOutput, error)
	DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeInstanceAttribute(context.Context, *ec2.DescribeInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
	DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeKeyPairs(context.Context, *ec2.DescribeKeyPairsInput, ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	ReleaseHosts(context.Context, *ec2.ReleaseHostsInput, ...func(*ec2.Options)) (*ec2.ReleaseHostsOutput, error)
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	StopInstances(context.Context, *ec2.StopInstancesInput, ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error)
	TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
}

type kmsAPI interface {
	ListAliases(context.Context, *kms.ListAliasesInput, ...func(*kms.Options)) (*kms.ListAliasesOutput, error)
	DescribeKey(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

type quotasAPI interface {
	ListServiceQuotas(context.Context, *servicequotas.ListServiceQuotasInput, ...func(*servicequotas.Options)) (*servicequotas.ListServiceQuotasOutput, error)
	ListAWSDefaultServiceQuotas(context.Context, *servicequotas.ListAWSDefaultServiceQuotasInput, ...func(*servicequotas.Options)) (*servicequotas.ListAWSDefaultServiceQuotasOutput, error)
}

type stsAPI interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var (
	_ ec2API    = (*ec2.Client)(nil)
	_ ec2API    = (*World)(nil)
	_ kmsAPI    = (*kms.Client)(nil)
	_ kmsAPI    = (*World)(nil)
	_ quotasAPI = (*servicequotas.Client)(nil)
	_ quotasAPI = (*World)(nil)
	_ stsAPI    = (*sts.Client)(nil)
	_ stsAPI    = (*World)(nil)
)

// TestSDKWaiters runs the SDK's waiters against the world directly: their
// matchers must accept our outputs.
func TestSDKWaiters(t *testing.T) {
	w, clk := newTestWorld(t, nil)
	out := runLinux(t, w, nil)
	id := aws.ToString(out.Instances[0].InstanceId)
	clk.Advance(time.Minute)
	if err := ec2.NewInstanceRunningWaiter(w).Wait(bg, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, time.Minute); err != nil {
		t.Fatalf("InstanceRunning: %v", err)
	}
	if _, err := w.StopInstances(bg, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := ec2.NewInstanceStoppedWaiter(w).Wait(bg, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, time.Minute); err != nil {
		t.Fatalf("InstanceStopped: %v", err)
	}
	img, err := w.CreateImage(bg, &ec2.CreateImageInput{InstanceId: aws.String(id), Name: aws.String("waiter-image")})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	if err := ec2.NewImageAvailableWaiter(w).Wait(bg, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(img.ImageId)}}, time.Minute); err != nil {
		t.Fatalf("ImageAvailable: %v", err)
	}
	if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := ec2.NewInstanceTerminatedWaiter(w).Wait(bg, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, time.Minute); err != nil {
		t.Fatalf("InstanceTerminated: %v", err)
	}
}

// TestConcurrentUse hammers one world from several goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	w, clk := newTestWorld(t, nil)
	var hosts []string
	for range 8 {
		hosts = append(hosts, allocHost(t, w, "c5.large", "us-west-2a", true))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				out, err := w.RunInstances(bg, &ec2.RunInstancesInput{ImageId: aws.String(linuxImage), InstanceType: "c5.large", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
					Placement: &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(hosts[(g+i)%len(hosts)])}})
				if err != nil {
					errs <- err
					return
				}
				if _, err := w.DescribeHosts(bg, &ec2.DescribeHostsInput{}); err != nil {
					errs <- err
					return
				}
				if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(out.Instances[0].InstanceId)}}); err != nil {
					errs <- err
					return
				}
				_ = w.State()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 100 {
			clk.Advance(time.Minute)
			_ = w.Billing(t0, clk.Now())
			_ = w.Calls()
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := w.Calls()["RunInstances"]; st.Calls != 200 || st.Errors != 0 {
		t.Fatalf("RunInstances calls %+v", st)
	}
}
