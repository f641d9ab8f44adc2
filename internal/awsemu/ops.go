package awsemu

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/ec2ops"
)

// The world implements the narrow surface natively: the same calls as its
// SDK-shaped RunInstances, TerminateInstances and DescribeHosts (recorded
// under those actions, with the same context check, purge, throttling,
// faults, validation, errors and side effects), answering only the fields
// the driver and the pools read instead of building SDK outputs.
var _ ec2ops.API = (*World)(nil)

// LaunchInstances implements ec2ops.API: RunInstances, appending the
// launched (or, for a repeated client token, the earlier) instances to dst.
func (w *World) LaunchInstances(ctx context.Context, in *ec2.RunInstancesInput, dst []ec2ops.Instance) ([]ec2ops.Instance, error) {
	err := w.do(ctx, "RunInstances", func() error {
		if in == nil {
			in = new(ec2.RunInstancesInput)
		}
		var one [1]*instance // the usual single launch needs no slice allocation
		_, insts, _, err := w.runInstances(in, one[:0])
		if err != nil {
			return err
		}
		for _, inst := range insts {
			dst = append(dst, w.opsInstance(inst))
		}
		return nil
	})
	return dst, err
}

// opsInstance is what ec2ops.FromSDKInstance keeps of fillInstanceSDK's
// answer for inst.
func (w *World) opsInstance(inst *instance) ec2ops.Instance {
	v := ec2ops.Instance{ID: inst.id, State: inst.state(w.now), HostID: inst.hostID, Zone: inst.zone}
	// (the SDK answer has no network of a terminated instance)
	if v.State != types.InstanceStateNameTerminated && inst.subnet != nil {
		v.PrivateIP, v.SubnetID, v.MAC = inst.ipStr, inst.subnet.id, inst.mac
	}
	return v
}

// TerminateInstanceIDs implements ec2ops.API: TerminateInstances of ids.
func (w *World) TerminateInstanceIDs(ctx context.Context, ids []string) error {
	return w.do(ctx, "TerminateInstances", func() error {
		var buf [4]*instance // (stays on the stack)
		insts, err := w.terminable(buf[:0], ids, nil)
		if err != nil {
			return err
		}
		for _, inst := range insts {
			w.terminate(inst)
		}
		return nil
	})
}

// DescribeHostStates implements ec2ops.API: DescribeHosts, appending the
// page's hosts to dst.
func (w *World) DescribeHostStates(ctx context.Context, in *ec2.DescribeHostsInput, dst []ec2ops.Host) ([]ec2ops.Host, *string, error) {
	var next *string
	err := w.do(ctx, "DescribeHosts", func() error {
		if in == nil {
			in = new(ec2.DescribeHostsInput)
		}
		var buf [8]*host // (stays on the stack)
		items, nt, err := w.describeHosts(in, buf[:0])
		if err != nil {
			return err
		}
		for _, h := range items {
			w.appendOpsHost(&dst, h)
		}
		next = nt
		return nil
	})
	return dst, next, err
}

// appendOpsHost appends what ec2ops.AppendSDKHost keeps of fillSDK's answer
// for h to *dst (reusing the slices of a spare element, see ec2ops.Grow).
func (w *World) appendOpsHost(dst *[]ec2ops.Host, h *host) {
	v := ec2ops.Grow(dst)
	v.ID, v.Zone, v.State, v.AllocatedAt = h.id, h.zone, h.state(w.now), h.allocatedAt
	if h.itype != nil {
		v.InstanceType = h.itype.name
	}
	if h.released { // (no capacity nor instances in the SDK answer)
		return
	}
	if h.itype != nil {
		v.Capacity = appendCapacity(v.Capacity, h, h.itype)
	} else {
		for _, t := range w.familyTypes(h.family) {
			v.Capacity = appendCapacity(v.Capacity, h, t)
		}
	}
	for _, inst := range h.instances {
		v.Instances = append(v.Instances, inst.id)
	}
}

// appendCapacity appends h's capacity for t, as fillSDK lists it (types
// the host cannot hold at all are left out).
func appendCapacity(dst []ec2ops.Capacity, h *host, t *instanceType) []ec2ops.Capacity {
	total := t.slotsOn(h.hostVCPUs)
	if total <= 0 {
		return dst
	}
	return append(dst, ec2ops.Capacity{InstanceType: t.name, Total: total, Available: h.freeSlots(t)})
}
