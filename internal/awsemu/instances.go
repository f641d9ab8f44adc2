package awsemu

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type instance struct {
	objBase
	reservation  string
	itype        *instanceType
	img          *image // launched from (read for its id, arch, platform and root device, which never change)
	zone         string
	subnet       *subnet
	ip           uint32
	launchIndex  int32 // (beside ip: no padding)
	ipStr        string
	mac          string
	eniNum       uint64 // number of the network interface id (see netNames)
	host         *host  // set while the instance occupies the host
	hostID       string
	tenancy      types.Tenancy
	keyName      string
	userData     string
	groups       []*securityGroup
	tags         tagSet
	volumes      []*volume
	clientToken  string
	launchedAt   time.Time
	runningAt    time.Time
	stopAt       time.Time
	stoppedAt    time.Time
	termAt       time.Time
	terminatedAt time.Time
	led          int // index in ledger.instances
	liveCtrs     *instCounters
	ebsOpt       bool
	noTerminate  bool
	noStop       bool
	shutdown     types.ShutdownBehavior

	// Inline storage for the usual launch (one group, one volume, a client
	// token), so that an instance, its boot volume and its token cost one
	// allocation. (Their tags are shared, see parsedTags.)
	oneGroup   [1]*securityGroup
	oneVolume  [1]*volume
	token      runToken
	bootVolume volume
}

type runToken struct {
	hash        uint64
	reservation string
	ids         []string
	one         [1]string // backs ids for a one-instance launch (no second allocation)
}

func (t *runToken) remove(id string) bool {
	t.ids = slices.DeleteFunc(t.ids, func(s string) bool { return s == id })
	return len(t.ids) == 0
}

// stateCode is the numeric code AWS gives each instance state.
func stateCode(s types.InstanceStateName) int32 {
	switch s {
	case types.InstanceStateNameRunning:
		return 16
	case types.InstanceStateNameShuttingDown:
		return 32
	case types.InstanceStateNameTerminated:
		return 48
	case types.InstanceStateNameStopping:
		return 64
	case types.InstanceStateNameStopped:
		return 80
	}
	return 0 // pending
}

func (in *instance) state(now time.Time) types.InstanceStateName {
	switch {
	case !in.termAt.IsZero():
		if now.Before(in.terminatedAt) {
			return types.InstanceStateNameShuttingDown
		}
		return types.InstanceStateNameTerminated
	case !in.stopAt.IsZero():
		if now.Before(in.stoppedAt) {
			return types.InstanceStateNameStopping
		}
		return types.InstanceStateNameStopped
	case now.Before(in.runningAt):
		return types.InstanceStateNamePending
	}
	return types.InstanceStateNameRunning
}

// stateChange builds an InstanceStateChange with one allocation for its
// pointers.
func stateChange(id string, prev, cur types.InstanceStateName) types.InstanceStateChange {
	var out types.InstanceStateChange
	new(stateChangeParts).fill(&out, id, prev, cur)
	return out
}

// stateChangeParts holds what one InstanceStateChange points to.
type stateChangeParts struct {
	id         string
	codes      [2]int32
	prev, curr types.InstanceState
}

// fill writes the state change to *dst with its pointers into p (both
// zero, and belonging to this one output).
func (p *stateChangeParts) fill(dst *types.InstanceStateChange, id string, prev, cur types.InstanceStateName) {
	// (field stores: p and dst are fresh zeroed memory, see fillInstanceSDK)
	p.id, p.codes = id, [2]int32{stateCode(prev), stateCode(cur)}
	p.prev.Code, p.prev.Name = &p.codes[0], prev
	p.curr.Code, p.curr.Name = &p.codes[1], cur
	dst.InstanceId, dst.PreviousState, dst.CurrentState = &p.id, &p.prev, &p.curr
}

// live instances are neither stopped nor terminated (nor on their way).
func (in *instance) live() bool { return in.termAt.IsZero() && in.stopAt.IsZero() }

func (in *instance) tagList() tagSet { return in.tags }

func (in *instance) filterValues(name string, w *World) []string {
	switch name {
	case "instance-id":
		return append(w.fbuf[:0], in.id)
	case "instance-state-name":
		return append(w.fbuf[:0], string(in.state(w.now)))
	case "instance-state-code":
		return append(w.fbuf[:0], itoa(int64(stateCode(in.state(w.now)))))
	case "instance-type":
		return append(w.fbuf[:0], in.itype.name)
	case "availability-zone", "placement.availability-zone":
		return append(w.fbuf[:0], in.zone)
	case "image-id":
		return append(w.fbuf[:0], in.img.id)
	case "host-id", "placement.host-id":
		if in.hostID != "" {
			return append(w.fbuf[:0], in.hostID)
		}
	case "tenancy", "placement.tenancy":
		return append(w.fbuf[:0], string(in.tenancy))
	case "subnet-id", "network-interface.subnet-id":
		if in.subnet != nil {
			return append(w.fbuf[:0], in.subnet.id)
		}
	case "vpc-id", "network-interface.vpc-id":
		if in.subnet != nil {
			return append(w.fbuf[:0], in.subnet.vpc.id)
		}
	case "key-name":
		return append(w.fbuf[:0], in.keyName)
	case "private-ip-address", "network-interface.addresses.private-ip-address":
		if in.ip != 0 {
			return append(w.fbuf[:0], in.ipStr)
		}
	case "architecture":
		return append(w.fbuf[:0], in.img.arch)
	case "client-token":
		return append(w.fbuf[:0], in.clientToken)
	case "reservation-id":
		return append(w.fbuf[:0], in.reservation)
	case "owner-id":
		return append(w.fbuf[:0], w.spec.AccountID)
	case "instance.group-id", "group-id":
		out := w.fbuf[:0]
		for _, g := range in.groups {
			out = append(out, g.id)
		}
		return out
	case "instance.group-name", "group-name":
		out := w.fbuf[:0]
		for _, g := range in.groups {
			out = append(out, g.name)
		}
		return out
	case "launch-time":
		return append(w.fbuf[:0], isoTime(in.launchedAt))
	case "network-interface.mac-address":
		return append(w.fbuf[:0], in.mac)
	case "root-device-type":
		return append(w.fbuf[:0], "ebs")
	case "block-device-mapping.volume-id":
		out := w.fbuf[:0]
		for _, v := range in.volumes {
			out = append(out, v.id)
		}
		return out
	case "platform":
		if in.img.platform != "" {
			return append(w.fbuf[:0], in.img.platform)
		}
	}
	return nil
}

var instanceFilters = set("instance-id", "instance-state-name", "instance-state-code", "instance-type", "availability-zone",
	"placement.availability-zone", "image-id", "host-id", "placement.host-id", "tenancy", "placement.tenancy", "subnet-id",
	"network-interface.subnet-id", "vpc-id", "network-interface.vpc-id", "key-name", "private-ip-address",
	"network-interface.addresses.private-ip-address", "architecture", "client-token", "reservation-id", "owner-id",
	"instance.group-id", "group-id", "instance.group-name", "group-name", "launch-time", "network-interface.mac-address",
	"root-device-type", "block-device-mapping.volume-id", "platform")

func (w *World) instanceSDK(in *instance) types.Instance {
	var out types.Instance
	w.fillInstanceSDK(&out, &instanceParts{}, in) // one allocation for the nested structs and scalars
	return out
}

// fillInstanceSDK writes the SDK form of in to *dst; everything it points to
// lives in parts (which must be zero and must belong to this output only).
// Writing in place lets callers embed dst and parts in one allocation and
// avoids copying the large struct (with write barriers) into a slice.
func (w *World) fillInstanceSDK(dst *types.Instance, parts *instanceParts, in *instance) {
	// dst and parts are fresh zeroed memory: fields are stored one by one
	// (a composite literal assigned through a pointer is built aside and
	// copied, with bulk write barriers while the GC runs).
	a := outAlloc{strs: parts.strs[:0], i32s: parts.i32s[:0], bools: parts.bools[:0], times: parts.times[:0]}
	st := in.state(w.now)
	parts.state.Code, parts.state.Name = a.i32(stateCode(st)), st
	parts.mon.State = types.MonitoringStateDisabled
	pl := &parts.pl
	pl.AvailabilityZone, pl.Tenancy, pl.GroupName = a.str(in.zone), in.tenancy, a.str("")
	parts.cpu.CoreCount, parts.cpu.ThreadsPerCore = a.i32(max(in.itype.vcpus/2, 1)), a.i32(min(in.itype.vcpus, 2))
	out := dst
	out.InstanceId = a.str(in.id)
	out.InstanceType = types.InstanceType(in.itype.name)
	out.ImageId = a.str(in.img.id)
	out.Architecture = types.ArchitectureValues(in.img.arch)
	out.State = &parts.state
	out.LaunchTime = a.tm(in.launchedAt)
	out.AmiLaunchIndex = a.i32(in.launchIndex)
	out.Hypervisor = types.HypervisorTypeXen
	out.VirtualizationType = types.VirtualizationTypeHvm
	out.RootDeviceType = types.DeviceTypeEbs
	out.RootDeviceName = a.str(in.img.rootDevice)
	out.EbsOptimized = a.b(in.ebsOpt)
	out.EnaSupport = a.b(true)
	out.Monitoring = &parts.mon
	out.Placement = pl
	out.PlatformDetails = a.str("Linux/UNIX")
	out.UsageOperation = a.str("RunInstances")
	out.SourceDestCheck = a.b(true)
	out.Tags = in.tags.sdkInto(parts.tags[:0], &a)
	out.CpuOptions = &parts.cpu
	if in.img.platform == "windows" {
		out.Platform = types.PlatformValuesWindows
		out.PlatformDetails = a.str("Windows")
	}
	if in.hostID != "" {
		pl.HostId = a.str(in.hostID)
		pl.Affinity = a.str("default")
	}
	if in.keyName != "" {
		out.KeyName = a.str(in.keyName)
	}
	if in.clientToken != "" {
		out.ClientToken = a.str(in.clientToken)
	}
	switch st {
	case types.InstanceStateNameStopped, types.InstanceStateNameStopping:
		out.StateTransitionReason = a.str(fmt.Sprintf("User initiated (%s)", in.stopAt.UTC().Format("2006-01-02 15:04:05 GMT")))
		parts.reason = types.StateReason{Code: a.str("Client.UserInitiatedShutdown"), Message: a.str("Client.UserInitiatedShutdown: User initiated shutdown")}
		out.StateReason = &parts.reason
	case types.InstanceStateNameTerminated, types.InstanceStateNameShuttingDown:
		out.StateTransitionReason = a.str(fmt.Sprintf("User initiated (%s)", in.termAt.UTC().Format("2006-01-02 15:04:05 GMT")))
		parts.reason = types.StateReason{Code: a.str("Client.UserInitiatedShutdown"), Message: a.str("Client.UserInitiatedShutdown: User initiated shutdown")}
		out.StateReason = &parts.reason
	default:
		out.StateTransitionReason = a.str("")
	}
	var allGroups []types.GroupIdentifier
	if len(in.groups) == 1 {
		allGroups = parts.groups[:]
	} else {
		allGroups = make([]types.GroupIdentifier, 2*len(in.groups))
	}
	groups, niGroups := allGroups[:len(in.groups):len(in.groups)], allGroups[len(in.groups):]
	for i, g := range in.groups {
		groups[i].GroupId, groups[i].GroupName = a.str(g.id), a.str(g.name)
		niGroups[i].GroupId, niGroups[i].GroupName = groups[i].GroupId, groups[i].GroupName
	}
	if st != types.InstanceStateNameTerminated {
		out.SecurityGroups = groups
		if in.subnet != nil {
			out.SubnetId = a.str(in.subnet.id)
			out.VpcId = a.str(in.subnet.vpc.id)
			ip := in.ipStr
			eni, attachID, dns := in.netNames(w.spec.Region)
			out.PrivateIpAddress = a.str(ip)
			out.PrivateDnsName = a.str(dns)
			att := &parts.att
			att.AttachmentId = a.str(attachID)
			att.AttachTime = a.tm(in.launchedAt)
			att.DeleteOnTermination = a.b(true)
			att.DeviceIndex = a.i32(0)
			att.Status = types.AttachmentStatusAttached
			pip := &parts.pip[0]
			pip.Primary, pip.PrivateIpAddress, pip.PrivateDnsName = a.b(true), a.str(ip), a.str(dns)
			ni := &parts.ni[0]
			ni.NetworkInterfaceId = a.str(eni)
			ni.MacAddress = a.str(in.mac)
			ni.PrivateIpAddress = a.str(ip)
			ni.PrivateDnsName = a.str(dns)
			ni.SubnetId = a.str(in.subnet.id)
			ni.VpcId = a.str(in.subnet.vpc.id)
			ni.OwnerId = a.str(w.spec.AccountID)
			ni.Status = types.NetworkInterfaceStatusInUse
			ni.SourceDestCheck = a.b(true)
			ni.InterfaceType = a.str("interface")
			ni.Groups = niGroups
			ni.Attachment = att
			ni.PrivateIpAddresses = parts.pip[:]
			out.NetworkInterfaces = parts.ni[:]
		}
		if len(in.volumes) == 1 {
			v := in.volumes[0]
			ebs := &parts.ebs[0]
			ebs.VolumeId, ebs.AttachTime = a.str(v.id), a.tm(v.attachTime)
			ebs.DeleteOnTermination, ebs.Status = a.b(v.deleteOnTermination), types.AttachmentStatusAttached
			parts.bdm[0].DeviceName, parts.bdm[0].Ebs = a.str(v.device), ebs
			out.BlockDeviceMappings = parts.bdm[:]
		} else {
			out.BlockDeviceMappings = in.bdmSDK(&a)
		}
	} else {
		out.PrivateDnsName = a.str("")
		out.PublicDnsName = a.str("")
		out.BlockDeviceMappings = []types.InstanceBlockDeviceMapping{}
	}
}

func (in *instance) bdmSDK(a *outAlloc) []types.InstanceBlockDeviceMapping {
	out := make([]types.InstanceBlockDeviceMapping, 0, len(in.volumes))
	for _, v := range in.volumes {
		out = append(out, types.InstanceBlockDeviceMapping{
			DeviceName: a.str(v.device),
			Ebs: &types.EbsInstanceBlockDevice{
				VolumeId:            a.str(v.id),
				AttachTime:          a.tm(v.attachTime),
				DeleteOnTermination: a.b(v.deleteOnTermination),
				Status:              types.AttachmentStatusAttached,
			},
		})
	}
	return out
}

// bootTime is the boot time of t (cached in the catalog by New).
func (w *World) bootTime(t *instanceType) time.Duration { return t.boot }

// specBootTime reads the boot time of t from the spec.
func (w *World) specBootTime(t *instanceType) time.Duration {
	tm := &w.spec.Timings
	if d, ok := tm.BootTimes[t.name]; ok {
		return d.D()
	}
	if d, ok := tm.BootTimes[t.family]; ok {
		return d.D()
	}
	if t.mac {
		return tm.MacBootTime.D()
	}
	return tm.BootTime.D()
}

// DescribeInstances lists reservations (one per instance, in launch order;
// instances of one RunInstances call are grouped).
func (w *World) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return serve(ctx, w, "DescribeInstances", in, func(in *ec2.DescribeInstancesInput) (*ec2.DescribeInstancesOutput, error) {
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		fs, err := compileFilters(in.Filters, instanceFilters)
		if err != nil {
			return nil, err
		}
		if len(in.InstanceIds) > 0 && in.MaxResults != nil {
			return nil, Errorf("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
		}
		p, err := w.newPager("instance", in.MaxResults, in.NextToken, 5, 1000)
		if err != nil {
			return nil, err
		}
		src := w.instances.all(p.after)
		if len(in.InstanceIds) > 0 {
			if err := checkIDs("InvalidInstanceID.Malformed", "i", in.InstanceIds); err != nil {
				return nil, err
			}
			objs, missing := pick(&w.instances, in.InstanceIds, nil)
			if len(missing) > 0 {
				return nil, notFound("InvalidInstanceID.NotFound", "instance ID", missing)
			}
			src = sliceSeq(objs)
		}
		items, next := collect(src, p, func(i *instance) bool { return w.matches(i, fs) })
		out := &ec2.DescribeInstancesOutput{NextToken: next, Reservations: []types.Reservation{}}
		for _, i := range items {
			n := len(out.Reservations)
			if n > 0 && aws.ToString(out.Reservations[n-1].ReservationId) == i.reservation {
				out.Reservations[n-1].Instances = append(out.Reservations[n-1].Instances, w.instanceSDK(i))
				continue
			}
			out.Reservations = append(out.Reservations, types.Reservation{
				ReservationId: aws.String(i.reservation),
				OwnerId:       aws.String(w.spec.AccountID),
				Groups:        []types.GroupIdentifier{},
				Instances:     []types.Instance{w.instanceSDK(i)},
			})
		}
		return out, nil
	})
}

// DescribeInstanceAttribute answers one attribute of an instance.
func (w *World) DescribeInstanceAttribute(ctx context.Context, in *ec2.DescribeInstanceAttributeInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error) {
	return serve(ctx, w, "DescribeInstanceAttribute", in, func(in *ec2.DescribeInstanceAttributeInput) (*ec2.DescribeInstanceAttributeOutput, error) {
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		id := aws.ToString(in.InstanceId)
		if id == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter InstanceId")
		}
		if in.Attribute == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter Attribute")
		}
		if err := checkIDs("InvalidInstanceID.Malformed", "i", []string{id}); err != nil {
			return nil, err
		}
		inst, ok := w.instances.get(id)
		if !ok {
			return nil, notFound("InvalidInstanceID.NotFound", "instance ID", []string{id})
		}
		out := &ec2.DescribeInstanceAttributeOutput{InstanceId: aws.String(id)}
		switch in.Attribute {
		case types.InstanceAttributeNameUserData:
			out.UserData = &types.AttributeValue{}
			if inst.userData != "" {
				out.UserData.Value = aws.String(inst.userData)
			}
		case types.InstanceAttributeNameBlockDeviceMapping:
			out.BlockDeviceMappings = inst.bdmSDK(&outAlloc{})
			if inst.state(w.now) == types.InstanceStateNameTerminated {
				out.BlockDeviceMappings = []types.InstanceBlockDeviceMapping{}
			}
		case types.InstanceAttributeNameInstanceType:
			out.InstanceType = &types.AttributeValue{Value: aws.String(inst.itype.name)}
		case types.InstanceAttributeNameRootDeviceName:
			out.RootDeviceName = &types.AttributeValue{Value: aws.String(inst.img.rootDevice)}
		case types.InstanceAttributeNameGroupSet:
			for _, g := range inst.groups {
				out.Groups = append(out.Groups, types.GroupIdentifier{GroupId: aws.String(g.id), GroupName: aws.String(g.name)})
			}
		case types.InstanceAttributeNameDisableApiTermination:
			out.DisableApiTermination = &types.AttributeBooleanValue{Value: aws.Bool(inst.noTerminate)}
		case types.InstanceAttributeNameDisableApiStop:
			out.DisableApiStop = &types.AttributeBooleanValue{Value: aws.Bool(inst.noStop)}
		case types.InstanceAttributeNameInstanceInitiatedShutdownBehavior:
			out.InstanceInitiatedShutdownBehavior = &types.AttributeValue{Value: aws.String(string(inst.shutdown))}
		case types.InstanceAttributeNameEbsOptimized:
			out.EbsOptimized = &types.AttributeBooleanValue{Value: aws.Bool(inst.ebsOpt)}
		case types.InstanceAttributeNameEnaSupport:
			out.EnaSupport = &types.AttributeBooleanValue{Value: aws.Bool(true)}
		case types.InstanceAttributeNameSourceDestCheck:
			out.SourceDestCheck = &types.AttributeBooleanValue{Value: aws.Bool(true)}
		case types.InstanceAttributeNameKernel:
			out.KernelId = &types.AttributeValue{}
		case types.InstanceAttributeNameRamdisk:
			out.RamdiskId = &types.AttributeValue{}
		case types.InstanceAttributeNameProductCodes:
			out.ProductCodes = []types.ProductCode{}
		case types.InstanceAttributeNameSriovNetSupport:
			out.SriovNetSupport = &types.AttributeValue{}
		default:
			return nil, Errorf("InvalidParameterValue", "Value (%s) for parameter attribute is invalid. Unknown attribute.", in.Attribute)
		}
		return out, nil
	})
}

// DescribeInstanceTypes lists the instance type catalog.
func (w *World) DescribeInstanceTypes(ctx context.Context, in *ec2.DescribeInstanceTypesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	return serve(ctx, w, "DescribeInstanceTypes", in, func(in *ec2.DescribeInstanceTypesInput) (*ec2.DescribeInstanceTypesOutput, error) {
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		fs, err := compileFilters(in.Filters, typeFilters)
		if err != nil {
			return nil, err
		}
		all := w.sortedCatalog()
		if len(in.InstanceTypes) > 0 {
			var missing []string
			var sel []*instanceType
			seen := map[string]bool{}
			for _, t := range in.InstanceTypes {
				it := w.catalog[string(t)]
				if it == nil {
					missing = append(missing, string(t))
					continue
				}
				if !seen[it.name] {
					seen[it.name] = true
					sel = append(sel, it)
				}
			}
			if len(missing) > 0 {
				return nil, Errorf("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", strings.Join(missing, ", "))
			}
			slices.SortFunc(sel, func(a, b *instanceType) int { return strings.Compare(a.name, b.name) })
			all = sel
		}
		// Paging over the sorted catalog: the token carries the index.
		p, err := w.newPager("itype", in.MaxResults, in.NextToken, 5, 100)
		if err != nil {
			return nil, err
		}
		out := &ec2.DescribeInstanceTypesOutput{InstanceTypes: []types.InstanceTypeInfo{}}
		for i := int(p.after); i < len(all); i++ {
			t := all[i]
			if !w.matches(typeMatcher{t}, fs) {
				continue
			}
			if p.limit > 0 && len(out.InstanceTypes) == p.limit {
				out.NextToken = encodeToken(p.kind, uint64(i))
				break
			}
			out.InstanceTypes = append(out.InstanceTypes, t.toSDK())
		}
		return out, nil
	})
}

type typeMatcher struct{ t *instanceType }

func (typeMatcher) tagList() tagSet { return nil }

func (m typeMatcher) filterValues(name string, w *World) []string {
	t := m.t
	switch name {
	case "instance-type":
		return append(w.fbuf[:0], t.name)
	case "processor-info.supported-architecture":
		return append(w.fbuf[:0], t.arch)
	case "vcpu-info.default-vcpus":
		return append(w.fbuf[:0], itoa(int64(t.vcpus)))
	case "memory-info.size-in-mib":
		return append(w.fbuf[:0], itoa(t.memMiB))
	case "dedicated-hosts-supported":
		return append(w.fbuf[:0], boolStr(t.hostVCPUs > 0))
	case "bare-metal":
		return append(w.fbuf[:0], boolStr(t.metal))
	case "current-generation":
		return append(w.fbuf[:0], boolStr(t.name != "m1.small"))
	case "burstable-performance-supported":
		return append(w.fbuf[:0], boolStr(strings.HasPrefix(t.family, "t")))
	}
	return nil
}

var typeFilters = set("instance-type", "processor-info.supported-architecture", "vcpu-info.default-vcpus", "memory-info.size-in-mib",
	"dedicated-hosts-supported", "bare-metal", "current-generation", "burstable-performance-supported")

// userData validates base64 user data (at most 16 KB decoded).
func (w *World) checkUserData(s string) error {
	if s == "" {
		return nil
	}
	// scratch: the encoded text, then room for the decoded bytes
	need := len(s) + base64.StdEncoding.DecodedLen(len(s))
	if cap(w.ubuf) < need {
		w.ubuf = make([]byte, need)
	}
	buf := w.ubuf[:need]
	copy(buf, s)
	n, err := base64.StdEncoding.Decode(buf[len(s):], buf[:len(s)])
	if cap(w.ubuf) > 64*1024 {
		w.ubuf = nil // do not keep a large scratch buffer
	}
	if err != nil {
		return Errorf("InvalidParameterValue", "Invalid BASE64 encoding of user data.")
	}
	if n > 16*1024 {
		return Errorf("InvalidParameterValue", "User data is limited to 16384 bytes")
	}
	return nil
}

// instanceParts holds the nested structs of one types.Instance output so they
// cost one allocation.
type instanceParts struct {
	strs   [38]string // a launch on a host with a client token and four tags (every byte is zeroed per output)
	i32s   [6]int32
	bools  [8]bool
	times  [3]time.Time
	state  types.InstanceState
	mon    types.Monitoring
	pl     types.Placement
	cpu    types.CpuOptions
	reason types.StateReason
	att    types.InstanceNetworkInterfaceAttachment
	ni     [1]types.InstanceNetworkInterface
	pip    [1]types.InstancePrivateIpAddress
	groups [2]types.GroupIdentifier // SecurityGroups and interface Groups of a one-group instance
	bdm    [1]types.InstanceBlockDeviceMapping
	ebs    [1]types.EbsInstanceBlockDevice
	tags   [4]types.Tag
}
