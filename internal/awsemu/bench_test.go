package awsemu

import (
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/cputime"
	"github.com/aquarium-fish/aquarium-fish/internal/ec2ops"
)

// cpuMeter reports process CPU time per op (cpu-ns/op) next to wall time:
// on a shared, overloaded machine wall time mostly measures waiting.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func startCPU(b *testing.B) *cpuMeter { return &cpuMeter{b: b, start: cputime.Process()} }

func (m *cpuMeter) stop() {
	if n := m.b.N; n > 0 {
		m.b.ReportMetric(float64(cputime.Process()-m.start)/float64(n), "cpu-ns/op")
	}
}

func benchWorld(b *testing.B, hosts int) (*World, *clock.Virtual, []string) {
	b.Helper()
	w, clk := newTestWorld(b, func(s *Spec) {
		for i := range s.Quotas {
			s.Quotas[i].Value = 100000
		}
	})
	out, err := w.AllocateHosts(bg, &ec2.AllocateHostsInput{AvailabilityZone: aws.String("us-west-2a"), InstanceType: aws.String("mac2.metal"), Quantity: aws.Int32(int32(hosts))})
	if err != nil {
		b.Fatal(err)
	}
	return w, clk, out.HostIds
}

// BenchmarkPlaceTerminate500Hosts: one op = RunInstances on a mac2.metal
// host + TerminateInstances, cycling over 500 hosts; the virtual clock moves
// so that each host has finished scrubbing when its turn comes again
// (includes lazy purge of terminated instances and ledger appends).
func BenchmarkPlaceTerminate500Hosts(b *testing.B) {
	w, clk, hosts := benchWorld(b, 500)
	step := 90*time.Minute/500 + time.Second
	in := &ec2.RunInstancesInput{ImageId: aws.String(macArmImage), InstanceType: "mac2.metal", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &types.Placement{Tenancy: types.TenancyHost}}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU(b)
	defer cpu.stop()
	for i := 0; b.Loop(); i++ {
		in.Placement.HostId = aws.String(hosts[i%len(hosts)])
		out, err := w.RunInstances(bg, in)
		if err != nil {
			b.Fatalf("iteration %d: %v", i, err)
		}
		if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(out.Instances[0].InstanceId)}}); err != nil {
			b.Fatal(err)
		}
		clk.Advance(step)
	}
}

// BenchmarkDescribeHosts500 lists 500 hosts in one call.
func BenchmarkDescribeHosts500(b *testing.B) {
	w, _, _ := benchWorld(b, 500)
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.stop()
	for b.Loop() {
		out, err := w.DescribeHosts(bg, &ec2.DescribeHostsInput{})
		if err != nil || len(out.Hosts) != 500 {
			b.Fatal(err)
		}
	}
}

// BenchmarkBillingYear: one op = 12 monthly BillingTotals queries over a ledger
// of a simulated year (~20k hosts allocated/released, 175k instances).
func BenchmarkBillingYear(b *testing.B) {
	w, clk := newTestWorld(b, func(s *Spec) {
		for i := range s.Quotas {
			s.Quotas[i].Value = 1e9
		}
		s.Timings.ScrubbingDuration = 0
		s.Timings.MacMinAllocation = 0
	})
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clk.Set(start)
	const jobs = 175000
	step := 365 * 24 * time.Hour / jobs
	var hid string
	for i := range jobs {
		if i%9 == 0 {
			if hid != "" {
				if _, err := w.ReleaseHosts(bg, &ec2.ReleaseHostsInput{HostIds: []string{hid}}); err != nil {
					b.Fatal(err)
				}
			}
			hid = allocHost(b, w, "mac2.metal", "us-west-2a", false)
		}
		out, err := runOnHost(w, hid, "mac2.metal", macArmImage)
		if err != nil {
			b.Fatal(err)
		}
		clk.Advance(step)
		if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(out.Instances[0].InstanceId)}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU(b)
	defer cpu.stop()
	for b.Loop() {
		total := 0.0
		for m := time.January; m <= time.December; m++ {
			from := time.Date(2025, m, 1, 0, 0, 0, 0, time.UTC)
			total += w.BillingTotals(from, from.AddDate(0, 1, 0)).TotalInstanceSeconds
		}
		if total <= 0 {
			b.Fatal("empty ledger")
		}
	}
}

// BenchmarkNewDefaultWorld builds the default world (what every test and
// simulator run starts with).
func BenchmarkNewDefaultWorld(b *testing.B) {
	clk := clock.NewVirtual(t0)
	cpu := startCPU(b)
	defer cpu.stop()
	for b.Loop() {
		if _, err := New(clk, DefaultSpec()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunTerminateLikeDriver: one op = RunInstances shaped like the AWS
// driver's job launch (client token, instance and volume tags, subnet,
// security group, user data, root volume size) on a mac2.metal host, then
// TerminateInstances; 500 hosts cycle through scrubbing.
func BenchmarkRunTerminateLikeDriver(b *testing.B) {
	w, clk, hosts := benchWorld(b, 500)
	sn, err := w.DescribeSubnets(bg, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("availability-zone"), Values: []string{"us-west-2a"}}}})
	if err != nil || len(sn.Subnets) == 0 {
		b.Fatal(err)
	}
	subnet := aws.ToString(sn.Subnets[0].SubnetId)
	step := 90*time.Minute/500 + time.Second
	tags := []types.Tag{{Key: aws.String("Name"), Value: aws.String("fish-app-123")}, {Key: aws.String("aquarium-fish/application"), Value: aws.String("0b4f6a2e-7f3c-4c1e-9a55-1c2d3e4f5a6b")},
		{Key: aws.String("aquarium-fish/node"), Value: aws.String("node-1")}, {Key: aws.String("aquarium-fish/pool"), Value: aws.String("mac")}}
	in := &ec2.RunInstancesInput{ImageId: aws.String(macArmImage), InstanceType: "mac2.metal", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(subnet), UserData: aws.String("IyEvYmluL3NoCmVjaG8gaGVsbG8K"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(200), VolumeType: types.VolumeTypeGp3}}},
		TagSpecifications:   []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}, {ResourceType: types.ResourceTypeVolume, Tags: tags}},
		Placement:           &types.Placement{Tenancy: types.TenancyHost}}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU(b)
	defer cpu.stop()
	for i := 0; b.Loop(); i++ {
		in.Placement.HostId = aws.String(hosts[i%len(hosts)])
		in.ClientToken = aws.String("fish-" + strconv.Itoa(i))
		out, err := w.RunInstances(bg, in)
		if err != nil {
			b.Fatalf("iteration %d: %v", i, err)
		}
		if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(out.Instances[0].InstanceId)}}); err != nil {
			b.Fatal(err)
		}
		clk.Advance(step)
	}
}

// BenchmarkDescribeHostByID: one DescribeHosts call naming one host among
// 500 (what the pool manager does when a pending host is due).
func BenchmarkDescribeHostByID(b *testing.B) {
	w, _, hosts := benchWorld(b, 500)
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.stop()
	for i := 0; b.Loop(); i++ {
		out, err := w.DescribeHosts(bg, &ec2.DescribeHostsInput{HostIds: []string{hosts[i%len(hosts)]}})
		if err != nil || len(out.Hosts) != 1 {
			b.Fatal(err)
		}
	}
}

// BenchmarkDescribeHosts1to3IDs: DescribeHosts naming 1, 2 or 3 hosts (in
// turn) among 500, like the pool's polls of its pending hosts.
func BenchmarkDescribeHosts1to3IDs(b *testing.B) {
	w, _, hosts := benchWorld(b, 500)
	var ids [3]string
	in := &ec2.DescribeHostsInput{}
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.stop()
	for i := 0; b.Loop(); i++ {
		n := 1 + i%3
		for k := range n {
			ids[k] = hosts[(i*7+k*131)%len(hosts)]
		}
		in.HostIds = ids[:n]
		out, err := w.DescribeHosts(bg, in)
		if err != nil || len(out.Hosts) != n {
			b.Fatal(err)
		}
	}
}

// BenchmarkScrubCycle: one op = a driver-shaped launch on a mac2.metal host
// (as in BenchmarkRunTerminateLikeDriver), its termination and a
// DescribeHosts of that host by id (now scrubbing), cycling over 500 hosts.
// sdk calls the SDK-shaped methods (reading what the callers read),
// adapter goes through ec2ops.Adapter over them, native through the
// world's ec2ops methods (the simulator's path).
func BenchmarkScrubCycle(b *testing.B) {
	type cycle func(in *ec2.RunInstancesInput, hin *ec2.DescribeHostsInput) error
	for _, mode := range []string{"sdk", "adapter", "native"} {
		b.Run(mode, func(b *testing.B) {
			w, clk, hosts := benchWorld(b, 500)
			step := 90*time.Minute/500 + time.Second
			in := &ec2.RunInstancesInput{ImageId: aws.String(macArmImage), InstanceType: "mac2.metal", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
				SubnetId: aws.String("subnet-0a9a1a100000000a1"), UserData: aws.String("IyEvYmluL3NoCmVjaG8gaGVsbG8K"),
				BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(200), VolumeType: types.VolumeTypeGp3}}},
				TagSpecifications:   []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("fish-app-123")}}}},
				Placement:           &types.Placement{Tenancy: types.TenancyHost}}
			hin := &ec2.DescribeHostsInput{}
			// the requests' host fields, made before the loop (not measured)
			hostPtrs, hostIDs := make([]*string, len(hosts)), make([][]string, len(hosts))
			for i, h := range hosts {
				hostPtrs[i], hostIDs[i] = aws.String(h), []string{h}
			}
			var run cycle
			switch mode {
			case "sdk":
				run = func(in *ec2.RunInstancesInput, hin *ec2.DescribeHostsInput) error {
					out, err := w.RunInstances(bg, in)
					if err != nil {
						return err
					}
					if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(out.Instances[0].InstanceId)}}); err != nil {
						return err
					}
					hout, err := w.DescribeHosts(bg, hin)
					if err == nil && hout.Hosts[0].State != types.AllocationStatePending {
						b.Fatalf("host %s", hout.Hosts[0].State)
					}
					return err
				}
			default:
				api := ec2ops.For(w)
				if mode == "adapter" {
					api = ec2ops.Adapter{C: w}
				}
				var insts []ec2ops.Instance
				var hs []ec2ops.Host
				ids := make([]string, 1)
				run = func(in *ec2.RunInstancesInput, hin *ec2.DescribeHostsInput) error {
					var err error
					if insts, err = api.LaunchInstances(bg, in, insts[:0]); err != nil {
						return err
					}
					ids[0] = insts[0].ID
					if err := api.TerminateInstanceIDs(bg, ids); err != nil {
						return err
					}
					hs, _, err = api.DescribeHostStates(bg, hin, ec2ops.Reset(hs))
					if err == nil && hs[0].State != types.AllocationStatePending {
						b.Fatalf("host %s", hs[0].State)
					}
					return err
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU(b)
			defer cpu.stop()
			for i := 0; b.Loop(); i++ {
				in.Placement.HostId, hin.HostIds = hostPtrs[i%len(hosts)], hostIDs[i%len(hosts)]
				if err := run(in, hin); err != nil {
					b.Fatalf("iteration %d: %v", i, err)
				}
				clk.Advance(step)
			}
		})
	}
}

// BenchmarkDriverCycleNative: one op = a launch shaped like the AWS
// driver's through the world's ec2ops methods (client token; the same
// five tags, one of them per job, for the instance and its volume; subnet,
// group, user data, root volume size) on a mac2.metal host, then its
// termination; 500 hosts cycle through scrubbing. The pool's scrub launch
// (fixed tags) alternates with it, as in the simulator.
func BenchmarkDriverCycleNative(b *testing.B) {
	w, clk, hosts := benchWorld(b, 500)
	step := 90*time.Minute/500 + time.Second
	node, pool := aws.String("node-1"), aws.String("mac")
	keys := [5]*string{aws.String("AquariumApplication"), aws.String("AquariumLabel"), aws.String("AquariumNode"), aws.String("Name"), aws.String("aquarium-fish/pool")}
	hostPtrs, apps, names := make([]*string, len(hosts)), make([]*string, len(hosts)), make([]*string, len(hosts))
	for i, h := range hosts {
		hostPtrs[i] = aws.String(h)
		apps[i] = aws.String("0b4f6a2e-7f3c-4c1e-9a55-" + strconv.Itoa(100000+i))
		names[i] = aws.String("label-0b4f6a2e-7f3c-4c1e-9a55-" + strconv.Itoa(100000+i))
	}
	label := aws.String("3f1d2c4b-5a69-4788-9a0b-1c2d3e4f5a6b")
	var tags [5]types.Tag
	specs := []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags[:]}, {ResourceType: types.ResourceTypeVolume, Tags: tags[:]}}
	in := &ec2.RunInstancesInput{ImageId: aws.String(macArmImage), InstanceType: "mac2.metal", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String("subnet-0a9a1a100000000a1"), UserData: aws.String("IyEvYmluL3NoCmVjaG8gaGVsbG8K"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(200), VolumeType: types.VolumeTypeGp3}}},
		TagSpecifications:   specs, Placement: &types.Placement{Tenancy: types.TenancyHost}}
	scrubTags := []types.Tag{{Key: aws.String("aquarium-fish/pool"), Value: pool}, {Key: aws.String("Name"), Value: aws.String("aquarium-scrub-mac")}}
	scrub := &ec2.RunInstancesInput{ImageId: aws.String(macArmImage), InstanceType: "mac2.metal", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId:          aws.String("subnet-0a9a1a100000000a1"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: scrubTags}}, Placement: &types.Placement{Tenancy: types.TenancyHost}}
	tokens := make([]string, 2*len(hosts))
	for i := range tokens {
		tokens[i] = "fish-token-" + strconv.Itoa(i)
	}
	var insts []ec2ops.Instance
	ids := make([]string, 1)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU(b)
	defer cpu.stop()
	for i := 0; b.Loop(); i++ {
		k := i % len(hosts)
		req := in
		if i%2 == 1 {
			req = scrub
		} else {
			tags = [5]types.Tag{{Key: keys[0], Value: apps[k]}, {Key: keys[1], Value: label}, {Key: keys[2], Value: node}, {Key: keys[3], Value: names[k]}, {Key: keys[4], Value: pool}}
		}
		req.Placement.HostId = hostPtrs[k]
		req.ClientToken = &tokens[i%len(tokens)]
		var err error
		if insts, err = w.LaunchInstances(bg, req, insts[:0]); err != nil {
			b.Fatalf("iteration %d: %v", i, err)
		}
		ids[0] = insts[0].ID
		if err := w.TerminateInstanceIDs(bg, ids); err != nil {
			b.Fatal(err)
		}
		clk.Advance(step)
	}
}

// BenchmarkRunHash: the idempotency hash of a driver-shaped request (tags
// parsed beforehand, as runInstances does).
func BenchmarkRunHash(b *testing.B) {
	tags := []types.Tag{{Key: aws.String("AquariumApplication"), Value: aws.String("0b4f6a2e-7f3c-4c1e-9a55-1c2d3e4f5a6b")}, {Key: aws.String("Name"), Value: aws.String("label-0b4f6a2e")}}
	in := &ec2.RunInstancesInput{ImageId: aws.String(macArmImage), InstanceType: "mac2.metal", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String("subnet-0a9a1a100000000a1"), UserData: aws.String("IyEvYmluL3NoCmVjaG8gaGVsbG8K"), SecurityGroupIds: []string{"sg-0123456789abcdef0"},
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(200), VolumeType: types.VolumeTypeGp3}}},
		TagSpecifications:   []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}, {ResourceType: types.ResourceTypeVolume, Tags: tags}},
		Placement:           &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String("h-0123456789abcdef0"), AvailabilityZone: aws.String("us-west-2a")}, ClientToken: aws.String("tok")}
	parsed := new(tagCache).parseSpecs(nil, in.TagSpecifications)
	b.ReportAllocs()
	var sink uint64
	for b.Loop() {
		sink += runHash(in, parsed)
	}
	_ = sink
}
