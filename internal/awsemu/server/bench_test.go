package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
)

// latencies collects per-call wall times of a benchmark and reports
// round trips per second and p50/p99 latency as custom metrics.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	var total time.Duration
	for _, d := range l {
		total += d
	}
	pct := func(p float64) float64 { return float64(l[int(p*float64(len(l)-1))].Microseconds()) }
	b.ReportMetric(float64(len(l))/total.Seconds(), "rt/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// benchClients serves a default world with room for many instances.
func benchClients(b *testing.B) *clients {
	return newClients(b, func(s *awsemu.Spec) {
		for i := range s.Quotas {
			s.Quotas[i].Value = 1e9
		}
	})
}

func runOne(ctx context.Context, cl interface {
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
}) (string, error) {
	out, err := cl.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(linuxX86Image), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(subnetA), SecurityGroupIds: []string{sshGroupID},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("bench")}}}}})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Instances[0].InstanceId), nil
}

// BenchmarkHTTPDescribeHosts500 lists 500 mac2.metal hosts in one answer
// through the real EC2 client over loopback HTTP.
func BenchmarkHTTPDescribeHosts500(b *testing.B) {
	ctx := context.Background()
	c := benchClients(b)
	for _, zone := range []string{"us-west-2a", "us-west-2b"} {
		if _, err := c.world.AllocateHosts(ctx, &ec2.AllocateHostsInput{AvailabilityZone: aws.String(zone),
			InstanceType: aws.String("mac2.metal"), Quantity: aws.Int32(250),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeDedicatedHost,
				Tags: []types.Tag{{Key: aws.String("AquariumDedicatedPoolName"), Value: aws.String("bench")}}}}}); err != nil {
			b.Fatal(err)
		}
	}
	lat := make(latencies, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		out, err := c.ec2.DescribeHosts(ctx, &ec2.DescribeHostsInput{})
		lat = append(lat, time.Since(start))
		if err != nil || len(out.Hosts) != 500 {
			b.Fatalf("DescribeHosts: %v (%d hosts)", err, len(out.Hosts))
		}
	}
	b.StopTimer()
	lat.report(b)
}

// BenchmarkHTTPRunInstances launches one t3.micro per call over HTTP (the
// instance is terminated in-process, untimed, to keep the world small).
func BenchmarkHTTPRunInstances(b *testing.B) {
	ctx := context.Background()
	c := benchClients(b)
	lat := make(latencies, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		id, err := runOne(ctx, c.ec2)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := c.world.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
			b.Fatal(err)
		}
		c.clk.Advance(2 * time.Hour) // terminated and purged: its IP is free again
		b.StartTimer()
	}
	b.StopTimer()
	lat.report(b)
}

// BenchmarkHTTPTerminateInstances terminates one instance per call over
// HTTP (launched in-process, untimed).
func BenchmarkHTTPTerminateInstances(b *testing.B) {
	ctx := context.Background()
	c := benchClients(b)
	lat := make(latencies, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		id, err := runOne(ctx, c.world)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		out, err := c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		lat = append(lat, time.Since(start))
		if err != nil || len(out.TerminatingInstances) != 1 {
			b.Fatalf("TerminateInstances: %v", err)
		}
		b.StopTimer()
		c.clk.Advance(2 * time.Hour)
		b.StartTimer()
	}
	b.StopTimer()
	lat.report(b)
}

// BenchmarkEncodeDescribeHosts500 is the XML encoding share of the above.
func BenchmarkEncodeDescribeHosts500(b *testing.B) {
	ctx := context.Background()
	c := benchClients(b)
	for _, zone := range []string{"us-west-2a", "us-west-2b"} {
		if _, err := c.world.AllocateHosts(ctx, &ec2.AllocateHostsInput{AvailabilityZone: aws.String(zone),
			InstanceType: aws.String("mac2.metal"), Quantity: aws.Int32(250)}); err != nil {
			b.Fatal(err)
		}
	}
	out, err := c.world.DescribeHosts(ctx, &ec2.DescribeHostsInput{})
	if err != nil {
		b.Fatal(err)
	}
	v := reflect.ValueOf(out)
	var size int
	for b.Loop() {
		size = len(encodeEC2("DescribeHosts", "req", v))
	}
	b.ReportMetric(float64(size), "bytes/answer")
}

// BenchmarkServeDescribeHosts500 is the emulator's own share of a 500-host
// DescribeHosts (decode, world, XML encode), without the network and the SDK.
func BenchmarkServeDescribeHosts500(b *testing.B) {
	ctx := context.Background()
	c := benchClients(b)
	for _, zone := range []string{"us-west-2a", "us-west-2b"} {
		if _, err := c.world.AllocateHosts(ctx, &ec2.AllocateHostsInput{AvailabilityZone: aws.String(zone),
			InstanceType: aws.String("mac2.metal"), Quantity: aws.Int32(250)}); err != nil {
			b.Fatal(err)
		}
	}
	h := New(c.world, Options{})
	body := "Action=DescribeHosts&Version=2016-11-15"
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
