package server

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
)

// fakeWorld is a temporary test double with a few World methods, used until
// the in-memory world lands.
type fakeWorld struct {
	mu       sync.Mutex
	lastRun  *ec2.RunInstancesInput
	rejected map[string]int
}

func (f *fakeWorld) RecordCall(action string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rejected == nil {
		f.rejected = map[string]int{}
	}
	f.rejected[action]++
}
func (f *fakeWorld) ClearFaults() {}
func (f *fakeWorld) ResetCalls()  {}

func (f *fakeWorld) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	f.mu.Lock()
	f.lastRun = in
	f.mu.Unlock()
	if aws.ToString(in.ImageId) == "ami-missing" {
		return nil, awsemu.Errorf("InvalidAMIID.NotFound", "The image id '[ami-missing]' does not exist")
	}
	return &ec2.RunInstancesOutput{
		ReservationId: aws.String("r-1"),
		Instances: []types.Instance{{
			InstanceId:     aws.String("i-0123"),
			InstanceType:   in.InstanceType,
			LaunchTime:     aws.Time(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
			State:          &types.InstanceState{Name: types.InstanceStateNamePending, Code: aws.Int32(0)},
			Tags:           []types.Tag{{Key: aws.String("Name"), Value: aws.String("x<&>")}},
			SecurityGroups: []types.GroupIdentifier{{GroupId: aws.String("sg-1"), GroupName: aws.String("default")}},
		}},
	}, nil
}

func (f *fakeWorld) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Account: aws.String("123456789012"), Arn: aws.String("arn:aws:iam::123456789012:user/emu"), UserId: aws.String("AIDAEMU")}, nil
}

func (f *fakeWorld) ListAliases(_ context.Context, in *kms.ListAliasesInput, _ ...func(*kms.Options)) (*kms.ListAliasesOutput, error) {
	return &kms.ListAliasesOutput{Aliases: []kmstypes.AliasListEntry{{AliasName: aws.String("alias/emu"), TargetKeyId: aws.String("k-1"), CreationDate: aws.Time(time.Unix(1700000000, 0))}}, Truncated: false}, nil
}
