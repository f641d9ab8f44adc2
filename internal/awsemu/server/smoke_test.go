package server

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

func TestSmokeFake(t *testing.T) {
	f := &fakeWorld{}
	cfg := SDKConfig(NewTestServer(t, f), "us-west-2")
	ctx := context.Background()
	out, err := ec2.NewFromConfig(cfg).RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		InstanceType: types.InstanceTypeMac2Metal, SecurityGroupIds: []string{"sg-1", "sg-2"},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v %+v", out.Instances[0], *f.lastRun)
	_, err = ec2.NewFromConfig(cfg).RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-missing"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidAMIID.NotFound" {
		t.Fatalf("err %v", err)
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(*id.Account)
	al, err := kms.NewFromConfig(cfg).ListAliases(ctx, &kms.ListAliasesInput{Limit: aws.Int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(*al.Aliases[0].AliasName, al.Aliases[0].CreationDate)
}
