package awsemu

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The names of a launch (instance, reservation, network interface and its
// attachment, MAC, IP, DNS name, volume) are drawn in a fixed order from the
// world's seed: the same seed gives the same names, also now that the
// network interface's names are made only when described.
func TestLaunchNamesFromSeed(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	var got []string
	for range 2 {
		out := runLinux(t, w, func(in *ec2.RunInstancesInput) {
			in.Placement = &types.Placement{AvailabilityZone: aws.String("us-west-2a")}
		})
		i := out.Instances[0]
		ni := i.NetworkInterfaces[0]
		got = append(got, aws.ToString(out.ReservationId), aws.ToString(i.InstanceId), aws.ToString(ni.NetworkInterfaceId),
			aws.ToString(ni.Attachment.AttachmentId), aws.ToString(ni.MacAddress), aws.ToString(i.PrivateIpAddress),
			aws.ToString(i.PrivateDnsName), aws.ToString(ni.PrivateDnsName), aws.ToString(ni.PrivateIpAddresses[0].PrivateDnsName),
			aws.ToString(i.BlockDeviceMappings[0].Ebs.VolumeId))
	}
	want := []string{"r-00e28cda340c97be6", "i-00e28cda340c98af4", "eni-00e28cda340c98d74", "eni-attach-00e28cda340c98d74", "02:00:27:01:84:2c", "172.31.16.4",
		"ip-172-31-16-4.us-west-2.compute.internal", "ip-172-31-16-4.us-west-2.compute.internal", "ip-172-31-16-4.us-west-2.compute.internal", "vol-00e28cda340c99b4e",
		"r-00e28cda340c9a5ab", "i-00e28cda340c9ad3c", "eni-00e28cda340c9bc9f", "eni-attach-00e28cda340c9bc9f", "02:00:2b:1d:cb:56", "172.31.16.5",
		"ip-172-31-16-5.us-west-2.compute.internal", "ip-172-31-16-5.us-west-2.compute.internal", "ip-172-31-16-5.us-west-2.compute.internal", "vol-00e28cda340c9c164"}
	if len(got) != len(want) {
		t.Fatalf("%d names, want %d", len(got), len(want))
	}
	for k := range got {
		if got[k] != want[k] {
			t.Errorf("name %d: %q, want %q", k, got[k], want[k])
		}
	}
}
