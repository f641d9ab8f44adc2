package pool

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/cputime"
	"github.com/aquarium-fish/aquarium-fish/internal/ec2ops"
)

// fakeEC2 is a minimal mac-host EC2 for benchmarks of the pool's own cost:
// it answers from prebuilt records in a few nanoseconds and allocates
// nothing in steady state, so a benchmark on it measures the manager alone.
// It keeps just enough state for realistic cycles: an instance ending makes
// its host pending for scrubTime, then available again. Its outputs are
// reused between calls (the pool must not keep them).
type fakeEC2 struct {
	clk       *clock.Virtual
	scrubTime time.Duration
	hosts     map[string]*fakeHost
	order     []*fakeHost
	inst      map[string]*fakeHost // instance id -> host
	allocated int

	descOut ec2.DescribeHostsOutput
	termOut ec2.TerminateInstancesOutput
	relOut  ec2.ReleaseHostsOutput
	images  ec2.DescribeImagesOutput
	vpcs    ec2.DescribeVpcsOutput
	subnets ec2.DescribeSubnetsOutput
	types   ec2.DescribeInstanceTypesOutput
}

type fakeHost struct {
	rec     types.Host
	availAt time.Time
	gone    bool
	// two prebuilt instances per host (a mac host runs one at a time)
	runOut [2]ec2.RunInstancesOutput
	hi     [2][]types.HostInstance
	next   int
}

func newFakeEC2(clk *clock.Virtual, scrubTime time.Duration) *fakeEC2 {
	f := &fakeEC2{clk: clk, scrubTime: scrubTime, hosts: map[string]*fakeHost{}, inst: map[string]*fakeHost{}}
	f.images.Images = []types.Image{{ImageId: aws.String("ami-0123456789abcdef0"), CreationDate: aws.String("2025-01-01T00:00:00.000Z")}}
	f.vpcs.Vpcs = []types.Vpc{{VpcId: aws.String("vpc-1")}}
	f.subnets.Subnets = []types.Subnet{{SubnetId: aws.String("subnet-1"), DefaultForAz: aws.Bool(true), AvailableIpAddressCount: aws.Int32(4000)}}
	f.types.InstanceTypes = []types.InstanceTypeInfo{{
		InstanceType:  "mac2.metal",
		VCpuInfo:      &types.VCpuInfo{DefaultVCpus: aws.Int32(8)},
		ProcessorInfo: &types.ProcessorInfo{SupportedArchitectures: []types.ArchitectureType{types.ArchitectureTypeArm64Mac}},
	}}
	return f
}

// runOn launches a (driver) instance on a host, returning its id.
func (f *fakeEC2) runOn(hostID string) string {
	h := f.hosts[hostID]
	out := f.launch(h)
	return *out.Instances[0].InstanceId
}

func (f *fakeEC2) launch(h *fakeHost) *ec2.RunInstancesOutput {
	i := h.next
	h.next = 1 - h.next
	h.rec.Instances = h.hi[i]
	return &h.runOut[i]
}

// end terminates an instance: its host scrubs for scrubTime.
func (f *fakeEC2) end(id string) {
	if h := f.inst[id]; h != nil && len(h.rec.Instances) > 0 && *h.rec.Instances[0].InstanceId == id {
		h.rec.Instances = nil
		h.rec.State = types.AllocationStatePending
		h.availAt = f.clk.Now().Add(f.scrubTime)
	}
}

func (f *fakeEC2) current(h *fakeHost) *types.Host {
	if h.rec.State == types.AllocationStatePending && !f.clk.Now().Before(h.availAt) {
		h.rec.State = types.AllocationStateAvailable
	}
	return &h.rec
}

func (f *fakeEC2) AllocateHosts(_ context.Context, in *ec2.AllocateHostsInput, _ ...func(*ec2.Options)) (*ec2.AllocateHostsOutput, error) {
	f.allocated++
	id := fmt.Sprintf("h-%017d", f.allocated)
	now := f.clk.Now()
	h := &fakeHost{rec: types.Host{
		HostId: aws.String(id), AvailabilityZone: in.AvailabilityZone, State: types.AllocationStateAvailable,
		AllocationTime: &now,
		HostProperties: &types.HostProperties{InstanceType: in.InstanceType},
		AvailableCapacity: &types.AvailableCapacity{AvailableInstanceCapacity: []types.InstanceCapacity{{
			InstanceType: in.InstanceType, TotalCapacity: aws.Int32(1), AvailableCapacity: aws.Int32(1)}}},
	}}
	for i := range 2 {
		iid := fmt.Sprintf("i-%s-%d", id[2:], i)
		h.runOut[i].Instances = []types.Instance{{InstanceId: aws.String(iid)}}
		h.hi[i] = []types.HostInstance{{InstanceId: aws.String(iid), InstanceType: in.InstanceType}}
		f.inst[iid] = h
	}
	f.hosts[id] = h
	f.order = append(f.order, h)
	return &ec2.AllocateHostsOutput{HostIds: []string{id}}, nil
}

func (f *fakeEC2) DescribeHosts(_ context.Context, in *ec2.DescribeHostsInput, _ ...func(*ec2.Options)) (*ec2.DescribeHostsOutput, error) {
	f.descOut.Hosts = f.descOut.Hosts[:0]
	if len(in.HostIds) > 0 {
		for _, id := range in.HostIds {
			if h := f.hosts[id]; h != nil && !h.gone {
				f.descOut.Hosts = append(f.descOut.Hosts, *f.current(h))
			}
		}
	} else {
		for _, h := range f.order {
			if !h.gone {
				f.descOut.Hosts = append(f.descOut.Hosts, *f.current(h))
			}
		}
	}
	return &f.descOut, nil
}

func (f *fakeEC2) ReleaseHosts(_ context.Context, in *ec2.ReleaseHostsInput, _ ...func(*ec2.Options)) (*ec2.ReleaseHostsOutput, error) {
	for _, id := range in.HostIds {
		if h := f.hosts[id]; h != nil {
			h.gone = true
			delete(f.hosts, id)
			for i := range h.hi {
				delete(f.inst, *h.hi[i][0].InstanceId)
			}
		}
	}
	f.order = slices.DeleteFunc(f.order, func(h *fakeHost) bool { return h.gone })
	f.relOut.Successful = in.HostIds
	return &f.relOut, nil
}

func (f *fakeEC2) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	return f.launch(f.hosts[*in.Placement.HostId]), nil
}

func (f *fakeEC2) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	for _, id := range in.InstanceIds {
		f.end(id)
	}
	return &f.termOut, nil
}

func (f *fakeEC2) DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return &f.images, nil
}

func (f *fakeEC2) DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	return &f.types, nil
}

func (f *fakeEC2) DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return &f.subnets, nil
}

func (f *fakeEC2) DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	return &f.vpcs, nil
}

// DescribeInstances answers the start's search for orphaned scrub
// instances: the fake terminates every scrub instance in the call that
// launched it, so there are none.
func (f *fakeEC2) DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return &ec2.DescribeInstancesOutput{}, nil
}

// nativeFakeEC2 is fakeEC2 with ec2ops.API implemented natively, as the
// in-memory world does, so that the pool-only benchmarks measure the
// manager and not the SDK adapter (whose TerminateInstances request, for
// one, is allocated per call). A separate type: the tests' wrappers of
// *fakeEC2 that fail some SDK calls (run_test.go) must keep going through
// the adapter, which a promoted native method would bypass.
type nativeFakeEC2 struct{ *fakeEC2 }

var _ ec2ops.API = nativeFakeEC2{}

func (f nativeFakeEC2) LaunchInstances(ctx context.Context, in *ec2.RunInstancesInput, dst []ec2ops.Instance) ([]ec2ops.Instance, error) {
	out, err := f.RunInstances(ctx, in)
	if err != nil {
		return dst, err
	}
	for i := range out.Instances {
		dst = append(dst, ec2ops.FromSDKInstance(&out.Instances[i]))
	}
	return dst, nil
}

func (f nativeFakeEC2) TerminateInstanceIDs(_ context.Context, ids []string) error {
	for _, id := range ids {
		f.end(id)
	}
	return nil
}

// DescribeHostStates is DescribeHosts without the SDK answer: the records
// are read where they are.
func (f nativeFakeEC2) DescribeHostStates(_ context.Context, in *ec2.DescribeHostsInput, dst []ec2ops.Host) ([]ec2ops.Host, *string, error) {
	if len(in.HostIds) > 0 {
		for _, id := range in.HostIds {
			if h := f.hosts[id]; h != nil && !h.gone {
				dst = ec2ops.AppendSDKHost(dst, f.current(h))
			}
		}
		return dst, nil, nil
	}
	for _, h := range f.order {
		if !h.gone {
			dst = ec2ops.AppendSDKHost(dst, f.current(h))
		}
	}
	return dst, nil, nil
}

// fakePool is a started mac pool of at most maxHosts on a fakeEC2 with n
// hosts, all idle
// (allocated for a token that gave its reservation back), one every
// stagger so they do not all scrub in the same pass.
func fakePool(b *testing.B, maxHosts, n int, stagger time.Duration) (*Manager, *fakeEC2, *clock.Virtual) {
	clk := clock.NewVirtual(t0)
	api := newFakeEC2(clk, 90*time.Minute)
	cfg := Config{Name: "macs", Type: "mac2.metal", Zones: []string{"us-west-2a"}, Max: maxHosts,
		ScrubbingDelay: core.Duration(5 * time.Minute)}
	m, err := New(cfg, nativeFakeEC2{api}, Options{Clock: clk, Tags: map[string]string{"AquariumNode": "bench-node"}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		b.Fatal(err)
	}
	toks := make([]string, n)
	hostIDs := make([]string, n)
	for i := range n { // all reserved: n hosts
		toks[i] = fmt.Sprintf("idle-%d", i)
		p, err := m.Place(ctx, PlaceRequest{Token: toks[i]})
		if err != nil {
			b.Fatal(err)
		}
		hostIDs[i] = p.HostID
	}
	for i := range n {
		m.Unreserve(toks[i], hostIDs[i])
		clk.Advance(stagger)
	}
	if st := m.Stats(); st.Hosts != n {
		b.Fatalf("%d hosts, want %d", st.Hosts, n)
	}
	return m, api, clk
}

// BenchmarkPoolOnlyScrubCycles is BenchmarkScrubCycles on the fake EC2
// (the pool's own cost): 50 idle mac hosts (made idle 1m53s apart, as in
// the simulator where hosts rarely scrub in the same pass) scrub every
// ~1h35m for 20 virtual hours, Reconcile run at every wake-up it asks for.
func BenchmarkPoolOnlyScrubCycles(b *testing.B) {
	ctx := context.Background()
	var scrubs, passes, mallocs uint64
	var cpu time.Duration
	for range b.N {
		b.StopTimer()
		m, _, clk := fakePool(b, 50, 50, 113*time.Second)
		st0 := m.Stats()
		until := clk.Now().Add(20 * time.Hour)
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		cpu0 := cputime.Process()
		b.StartTimer()
		for clk.Now().Before(until) {
			next, err := m.Reconcile(ctx)
			if err != nil {
				b.Fatal(err)
			}
			passes++
			clk.Set(next)
		}
		b.StopTimer()
		cpu += cputime.Process() - cpu0
		runtime.ReadMemStats(&ms1)
		st := m.Stats()
		scrubs += uint64(st.Scrubs - st0.Scrubs)
		mallocs += ms1.Mallocs - ms0.Mallocs
	}
	if scrubs == 0 {
		b.Fatal("no scrub")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(passes), "ns/reconcile")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(passes), "cpu-ns/reconcile")
	b.ReportMetric(float64(mallocs)/float64(passes), "allocs/reconcile")
	b.ReportMetric(float64(mallocs)/float64(scrubs), "allocs/scrub")
	b.ReportMetric(float64(passes)/float64(scrubs), "reconciles/scrub")
	b.ReportMetric(float64(scrubs)/float64(b.N), "scrubs/op")
}

// BenchmarkPoolOnlyJobs drives a simulator-like mix on the fake EC2 (max
// 500 mac hosts): during the first 12 virtual hours of each day a 45-minute
// job starts every 90 s (Place, the driver's launch, Bind; at the end
// TerminateInstances, InstanceGone), the pool's wake-up is asked after each
// driver call, and Reconcile runs at every wake-up. Ended jobs' hosts are
// polled until available; idle hosts scrub until they are released, and
// hosts are allocated again the next morning. One op is one virtual day.
func BenchmarkPoolOnlyJobs(b *testing.B) {
	const (
		hosts = 500
		every = 90 * time.Second
		exec  = 45 * time.Minute
		busy  = 12 * time.Hour
	)
	ctx := context.Background()
	m, api, clk := fakePool(b, hosts, 0, 0)
	toks := make([]string, 4096) // reused: a token is free again once its job ended
	for i := range toks {
		toks[i] = fmt.Sprintf("job-%d", i)
	}
	type job struct {
		tok, host, inst string
		end             time.Time
	}
	running := make([]job, 0, 64)
	nextJob := clk.Now()
	nextRec := clk.Now()
	ji, passes := 0, 0
	step := func(until time.Time) {
		for {
			now := clk.Now()
			// job ends (running is in start order, all jobs last exec)
			for len(running) > 0 && !running[0].end.After(now) {
				j := running[0]
				running = append(running[:0], running[1:]...)
				api.end(j.inst)
				m.InstanceGone(j.host, j.inst)
				if w := m.NextWake(); w.Before(nextRec) {
					nextRec = w
				}
			}
			if !nextJob.After(now) {
				tok := toks[ji%len(toks)]
				ji++
				if p, err := m.Place(ctx, PlaceRequest{Token: tok}); err == nil {
					inst := api.runOn(p.HostID)
					m.Bind(tok, p.HostID, inst)
					running = append(running, job{tok: tok, host: p.HostID, inst: inst, end: now.Add(exec)})
				}
				if w := m.NextWake(); w.Before(nextRec) {
					nextRec = w
				}
				nextJob = now.Add(every)
				if d := nextJob.Sub(t0) % (24 * time.Hour); d >= busy {
					nextJob = nextJob.Add(24*time.Hour - d) // next morning
				}
			}
			if !nextRec.After(now) {
				next, err := m.Reconcile(ctx)
				if err != nil {
					b.Fatal(err)
				}
				nextRec = next
				passes++
			}
			t := earliest(nextJob, nextRec, until)
			if len(running) > 0 {
				t = earliest(t, running[0].end)
			}
			if !t.After(now) {
				if !now.Before(until) {
					return
				}
				t = now.Add(time.Second)
			}
			clk.Set(t)
		}
	}
	// warm up: a day, so every map and scratch slice has grown
	step(clk.Now().Add(24 * time.Hour))
	st0 := m.Stats()
	passes = 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for range b.N {
		step(clk.Now().Add(24 * time.Hour))
	}
	b.StopTimer()
	cpu := cputime.Process() - cpu0
	st := m.Stats()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(st.Scrubs-st0.Scrubs)/float64(b.N), "scrubs/op")
	b.ReportMetric(float64(st.Placements-st0.Placements)/float64(b.N), "placements/op")
	b.ReportMetric(float64(st.Polls-st0.Polls)/float64(b.N), "polls/op")
	b.ReportMetric(float64(passes)/float64(b.N), "reconciles/op")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(passes), "cpu-ns/reconcile")
}

func earliest(ts ...time.Time) time.Time {
	e := ts[0]
	for _, t := range ts[1:] {
		if t.Before(e) {
			e = t
		}
	}
	return e
}
