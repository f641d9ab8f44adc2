// One captureWorld method per served action (see roundtrip_test.go).

package server

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func (c *captureWorld) AllocateHosts(_ context.Context, in *ec2.AllocateHostsInput, _ ...func(*ec2.Options)) (*ec2.AllocateHostsOutput, error) {
	return answer[ec2.AllocateHostsOutput](c, "AllocateHosts", in)
}

func (c *captureWorld) CopyImage(_ context.Context, in *ec2.CopyImageInput, _ ...func(*ec2.Options)) (*ec2.CopyImageOutput, error) {
	return answer[ec2.CopyImageOutput](c, "CopyImage", in)
}

func (c *captureWorld) CreateImage(_ context.Context, in *ec2.CreateImageInput, _ ...func(*ec2.Options)) (*ec2.CreateImageOutput, error) {
	return answer[ec2.CreateImageOutput](c, "CreateImage", in)
}

func (c *captureWorld) CreateKeyPair(_ context.Context, in *ec2.CreateKeyPairInput, _ ...func(*ec2.Options)) (*ec2.CreateKeyPairOutput, error) {
	return answer[ec2.CreateKeyPairOutput](c, "CreateKeyPair", in)
}

func (c *captureWorld) CreateSnapshots(_ context.Context, in *ec2.CreateSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error) {
	return answer[ec2.CreateSnapshotsOutput](c, "CreateSnapshots", in)
}

func (c *captureWorld) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	return answer[ec2.CreateTagsOutput](c, "CreateTags", in)
}

func (c *captureWorld) DeleteKeyPair(_ context.Context, in *ec2.DeleteKeyPairInput, _ ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error) {
	return answer[ec2.DeleteKeyPairOutput](c, "DeleteKeyPair", in)
}

func (c *captureWorld) DeleteSnapshot(_ context.Context, in *ec2.DeleteSnapshotInput, _ ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	return answer[ec2.DeleteSnapshotOutput](c, "DeleteSnapshot", in)
}

func (c *captureWorld) DeregisterImage(_ context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	return answer[ec2.DeregisterImageOutput](c, "DeregisterImage", in)
}

func (c *captureWorld) DescribeHosts(_ context.Context, in *ec2.DescribeHostsInput, _ ...func(*ec2.Options)) (*ec2.DescribeHostsOutput, error) {
	return answer[ec2.DescribeHostsOutput](c, "DescribeHosts", in)
}

func (c *captureWorld) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return answer[ec2.DescribeImagesOutput](c, "DescribeImages", in)
}

func (c *captureWorld) DescribeInstanceAttribute(_ context.Context, in *ec2.DescribeInstanceAttributeInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error) {
	return answer[ec2.DescribeInstanceAttributeOutput](c, "DescribeInstanceAttribute", in)
}

func (c *captureWorld) DescribeInstanceTypes(_ context.Context, in *ec2.DescribeInstanceTypesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	return answer[ec2.DescribeInstanceTypesOutput](c, "DescribeInstanceTypes", in)
}

func (c *captureWorld) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return answer[ec2.DescribeInstancesOutput](c, "DescribeInstances", in)
}

func (c *captureWorld) DescribeKeyPairs(_ context.Context, in *ec2.DescribeKeyPairsInput, _ ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error) {
	return answer[ec2.DescribeKeyPairsOutput](c, "DescribeKeyPairs", in)
}

func (c *captureWorld) DescribeSecurityGroups(_ context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return answer[ec2.DescribeSecurityGroupsOutput](c, "DescribeSecurityGroups", in)
}

func (c *captureWorld) DescribeSnapshots(_ context.Context, in *ec2.DescribeSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	return answer[ec2.DescribeSnapshotsOutput](c, "DescribeSnapshots", in)
}

func (c *captureWorld) DescribeSubnets(_ context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return answer[ec2.DescribeSubnetsOutput](c, "DescribeSubnets", in)
}

func (c *captureWorld) DescribeVolumes(_ context.Context, in *ec2.DescribeVolumesInput, _ ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	return answer[ec2.DescribeVolumesOutput](c, "DescribeVolumes", in)
}

func (c *captureWorld) DescribeVpcs(_ context.Context, in *ec2.DescribeVpcsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	return answer[ec2.DescribeVpcsOutput](c, "DescribeVpcs", in)
}

func (c *captureWorld) ReleaseHosts(_ context.Context, in *ec2.ReleaseHostsInput, _ ...func(*ec2.Options)) (*ec2.ReleaseHostsOutput, error) {
	return answer[ec2.ReleaseHostsOutput](c, "ReleaseHosts", in)
}

func (c *captureWorld) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	return answer[ec2.RunInstancesOutput](c, "RunInstances", in)
}

func (c *captureWorld) StopInstances(_ context.Context, in *ec2.StopInstancesInput, _ ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
	return answer[ec2.StopInstancesOutput](c, "StopInstances", in)
}

func (c *captureWorld) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	return answer[ec2.TerminateInstancesOutput](c, "TerminateInstances", in)
}

func (c *captureWorld) GetCallerIdentity(_ context.Context, in *sts.GetCallerIdentityInput, _ ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return answer[sts.GetCallerIdentityOutput](c, "GetCallerIdentity", in)
}

func (c *captureWorld) ListAliases(_ context.Context, in *kms.ListAliasesInput, _ ...func(*kms.Options)) (*kms.ListAliasesOutput, error) {
	return answer[kms.ListAliasesOutput](c, "ListAliases", in)
}

func (c *captureWorld) DescribeKey(_ context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	return answer[kms.DescribeKeyOutput](c, "DescribeKey", in)
}

func (c *captureWorld) ListServiceQuotas(_ context.Context, in *servicequotas.ListServiceQuotasInput, _ ...func(*servicequotas.Options)) (*servicequotas.ListServiceQuotasOutput, error) {
	return answer[servicequotas.ListServiceQuotasOutput](c, "ListServiceQuotas", in)
}

func (c *captureWorld) ListAWSDefaultServiceQuotas(_ context.Context, in *servicequotas.ListAWSDefaultServiceQuotasInput, _ ...func(*servicequotas.Options)) (*servicequotas.ListAWSDefaultServiceQuotasOutput, error) {
	return answer[servicequotas.ListAWSDefaultServiceQuotasOutput](c, "ListAWSDefaultServiceQuotas", in)
}
