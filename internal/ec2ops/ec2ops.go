// Package ec2ops is the narrow EC2 surface of the AWS driver's and the
// dedicated-host pools' hot paths: launch instances and learn what the
// caller needs of them, terminate instances, read the state of hosts.
//
// Production gets it from For over an aws-sdk-go-v2 EC2 client: an adapter
// that makes the SDK call and keeps the few fields the callers read. The
// in-memory AWS world (internal/awsemu) implements API natively, with the
// same validation, errors, idempotency, side effects and call records as
// its SDK-shaped methods, but without building the SDK answer, most of
// which the callers never read (the simulator makes ~1.3 M such calls a
// year). The HTTP emulator and the SDK tests keep the adapter honest; the
// world's tests check that its native answers equal what the adapter makes
// of its SDK-shaped ones.
package ec2ops

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Instance is what the callers read of a launched instance.
type Instance struct {
	ID        string
	State     types.InstanceStateName
	PrivateIP string
	SubnetID  string
	HostID    string // placement host ("" when not on a dedicated host)
	Zone      string // placement availability zone
	// MAC is the address of the primary network interface (device index
	// 0), or of the first interface when none says it is the primary.
	MAC string
}

// Capacity is a host's capacity for one instance type.
type Capacity struct {
	InstanceType string
	Total        int32
	Available    int32
}

// Host is what the pools read of a dedicated host.
type Host struct {
	ID           string
	Zone         string
	State        types.AllocationState
	AllocatedAt  time.Time // zero when AWS did not say
	InstanceType string    // the host's instance type ("" for a family host)
	Capacity     []Capacity
	Instances    []string // ids of the instances on the host
}

// API is the narrow surface. The request structs are the SDK's: callers
// build them once and may reuse them; an implementation must neither keep
// nor modify a request. Answers are appended to dst (which may be reused:
// the Capacity and Instances slices of its elements beyond len(dst) are
// reused too), so a caller that keeps its slice allocates nothing.
type API interface {
	// LaunchInstances is RunInstances: it appends the launched (or, for a
	// repeated client token, the earlier) instances to dst.
	LaunchInstances(ctx context.Context, in *ec2.RunInstancesInput, dst []Instance) ([]Instance, error)
	// TerminateInstanceIDs is TerminateInstances of ids.
	TerminateInstanceIDs(ctx context.Context, ids []string) error
	// DescribeHostStates is DescribeHosts: it appends the page's hosts to
	// dst and returns the next page's token (nil on the last page).
	DescribeHostStates(ctx context.Context, in *ec2.DescribeHostsInput, dst []Host) ([]Host, *string, error)
}

// SDK is the part of the aws-sdk-go-v2 EC2 client the adapter calls.
type SDK interface {
	RunInstances(ctx context.Context, in *ec2.RunInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	DescribeHosts(ctx context.Context, in *ec2.DescribeHostsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeHostsOutput, error)
}

// For returns c itself when it implements API natively (the in-memory
// world), else the adapter over its SDK calls.
func For(c SDK) API {
	if a, ok := c.(API); ok {
		return a
	}
	return Adapter{c}
}

// Adapter implements API over SDK calls.
type Adapter struct{ C SDK }

// LaunchInstances implements API.
func (a Adapter) LaunchInstances(ctx context.Context, in *ec2.RunInstancesInput, dst []Instance) ([]Instance, error) {
	out, err := a.C.RunInstances(ctx, in)
	if err != nil {
		return dst, err
	}
	for i := range out.Instances {
		dst = append(dst, FromSDKInstance(&out.Instances[i]))
	}
	return dst, nil
}

// TerminateInstanceIDs implements API.
func (a Adapter) TerminateInstanceIDs(ctx context.Context, ids []string) error {
	_, err := a.C.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	return err
}

// DescribeHostStates implements API.
func (a Adapter) DescribeHostStates(ctx context.Context, in *ec2.DescribeHostsInput, dst []Host) ([]Host, *string, error) {
	out, err := a.C.DescribeHosts(ctx, in)
	if err != nil {
		return dst, nil, err
	}
	for i := range out.Hosts {
		dst = AppendSDKHost(dst, &out.Hosts[i])
	}
	next := out.NextToken
	if aws.ToString(next) == "" {
		next = nil
	}
	return dst, next, nil
}

// FromSDKInstance keeps what the callers read of an SDK instance.
func FromSDKInstance(t *types.Instance) Instance {
	v := Instance{
		ID:        aws.ToString(t.InstanceId),
		PrivateIP: aws.ToString(t.PrivateIpAddress),
		SubnetID:  aws.ToString(t.SubnetId),
	}
	if t.State != nil {
		v.State = t.State.Name
	}
	if p := t.Placement; p != nil {
		v.HostID = aws.ToString(p.HostId)
		v.Zone = aws.ToString(p.AvailabilityZone)
	}
	for i := range t.NetworkInterfaces {
		ni := &t.NetworkInterfaces[i] // (a large struct: not copied)
		if v.MAC == "" || (ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 0) {
			v.MAC = aws.ToString(ni.MacAddress)
		}
	}
	return v
}

// AppendSDKHost appends what the pools read of an SDK host to dst, reusing
// the slices of dst's next element when it has one in its capacity.
func AppendSDKHost(dst []Host, t *types.Host) []Host {
	h := Grow(&dst)
	h.ID = aws.ToString(t.HostId)
	h.Zone = aws.ToString(t.AvailabilityZone)
	h.State = t.State
	if t.AllocationTime != nil {
		h.AllocatedAt = *t.AllocationTime
	}
	if p := t.HostProperties; p != nil {
		h.InstanceType = aws.ToString(p.InstanceType)
	}
	if ac := t.AvailableCapacity; ac != nil {
		for _, c := range ac.AvailableInstanceCapacity {
			h.Capacity = append(h.Capacity, Capacity{
				InstanceType: aws.ToString(c.InstanceType),
				Total:        aws.ToInt32(c.TotalCapacity),
				Available:    aws.ToInt32(c.AvailableCapacity),
			})
		}
	}
	for _, hi := range t.Instances {
		h.Instances = append(h.Instances, aws.ToString(hi.InstanceId))
	}
	return dst
}

// Grow extends *dst by one element and returns it, empty but keeping the
// backing arrays of its Capacity and Instances slices when the element
// comes from *dst's spare capacity (Reset clears those for the GC).
func Grow(dst *[]Host) *Host {
	s := *dst
	if len(s) < cap(s) {
		s = s[:len(s)+1]
	} else {
		s = append(s, Host{})
	}
	h := &s[len(s)-1]
	*h = Host{Capacity: h.Capacity[:0], Instances: h.Instances[:0]}
	*dst = s
	return h
}

// TotalCapacity returns h's total capacity for instance type t (0 if none).
func (h *Host) TotalCapacity(t string) int32 {
	for _, c := range h.Capacity {
		if c.InstanceType == t {
			return c.Total
		}
	}
	return 0
}

// Reset empties hosts (length 0) keeping the backing arrays for reuse, with
// no strings kept alive.
func Reset(hosts []Host) []Host {
	for i := range hosts {
		h := &hosts[i]
		clear(h.Capacity)
		clear(h.Instances)
		*h = Host{Capacity: h.Capacity[:0], Instances: h.Instances[:0]}
	}
	return hosts[:0]
}
