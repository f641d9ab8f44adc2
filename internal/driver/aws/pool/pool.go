package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
	"github.com/aquarium-fish/aquarium-fish/internal/ec2ops"
	"github.com/aquarium-fish/aquarium-fish/internal/strarena"
)

// Tuning of the manager. They are constants so the behaviour is the same in
// production, tests and the simulator.
const (
	// releaseSafety is added to the 24h minimum of mac hosts so a small clock
	// skew between this node and AWS never makes AWS refuse a release.
	releaseSafety = time.Minute
	// releaseSettle is how long a host stays unreleased after its last
	// instance left (AWS refuses a host whose instance is still shutting down).
	releaseSettle = time.Minute
	// promiseGrace is how long a host allocated for a token stays promised to
	// it after the host became usable; then anyone may take it.
	promiseGrace = 10 * time.Minute
	// suspectBackoff keeps a host out of placement after a placement on it failed.
	suspectBackoff = time.Minute
	// capacityBackoff skips a zone after InsufficientHostCapacity/HostLimitExceeded.
	capacityBackoff = 2 * time.Minute
	// minDescribeGap bounds on-demand refreshes: at most one DescribeHosts
	// refresh per minute (≤ 60 per hour).
	minDescribeGap = time.Minute
	// fullRefreshEvery is the cadence of the full (tag filter) refresh that
	// catches changes made outside the pool (pending hosts are polled by id
	// when they are expected available). Each refresh that finds nothing the
	// view did not already know doubles the interval up to maxFullRefreshEvery;
	// any surprise resets it. Errors the view cannot explain (a failed launch
	// on a host, a refused release) ask for a refresh at once.
	fullRefreshEvery    = 30 * time.Minute
	maxFullRefreshEvery = 4 * time.Hour
	// pendingPoll is how often a pending host is re-checked once it is overdue.
	pendingPoll = time.Minute
	// actionRetry is the backoff after a failed or refused scrub or release.
	actionRetry = 5 * time.Minute
	// defaultScrubEstimate is the first guess of a mac scrub's duration; the
	// manager learns the real one from observed transitions.
	defaultScrubEstimate = time.Hour
	// defaultAllocEstimate is the first guess of pending time after AllocateHosts.
	defaultAllocEstimate = time.Minute
	imageTTL             = 24 * time.Hour
	subnetTTL            = time.Hour
)

// Tag keys put on every pool host.
const (
	TagPoolPrefix = "AquariumDedicatedPool-"    // + pool name, empty value
	TagPoolName   = "AquariumDedicatedPoolName" // = pool name
)

// EC2API is the subset of the EC2 client the pool uses, with the SDK's exact
// signatures: *ec2.Client and *awsemu.World satisfy it. The manager reuses
// its request structs (and the slices and fixed pointers in them) from one
// call to the next, so an implementation must not keep a request after the
// call returns, nor write to it; neither the SDK nor the world does. The
// manager does not keep or modify answers either. The hot calls
// (RunInstances and TerminateInstances of scrubs, DescribeHosts) go through
// ec2ops.For(api): the client itself when it implements ec2ops.API (the
// in-memory world), else the adapter over these methods.
type EC2API interface {
	AllocateHosts(ctx context.Context, in *ec2.AllocateHostsInput, optFns ...func(*ec2.Options)) (*ec2.AllocateHostsOutput, error)
	DescribeHosts(ctx context.Context, in *ec2.DescribeHostsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeHostsOutput, error)
	ReleaseHosts(ctx context.Context, in *ec2.ReleaseHostsInput, optFns ...func(*ec2.Options)) (*ec2.ReleaseHostsOutput, error)
	RunInstances(ctx context.Context, in *ec2.RunInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeInstanceTypes(ctx context.Context, in *ec2.DescribeInstanceTypesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
	DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeVpcs(ctx context.Context, in *ec2.DescribeVpcsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// Options are the manager's dependencies.
type Options struct {
	Clock   clock.Clock
	Logger  *slog.Logger
	Tags    map[string]string // extra tags for hosts (node tags from instance_tags)
	Metrics *Metrics          // optional prometheus collectors (nil = none)
}

// PlaceRequest asks for a slot for one application.
type PlaceRequest struct {
	Token        string   // application uid: idempotency key
	InstanceType string   // must be the pool's type (or empty)
	Zones        []string // nil = the pool's zones; otherwise a subset of them
}

// Placement is where an application's instance must be launched.
type Placement struct {
	HostID, Zone string
}

// Manager is one dedicated-host pool.
type Manager struct {
	cfg     Config
	api     EC2API
	ops     ec2ops.API // ec2ops.For(api): the hot calls
	clk     clock.Clock
	log     *slog.Logger
	tags    map[string]string
	metrics *Metrics

	releaseAge   time.Duration
	scrubEnabled bool
	mac          bool

	recMu        sync.Mutex // one Reconcile/Start at a time
	recScratch   reconcileScratch
	reapScrubs   bool                   // scrub instances of a stopped node may be alive (recMu): see reapScrubOrphans
	refreshGen   uint64                 // refreshes begun (recMu), see host.listedGen
	refreshHosts []ec2ops.Host          // refresh's answer pages (recMu), emptied after the merge
	refreshIn    ec2.DescribeHostsInput // refresh's request (recMu): filters fixed by New, NextToken per page
	allocMu      sync.Mutex             // one host allocation at a time (placement serialized per pool)
	allocScratch allocScratch

	mu         sync.Mutex
	started    bool
	hosts      map[string]*host
	zones      map[string]*zoneView
	waiting    waitHeap
	dueQ       dueHeap
	byToken    map[string]*slot
	byInstance map[string]*slot
	gone       map[string]uint64 // released by us -> seq at release
	seq        uint64
	allocating int
	attempts   map[string]int
	zoneBusy   map[string]time.Time // zone -> capacity backoff until
	slotsPer   int
	arch       string

	lastDescribe time.Time
	lastFull     time.Time
	// describeGate = lastDescribe + minDescribeGap and fullDue = lastFull +
	// fullEvery, kept with them (see described, setFullEvery): nextWake
	// and Reconcile read them on every call, time.Time.Add is not free
	describeGate time.Time
	fullDue      time.Time
	wantRefresh  bool
	fullEvery    time.Duration // current full refresh interval
	surprises    int64         // view corrections made by refreshes
	pollQ        []*host       // pending hosts due for a check by id (host.pollQueued)
	// hosts of m.hosts by category (see touch); [catNone] counts nothing
	// useful (untracked hosts enter and leave it)
	hostCount    [numHostCats]int
	scrubEst     time.Duration
	scrubLearned bool
	allocEst     time.Duration
	allocLearned bool

	cacheMu sync.Mutex
	image   cached
	subnets map[string]cached

	stats Stats      // counters (guarded by mu; APICalls/APIErrors unused, see calls)
	calls callCounts // EC2 calls by action (guarded by mu)
	wake  chan struct{}

	afterRunPass func() // test hook: called by Run after each Reconcile

	tagList   []types.Tag // see buildHostTags
	scrubTags []types.Tag
	scrubTmpl ec2.RunInstancesInput // fixed fields of every scrub launch (read-only)

	// request parts shared by every AllocateHosts call (read-only)
	allocType  *string
	allocQty   *int32
	allocTags  []types.TagSpecification
	zonePtr    map[string]*string // zone -> &zone, for the pool's zones
	spareSlots []*slot            // freed slots for reuse (guarded by mu), see newSlot
}

// allocScratch are the request structs of allocate, reused between calls
// (guarded by allocMu): EC2 clients do not keep a request after the call.
type allocScratch struct {
	zones  []string // open zones of the allocation in progress
	token  string
	tokens strarena.Arena // makes token
	in     ec2.AllocateHostsInput
	descIn ec2.DescribeHostsInput
	descID [1]string
	hosts  []ec2ops.Host // describeHost's answer, emptied once adopted
}

// maxSpareSlots bounds the free list of slots.
const maxSpareSlots = 1024

// newSlot returns a slot set to v, reusing a freed one when there is one:
// a placement then allocates nothing in steady state. Caller holds m.mu.
func (m *Manager) newSlot(v slot) *slot {
	if n := len(m.spareSlots); n > 0 {
		s := m.spareSlots[n-1]
		m.spareSlots[n-1] = nil
		m.spareSlots = m.spareSlots[:n-1]
		*s = v
		return s
	}
	s := new(slot)
	*s = v
	return s
}

// recycleSlot keeps a slot for reuse by newSlot. Only for a slot that was
// just removed from its host and forgotten (removeSlot + forgetSlot), so
// nothing refers to it any more; never a host's embedded scrub slot.
// Caller holds m.mu.
func (m *Manager) recycleSlot(s *slot) {
	if s == &s.host.scrubSlot || len(m.spareSlots) >= maxSpareSlots {
		return
	}
	*s = slot{}
	m.spareSlots = append(m.spareSlots, s)
}

type cached struct {
	value   string
	ptr     *string // &value for SDK inputs, shared read-only
	expires time.Time
}

func newCached(v string, expires time.Time) cached {
	return cached{value: v, ptr: &v, expires: expires}
}

// New creates a manager for a normalized config. Call Start before Place.
func New(cfg Config, api EC2API, opts Options) (*Manager, error) {
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	if api == nil {
		return nil, fmt.Errorf("pool %s: EC2 API client is required", cfg.Name)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		cfg:          cfg,
		api:          api,
		ops:          ec2ops.For(api),
		clk:          opts.Clock,
		log:          opts.Logger.With("pool", cfg.Name),
		tags:         opts.Tags,
		metrics:      opts.Metrics,
		releaseAge:   cfg.releaseAge(),
		mac:          IsMacType(cfg.Type),
		hosts:        map[string]*host{},
		zones:        map[string]*zoneView{},
		byToken:      map[string]*slot{},
		byInstance:   map[string]*slot{},
		gone:         map[string]uint64{},
		attempts:     map[string]int{},
		zoneBusy:     map[string]time.Time{},
		slotsPer:     1,
		scrubEst:     defaultScrubEstimate,
		allocEst:     defaultAllocEstimate,
		subnets:      map[string]cached{},
		fullEvery:    fullRefreshEvery,
		wake:         make(chan struct{}, 1),
		scrubEnabled: IsMacType(cfg.Type) && cfg.ScrubbingDelay > 0,
	}
	m.describeGate = m.lastDescribe.Add(minDescribeGap)
	m.fullDue = m.lastFull.Add(m.fullEvery)
	m.tagList = m.buildHostTags()
	m.scrubTags = append(m.buildHostTags(), types.Tag{Key: aws.String("Name"), Value: aws.String(scrubName(cfg.Name))})
	m.allocType = aws.String(cfg.Type)
	m.allocQty = aws.Int32(1)
	m.allocTags = []types.TagSpecification{{ResourceType: types.ResourceTypeDedicatedHost, Tags: m.tagList}}
	m.zonePtr = make(map[string]*string, len(m.cfg.Zones))
	for _, z := range m.cfg.Zones {
		m.zonePtr[z] = aws.String(z)
	}
	m.refreshIn.Filter = []types.Filter{
		{Name: aws.String("tag:" + TagPoolName), Values: []string{cfg.Name}},
		{Name: aws.String("state"), Values: []string{"available", "pending", "under-assessment", "permanent-failure"}},
	}
	m.scrubTmpl = ec2.RunInstancesInput{
		InstanceType:      types.InstanceType(cfg.Type),
		MinCount:          aws.Int32(1),
		MaxCount:          aws.Int32(1),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: m.scrubTags}},
	}
	return m, nil
}

// Config returns the normalized pool config.
func (m *Manager) Config() Config { return m.cfg }

func (m *Manager) zone(name string) *zoneView {
	z := m.zones[name]
	if z == nil {
		z = &zoneView{}
		m.zones[name] = z
	}
	return z
}

// Start learns the host type (slots per host, architecture) and adopts the
// existing hosts tagged for this pool (and the instances on them).
func (m *Manager) Start(ctx context.Context) error {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	vcpus, arch, err := m.describeType(ctx, m.cfg.Type)
	if err != nil {
		return fmt.Errorf("dedicated_pool.%s.type: %w", m.cfg.Name, err)
	}
	slots := 1
	if !m.mac {
		slots = m.hostSlots(ctx, vcpus)
	}
	m.mu.Lock()
	m.slotsPer = slots
	m.arch = arch
	m.mu.Unlock()
	if err := m.refresh(ctx); err != nil {
		return fmt.Errorf("pool %s: adopt hosts: %w", m.cfg.Name, err)
	}
	m.reapScrubs = true
	if err := m.reapScrubOrphans(ctx); err != nil {
		// (not fatal: the next full refresh tries again)
		m.log.Warn("orphaned scrub instances not reaped yet", "pool", m.cfg.Name, "err", err)
	}
	m.mu.Lock()
	m.started = true
	n := len(m.hosts)
	m.mu.Unlock()
	m.log.Info("dedicated pool started", "type", m.cfg.Type, "zones", m.cfg.Zones, "max", m.cfg.Max, "adopted_hosts", n, "slots_per_host", slots)
	return nil
}

// describeType returns the vCPUs and first architecture of an instance type.
func (m *Manager) describeType(ctx context.Context, t string) (int32, string, error) {
	out, err := m.api.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceType(t)}})
	m.recordCall(callDescribeInstanceTypes, err)
	if err != nil {
		return 0, "", fmt.Errorf("describe instance type %q: %w", t, err)
	}
	if len(out.InstanceTypes) == 0 {
		return 0, "", fmt.Errorf("unknown instance type %q", t)
	}
	it := out.InstanceTypes[0]
	var vcpus int32
	if it.VCpuInfo != nil {
		vcpus = aws.ToInt32(it.VCpuInfo.DefaultVCpus)
	}
	arch := ""
	if it.ProcessorInfo != nil && len(it.ProcessorInfo.SupportedArchitectures) > 0 {
		arch = string(it.ProcessorInfo.SupportedArchitectures[0])
	}
	return vcpus, arch, nil
}

// hostSlots estimates how many instances of the pool type fit on one host:
// the family's metal size vCPUs / the type's vCPUs. The real number is
// learned from DescribeHosts capacity once a host exists.
func (m *Manager) hostSlots(ctx context.Context, typeVCPUs int32) int {
	metal := family(m.cfg.Type) + ".metal"
	if metal == m.cfg.Type || typeVCPUs <= 0 {
		return 1
	}
	hv, _, err := m.describeType(ctx, metal)
	if err != nil || hv < typeVCPUs {
		m.log.Debug("cannot estimate host capacity from the metal size; using 1 until a host reports it", "metal", metal, "err", err)
		return 1
	}
	return int(hv / typeVCPUs)
}

// zonesFor resolves a request's zones against the pool's.
func (m *Manager) zonesFor(req []string) ([]string, error) {
	if len(req) == 0 {
		return m.cfg.Zones, nil
	}
	for _, z := range req {
		if !slices.Contains(m.cfg.Zones, z) {
			return nil, fmt.Errorf("pool %s: zone %q is not one of the pool's zones %v", m.cfg.Name, z, m.cfg.Zones)
		}
	}
	return req, nil
}

func capacityErr(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), driver.ErrCapacity)
}

// Place reserves a slot for req.Token on an available host (the one whose
// release is furthest away), or allocates a new host. The same token always
// gets the same placement until it is unreserved or its instance is gone.
// When no slot can be had now the error wraps driver.ErrCapacity.
func (m *Manager) Place(ctx context.Context, req PlaceRequest) (Placement, error) {
	if req.Token == "" {
		return Placement{}, fmt.Errorf("pool %s: place: token is required", m.cfg.Name)
	}
	if req.InstanceType != "" && req.InstanceType != m.cfg.Type {
		return Placement{}, fmt.Errorf("pool %s: instance type %q does not match the pool's host type %q", m.cfg.Name, req.InstanceType, m.cfg.Type)
	}
	zones, err := m.zonesFor(req.Zones)
	if err != nil {
		return Placement{}, err
	}
	if p, done, err := m.tryPlace(req.Token, zones); done {
		return p, err
	}
	m.allocMu.Lock()
	defer m.allocMu.Unlock()
	if p, done, err := m.tryPlace(req.Token, zones); done {
		return p, err
	}
	return m.allocate(ctx, req.Token, zones)
}

// tryPlace places from the view alone. done=false means a host must be allocated.
func (m *Manager) tryPlace(token string, zones []string) (p Placement, done bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		return Placement{}, true, fmt.Errorf("pool %s: not started", m.cfg.Name)
	}
	now := m.clk.Now()
	m.promote(now)
	if s := m.byToken[token]; s != nil {
		h := s.host
		if s.kind != slotPromised {
			return Placement{HostID: h.id, Zone: h.zone}, true, nil
		}
		if h.state == hostAvailable && !h.busyWithAction() && !h.placeableAt().After(now) {
			s.kind = slotReserved
			s.since = now
			m.touch(h, now)
			m.stats.Placements++
			m.countPlacement("ok")
			m.signal()
			return Placement{HostID: h.id, Zone: h.zone}, true, nil
		}
		m.stats.PlacementCapacityErrors++
		m.countPlacement("capacity")
		return Placement{}, true, capacityErr("pool %s: host %s allocated for %s is not available yet", m.cfg.Name, h.id, token)
	}
	var best *host
	for _, zn := range zones {
		z := m.zones[zn]
		if z == nil || len(z.free) == 0 {
			continue
		}
		if c := z.free[0]; best == nil || z.free.lessHost(c, best) {
			best = c
		}
	}
	if best != nil {
		s := m.newSlot(slot{kind: slotReserved, token: token, since: now, host: best})
		best.used = append(best.used, s)
		m.byToken[token] = s
		m.touch(best, now)
		m.stats.Placements++
		m.countPlacement("ok")
		m.signal()
		return Placement{HostID: best.id, Zone: best.zone}, true, nil
	}
	if len(m.hosts)+m.allocating >= m.cfg.Max {
		m.stats.PlacementCapacityErrors++
		m.countPlacement("capacity")
		return Placement{}, true, capacityErr("pool %s: no free slot and %d of max %d hosts allocated", m.cfg.Name, len(m.hosts)+m.allocating, m.cfg.Max)
	}
	if !m.anyOpenZone(zones, now) {
		m.stats.PlacementCapacityErrors++
		m.countPlacement("capacity")
		return Placement{}, true, capacityErr("pool %s: no free slot and AWS reported no host capacity in zones %v recently", m.cfg.Name, zones)
	}
	return Placement{}, false, nil
}

func (f freeHeap) lessHost(a, b *host) bool {
	if !a.allocatedAt.Equal(b.allocatedAt) {
		return a.allocatedAt.After(b.allocatedAt)
	}
	return a.id < b.id
}

// anyOpenZone reports whether one of zones is not in capacity backoff
// (openZones without the slice). Caller holds m.mu.
func (m *Manager) anyOpenZone(zones []string, now time.Time) bool {
	for _, z := range zones {
		if until, ok := m.zoneBusy[z]; !ok || !now.Before(until) {
			return true
		}
	}
	return false
}

// openZones are the zones not in capacity backoff, appended to out[:0].
// Caller holds m.mu.
func (m *Manager) openZones(out, zones []string, now time.Time) []string {
	out = out[:0]
	for _, z := range zones {
		if until, ok := m.zoneBusy[z]; ok && now.Before(until) {
			continue
		}
		out = append(out, z)
	}
	return out
}

// allocate allocates one host for token in the first zone with capacity.
// Caller holds m.allocMu.
func (m *Manager) allocate(ctx context.Context, token string, zones []string) (Placement, error) {
	m.mu.Lock()
	now := m.clk.Now()
	if len(m.hosts)+m.allocating >= m.cfg.Max {
		m.stats.PlacementCapacityErrors++
		m.countPlacement("capacity")
		m.mu.Unlock()
		return Placement{}, capacityErr("pool %s: max %d hosts reached", m.cfg.Name, m.cfg.Max)
	}
	as := &m.allocScratch // (allocMu)
	try := m.openZones(as.zones, zones, now)
	as.zones = try
	m.allocating++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.allocating--
		m.mu.Unlock()
	}()

	var capErrs []error
	for _, zn := range try {
		// The attempt number moves on only after a definitive answer (a
		// host, or a capacity error): a retry after a timeout or throttling
		// reuses the ClientToken, so AWS never allocates twice.
		m.mu.Lock()
		attempt := m.attempts[token] + 1
		m.mu.Unlock()
		// the request struct and its fixed parts are reused (allocMu)
		as.token = arenaToken(&as.tokens, "h", token, attempt)
		zp := m.zonePtr[zn]
		if zp == nil { // not a pool zone: zonesFor does not let it through
			zp = aws.String(zn)
		}
		as.in = ec2.AllocateHostsInput{
			AvailabilityZone:  zp,
			InstanceType:      m.allocType,
			AutoPlacement:     types.AutoPlacementOff,
			Quantity:          m.allocQty,
			ClientToken:       &as.token,
			TagSpecifications: m.allocTags,
		}
		out, err := m.api.AllocateHosts(ctx, &as.in)
		as.in = ec2.AllocateHostsInput{}
		m.recordCall(callAllocateHosts, err)
		if err != nil {
			if isHostCapacityErr(err) {
				m.mu.Lock()
				m.attempts[token] = attempt
				m.zoneBusy[zn] = m.clk.Now().Add(capacityBackoff)
				m.stats.AllocationCapacityErrors++
				m.mu.Unlock()
				m.log.Info("no dedicated host capacity in zone, trying the next", "zone", zn, "err", err)
				capErrs = append(capErrs, err)
				continue
			}
			m.mu.Lock()
			m.stats.PlacementErrors++
			m.countPlacement("error")
			m.mu.Unlock()
			return Placement{}, fmt.Errorf("pool %s: allocate host in %s: %w", m.cfg.Name, zn, err)
		}
		if len(out.HostIds) == 0 {
			return Placement{}, fmt.Errorf("pool %s: allocate host in %s: AWS returned no host id", m.cfg.Name, zn)
		}
		id := out.HostIds[0]
		m.mu.Lock()
		m.attempts[token] = attempt
		m.mu.Unlock()
		th, derr := m.describeHost(ctx, id)
		if derr != nil {
			m.log.Warn("cannot describe the new host; assuming it is available", "host", id, "err", derr)
		}
		p, err := m.adoptAllocated(id, zn, th, token)
		as.hosts = ec2ops.Reset(as.hosts) // (th points into it)
		return p, err
	}
	m.mu.Lock()
	m.stats.PlacementCapacityErrors++
	m.countPlacement("capacity")
	m.mu.Unlock()
	return Placement{}, fmt.Errorf("pool %s: no dedicated host capacity in zones %v: %w", m.cfg.Name, try, errors.Join(append([]error{driver.ErrCapacity}, capErrs...)...))
}

// describeHost fetches one host right after its allocation (not a refresh).
// The answer points into allocScratch.hosts: valid until the caller empties
// it (after adoptAllocated). Caller holds m.allocMu.
func (m *Manager) describeHost(ctx context.Context, id string) (*ec2ops.Host, error) {
	as := &m.allocScratch
	as.descID[0] = id
	as.descIn.HostIds = as.descID[:]
	hosts, _, err := m.ops.DescribeHostStates(ctx, &as.descIn, as.hosts[:0])
	as.descIn.HostIds, as.descID[0] = nil, ""
	as.hosts = hosts
	m.recordCall(callDescribeHosts, err)
	if err != nil {
		return nil, err
	}
	for i := range hosts {
		if hosts[i].ID == id {
			return &hosts[i], nil
		}
	}
	return nil, fmt.Errorf("host %s not listed", id)
}

// adoptAllocated puts a freshly allocated host in the view with token's slot.
func (m *Manager) adoptAllocated(id, zone string, th *ec2ops.Host, token string) (Placement, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	if _, released := m.gone[id]; released || (th != nil && isReleasedState(th.State)) {
		m.stats.PlacementErrors++
		m.countPlacement("error")
		return Placement{}, fmt.Errorf("pool %s: AWS answered AllocateHosts with released host %s (client token reuse)", m.cfg.Name, id)
	}
	h := m.hosts[id]
	if h == nil {
		h = newHost(id, zone, m.slotsPer)
		h.allocatedAt = now
		m.hosts[id] = h
		h.tracked = true
		m.stats.Allocations++
		if th != nil {
			m.setPending(h, now, false)
			_ = m.applyAWS(h, th, now, false) // (touched below)
		} else {
			h.state = hostAvailable
			h.usableAt = now.Add(m.cfg.PendingToAvailableDelay.D())
			h.idleSince = h.usableAt
		}
		m.noteMaxHosts()
		if m.log.Enabled(context.Background(), slog.LevelInfo) {
			m.log.Info("allocated dedicated host", "host", id, "zone", zone, "state", h.state.String())
		}
	}
	if h.free() <= 0 {
		m.touch(h, now)
		m.stats.PlacementErrors++
		m.countPlacement("error")
		return Placement{}, fmt.Errorf("pool %s: allocated host %s has no free slot", m.cfg.Name, id)
	}
	s := m.newSlot(slot{kind: slotPromised, token: token, since: now, host: h})
	h.used = append(h.used, s)
	m.byToken[token] = s
	if h.state == hostAvailable && !h.placeableAt().After(now) {
		s.kind = slotReserved
		m.touch(h, now)
		m.stats.Placements++
		m.countPlacement("ok")
		m.signal()
		return Placement{HostID: h.id, Zone: h.zone}, nil
	}
	m.touch(h, now)
	m.stats.PlacementCapacityErrors++
	m.countPlacement("capacity")
	m.signal()
	return Placement{}, capacityErr("pool %s: host %s allocated, not available yet", m.cfg.Name, id)
}

// buildHostTags are the tags of pool hosts (and scrub instances): built
// once by New (m.tagList), never mutated (the SDK and the world only read
// them).
func (m *Manager) buildHostTags() []types.Tag {
	keys := make([]string, 0, len(m.tags))
	for k := range m.tags {
		if k != TagPoolName && k != TagPoolPrefix+m.cfg.Name {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	tags := make([]types.Tag, 0, len(keys)+2)
	for _, k := range keys {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(m.tags[k])})
	}
	tags = append(tags,
		types.Tag{Key: aws.String(TagPoolPrefix + m.cfg.Name), Value: aws.String("")},
		types.Tag{Key: aws.String(TagPoolName), Value: aws.String(m.cfg.Name)})
	return tags
}

// Bind records that RunInstances succeeded on token's reservation.
func (m *Manager) Bind(token, hostID, instanceID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	if prev := m.byInstance[instanceID]; prev != nil && prev.kind == slotAdopted {
		// a refresh saw the instance before Bind: fold it into the reservation
		prev.host.removeSlot(prev)
		m.forgetSlot(prev)
		m.touch(prev.host, now)
	}
	s := m.byToken[token]
	if s == nil || s.host.id != hostID {
		// (the host by id only here: the usual Bind finds it through the
		// reservation, one string hash fewer)
		h := m.hosts[hostID]
		if h == nil {
			m.log.Warn("bind on a host the pool does not know", "host", hostID, "instance", instanceID)
			return
		}
		s = m.newSlot(slot{kind: slotBound, token: token, host: h})
		if m.byToken[token] == nil {
			m.byToken[token] = s
		}
		h.used = append(h.used, s)
	}
	s.kind = slotBound
	s.instanceID = instanceID
	s.since = now
	m.byInstance[instanceID] = s
	m.touch(s.host, now)
}

// Unreserve frees token's slot after RunInstances failed on it. The host is
// kept out of placement for a short while and the view is refreshed, since
// the failure may be something the view does not know (e.g. the host is
// not really available yet).
func (m *Manager) Unreserve(token, hostID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	s := m.byToken[token]
	if s == nil || s.host.id != hostID {
		return
	}
	h := s.host
	h.removeSlot(s)
	m.forgetSlot(s)
	m.recycleSlot(s)
	h.suspectUntil = now.Add(suspectBackoff)
	m.wantRefresh = true
	m.becameEmpty(h, now)
	m.touch(h, now)
	m.signal()
}

// InstanceGone records that the driver terminated its instance on a host; a
// mac host goes pending (scrubbing) as AWS does.
// It keeps neither id (the driver passes views of its resource's data).
func (m *Manager) InstanceGone(hostID, instanceID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	var known *host // m.hosts[hostID] when found without the lookup
	if s := m.byInstance[instanceID]; s != nil {
		h := s.host
		h.removeSlot(s)
		if instanceID != "" && s.instanceID == instanceID {
			// forgetSlot, knowing that m.byInstance[instanceID] == s
			delete(m.byInstance, instanceID)
			m.forgetToken(s)
		} else {
			m.forgetSlot(s)
		}
		if s.token != "" && len(m.attempts) > 0 {
			// the application is done with the pool: its allocation
			// attempt counter would otherwise stay for the node's life
			// (most tokens never allocated: an empty map needs no hash)
			delete(m.attempts, s.token)
		}
		if h.id != hostID {
			m.afterInstanceGone(h, now)
		} else if h.tracked { // (tracked: m.hosts[h.id] == h)
			known = h
		}
		m.recycleSlot(s)
	}
	if known == nil {
		known = m.hosts[hostID]
	}
	if known != nil {
		m.afterInstanceGone(known, now)
	}
	m.signal()
}

func (m *Manager) afterInstanceGone(h *host, now time.Time) {
	if m.mac && h.state == hostAvailable {
		m.setPending(h, now, true)
	}
	m.becameEmpty(h, now)
	m.touch(h, now)
}

// setPending marks a host pending from now. Caller holds m.mu.
func (m *Manager) setPending(h *host, now time.Time, scrub bool) {
	h.state = hostPending
	h.pendingSince = now
	h.pendingKnown = true
	h.scrubbed = scrub
	est := m.allocEst
	if scrub {
		est = m.scrubEst
	}
	h.expectAvail = now.Add(est)
	h.pollDeferred = false
}

// becameEmpty starts the idle period of a host that just lost its last slot.
func (m *Manager) becameEmpty(h *host, now time.Time) {
	if len(h.used) != 0 {
		return
	}
	h.emptiedAt = now
	h.idleSince = now
	if h.usableAt.After(now) {
		h.idleSince = h.usableAt
	}
}

// Capacity is the number of instances the pool could take now: free slots on
// available hosts plus (max - hosts) × slots per host. No network call.
func (m *Manager) Capacity(zones []string) int64 {
	zs, err := m.zonesFor(zones)
	if err != nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	m.promote(now)
	var n int64
	for _, zn := range zs {
		if z := m.zones[zn]; z != nil {
			n += int64(z.freeSlots)
		}
	}
	if more := m.cfg.Max - len(m.hosts) - m.allocating; more > 0 && m.anyOpenZone(zs, now) {
		n += int64(more) * int64(m.slotsPer)
	}
	return n
}

// signal wakes Run early. Non-blocking.
func (m *Manager) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) noteMaxHosts() {
	if len(m.hosts) > m.stats.MaxHosts {
		m.stats.MaxHosts = len(m.hosts)
	}
}
