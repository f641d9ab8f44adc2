package awsemu

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
)

func TestLoadSpecExample(t *testing.T) {
	s, err := LoadSpec(filepath.Join("testdata", "world.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if s.AccountID != "111122223333" || s.Region != "us-east-1" || len(s.Zones) != 2 || s.DefaultPageSize != 5 {
		t.Fatalf("top-level keys: %+v", s)
	}
	if s.Timings.ScrubbingDuration.D() != 50*time.Minute || s.Timings.ImageDelay.D() != 20*time.Second ||
		s.Timings.TerminatedRetention.D() != time.Hour || s.Timings.MacMinAllocation.D() != 24*time.Hour {
		t.Fatalf("timings: %+v", s.Timings)
	}
	w, err := New(clock.NewVirtual(t0), s)
	if err != nil {
		t.Fatal(err)
	}
	st := w.State()
	if len(st.Vpcs) != 2 || len(st.Subnets) != 4 || len(st.Images) != 2 || len(st.KeyPairs) != 1 || len(st.Quotas) != 2 {
		t.Fatalf("world: vpcs %d subnets %d images %d keys %d quotas %d", len(st.Vpcs), len(st.Subnets), len(st.Images), len(st.KeyPairs), len(st.Quotas))
	}
	sn, err := w.DescribeSubnets(bg, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0123456789abcdef1"}})
	if err != nil || aws.ToInt32(sn.Subnets[0].AvailableIpAddressCount) != 251-100 {
		t.Fatalf("used_ips: %v", err)
	}
	// two pre-allocated pool hosts, then the zone's mac2 capacity (3) allows one more
	dh, err := w.DescribeHosts(bg, &ec2.DescribeHostsInput{Filter: []types.Filter{{Name: aws.String("tag:AquariumDedicatedPoolName"), Values: []string{"ci"}}}})
	if err != nil || len(dh.Hosts) != 2 || !dh.Hosts[0].AllocationTime.Equal(t0) {
		t.Fatalf("pre-allocated hosts: %v %d", err, len(dh.Hosts))
	}
	allocHost(t, w, "mac2.metal", "us-east-1a", false)
	if _, err := w.AllocateHosts(bg, &ec2.AllocateHostsInput{AvailabilityZone: aws.String("us-east-1a"), InstanceType: aws.String("mac2.metal")}); apiCode(err) != "InsufficientHostCapacity" {
		t.Fatalf("host capacity: %v", err)
	}
	dk, err := w.DescribeKey(bg, &kms.DescribeKeyInput{KeyId: aws.String("alias/ci")})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := w.DescribeSnapshots(bg, &ec2.DescribeSnapshotsInput{Filters: []types.Filter{{Name: aws.String("tag:Cache"), Values: []string{"go"}}}})
	if err != nil || len(snaps.Snapshots) != 1 || !strings.HasSuffix(aws.ToString(snaps.Snapshots[0].KmsKeyId), aws.ToString(dk.KeyMetadata.KeyId)) {
		t.Fatalf("snapshot kms: %v", err)
	}
	if s.Throttling.Buckets["RunInstances"].Capacity != 20 || len(w.Faults()) != 2 || w.Faults()[0].Code != "InsufficientHostCapacity" {
		t.Fatalf("throttling/faults not loaded")
	}
}

// TestDocExampleParses keeps docs/emulator.md's world example valid and in
// sync with testdata/world.yaml.
func TestDocExampleParses(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "emulator.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("no yaml block in docs/emulator.md")
	}
	docSpec, err := ParseSpec(m[1])
	if err != nil {
		t.Fatalf("doc example: %v", err)
	}
	fileSpec, err := LoadSpec(filepath.Join("testdata", "world.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(clock.NewVirtual(t0), docSpec); err != nil {
		t.Fatalf("doc world: %v", err)
	}
	if !reflect.DeepEqual(docSpec, fileSpec) {
		t.Fatalf("doc example and testdata/world.yaml differ")
	}
}

func TestParseSpecErrors(t *testing.T) {
	cases := []struct {
		yaml, want string
	}{
		{"regoin: x\n", "regoin"},
		{"account_id: '12'\n", "account_id"},
		{"zones: [eu-west-1a]\n", "zones[0]"},
		{"default_page_size: -1\n", "default_page_size"},
		{"timings: {scrubbing_duration: 1x}\n", "invalid duration"},
		{"timings: {available_lag: -1m}\n", "timings.available_lag"},
		{"vpcs: [{cidr: 10.0.0.0/8}]\n", "vpcs[0].cidr"},
		{"vpcs: [{cidr: 10.1.0.0/16, subnets: [{zone: us-west-2a, cidr: 10.9.0.0/24}]}]\n", "vpcs[0].subnets[0].cidr"},
		{"vpcs: [{cidr: 10.1.0.0/16, subnets: [{zone: us-west-2q, cidr: 10.1.0.0/24}]}]\n", "vpcs[0].subnets[0].zone"},
		{"vpcs: [{cidr: 10.1.0.0/16, subnets: [{zone: us-west-2a, cidr: 10.1.0.0/24, used_ips: 999}]}]\n", "used_ips"},
		{"security_groups: [{name: x, vpc: nowhere}]\n", "security_groups[0].vpc"},
		{"images: [{name: x, architecture: sparc}]\n", "images[0].architecture"},
		{"images: [{name: x, architecture: arm64, creation_date: yesterday}]\n", "images[0].creation_date"},
		{"snapshots: [{size_gb: 0}]\n", "snapshots[0].size_gb"},
		{"key_pairs: [{name: k, type: dsa}]\n", "key_pairs[0].type"},
		{"kms_keys: [{aliases: [aquarium]}]\n", "kms_keys[0].aliases[0]"},
		{"quotas: [{code: L-1, value: 1}]\n", "quotas[0]"},
		{"faults: [{action: RunInstances, code: X}]\n", "faults[0]"},
		{"limits: {host_capacity: [{zone: us-east-1a, max: 1}]}\n", "limits.host_capacity[0].zone"},
		{"throttling: {buckets: {describe: {capacity: 0}}}\n", "throttling.buckets.describe"},
		{"instance_types: [{name: big, vcpus: 4, architecture: x86_64}]\n", "instance_types[0].name"},
		{"base: other\n", "base"},
		{"hosts: [{instance_type: mac2.metal, zone: us-west-2x}]\n", "hosts[0].zone"},
		{"limits: {failure_rates: {RunInstance: 0.1}}\n", "limits.failure_rates.RunInstance"},
		{"limits: {failure_rates: {RunInstances: 1.5}}\n", "limits.failure_rates.RunInstances"},
	}
	for _, c := range cases {
		_, err := ParseSpec([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to name %q", c.yaml, err, c.want)
		}
	}
	if _, err := LoadSpec(filepath.Join("testdata", "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
	// an empty file is the default world
	s, err := ParseSpec(nil)
	if err != nil || len(s.Images) != len(DefaultSpec().Images) {
		t.Fatalf("empty file: %v", err)
	}
	// duplicate ids are rejected at New
	bad := DefaultSpec()
	bad.VPCs[1].ID = bad.VPCs[0].ID
	if _, err := New(clock.NewVirtual(t0), bad); err == nil || !strings.Contains(err.Error(), "vpcs[1].id") {
		t.Fatalf("duplicate vpc id: %v", err)
	}
	bad = DefaultSpec()
	bad.Hosts = []HostSpec{{InstanceType: "mac9.metal", Zone: "us-west-2a"}}
	if _, err := New(clock.NewVirtual(t0), bad); err == nil || !strings.Contains(err.Error(), "hosts[0]") {
		t.Fatalf("unknown host type: %v", err)
	}
}
