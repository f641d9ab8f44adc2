package awsemu

import (
	"context"
	"hash/maphash"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// runPlan is a validated RunInstances request. The world keeps one as
// scratch (World.plan, used under the lock only): nothing keeps a plan after
// the call, launch copies what instances and volumes keep (instances and volumes copy the tags to their own storage).
type runPlan struct {
	img      *image
	it       *instanceType
	sn       *subnet
	zone     string
	hostID   string // explicit host
	host     *host  // the explicit host (looked up once)
	auto     bool   // tenancy host without host id
	tenancy  types.Tenancy
	groups   []*securityGroup
	keyName  string
	userData string
	volumes  []volumeSpec
	tags     [3]tagSet // instance, volume, network interface (runTagTypes); shared, read-only
	// the parsed tags of each of the request's TagSpecifications (parsed
	// before the plan: runHash reads them too)
	parsed []*parsedTags
}

// reset empties the plan and keeps its scratch slices. (Field by field: a
// whole-struct assignment costs a bulk write barrier while the GC runs.)
func (p *runPlan) reset() {
	p.img, p.it, p.sn, p.host = nil, nil, nil, nil
	p.zone, p.hostID, p.keyName, p.userData = "", "", "", ""
	p.auto, p.tenancy = false, ""
	clear(p.groups) // (do not keep old groups alive)
	p.groups = p.groups[:0]
	p.volumes = p.volumes[:0]
	for i := range p.tags {
		p.tags[i] = nil
	}
}

// RunInstances launches instances (on a Dedicated Host when asked).
func (w *World) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	return serve(ctx, w, "RunInstances", in, w.runInstancesSDK)
}

func (w *World) runInstancesSDK(in *ec2.RunInstancesInput) (*ec2.RunInstancesOutput, error) {
	var one [1]*instance // the usual single launch needs no slice allocation
	resID, insts, replay, err := w.runInstances(in, one[:0])
	if err != nil {
		return nil, err
	}
	out := w.reservationOutput(resID, insts)
	if replay && out.Instances == nil {
		// a repeated token whose instances are all gone (a token stays
		// known only while it names at least one instance)
		out.Instances = []types.Instance{}
	}
	return out, nil
}

// runHashSeed keys the request hashes of this process (they are compared
// only with hashes computed by the same process).
var runHashSeed = maphash.MakeSeed()

// fieldHash hashes a sequence of fields into acc: each string is hashed
// whole with the process's seed (so ("ab","c") and ("a","bc") differ) and
// mixed into acc by a step that is a bijection of acc and of the field's
// hash: two sequences that differ in one field never collide, and other
// collisions depend on the secret seed (about 2^-64 per pair, as a hash of
// the whole request). One call per field: copying the fields together to
// hash them at once cost more than this.
type fieldHash struct{ acc uint64 }

func (h *fieldHash) mix(x uint64) { h.acc = (h.acc ^ x) * 0x9e3779b97f4a7c15 }

func (h *fieldHash) sum() uint64 { return h.acc ^ h.acc>>32 }

func (h *fieldHash) str(p string) { h.mix(maphash.String(runHashSeed, p)) }

func (h *fieldHash) ptr(p *string) { h.str(aws.ToString(p)) }

func (h *fieldHash) num(v int64) { h.mix(uint64(v)) }

func (h *fieldHash) list(ss []string) {
	h.num(int64(len(ss)))
	for _, s := range ss {
		h.str(s)
	}
}

// runHash identifies the parameters of a RunInstances request for client
// token idempotency. tags[i] is the parsed in.TagSpecifications[i]: its
// hash stands for the tags.
func runHash(in *ec2.RunInstancesInput, tags []*parsedTags) uint64 {
	var h fieldHash
	h.ptr(in.ImageId)
	h.str(string(in.InstanceType))
	h.num(int64(aws.ToInt32(in.MinCount)))
	h.num(int64(aws.ToInt32(in.MaxCount)))
	h.ptr(in.SubnetId)
	h.ptr(in.KeyName)
	h.ptr(in.UserData)
	h.list(in.SecurityGroupIds)
	h.list(in.SecurityGroups)
	if p := in.Placement; p != nil {
		h.str("placement")
		h.ptr(p.HostId)
		h.str(string(p.Tenancy))
		h.ptr(p.AvailabilityZone)
	}
	for i, ts := range in.TagSpecifications {
		h.str(string(ts.ResourceType))
		h.num(int64(tags[i].hash))
	}
	for _, b := range in.BlockDeviceMappings {
		h.ptr(b.DeviceName)
		if e := b.Ebs; e != nil {
			h.num(int64(aws.ToInt32(e.VolumeSize)))
			h.str(string(e.VolumeType))
			h.ptr(e.SnapshotId)
			h.str(boolStr(aws.ToBool(e.Encrypted)))
			h.ptr(e.KmsKeyId)
		}
	}
	for _, n := range in.NetworkInterfaces {
		h.ptr(n.SubnetId)
		h.list(n.Groups)
	}
	return h.sum()
}

// runInstances is RunInstances up to its answer: it validates and
// launches, or for a repeated client token (replay) finds the instances of
// the first call that still exist, and appends them to dst (scratch of the
// caller) with the reservation id. RunInstances builds the SDK output of
// them, LaunchInstances only the few fields its callers read.
func (w *World) runInstances(in *ec2.RunInstancesInput, dst []*instance) (resID string, insts []*instance, replay bool, err error) {
	insts = dst[:0]
	if err := dryRun(in.DryRun); err != nil {
		return "", nil, false, err
	}
	token := aws.ToString(in.ClientToken)
	plan := &w.plan
	clear(plan.parsed) // (do not keep old entries alive)
	plan.parsed = w.tagCache.parseSpecs(plan.parsed[:0], in.TagSpecifications)
	var hash uint64
	if token != "" {
		if len(token) > 64 {
			return "", nil, false, Errorf("InvalidParameterValue", "Value (%s) for parameter clientToken is invalid. Length exceeds 64 characters.", token)
		}
		hash = runHash(in, plan.parsed)
		if rt := w.runTokens[token]; rt != nil {
			if rt.hash != hash {
				return "", nil, false, Errorf("IdempotentParameterMismatch", "The client token '%s' has already been used with different parameters.", token)
			}
			for _, id := range rt.ids {
				if inst, ok := w.instances.get(id); ok {
					insts = append(insts, inst)
				}
			}
			return rt.reservation, insts, true, nil
		}
	}
	plan.reset()
	if err := w.planRun(in, plan); err != nil {
		return "", nil, false, err
	}
	minC, maxC := aws.ToInt32(in.MinCount), aws.ToInt32(in.MaxCount)
	n, err := w.launchable(plan, minC, maxC)
	if err != nil {
		return "", nil, false, err
	}
	insts = slices.Grow(insts, int(n))
	// resID is named by the first launch (it shares that instance's name string)
	for i := range n {
		inst := w.launch(plan, resID, token, int32(i), in)
		resID = inst.reservation
		insts = append(insts, inst)
	}
	if token != "" {
		var rt *runToken
		if n == 1 {
			// the token lives in the instance: it is forgotten (purge) when
			// that instance is
			rt = &insts[0].token
			rt.hash, rt.reservation = hash, resID
			rt.one[0] = insts[0].id
			rt.ids = rt.one[:1:1]
		} else {
			rt = &runToken{hash: hash, reservation: resID}
			rt.ids = make([]string, n)
			for i, inst := range insts {
				rt.ids[i] = inst.id
			}
		}
		w.runTokens[token] = rt
	}
	return resID, insts, false, nil
}

// runOutput1 is a one-instance RunInstances output with everything it
// points to, so that the usual answer costs one allocation.
type runOutput1 struct {
	out   ec2.RunInstancesOutput
	strs  [2]string
	inst  [1]types.Instance
	parts instanceParts
}

func (w *World) reservationOutput(resID string, insts []*instance) *ec2.RunInstancesOutput {
	if len(insts) == 1 {
		r := w.runOuts.next()
		// (field stores: r is fresh zeroed memory, see fillInstanceSDK)
		r.strs[0], r.strs[1] = resID, w.spec.AccountID
		r.out.ReservationId, r.out.OwnerId, r.out.Groups, r.out.Instances = &r.strs[0], &r.strs[1], []types.GroupIdentifier{}, r.inst[:]
		w.fillInstanceSDK(&r.inst[0], &r.parts, insts[0])
		return &r.out
	}
	strs := &[2]string{resID, w.spec.AccountID}
	out := &ec2.RunInstancesOutput{ReservationId: &strs[0], OwnerId: &strs[1], Groups: []types.GroupIdentifier{}}
	if len(insts) > 0 {
		out.Instances = make([]types.Instance, len(insts))
		parts := make([]instanceParts, len(insts)) // one allocation for all the nested parts
		for i, inst := range insts {
			w.fillInstanceSDK(&out.Instances[i], &parts[i], inst)
		}
	}
	return out
}

// planRun validates in into p (a reset scratch plan).
func (w *World) planRun(in *ec2.RunInstancesInput, p *runPlan) error {
	if in.MinCount == nil {
		return Errorf("MissingParameter", "The request must contain the parameter MinCount")
	}
	if in.MaxCount == nil {
		return Errorf("MissingParameter", "The request must contain the parameter MaxCount")
	}
	if minC, maxC := *in.MinCount, *in.MaxCount; minC < 1 || maxC < minC {
		return Errorf("InvalidParameterValue", "Value (%d) for parameter minCount is invalid. Expected a value between 1 and maxCount (%d).", minC, maxC)
	}
	imgID := aws.ToString(in.ImageId)
	if imgID == "" {
		return Errorf("MissingParameter", "The request must contain the parameter ImageId")
	}
	if !wellFormed("ami", imgID) {
		return Errorf("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", imgID)
	}
	img, ok := getVia(&w.images, &w.lastImage, imgID)
	if !ok || !w.imageVisible(img) {
		return Errorf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", imgID)
	}
	if img.state(w.now) != types.ImageStateAvailable {
		return Errorf("InvalidAMIID.Unavailable", "Image %s is not available (state %s).", imgID, img.state(w.now))
	}
	p.img = img
	tname := string(in.InstanceType)
	if tname == "" {
		tname = "m1.small"
	}
	if it := w.lastType; it != nil && it.name == tname { // (launches mostly repeat the type)
		p.it = it
	} else {
		p.it = w.catalog[tname]
		w.lastType = p.it
	}
	if p.it == nil {
		return Errorf("InvalidParameterValue", "Invalid value '%s' for InstanceType.", tname)
	}
	if p.it.arch != img.arch {
		return Errorf("InvalidParameterValue", "The architecture '%s' of the specified instance type does not match the architecture '%s' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.", p.it.arch, img.arch)
	}
	if k := aws.ToString(in.KeyName); k != "" {
		if w.keyByName(k) == nil {
			return Errorf("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", k)
		}
		p.keyName = k
	}
	if err := w.checkUserData(aws.ToString(in.UserData)); err != nil {
		return err
	}
	p.userData = aws.ToString(in.UserData)

	// placement
	p.tenancy = types.TenancyDefault
	var reqZone string
	if pl := in.Placement; pl != nil {
		reqZone = aws.ToString(pl.AvailabilityZone)
		p.hostID = aws.ToString(pl.HostId)
		switch pl.Tenancy {
		case "", types.TenancyDefault:
			if p.hostID != "" {
				if pl.Tenancy == types.TenancyDefault {
					return Errorf("InvalidParameterCombination", "The parameter hostId requires the tenancy 'host'.")
				}
				p.tenancy = types.TenancyHost
			}
		case types.TenancyDedicated:
			if p.hostID != "" {
				return Errorf("InvalidParameterCombination", "The parameter hostId requires the tenancy 'host'.")
			}
			p.tenancy = types.TenancyDedicated
		case types.TenancyHost:
			p.tenancy = types.TenancyHost
			p.auto = p.hostID == ""
		default:
			return Errorf("InvalidParameterValue", "Value (%s) for parameter tenancy is invalid.", pl.Tenancy)
		}
	}
	if reqZone != "" && !slices.Contains(w.spec.Zones, reqZone) {
		return Errorf("InvalidParameterValue", "Invalid availability zone: [%s]", reqZone)
	}
	if p.it.mac && p.tenancy != types.TenancyHost {
		return Errorf("InvalidParameterCombination", "Instance type %s can only be launched on a Dedicated Host (tenancy host).", p.it.name)
	}
	var h *host
	if p.hostID != "" {
		if !wellFormed("h", p.hostID) {
			return Errorf("InvalidHostID.Malformed", "Invalid id: \"%s\" (expecting \"h-...\")", p.hostID)
		}
		var ok bool
		h, ok = w.hosts.get(p.hostID)
		p.host = h
		if !ok || h.released {
			return Errorf("InvalidHostID.NotFound", "The host ID '%s' does not exist", p.hostID)
		}
		if (h.itype != nil && h.itype != p.it) || (h.itype == nil && h.family != p.it.family) {
			want := h.family
			if h.itype != nil {
				want = h.itype.name
			}
			return Errorf("InvalidParameterValue", "Instance type %s is not supported by Dedicated Host %s (it supports %s).", p.it.name, h.id, want)
		}
		if reqZone != "" && reqZone != h.zone {
			return Errorf("InvalidParameterValue", "Dedicated Host %s is in %s, not in the requested Availability Zone %s.", h.id, h.zone, reqZone)
		}
		reqZone = h.zone
	}

	// network
	subnetID := aws.ToString(in.SubnetId)
	if p.auto && reqZone == "" && subnetID == "" && len(in.NetworkInterfaces) == 0 {
		// auto-placement without a zone: go where an auto-placement host can take it
		for _, c := range w.hosts.order {
			if live(c) && c.autoPlacement && !c.released &&
				c.state(w.now) == types.AllocationStateAvailable && !w.now.Before(c.usableAt) && c.freeSlots(p.it) > 0 {
				reqZone = c.zone
				break
			}
		}
	}
	groupIDs := in.SecurityGroupIds
	for _, ni := range in.NetworkInterfaces {
		if aws.ToInt32(ni.DeviceIndex) != 0 {
			continue
		}
		if subnetID != "" && aws.ToString(ni.SubnetId) != "" {
			return Errorf("InvalidParameterCombination", "Network interfaces and an instance-level subnet ID may not be specified on the same request")
		}
		if s := aws.ToString(ni.SubnetId); s != "" {
			subnetID = s
		}
		groupIDs = append(slices.Clone(groupIDs), ni.Groups...)
	}
	if subnetID != "" {
		if !wellFormed("subnet", subnetID) {
			return Errorf("InvalidSubnetID.Malformed", "Invalid id: \"%s\"", subnetID)
		}
		sn, ok := getVia(&w.subnets, &w.lastSubnet, subnetID)
		if !ok {
			return Errorf("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", subnetID)
		}
		if reqZone != "" && reqZone != sn.zone {
			if h != nil {
				return Errorf("InvalidParameterValue", "Subnet %s is in %s but Dedicated Host %s is in %s.", sn.id, sn.zone, h.id, h.zone)
			}
			return Errorf("InvalidParameterValue", "Value (%s) for parameter availabilityZone is invalid. Subnet '%s' is in the availability zone %s", reqZone, sn.id, sn.zone)
		}
		p.sn = sn
	} else {
		dv := w.defaultVPC()
		if dv == nil {
			return Errorf("VPCIdNotSpecified", "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")
		}
		for _, sn := range w.subnets.order {
			if sn.vpc != dv || !sn.defaultForAZ {
				continue
			}
			if reqZone != "" && sn.zone != reqZone {
				continue
			}
			if !live(sn) {
				continue
			}
			if p.sn == nil || (p.sn.free() == 0 && sn.free() > 0) {
				p.sn = sn
			}
		}
		if p.sn == nil {
			return Errorf("InvalidParameterValue", "No default subnet for availability zone: [%s].", reqZone)
		}
	}
	p.zone = p.sn.zone

	for _, gid := range groupIDs {
		g, ok := w.groups.get(gid)
		if !ok {
			return Errorf("InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", gid, p.sn.vpc.id)
		}
		if g.vpc != p.sn.vpc {
			return Errorf("InvalidParameter", "Security group %s and subnet %s belong to different networks.", gid, p.sn.id)
		}
		if !slices.Contains(p.groups, g) {
			p.groups = append(p.groups, g)
		}
	}
	if len(in.SecurityGroups) > 0 && !p.sn.vpc.isDefault {
		return Errorf("InvalidParameterCombination", "The parameter groupName cannot be used with the parameter subnet")
	}
	for _, name := range in.SecurityGroups {
		g := w.groupByName(p.sn.vpc, name)
		if g == nil {
			return Errorf("InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", name, p.sn.vpc.id)
		}
		if !slices.Contains(p.groups, g) {
			p.groups = append(p.groups, g)
		}
	}
	if len(p.groups) == 0 {
		if g := w.groupByName(p.sn.vpc, "default"); g != nil {
			p.groups = append(p.groups, g)
		}
	}

	vols, err := w.planVolumes(p.volumes[:0], img, in.BlockDeviceMappings)
	if err != nil {
		return err
	}
	p.volumes = vols
	return mergeParsedTags(in.TagSpecifications, p.parsed, runTagTypes[:], p.tags[:])
}

var runTagTypes = [3]types.ResourceType{types.ResourceTypeInstance, types.ResourceTypeVolume, types.ResourceTypeNetworkInterface}

// launchable decides how many instances (between min and max) can start
// now, or answers the capacity error AWS gives.
func (w *World) launchable(p *runPlan, minC, maxC int32) (int32, error) {
	n := maxC
	capErr := func(err error) (int32, error) { return 0, err }
	if f := int32(p.sn.free()); f < n {
		if f < minC {
			return capErr(Errorf("InsufficientFreeAddressesInSubnet", "There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", p.sn.id))
		}
		n = f
	}
	for _, l := range w.spec.Limits.InstanceCapacity {
		if l.Zone != p.zone || (l.InstanceType != "" && l.InstanceType != p.it.name && l.InstanceType != p.it.family) {
			continue
		}
		left := int32(l.Max - w.ledger.liveInstances(p.zone, l.InstanceType))
		if left < n {
			if left < minC {
				var others []string
				for _, z := range w.spec.Zones {
					if z != p.zone {
						others = append(others, z)
					}
				}
				return capErr(ServerErrorf("InsufficientInstanceCapacity", "We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). Our system will be working on provisioning additional capacity. You can currently get %s capacity by not specifying an Availability Zone in your request or choosing %s.", p.it.name, p.zone, p.it.name, strings.Join(others, ", ")))
			}
			n = left
		}
	}
	if p.it.quota != "" && p.tenancy != types.TenancyHost {
		if q := w.quotaByCode("ec2", p.it.quota); q != nil {
			left := (int32(q.value) - int32(w.vcpuUsage[p.it.quota])) / p.it.vcpus
			if left < n {
				if left < minC {
					return capErr(Errorf("VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit of %d allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.", int(q.value)))
				}
				n = left
			}
		}
	}
	if p.tenancy == types.TenancyHost {
		var slots int32
		if p.hostID != "" {
			h := p.host
			if h.state(w.now) == types.AllocationStateAvailable && !w.now.Before(h.usableAt) {
				slots = h.freeSlots(p.it)
			}
			if slots < minC {
				return capErr(Errorf("InsufficientCapacityOnHost", "Insufficient capacity on Dedicated Host %s (state %s) for instance type %s.", h.id, h.state(w.now), p.it.name))
			}
		} else {
			for _, h := range w.hosts.order {
				if w.autoHostOK(h, p) {
					slots += h.freeSlots(p.it)
				}
			}
			if slots < minC {
				return capErr(Errorf("InsufficientCapacityOnHost", "There is no Dedicated Host with auto-placement and available capacity for instance type %s in %s.", p.it.name, p.zone))
			}
		}
		n = min(n, slots)
	}
	return n, nil
}

func (w *World) autoHostOK(h *host, p *runPlan) bool {
	if !live(h) {
		return false
	}
	return h.autoPlacement && !h.released && h.zone == p.zone && h.state(w.now) == types.AllocationStateAvailable &&
		!w.now.Before(h.usableAt) && h.freeSlots(p.it) > 0
}

func (w *World) launch(p *runPlan, resID, token string, idx int32, in *ec2.RunInstancesInput) *instance {
	// Every name of the launch goes into one string (one allocation): the
	// reservation id when resID is "" (first instance), the instance id, its
	// MAC and IP and the ids of its volumes. They are drawn in the order the
	// world has always drawn them (same ids for the same seed).
	var scratch [256]byte
	nb := scratch[:0]
	resEnd := 0
	if resID == "" {
		nb = w.appendID(nb, "r")
		resEnd = len(nb)
	}
	nb, idNum := w.appendIDNum(nb, "i")
	idEnd, seq := len(nb), w.seq
	ip, _ := p.sn.allocIP()
	// the network interface's id is drawn here, its names made when asked
	// (see netNames); the MAC and the IP are in every launch's answer
	eniNum := w.nextIDNum()
	nb = appendMAC(nb, seq, w.idRng.Uint32())
	macEnd := len(nb)
	nb = appendIP(nb, ip)
	ipEnd := len(nb)
	var volEnds [4]int // (most launches have one volume)
	var volSeqs [4]uint64
	vEnds, vSeqs := volEnds[:0], volSeqs[:0]
	for range p.volumes {
		nb = w.appendID(nb, "vol")
		vEnds, vSeqs = append(vEnds, len(nb)), append(vSeqs, w.seq)
	}
	names := string(nb)
	if resID == "" {
		resID = names[:resEnd]
	}

	// Instances come from a slab too (see slab): an instance lives from its
	// launch to its purge, and launches and purges both follow the clock,
	// so a slab's instances mostly go together. Field stores: inst is fresh
	// zeroed memory (see fillInstanceSDK).
	inst := w.instSlab.next()
	inst.seq, inst.id, inst.reservation = seq, names[resEnd:idEnd], resID
	inst.itype, inst.img = p.it, p.img
	inst.zone, inst.subnet, inst.tenancy, inst.keyName, inst.userData = p.zone, p.sn, p.tenancy, p.keyName, p.userData
	inst.clientToken, inst.launchIndex, inst.launchedAt, inst.runningAt = token, idx, w.now, w.now.Add(w.bootTime(p.it))
	inst.ebsOpt, inst.noTerminate, inst.noStop = aws.ToBool(in.EbsOptimized), aws.ToBool(in.DisableApiTermination), aws.ToBool(in.DisableApiStop)
	inst.shutdown = in.InstanceInitiatedShutdownBehavior
	inst.tags = p.tags[0] // (shared with the plan's parsed tags, see parsedTags)
	// the plan's groups are scratch: copy them (inline for one group)
	switch len(p.groups) {
	case 0:
	case 1:
		inst.oneGroup[0] = p.groups[0]
		inst.groups = inst.oneGroup[:1:1]
	default:
		inst.groups = slices.Clone(p.groups)
	}
	if inst.shutdown == "" {
		inst.shutdown = types.ShutdownBehaviorStop
	}
	inst.ip = ip
	inst.eniNum, inst.mac, inst.ipStr = eniNum, names[idEnd:macEnd], names[macEnd:ipEnd]
	if p.tenancy == types.TenancyHost {
		var h *host
		if p.hostID != "" {
			h = p.host
		} else {
			for _, c := range w.hosts.order {
				if w.autoHostOK(c, p) {
					h = c
					break
				}
			}
		}
		if h != nil {
			inst.host = h
			inst.hostID = h.id
			h.instances = append(h.instances, inst)
			h.usedVCPUs += p.it.vcpus
		}
	}
	if len(p.volumes) == 1 {
		inst.volumes = inst.oneVolume[:0:1]
	}
	from := ipEnd
	for j, vs := range p.volumes {
		v := &inst.bootVolume // the first volume lives in the instance's allocation
		if j > 0 {
			v = &volume{}
		}
		// (field stores: v is fresh zeroed memory, see fillInstanceSDK)
		v.seq, v.id, v.volumeSpec, v.zone, v.created = vSeqs[j], names[from:vEnds[j]], vs, p.zone, w.now
		v.attach, v.attachTime = inst, w.now
		v.tags = p.tags[1]
		from = vEnds[j]
		w.volumes.addFresh(v) // (a fresh id: see appendIDNum)
		inst.volumes = append(inst.volumes, v)
	}
	inst.led = w.ledger.addInstance(inst.id, idNum, p.it.name, w.now)
	inst.liveCtrs = w.ledger.instUp(p.zone, p.it)
	if p.it.quota != "" && p.tenancy != types.TenancyHost {
		w.vcpuUsage[p.it.quota] += int(p.it.vcpus)
	}
	w.instances.add(inst)
	return inst
}

// leaveHost ends the instance's occupancy of its host: the slot is freed
// and a mac host starts scrubbing (pending).
func (w *World) leaveHost(inst *instance) {
	h := inst.host
	if h == nil {
		return
	}
	inst.host = nil
	h.instances = slices.DeleteFunc(h.instances, func(x *instance) bool { return x == inst })
	h.usedVCPUs -= inst.itype.vcpus
	if h.mac() && !h.released {
		w.startScrubbing(h)
	}
}

// stopBilling ends the live period of an instance (stop or terminate).
func (w *World) stopBilling(inst *instance) {
	w.ledger.closeInstance(inst.led, w.now)
	w.ledger.instDown(inst.liveCtrs)
	if inst.itype.quota != "" && inst.tenancy != types.TenancyHost {
		w.vcpuUsage[inst.itype.quota] -= int(inst.itype.vcpus)
	}
}

// StopInstances stops instances; a mac host goes pending (scrubbing).
func (w *World) StopInstances(ctx context.Context, in *ec2.StopInstancesInput, _ ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
	return serve(ctx, w, "StopInstances", in, func(in *ec2.StopInstancesInput) (*ec2.StopInstancesOutput, error) {
		var buf [4]*instance // (stays on the stack)
		insts, err := w.instancesForChange(buf[:0], in.InstanceIds, in.DryRun)
		if err != nil {
			return nil, err
		}
		for _, inst := range insts {
			switch inst.state(w.now) {
			case types.InstanceStateNamePending, types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
				return nil, Errorf("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be stopped.", inst.id)
			}
			if inst.noStop {
				return nil, Errorf("OperationNotPermitted", "The instance '%s' may not be stopped. Modify its 'disableApiStop' instance attribute and try again.", inst.id)
			}
		}
		out := &ec2.StopInstancesOutput{}
		for _, inst := range insts {
			prev := inst.state(w.now)
			if inst.live() {
				inst.stopAt = w.now
				inst.stoppedAt = w.now.Add(w.spec.Timings.StopDelay.D())
				w.stopBilling(inst)
				w.leaveHost(inst)
			}
			out.StoppingInstances = append(out.StoppingInstances, stateChange(inst.id, prev, inst.state(w.now)))
		}
		return out, nil
	})
}

// TerminateInstances terminates instances; they stay visible for
// Timings.TerminatedRetention, then are purged.
func (w *World) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	return serve(ctx, w, "TerminateInstances", in, func(in *ec2.TerminateInstancesInput) (*ec2.TerminateInstancesOutput, error) {
		var buf [4]*instance // (stays on the stack)
		insts, err := w.terminable(buf[:0], in.InstanceIds, in.DryRun)
		if err != nil {
			return nil, err
		}
		out, changes, parts := w.terminateOutput(len(insts))
		for i, inst := range insts {
			prev := w.terminate(inst)
			parts[i].fill(&changes[i], inst.id, prev, inst.state(w.now))
		}
		return out, nil
	})
}

// terminable resolves the ids of a TerminateInstances call (appended to
// dst, the caller's scratch) and checks that all may be terminated.
func (w *World) terminable(dst []*instance, ids []string, dry *bool) ([]*instance, error) {
	insts, err := w.instancesForChange(dst, ids, dry)
	if err != nil {
		return nil, err
	}
	for _, inst := range insts {
		if inst.noTerminate && inst.termAt.IsZero() {
			return nil, Errorf("OperationNotPermitted", "The instance '%s' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.", inst.id)
		}
	}
	return insts, nil
}

// terminate terminates inst (nothing for an instance already on its way)
// and returns its state before.
func (w *World) terminate(inst *instance) (prev types.InstanceStateName) {
	prev = inst.state(w.now)
	if !inst.termAt.IsZero() {
		return prev
	}
	if inst.live() {
		w.stopBilling(inst)
		w.leaveHost(inst)
	}
	inst.termAt = w.now
	inst.terminatedAt = w.now.Add(w.spec.Timings.TerminateDelay.D())
	if inst.ip != 0 {
		inst.subnet.freeIP(inst.ip)
	}
	for _, v := range inst.volumes {
		v.attach = nil
		if v.deleteOnTermination {
			w.volumes.removeObj(v)
		}
	}
	w.termQueue = append(w.termQueue, purgeItem[*instance]{at: inst.terminatedAt.Add(w.spec.Timings.TerminatedRetention.D()).UnixNano(), obj: inst})
	return prev
}

// terminateOutput1 is a one-instance TerminateInstances output with what it
// points to (one allocation for the usual call).
type terminateOutput1 struct {
	out     ec2.TerminateInstancesOutput
	changes [1]types.InstanceStateChange
	parts   [1]stateChangeParts
}

// terminateOutput allocates an output for n state changes; the caller fills
// changes[i] with parts[i].
func (w *World) terminateOutput(n int) (*ec2.TerminateInstancesOutput, []types.InstanceStateChange, []stateChangeParts) {
	if n == 1 {
		r := w.termOuts.next()
		r.out.TerminatingInstances = r.changes[:]
		return &r.out, r.changes[:], r.parts[:]
	}
	out := &ec2.TerminateInstancesOutput{TerminatingInstances: make([]types.InstanceStateChange, n)}
	return out, out.TerminatingInstances, make([]stateChangeParts, n)
}

// instancesForChange resolves the ids of a state change (deduplicated, in
// request order) and appends them to dst (the caller's scratch).
func (w *World) instancesForChange(dst []*instance, ids []string, dry *bool) ([]*instance, error) {
	if len(ids) == 0 {
		return nil, Errorf("MissingParameter", "The request must contain the parameter InstanceId")
	}
	out := dst[:0]
	var missing []string
	for i, id := range ids {
		inst, ok := w.instances.get(id)
		// Only an id the table lacks needs the format check: the world
		// makes every instance id, well formed. The first malformed id is
		// still the first reported, before any missing one (checkIDs).
		if !ok && !wellFormed("i", id) {
			return nil, Errorf("InvalidInstanceID.Malformed", "Invalid id: \"%s\"", id)
		}
		if slices.Contains(ids[:i], id) {
			continue // duplicates are answered once
		}
		if !ok {
			missing = append(missing, id)
			continue
		}
		out = append(out, inst)
	}
	if len(missing) > 0 {
		return nil, notFound("InvalidInstanceID.NotFound", "instance ID", missing)
	}
	if err := dryRun(dry); err != nil {
		return nil, err
	}
	return out, nil
}

// netNames makes the names of the instance's network interface: its id,
// its attachment id and the private DNS name ("ip-10-0-1-5.<region>.compute.internal").
// They are a pure function of the interface's id number and the IP: only
// the SDK-shaped answers read them, so launches do not make them.
func (in *instance) netNames(region string) (eni, attach, dns string) {
	var scratch [128]byte
	b := appendIDOf(scratch[:0], "eni", in.eniNum)
	eniEnd := len(b)
	b = append(b, "eni-attach-"...)
	b = append(b, b[len("eni-"):eniEnd]...)
	attachEnd := len(b)
	b = append(b, "ip-"...)
	for _, c := range in.ipStr {
		if c == '.' {
			c = '-'
		}
		b = append(b, byte(c))
	}
	b = append(b, '.')
	b = append(b, region...)
	b = append(b, ".compute.internal"...)
	s := string(b)
	return s[:eniEnd], s[eniEnd:attachEnd], s[attachEnd:]
}

// appendMAC appends a locally administered MAC address unique per sequence.
func appendMAC(out []byte, seq uint64, r uint32) []byte {
	const hexd = "0123456789abcdef"
	b := [6]byte{0x02, byte(seq >> 8), byte(seq), byte(r >> 16), byte(r >> 8), byte(r)}
	for i, x := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, hexd[x>>4], hexd[x&0xf])
	}
	return out
}
