package awsemu

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type host struct {
	objBase
	zone          string
	zoneID        string        // w.zoneID(zone), resolved at allocation
	itype         *instanceType // nil when allocated for a family
	family        string
	hostVCPUs     int32
	autoPlacement bool
	recovery      types.HostRecovery
	clientToken   string
	allocatedAt   time.Time
	releasedAt    time.Time
	released      bool
	failure       types.AllocationState // "", under-assessment or permanent-failure
	pendingUntil  time.Time             // scrubbing ends
	usableAt      time.Time             // available lag ends
	instances     []*instance
	usedVCPUs     int32
	tags          tagSet
	led           *hostLedger
}

type hostToken struct {
	hash uint64
	ids  []string
}

func (t *hostToken) remove(id string) bool {
	t.ids = slices.DeleteFunc(t.ids, func(s string) bool { return s == id })
	return len(t.ids) == 0
}

func (h *host) mac() bool { return isMacFamily(h.family) }

func (h *host) typeName() string {
	if h.itype != nil {
		return h.itype.name
	}
	return ""
}

func (h *host) state(now time.Time) types.AllocationState {
	switch {
	case h.released && h.failure == types.AllocationStatePermanentFailure:
		return types.AllocationStateReleasedPermanentFailure
	case h.released:
		return types.AllocationStateReleased
	case h.failure != "":
		return h.failure
	case now.Before(h.pendingUntil):
		return types.AllocationStatePending
	}
	return types.AllocationStateAvailable
}

// freeSlots is how many more instances of t the host can take (ignoring state).
func (h *host) freeSlots(t *instanceType) int32 {
	if h.itype != nil {
		if t != h.itype {
			return 0
		}
		n := t.slotsOn(h.hostVCPUs) - int32(len(h.instances))
		return max(n, 0)
	}
	if t.family != h.family || t.vcpus <= 0 {
		return 0
	}
	return (h.hostVCPUs - h.usedVCPUs) / t.vcpus
}

func (h *host) tagList() tagSet { return h.tags }

func (h *host) filterValues(name string, w *World) []string {
	switch name {
	case "auto-placement":
		if h.autoPlacement {
			return append(w.fbuf[:0], "on")
		}
		return append(w.fbuf[:0], "off")
	case "availability-zone":
		return append(w.fbuf[:0], h.zone)
	case "client-token":
		return append(w.fbuf[:0], h.clientToken)
	case "instance-type":
		if h.itype != nil {
			return append(w.fbuf[:0], h.itype.name)
		}
		return nil
	case "state":
		return append(w.fbuf[:0], string(h.state(w.now)))
	case "host-reservation-id":
		return nil
	}
	return nil
}

var hostFilters = set("auto-placement", "availability-zone", "client-token", "instance-type", "state", "host-reservation-id")

// hostParts holds the nested structs and scalars of one types.Host output
// so they cost one allocation.
type hostParts struct {
	// sized for a mac host of a pool (client token, an instance, up to
	// three tags): every byte here is zeroed and written per output
	strs  [18]string
	i32s  [6]int32
	bools [1]bool
	times [2]time.Time
	props types.HostProperties
	ac    types.AvailableCapacity
	ic    [1]types.InstanceCapacity
	inst  [1]types.HostInstance
	tags  [3]types.Tag
}

// describeHostsOutput1 is a one-host DescribeHosts output with everything
// it points to.
type describeHostsOutput1 struct {
	out   ec2.DescribeHostsOutput
	hosts [1]types.Host
	parts hostParts
}

func (h *host) sdk(w *World) types.Host {
	var out types.Host
	h.fillSDK(&out, &hostParts{}, w)
	return out
}

// fillSDK writes the SDK form of h to *dst; what it points to lives in parts
// (zero, and owned by this output only).
func (h *host) fillSDK(dst *types.Host, parts *hostParts, w *World) {
	a := &outAlloc{strs: parts.strs[:0], i32s: parts.i32s[:0], bools: parts.bools[:0], times: parts.times[:0]}
	st := h.state(w.now)
	cores, sockets := h.hostVCPUs/2, int32(2)
	if h.mac() {
		sockets = 1
		if h.itype != nil && h.itype.arch == "arm64_mac" {
			cores = h.hostVCPUs
		}
	}
	// (field stores: dst and parts are fresh zeroed memory, see fillInstanceSDK)
	props := &parts.props
	props.Cores, props.Sockets, props.TotalVCpus, props.InstanceFamily = a.i32(cores), a.i32(sockets), a.i32(h.hostVCPUs), a.str(h.family)
	out := dst
	out.HostId = a.str(h.id)
	out.AllocationTime = a.tm(h.allocatedAt)
	out.AvailabilityZone = a.str(h.zone)
	out.AvailabilityZoneId = a.str(h.zoneID)
	out.OwnerId = a.str(w.spec.AccountID)
	out.State = st
	out.HostRecovery = h.recovery
	out.HostMaintenance = types.HostMaintenanceOff
	out.AutoPlacement = types.AutoPlacementOff
	out.HostProperties = props
	out.MemberOfServiceLinkedResourceGroup = a.b(false)
	out.Tags = h.tags.sdkInto(parts.tags[:0], a)
	if h.autoPlacement {
		out.AutoPlacement = types.AutoPlacementOn
	}
	if h.clientToken != "" {
		out.ClientToken = a.str(h.clientToken)
	}
	if h.released {
		out.ReleaseTime = a.tm(h.releasedAt)
	}
	if h.itype != nil {
		out.HostProperties.InstanceType = a.str(h.itype.name)
		out.AllowsMultipleInstanceTypes = types.AllowsMultipleInstanceTypesOff
	} else {
		out.AllowsMultipleInstanceTypes = types.AllowsMultipleInstanceTypesOn
	}
	if !h.released {
		ac := &parts.ac
		ac.AvailableVCpus = a.i32(h.hostVCPUs - h.usedVCPUs)
		var kinds []*instanceType
		if h.itype != nil {
			kinds = []*instanceType{h.itype}
			ac.AvailableInstanceCapacity = parts.ic[:0]
		} else {
			kinds = w.familyTypes(h.family)
		}
		for _, t := range kinds {
			total := t.slotsOn(h.hostVCPUs)
			if total <= 0 {
				continue
			}
			ac.AvailableInstanceCapacity = append(ac.AvailableInstanceCapacity, types.InstanceCapacity{})
			c := &ac.AvailableInstanceCapacity[len(ac.AvailableInstanceCapacity)-1]
			c.InstanceType, c.TotalCapacity, c.AvailableCapacity = a.str(t.name), a.i32(total), a.i32(h.freeSlots(t))
		}
		out.AvailableCapacity = ac
		if len(h.instances) == 1 {
			out.Instances = parts.inst[:0:1]
		}
		for _, in := range h.instances {
			out.Instances = append(out.Instances, types.HostInstance{})
			hi := &out.Instances[len(out.Instances)-1]
			hi.InstanceId, hi.InstanceType, hi.OwnerId = a.str(in.id), a.str(in.itype.name), a.str(w.spec.AccountID)
		}
	}
}

func (w *World) scrubbingFor(h *host) time.Duration {
	if h.itype != nil {
		return h.itype.scrub // (cached by New)
	}
	return w.specScrubbing("", h.family)
}

// specScrubbing reads the scrubbing duration of a host of type typ (""
// when allocated for a family) and family from the spec.
func (w *World) specScrubbing(typ, family string) time.Duration {
	t := &w.spec.Timings
	if d, ok := t.ScrubbingDurations[typ]; ok {
		return d.D()
	}
	if d, ok := t.ScrubbingDurations[family]; ok {
		return d.D()
	}
	return t.ScrubbingDuration.D()
}

// startScrubbing puts a mac host in pending from now (billing pauses).
func (w *World) startScrubbing(h *host) {
	d := w.scrubbingFor(h)
	if d <= 0 {
		return
	}
	h.pendingUntil = w.now.Add(d)
	h.usableAt = h.pendingUntil.Add(w.spec.Timings.AvailableLag.D())
	h.led.pending = append(h.led.pending, window{from: w.now.UnixNano(), to: h.pendingUntil.UnixNano()})
}

func (w *World) hostQuota(family string) (*quota, bool) {
	// the name "Running Dedicated <family> Hosts" is matched in place (no
	// string built per AllocateHosts)
	const pre, suf = "Running Dedicated ", " Hosts"
	for _, q := range w.quotas {
		if n := q.name; len(n) == len(pre)+len(family)+len(suf) && strings.HasPrefix(n, pre) && strings.HasSuffix(n, suf) && n[len(pre):len(n)-len(suf)] == family {
			return q, true
		}
	}
	return nil, false
}

var hostTagTypes = [1]types.ResourceType{types.ResourceTypeDedicatedHost}

// strHash is the FNV-1a hash of a sequence of strings, each followed by a
// 0xff separator.
type strHash uint64

func newStrHash() strHash { return 14695981039346656037 }

func (h *strHash) add(p string) {
	x := uint64(*h)
	for i := 0; i < len(p); i++ {
		x ^= uint64(p[i])
		x *= 1099511628211
	}
	x ^= 0xff
	x *= 1099511628211
	*h = strHash(x)
}

// AllocateHosts allocates Dedicated Hosts.
func (w *World) AllocateHosts(ctx context.Context, in *ec2.AllocateHostsInput, _ ...func(*ec2.Options)) (*ec2.AllocateHostsOutput, error) {
	return serve(ctx, w, "AllocateHosts", in, w.allocateHosts)
}

func (w *World) allocateHosts(in *ec2.AllocateHostsInput) (*ec2.AllocateHostsOutput, error) {
	zone := aws.ToString(in.AvailabilityZone)
	if zone == "" && in.AvailabilityZoneId != nil {
		for _, z := range w.spec.Zones {
			if w.zoneID(z) == *in.AvailabilityZoneId {
				zone = z
			}
		}
		if zone == "" {
			return nil, Errorf("InvalidParameterValue", "Invalid availability zone ID: [%s]", *in.AvailabilityZoneId)
		}
	}
	if zone == "" {
		return nil, Errorf("MissingParameter", "The request must contain the parameter availabilityZone")
	}
	if !slices.Contains(w.spec.Zones, zone) {
		return nil, Errorf("InvalidParameterValue", "Invalid availability zone: [%s]", zone)
	}
	typeName, famName := aws.ToString(in.InstanceType), aws.ToString(in.InstanceFamily)
	if typeName != "" && famName != "" {
		return nil, Errorf("InvalidParameterCombination", "The parameters instanceType and instanceFamily cannot be used together")
	}
	if typeName == "" && famName == "" {
		return nil, Errorf("MissingParameter", "The request must contain the parameter instanceType or instanceFamily")
	}
	var it *instanceType
	family := famName
	var hostVCPUs int32
	if typeName != "" {
		it = w.catalog[typeName]
		if it == nil {
			return nil, Errorf("InvalidParameterValue", "Invalid value '%s' for instanceType.", typeName)
		}
		family = it.family
		hostVCPUs = it.hostVCPUs
	} else {
		ft := w.familyTypes(famName)
		if len(ft) == 0 {
			return nil, Errorf("InvalidParameterValue", "Invalid value '%s' for instanceFamily.", famName)
		}
		if isMacFamily(famName) {
			return nil, Errorf("InvalidParameterValue", "Mac Dedicated Hosts must be allocated with an instance type, not the instance family '%s'.", famName)
		}
		hostVCPUs = ft[0].hostVCPUs
	}
	if hostVCPUs <= 0 {
		return nil, Errorf("InvalidParameterValue", "Dedicated Hosts are not supported for instance type '%s'.", typeName+famName)
	}
	qty := aws.ToInt32(in.Quantity)
	if in.Quantity == nil {
		qty = 1
	}
	if qty < 1 {
		return nil, Errorf("InvalidParameterValue", "Value (%d) for parameter quantity is invalid. Quantity must be at least 1.", qty)
	}
	switch in.AutoPlacement {
	case "", types.AutoPlacementOn, types.AutoPlacementOff:
	default:
		return nil, Errorf("InvalidParameterValue", "Value (%s) for parameter autoPlacement is invalid.", in.AutoPlacement)
	}
	var tags [1]tagSet
	if err := splitTagSpecs(in.TagSpecifications, hostTagTypes[:], tags[:]); err != nil {
		return nil, err
	}
	hostTags := tags[0]
	token := aws.ToString(in.ClientToken)
	var hash uint64
	if token != "" {
		// the parameters hashed in place (no list, no fmt)
		h := newStrHash()
		for _, s := range [...]string{zone, typeName, famName, strconv.Itoa(int(qty)), string(in.AutoPlacement), string(in.HostRecovery)} {
			h.add(s)
		}
		for _, t := range hostTags {
			h.add(t.k)
			h.add(t.v)
		}
		hash = uint64(h)
		if prev := w.hostTokens[token]; prev != nil {
			if prev.hash != hash {
				return nil, Errorf("IdempotentParameterMismatch", "The client token '%s' has already been used with different parameters.", token)
			}
			return &ec2.AllocateHostsOutput{HostIds: slices.Clone(prev.ids)}, nil
		}
	}
	if q, ok := w.hostQuota(family); ok {
		if float64(w.ledger.liveHosts[family]+int(qty)) > q.value {
			return nil, Errorf("HostLimitExceeded", "You have requested more Dedicated Hosts than your current limit of %d allows for the %s instance family.", int(q.value), family)
		}
	}
	for _, l := range w.spec.Limits.HostCapacity {
		if l.Zone != zone || (l.InstanceType != "" && l.InstanceType != typeName && l.InstanceType != family) {
			continue
		}
		if w.liveHostsIn(zone, l.InstanceType)+int(qty) > l.Max {
			return nil, ServerErrorf("InsufficientHostCapacity", "There is no Dedicated Host capacity available for %s in the Availability Zone %s.", typeName+famName, zone)
		}
	}
	out := &ec2.AllocateHostsOutput{}
	for range qty {
		b := w.newObj("h")
		h := &host{objBase: b, zone: zone, zoneID: w.zoneID(zone), itype: it, family: family, hostVCPUs: hostVCPUs,
			autoPlacement: in.AutoPlacement == types.AutoPlacementOn, recovery: in.HostRecovery,
			clientToken: token, allocatedAt: w.now, tags: slices.Clone(hostTags)}
		if h.recovery == "" {
			h.recovery = types.HostRecoveryOff
		}
		h.led = w.ledger.addHost(h)
		w.hosts.add(h)
		out.HostIds = append(out.HostIds, h.id)
	}
	if token != "" {
		w.hostTokens[token] = &hostToken{hash: hash, ids: slices.Clone(out.HostIds)}
	}
	return out, nil
}

func (w *World) liveHostsIn(zone, kind string) int {
	return w.ledger.liveHostsZone[zoneKind{zone, kind}]
}

// DescribeHosts lists Dedicated Hosts (released ones stay listed for a while).
func (w *World) DescribeHosts(ctx context.Context, in *ec2.DescribeHostsInput, _ ...func(*ec2.Options)) (*ec2.DescribeHostsOutput, error) {
	return serve(ctx, w, "DescribeHosts", in, func(in *ec2.DescribeHostsInput) (*ec2.DescribeHostsOutput, error) {
		var buf [8]*host // (stays on the stack)
		items, next, err := w.describeHosts(in, buf[:0])
		if err != nil {
			return nil, err
		}
		return w.hostsOutput(items, next), nil
	})
}

// describeHosts is DescribeHosts up to its answer: the hosts of the page
// (appended to dst, the caller's scratch, when the request names hosts)
// and the next page's token. DescribeHosts builds the SDK output of them,
// DescribeHostStates only the fields the pools read.
func (w *World) describeHosts(in *ec2.DescribeHostsInput, dst []*host) ([]*host, *string, error) {
	if len(in.HostIds) > 0 && len(in.Filter) == 0 && in.MaxResults == nil && aws.ToString(in.NextToken) == "" {
		if items, ok, err := w.describeHostsByID(in.HostIds, dst); ok {
			return items, nil, err
		}
	}
	fs, err := compileFilters(in.Filter, hostFilters)
	if err != nil {
		return nil, nil, err
	}
	if len(in.HostIds) > 0 && in.MaxResults != nil {
		return nil, nil, Errorf("InvalidParameterCombination", "The parameter hostIdSet cannot be used with the parameter maxResults")
	}
	p, err := w.newPager("host", in.MaxResults, in.NextToken, 5, 500)
	if err != nil {
		return nil, nil, err
	}
	if len(in.HostIds) == 0 {
		items, next := collect(w.hosts.all(p.after), p, func(h *host) bool { return w.matches(h, fs) })
		return items, next, nil
	}
	if err := checkIDs("InvalidHostID.Malformed", "h", in.HostIds); err != nil {
		return nil, nil, err
	}
	objs, missing := pickInto(dst[:0], &w.hosts, in.HostIds, nil)
	if len(missing) > 0 {
		return nil, nil, notFound("InvalidHostID.NotFound", "host ID", missing)
	}
	// the picked slice is filtered in place (same rules as collect)
	items, next := collectPicked(objs, p, func(h *host) bool { return len(fs) == 0 || w.matches(h, fs) })
	return items, next, nil
}

// describeHostsByID answers the pool's polls: a few host ids, no filters, no
// paging parameters. It gives the hosts and the errors of the general path
// (checked in the same order) without compiling filters or paging through
// the table; ok is false when the general path must answer
// (more ids than dst holds, or more hosts than a default page).
func (w *World) describeHostsByID(ids []string, dst []*host) (items []*host, ok bool, err error) {
	if len(ids) > cap(dst) {
		return nil, false, nil
	}
	// pickInto with checkIDs folded in: only an id the table lacks needs the
	// format check, as the world makes every host id (AllocateHosts), well
	// formed. The first malformed id is still the one reported, before any
	// missing one. Why: the poll's id is mostly out of cache, and the format
	// check read its bytes once more than the lookup.
	items = dst[:0]
	var missing []string
	for i, id := range ids {
		h, ok := w.hosts.get(id)
		if !ok && !wellFormed("h", id) {
			return nil, true, Errorf("InvalidHostID.Malformed", "Invalid id: \"%s\"", id)
		}
		if slices.Contains(ids[:i], id) {
			continue // (deduplicated)
		}
		if !ok {
			missing = append(missing, id)
			continue
		}
		items = append(items, h)
	}
	if len(items) > 1 { // creation order
		slices.SortFunc(items, func(a, b *host) int { return cmp.Compare(a.seq, b.seq) })
	}
	if len(missing) > 0 {
		return nil, true, notFound("InvalidHostID.NotFound", "host ID", missing)
	}
	if limit := w.spec.DefaultPageSize; limit > 0 && len(items) > limit {
		return nil, false, nil // a default page with a next token
	}
	return items, true, nil
}

// hostsOutput builds a DescribeHosts output: its hosts and their parts are
// carved from slabs (one allocation per many outputs, see slab).
func (w *World) hostsOutput(items []*host, next *string) *ec2.DescribeHostsOutput {
	if len(items) == 1 { // the pool's poll of one host: one slot
		r := w.hostOuts.next()
		r.out.NextToken, r.out.Hosts = next, r.hosts[:]
		items[0].fillSDK(&r.hosts[0], &r.parts, w)
		return &r.out
	}
	out := w.hostListOuts.next()
	out.NextToken, out.Hosts = next, w.hostSDKs.take(len(items))
	parts := w.hostParts.take(len(items))
	for i, h := range items {
		h.fillSDK(&out.Hosts[i], &parts[i], w)
	}
	return out
}

// ReleaseHosts releases Dedicated Hosts; per-host failures are reported as
// Unsuccessful items with HTTP 200, like AWS.
func (w *World) ReleaseHosts(ctx context.Context, in *ec2.ReleaseHostsInput, _ ...func(*ec2.Options)) (*ec2.ReleaseHostsOutput, error) {
	return serve(ctx, w, "ReleaseHosts", in, w.releaseHosts)
}

func (w *World) releaseHosts(in *ec2.ReleaseHostsInput) (*ec2.ReleaseHostsOutput, error) {
	if len(in.HostIds) == 0 {
		return nil, Errorf("MissingParameter", "The request must contain the parameter hostId")
	}
	out := &ec2.ReleaseHostsOutput{Successful: []string{}, Unsuccessful: []types.UnsuccessfulItem{}}
	fail := func(id, code, msg string) {
		out.Unsuccessful = append(out.Unsuccessful, types.UnsuccessfulItem{
			ResourceId: aws.String(id),
			Error:      &types.UnsuccessfulItemError{Code: aws.String(code), Message: aws.String(msg)},
		})
	}
	minAlloc := w.spec.Timings.MacMinAllocation.D()
	for _, id := range in.HostIds {
		h, ok := w.hosts.get(id)
		if !ok || h.released {
			fail(id, "Client.InvalidHostID.NotFound", fmt.Sprintf("The specified host ID '%s' does not exist or has been released.", id))
			continue
		}
		if len(h.instances) > 0 {
			fail(id, "Client.InvalidHost.Occupied", fmt.Sprintf("Unable to release Dedicated Host %s. The host has running instances (%s).", id, h.instances[0].id))
			continue
		}
		if h.mac() && w.now.Before(h.allocatedAt.Add(minAlloc)) {
			after := h.allocatedAt.Add(minAlloc).UTC().Format(time.RFC3339)
			fail(id, "Client.HostMinAllocationPeriodUnexpired", fmt.Sprintf(
				"Unable to release Dedicated Host %s. %s hosts must be allocated to your AWS account for at least %d hour(s). You can release this host any time after %s.",
				id, h.typeName(), int(minAlloc/time.Hour), after))
			continue
		}
		w.release(h)
		out.Successful = append(out.Successful, id)
	}
	return out, nil
}

func (w *World) release(h *host) {
	h.released = true
	h.releasedAt = w.now
	if w.now.Before(h.pendingUntil) {
		// clip the current scrubbing window at release
		if n := len(h.led.pending); n > 0 {
			h.led.pending[n-1].to = w.now.UnixNano()
		}
		h.pendingUntil = w.now
	}
	w.ledger.closeHost(h.led, w.now)
	w.ledger.hostGone(h)
	w.relQueue = append(w.relQueue, purgeItem[*host]{at: w.now.Add(w.spec.Timings.ReleasedRetention.D()).UnixNano(), obj: h})
}

// SetHostState forces a host into under-assessment, permanent-failure or
// back to available (an emulator control used by tests and the admin API).
func (w *World) SetHostState(hostID string, state types.AllocationState) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = maxTime(w.now, w.clk.Now())
	h, ok := w.hosts.get(hostID)
	if !ok || h.released {
		return fmt.Errorf("host %s: not found", hostID)
	}
	switch state {
	case types.AllocationStateUnderAssessment, types.AllocationStatePermanentFailure:
		h.failure = state
	case types.AllocationStateAvailable:
		h.failure = ""
		if w.now.Before(h.pendingUntil) { // end the scrubbing window now
			if n := len(h.led.pending); n > 0 {
				h.led.pending[n-1].to = w.now.UnixNano()
			}
		}
		h.pendingUntil = time.Time{}
		h.usableAt = time.Time{}
	default:
		return fmt.Errorf("host %s: state %q cannot be set (want under-assessment, permanent-failure or available)", hostID, state)
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
