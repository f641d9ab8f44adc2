package aws

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/cputime"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

// BenchmarkAllocateDeallocatePoolInMemory: the simulator's exact path, a
// pooled mac2.metal label with the simulator's definition (image, type,
// pool; default VPC) and its cache TTL, Allocate then Deallocate per op against the in-memory
// world. Between ops the host comes back (world scrub 0, pool Reconcile)
// with the timer stopped, so the numbers are Allocate + Deallocate only
// (the world's and the pool's side of those calls included). cpu-ns/op is
// process CPU over the timed parts.
func BenchmarkAllocateDeallocatePoolInMemory(b *testing.B) {
	spec := awsemu.DefaultSpec()
	spec.Timings.ScrubbingDuration = 0
	spec.Timings.AvailableLag = 0
	e := newEnv(b, `{"region":"us-west-2","dedicated_pool":{"macs":{"type":"mac2.metal","zones":["us-west-2a"],"max":1}}}`,
		envOpt{inMemory: true, spec: spec, opts: []Option{WithLogger(slog.New(slog.DiscardHandler)), WithCacheTTL(6 * time.Hour), WithRetry(1, time.Second)}})
	def := e.def(`{"image":"macos-14","instance_type":"mac2.metal","pool":"macs"}`, core.Resources{})
	m := e.d.Pools()["macs"]
	uids := make([]string, b.N+1)
	for i := range uids {
		uids[i] = "0b4e7c1a-3c2f-4b55-9a0e-" + strconv.Itoa(100000000000+i)
	}
	alloc := func(i int) {
		res, err := e.d.Allocate(e.ctx, driver.AllocateRequest{ApplicationUID: uids[i], Definition: def})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.d.Deallocate(e.ctx, *res); err != nil {
			b.Fatal(err)
		}
	}
	// settle brings the pool back to a free slot: virtual time passes and
	// Reconcile sees the host available again.
	settle := func() {
		for try := 0; m.Capacity(nil) == 0 || try == 0; try++ {
			if try == 100 {
				b.Fatal("the pool has no free slot")
			}
			e.clk.Advance(time.Minute)
			if _, err := m.Reconcile(e.ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	alloc(b.N) // warm up: the pool allocates its host, the caches fill
	settle()
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0 := cputime.Process()
		alloc(i)
		cpu += cputime.Process() - c0
		b.StopTimer()
		settle()
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cannedEC2 answers RunInstances and TerminateInstances with prepared
// outputs (no world work) and passes every other call to the world.
type cannedEC2 struct {
	EC2API
	run  ec2.RunInstancesOutput
	term ec2.TerminateInstancesOutput
}

func (c *cannedEC2) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	inst := &c.run.Instances[0]
	inst.Placement.HostId = in.Placement.HostId
	inst.SubnetId = in.SubnetId
	return &c.run, nil
}

func (c *cannedEC2) TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	return &c.term, nil
}

// BenchmarkAllocateDeallocateOwn measures the driver's own cost on the
// simulator's path (a pooled label): RunInstances and TerminateInstances
// answer at once with canned outputs, and the pool (multi-slot c5.large
// hosts, a slot is free again as soon as its instance is gone) places
// without AWS calls. What is left is the driver plus the pool's
// Place/Bind/InstanceGone.
func BenchmarkAllocateDeallocateOwn(b *testing.B) {
	clk := clock.NewVirtual(t0)
	w, err := awsemu.New(clk, nil)
	if err != nil {
		b.Fatal(err)
	}
	canned := &cannedEC2{EC2API: w}
	canned.run.Instances = []ec2types.Instance{{
		InstanceId:       awssdk.String("i-0123456789abcdef0"),
		PrivateIpAddress: awssdk.String("10.0.0.12"),
		State:            &ec2types.InstanceState{Name: ec2types.InstanceStateNamePending},
		Placement:        &ec2types.Placement{AvailabilityZone: awssdk.String("us-west-2a"), Tenancy: ec2types.TenancyHost},
		NetworkInterfaces: []ec2types.InstanceNetworkInterface{{MacAddress: awssdk.String("02:00:00:00:00:01"),
			Attachment: &ec2types.InstanceNetworkInterfaceAttachment{DeviceIndex: awssdk.Int32(0)}}},
	}}
	d := New("aws", WithClock(clk), WithClients(Clients{EC2: canned, KMS: w, Quotas: w, STS: w}),
		WithoutBackgroundRunners(), WithLogger(slog.New(slog.DiscardHandler)),
		WithCacheTTL(6*time.Hour), WithRetry(1, time.Second))
	ctx := context.Background()
	if err := d.Prepare(ctx, []byte(`{"region":"us-west-2","dedicated_pool":{"c5":{"type":"c5.large","zones":["us-west-2a"],"max":1}}}`)); err != nil {
		b.Fatal(err)
	}
	def := core.Definition{Driver: "aws", Options: []byte(`{"image":"ubuntu-22.04","instance_type":"c5.large","pool":"c5"}`)}
	uids := make([]string, b.N+1)
	for i := range uids {
		uids[i] = "0b4e7c1a-3c2f-4b55-9a0e-" + strconv.Itoa(100000000000+i)
	}
	alloc := func(i int) {
		res, err := d.Allocate(ctx, driver.AllocateRequest{ApplicationUID: uids[i], Definition: def})
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Deallocate(ctx, *res); err != nil {
			b.Fatal(err)
		}
	}
	// Warm up: the pool allocates its host, which must become available.
	for try := 0; d.Pools()["c5"].Capacity(nil) == 0 || try == 0; try++ {
		if try == 100 {
			b.Fatal("the pool has no free slot")
		}
		if try == 0 {
			_, _ = d.Allocate(ctx, driver.AllocateRequest{ApplicationUID: "warm", Definition: def})
		}
		clk.Advance(time.Minute)
		if _, err := d.Pools()["c5"].Reconcile(ctx); err != nil {
			b.Fatal(err)
		}
	}
	alloc(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		alloc(i)
	}
	b.ReportMetric(float64((cputime.Process()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
