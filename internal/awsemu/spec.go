package awsemu

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// Spec describes a world: identity, topology, pre-existing resources,
// timings, limits, fault rules and throttling. It is loaded from YAML by
// LoadSpec (see docs/emulator.md) or built in code (DefaultSpec).
type Spec struct {
	// Base is "default" (start from DefaultSpec, the file overrides what it
	// sets) or "empty" (no VPCs, groups, images, snapshots, key pairs or KMS
	// keys; account, region, zones, timings and quotas keep their defaults).
	Base      string `yaml:"base,omitempty" json:"base,omitempty"`
	AccountID string `yaml:"account_id" json:"account_id"`
	Region    string `yaml:"region" json:"region"`
	// Zones are the availability zone names, e.g. us-west-2a.
	Zones []string `yaml:"zones" json:"zones"`
	// Seed makes ids and probabilistic faults deterministic.
	Seed int64 `yaml:"seed" json:"seed"`
	// DefaultPageSize applies to paged Describe calls without MaxResults (0 = unlimited).
	DefaultPageSize int `yaml:"default_page_size" json:"default_page_size"`

	Timings    Timings     `yaml:"timings" json:"timings"`
	Limits     Limits      `yaml:"limits" json:"limits"`
	Throttling Throttling  `yaml:"throttling" json:"throttling"`
	Faults     []FaultRule `yaml:"faults" json:"faults,omitempty"`

	VPCs           []VPCSpec           `yaml:"vpcs" json:"vpcs"`
	SecurityGroups []SecurityGroupSpec `yaml:"security_groups" json:"security_groups"`
	Images         []ImageSpec         `yaml:"images" json:"images"`
	Snapshots      []SnapshotSpec      `yaml:"snapshots" json:"snapshots"`
	KeyPairs       []KeyPairSpec       `yaml:"key_pairs" json:"key_pairs,omitempty"`
	KMSKeys        []KMSKeySpec        `yaml:"kms_keys" json:"kms_keys"`
	Quotas         []QuotaSpec         `yaml:"quotas" json:"quotas"`
	// Hosts are Dedicated Hosts already allocated when the world starts.
	Hosts []HostSpec `yaml:"hosts" json:"hosts,omitempty"`
	// InstanceTypes adds to or overrides the built-in instance type catalog.
	InstanceTypes []InstanceTypeSpec `yaml:"instance_types" json:"instance_types,omitempty"`
}

// Timings are the durations of the lazily computed state transitions.
type Timings struct {
	// ScrubbingDuration is how long a mac host stays pending after its
	// instance is stopped or terminated (default 1h30m).
	ScrubbingDuration core.Duration `yaml:"scrubbing_duration" json:"scrubbing_duration"`
	// ScrubbingDurations overrides ScrubbingDuration per host type or family.
	ScrubbingDurations map[string]core.Duration `yaml:"scrubbing_durations" json:"scrubbing_durations,omitempty"`
	// AvailableLag: the host reports available but refuses instances for this long.
	AvailableLag core.Duration `yaml:"available_lag" json:"available_lag"`
	// MacMinAllocation is the minimum allocation period of mac hosts (default 24h).
	MacMinAllocation core.Duration `yaml:"mac_min_allocation" json:"mac_min_allocation"`
	// BootTime is pending -> running for non-mac types (default 30s).
	BootTime core.Duration `yaml:"boot_time" json:"boot_time"`
	// MacBootTime is pending -> running for mac types (default 7m).
	MacBootTime core.Duration `yaml:"mac_boot_time" json:"mac_boot_time"`
	// BootTimes overrides boot time per instance type ("c5.large") or family ("c5").
	BootTimes map[string]core.Duration `yaml:"boot_times" json:"boot_times,omitempty"`
	// StopDelay is stopping -> stopped (default 20s).
	StopDelay core.Duration `yaml:"stop_delay" json:"stop_delay"`
	// TerminateDelay is shutting-down -> terminated (default 10s).
	TerminateDelay core.Duration `yaml:"terminate_delay" json:"terminate_delay"`
	// SnapshotDelay is snapshot pending -> completed (default 30s).
	SnapshotDelay core.Duration `yaml:"snapshot_delay" json:"snapshot_delay"`
	// ImageDelay is image pending -> available (default 1m).
	ImageDelay core.Duration `yaml:"image_delay" json:"image_delay"`
	// TerminatedRetention: terminated instances stay visible this long (default 1h).
	TerminatedRetention core.Duration `yaml:"terminated_retention" json:"terminated_retention"`
	// ReleasedRetention: released hosts stay visible this long (default 1h).
	ReleasedRetention core.Duration `yaml:"released_retention" json:"released_retention"`
}

// Limits are optional capacity limits that produce the AWS capacity errors.
type Limits struct {
	// HostCapacity limits the live hosts per zone (and type/family):
	// exceeding it answers InsufficientHostCapacity (HTTP 500).
	HostCapacity []CapacityLimit `yaml:"host_capacity" json:"host_capacity,omitempty"`
	// InstanceCapacity limits live instances per zone (and type/family):
	// exceeding it answers InsufficientInstanceCapacity (HTTP 500).
	InstanceCapacity []CapacityLimit `yaml:"instance_capacity" json:"instance_capacity,omitempty"`
	// FailureRates makes an action fail at random with its natural capacity
	// error: RunInstances -> InsufficientInstanceCapacity, AllocateHosts ->
	// InsufficientHostCapacity (both HTTP 500), any other -> InternalError (500).
	FailureRates map[string]float64 `yaml:"failure_rates" json:"failure_rates,omitempty"`
}

// failureFaults turns Limits.FailureRates into fault rules (sorted by action).
func (l *Limits) failureFaults() []FaultRule {
	actions := make([]string, 0, len(l.FailureRates))
	for a := range l.FailureRates {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	var out []FaultRule
	for _, a := range actions {
		r := FaultRule{Action: a, Code: "InternalError", HTTPStatus: 500, Probability: l.FailureRates[a],
			Message: "An internal error has occurred."}
		switch a {
		case "RunInstances":
			r.Code, r.Message = "InsufficientInstanceCapacity", "We currently do not have sufficient capacity in the Availability Zone you requested."
		case "AllocateHosts":
			r.Code, r.Message = "InsufficientHostCapacity", "There is no Dedicated Host capacity available to fulfill your request."
		}
		if r.Probability > 0 {
			out = append(out, r)
		}
	}
	return out
}

// CapacityLimit caps objects in a zone; InstanceType may be a type
// ("mac2.metal"), a family ("mac2") or empty (any).
type CapacityLimit struct {
	Zone         string `yaml:"zone" json:"zone"`
	InstanceType string `yaml:"instance_type" json:"instance_type,omitempty"`
	Max          int    `yaml:"max" json:"max"`
}

// Throttling enables EC2-like token buckets (RequestLimitExceeded, HTTP 503).
type Throttling struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Buckets by action name (e.g. "RunInstances") or category: "describe"
	// (Describe*/List*/Get*) and "mutate" (everything else). Missing
	// categories default to describe 100/20s and mutate 200/5s.
	Buckets map[string]BucketSpec `yaml:"buckets" json:"buckets,omitempty"`
}

// BucketSpec is a token bucket: Capacity tokens, refilled at RefillPerSecond.
type BucketSpec struct {
	Capacity        float64 `yaml:"capacity" json:"capacity"`
	RefillPerSecond float64 `yaml:"refill_per_second" json:"refill_per_second"`
}

func (t *Throttling) bucketFor(action string) (string, BucketSpec, bool) {
	if b, ok := t.Buckets[action]; ok {
		return action, b, true
	}
	cat := "mutate"
	if strings.HasPrefix(action, "Describe") || strings.HasPrefix(action, "List") || strings.HasPrefix(action, "Get") {
		cat = "describe"
	}
	if b, ok := t.Buckets[cat]; ok {
		return cat, b, true
	}
	if cat == "describe" {
		return cat, BucketSpec{Capacity: 100, RefillPerSecond: 20}, true
	}
	return cat, BucketSpec{Capacity: 200, RefillPerSecond: 5}, true
}

// VPCSpec is a VPC with its subnets. A "default" security group is always created.
type VPCSpec struct {
	ID      string            `yaml:"id" json:"id,omitempty"`
	CIDR    string            `yaml:"cidr" json:"cidr"`
	Default bool              `yaml:"default" json:"default,omitempty"`
	Tags    map[string]string `yaml:"tags" json:"tags,omitempty"`
	Subnets []SubnetSpec      `yaml:"subnets" json:"subnets"`
}

// SubnetSpec is a subnet of a VPC.
type SubnetSpec struct {
	ID           string `yaml:"id" json:"id,omitempty"`
	Zone         string `yaml:"zone" json:"zone"`
	CIDR         string `yaml:"cidr" json:"cidr"`
	DefaultForAZ bool   `yaml:"default_for_az" json:"default_for_az,omitempty"`
	// UsedIPs pretends that many addresses are already taken (to vary free counts).
	UsedIPs int               `yaml:"used_ips" json:"used_ips,omitempty"`
	Tags    map[string]string `yaml:"tags" json:"tags,omitempty"`
}

// SecurityGroupSpec is a security group; VPC is a VPC id, the value of a
// VPC's Name tag, or "default".
type SecurityGroupSpec struct {
	ID          string            `yaml:"id" json:"id,omitempty"`
	Name        string            `yaml:"name" json:"name"`
	Description string            `yaml:"description" json:"description,omitempty"`
	VPC         string            `yaml:"vpc" json:"vpc"`
	Tags        map[string]string `yaml:"tags" json:"tags,omitempty"`
}

// ImageSpec is a pre-existing AMI. Owner is "amazon" (public Amazon image,
// owner alias amazon), "self"/"" (the account) or another account id.
type ImageSpec struct {
	ID           string            `yaml:"id" json:"id,omitempty"`
	Name         string            `yaml:"name" json:"name"`
	Description  string            `yaml:"description" json:"description,omitempty"`
	Owner        string            `yaml:"owner" json:"owner,omitempty"`
	Public       bool              `yaml:"public" json:"public,omitempty"`
	Architecture string            `yaml:"architecture" json:"architecture"`
	Platform     string            `yaml:"platform" json:"platform,omitempty"` // "" or "windows"
	CreationDate string            `yaml:"creation_date" json:"creation_date"` // RFC 3339
	RootDevice   string            `yaml:"root_device" json:"root_device,omitempty"`
	RootSizeGB   int32             `yaml:"root_size_gb" json:"root_size_gb,omitempty"`
	Tags         map[string]string `yaml:"tags" json:"tags,omitempty"`
}

// SnapshotSpec is a pre-existing completed snapshot owned by the account.
type SnapshotSpec struct {
	ID          string            `yaml:"id" json:"id,omitempty"`
	Description string            `yaml:"description" json:"description,omitempty"`
	SizeGB      int32             `yaml:"size_gb" json:"size_gb"`
	Encrypted   bool              `yaml:"encrypted" json:"encrypted,omitempty"`
	KMSKey      string            `yaml:"kms_key" json:"kms_key,omitempty"`
	StartTime   string            `yaml:"start_time" json:"start_time,omitempty"` // RFC 3339
	Tags        map[string]string `yaml:"tags" json:"tags,omitempty"`
}

// KeyPairSpec is a pre-existing key pair (type rsa or ed25519).
type KeyPairSpec struct {
	Name string            `yaml:"name" json:"name"`
	Type string            `yaml:"type" json:"type,omitempty"`
	Tags map[string]string `yaml:"tags" json:"tags,omitempty"`
}

// KMSKeySpec is a customer managed KMS key with its aliases ("alias/name").
type KMSKeySpec struct {
	ID          string   `yaml:"id" json:"id,omitempty"` // a UUID; generated when empty
	Description string   `yaml:"description" json:"description,omitempty"`
	Aliases     []string `yaml:"aliases" json:"aliases,omitempty"`
	Disabled    bool     `yaml:"disabled" json:"disabled,omitempty"`
}

// HostSpec pre-allocates Dedicated Hosts (allocated at the world's start).
type HostSpec struct {
	InstanceType  string            `yaml:"instance_type" json:"instance_type"`
	Zone          string            `yaml:"zone" json:"zone"`
	Quantity      int               `yaml:"quantity" json:"quantity,omitempty"` // default 1
	AutoPlacement bool              `yaml:"auto_placement" json:"auto_placement,omitempty"`
	Tags          map[string]string `yaml:"tags" json:"tags,omitempty"`
}

// QuotaSpec is a service quota value (ec2 when Service is empty).
type QuotaSpec struct {
	Service string  `yaml:"service" json:"service,omitempty"`
	Code    string  `yaml:"code" json:"code"`
	Name    string  `yaml:"name" json:"name"`
	Value   float64 `yaml:"value" json:"value"`
	Unit    string  `yaml:"unit" json:"unit,omitempty"`
}

// InstanceTypeSpec adds an instance type to the catalog or overrides one.
type InstanceTypeSpec struct {
	Name         string `yaml:"name" json:"name"`
	VCPUs        int32  `yaml:"vcpus" json:"vcpus"`
	MemoryMiB    int64  `yaml:"memory_mib" json:"memory_mib"`
	Architecture string `yaml:"architecture" json:"architecture"`
	// HostVCPUs is the vCPU count of a dedicated host of this family.
	HostVCPUs int32 `yaml:"host_vcpus" json:"host_vcpus,omitempty"`
}

// Quota codes of the default world (mac codes are invented, names are exact).
const (
	QuotaStandard = "L-1216C47A"
	QuotaGVT      = "L-DB2E81BA"
	QuotaP        = "L-417A185B"
	QuotaX        = "L-7295265B"
)

// DefaultSpec is the default world used by the quick start.
func DefaultSpec() *Spec {
	s := &Spec{
		Base:      "default",
		AccountID: "123456789012",
		Region:    "us-west-2",
		Zones:     []string{"us-west-2a", "us-west-2b", "us-west-2c"},
		Seed:      1,
		Timings:   defaultTimings(),
	}
	s.VPCs = []VPCSpec{
		{ID: "vpc-0d3fa0170000d3fa0", CIDR: "172.31.0.0/16", Default: true, Subnets: []SubnetSpec{
			{ID: "subnet-0d3fa017000000a01", Zone: "us-west-2a", CIDR: "172.31.16.0/20", DefaultForAZ: true},
			{ID: "subnet-0d3fa017000000b01", Zone: "us-west-2b", CIDR: "172.31.32.0/20", DefaultForAZ: true},
			{ID: "subnet-0d3fa017000000c01", Zone: "us-west-2c", CIDR: "172.31.0.0/20", DefaultForAZ: true},
		}},
		{ID: "vpc-0a9a1a1000000a9a1", CIDR: "10.0.0.0/16", Tags: map[string]string{"Name": "aquarium", "Project": "aquarium"}, Subnets: []SubnetSpec{
			{ID: "subnet-0a9a1a100000000a1", Zone: "us-west-2a", CIDR: "10.0.1.0/24", UsedIPs: 40, Tags: map[string]string{"Name": "aquarium-a", "Project": "aquarium"}},
			{ID: "subnet-0a9a1a100000000b1", Zone: "us-west-2b", CIDR: "10.0.2.0/24", UsedIPs: 10, Tags: map[string]string{"Name": "aquarium-b", "Project": "aquarium"}},
			{ID: "subnet-0a9a1a100000000c1", Zone: "us-west-2c", CIDR: "10.0.3.0/25", Tags: map[string]string{"Name": "aquarium-c", "Project": "aquarium"}},
		}},
	}
	s.SecurityGroups = []SecurityGroupSpec{
		{ID: "sg-0a9a1a1000000005a", Name: "aquarium-ssh", Description: "SSH from the CI network", VPC: "aquarium", Tags: map[string]string{"Project": "aquarium"}},
		{ID: "sg-0d3fa0170000005a0", Name: "aquarium-ssh", Description: "SSH from the CI network", VPC: "default", Tags: map[string]string{"Project": "aquarium"}},
	}
	s.Images = []ImageSpec{
		{ID: "ami-0a1b2c3d400000001", Name: "al2023-ami-2023.6.20241212.0-kernel-6.1-x86_64", Owner: "amazon", Public: true, Architecture: "x86_64", CreationDate: "2024-12-12T10:00:00Z", Description: "Amazon Linux 2023 AMI 2023.6.20241212.0 x86_64 HVM kernel-6.1"},
		{ID: "ami-0a1b2c3d400000002", Name: "al2023-ami-2023.6.20250101.0-kernel-6.1-x86_64", Owner: "amazon", Public: true, Architecture: "x86_64", CreationDate: "2025-01-01T10:00:00Z", Description: "Amazon Linux 2023 AMI 2023.6.20250101.0 x86_64 HVM kernel-6.1"},
		{ID: "ami-0a1b2c3d400000003", Name: "al2023-ami-2023.6.20241212.0-kernel-6.1-arm64", Owner: "amazon", Public: true, Architecture: "arm64", CreationDate: "2024-12-12T10:00:00Z", Description: "Amazon Linux 2023 AMI 2023.6.20241212.0 arm64 HVM kernel-6.1"},
		{ID: "ami-0a1b2c3d400000004", Name: "al2023-ami-2023.6.20250101.0-kernel-6.1-arm64", Owner: "amazon", Public: true, Architecture: "arm64", CreationDate: "2025-01-01T10:00:00Z", Description: "Amazon Linux 2023 AMI 2023.6.20250101.0 arm64 HVM kernel-6.1"},
		{ID: "ami-0a1b2c3d400000005", Name: "amzn-ec2-macos-14.7.1-20241201-000000", Owner: "amazon", Public: true, Architecture: "x86_64_mac", CreationDate: "2024-12-01T00:00:00Z", Description: "Amazon EC2 macOS Sonoma 14.7.1", RootSizeGB: 100},
		{ID: "ami-0a1b2c3d400000006", Name: "amzn-ec2-macos-14.7.1-20250101-000000", Owner: "amazon", Public: true, Architecture: "x86_64_mac", CreationDate: "2025-01-01T00:00:00Z", Description: "Amazon EC2 macOS Sonoma 14.7.1", RootSizeGB: 100},
		{ID: "ami-0a1b2c3d400000007", Name: "amzn-ec2-macos-14.7.1-20241201-000000-arm64", Owner: "amazon", Public: true, Architecture: "arm64_mac", CreationDate: "2024-12-01T00:00:00Z", Description: "Amazon EC2 macOS Sonoma 14.7.1 arm64", RootSizeGB: 100},
		{ID: "ami-0a1b2c3d400000008", Name: "amzn-ec2-macos-14.7.1-20250101-000000-arm64", Owner: "amazon", Public: true, Architecture: "arm64_mac", CreationDate: "2025-01-01T00:00:00Z", Description: "Amazon EC2 macOS Sonoma 14.7.1 arm64", RootSizeGB: 100},
		{ID: "ami-0a1b2c3d400000009", Name: "ubuntu-22.04", Owner: "self", Architecture: "x86_64", CreationDate: "2025-01-05T12:00:00Z", Description: "CI Ubuntu 22.04", RootSizeGB: 20, Tags: map[string]string{"Project": "aquarium", "Os": "ubuntu"}},
		{ID: "ami-0a1b2c3d40000000a", Name: "macos-14", Owner: "self", Architecture: "arm64_mac", CreationDate: "2025-01-06T12:00:00Z", Description: "CI macOS 14", RootSizeGB: 100, Tags: map[string]string{"Project": "aquarium", "Os": "macos"}},
	}
	s.Snapshots = []SnapshotSpec{
		{ID: "snap-0a9a1a10000000001", Description: "aquarium build cache", SizeGB: 50, StartTime: "2025-01-02T08:00:00Z", Tags: map[string]string{"Project": "aquarium", "Name": "aquarium-cache"}},
	}
	s.KMSKeys = []KMSKeySpec{
		{ID: "1234abcd-12ab-34cd-56ef-1234567890ab", Description: "aquarium disks", Aliases: []string{"alias/aquarium"}},
	}
	s.Quotas = DefaultQuotas()
	return s
}

// DefaultQuotas are the ec2 service quotas of the default world.
func DefaultQuotas() []QuotaSpec {
	return []QuotaSpec{
		{Code: QuotaStandard, Name: "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", Value: 1152, Unit: "None"},
		{Code: QuotaGVT, Name: "Running On-Demand G and VT instances", Value: 64, Unit: "None"},
		{Code: QuotaP, Name: "Running On-Demand P instances", Value: 64, Unit: "None"},
		{Code: QuotaX, Name: "Running On-Demand X instances", Value: 128, Unit: "None"},
		{Code: "L-A8448DC5", Name: "Running Dedicated mac1 Hosts", Value: 500, Unit: "None"},
		{Code: "L-5D8DADF5", Name: "Running Dedicated mac2 Hosts", Value: 500, Unit: "None"},
		{Code: "L-B90B5B66", Name: "Running Dedicated mac2-m2 Hosts", Value: 500, Unit: "None"},
		{Code: "L-6AF0D23D", Name: "Running Dedicated mac2-m2pro Hosts", Value: 500, Unit: "None"},
		{Code: "L-0AD1D7E5", Name: "Running Dedicated mac2-m1ultra Hosts", Value: 500, Unit: "None"},
		{Code: "L-E4BF28C9", Name: "Running Dedicated mac-m4 Hosts", Value: 500, Unit: "None"},
		{Code: "L-C0B8E1D9", Name: "Running Dedicated mac-m4pro Hosts", Value: 500, Unit: "None"},
	}
}

func defaultTimings() Timings {
	return Timings{
		ScrubbingDuration:   core.Duration(90 * time.Minute),
		MacMinAllocation:    core.Duration(24 * time.Hour),
		BootTime:            core.Duration(30 * time.Second),
		MacBootTime:         core.Duration(7 * time.Minute),
		StopDelay:           core.Duration(20 * time.Second),
		TerminateDelay:      core.Duration(10 * time.Second),
		SnapshotDelay:       core.Duration(30 * time.Second),
		ImageDelay:          core.Duration(time.Minute),
		TerminatedRetention: core.Duration(time.Hour),
		ReleasedRetention:   core.Duration(time.Hour),
	}
}

// LoadSpec reads a YAML world file. Unknown keys and bad values are errors
// naming the key.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("world file: %w", err)
	}
	s, err := ParseSpec(data)
	if err != nil {
		return nil, fmt.Errorf("world file %s: %w", path, err)
	}
	return s, nil
}

// ParseSpec parses a YAML world (see LoadSpec).
func ParseSpec(data []byte) (*Spec, error) {
	var head struct {
		Base string `yaml:"base"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	var s *Spec
	switch head.Base {
	case "", "default":
		s = DefaultSpec()
	case "empty":
		s = DefaultSpec()
		s.VPCs, s.SecurityGroups, s.Images, s.Snapshots, s.KeyPairs, s.KMSKeys = nil, nil, nil, nil, nil, nil
	default:
		return nil, fmt.Errorf("base: must be \"default\" or \"empty\", got %q", head.Base)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks the spec and names the first bad key.
func (s *Spec) Validate() error {
	if len(s.AccountID) != 12 || strings.Trim(s.AccountID, "0123456789") != "" {
		return fmt.Errorf("account_id: must be 12 digits, got %q", s.AccountID)
	}
	if s.Region == "" {
		return fmt.Errorf("region: required")
	}
	if len(s.Zones) == 0 {
		return fmt.Errorf("zones: at least one zone is required")
	}
	zones := map[string]bool{}
	for i, z := range s.Zones {
		if !strings.HasPrefix(z, s.Region) || len(z) != len(s.Region)+1 {
			return fmt.Errorf("zones[%d]: %q is not a zone of region %s (want e.g. %sa)", i, z, s.Region, s.Region)
		}
		zones[z] = true
	}
	if s.DefaultPageSize < 0 {
		return fmt.Errorf("default_page_size: must be >= 0, got %d", s.DefaultPageSize)
	}
	if err := s.Timings.validate(); err != nil {
		return err
	}
	for i, l := range s.Limits.HostCapacity {
		if !zones[l.Zone] {
			return fmt.Errorf("limits.host_capacity[%d].zone: unknown zone %q", i, l.Zone)
		}
		if l.Max < 0 {
			return fmt.Errorf("limits.host_capacity[%d].max: must be >= 0", i)
		}
	}
	for i, l := range s.Limits.InstanceCapacity {
		if !zones[l.Zone] {
			return fmt.Errorf("limits.instance_capacity[%d].zone: unknown zone %q", i, l.Zone)
		}
		if l.Max < 0 {
			return fmt.Errorf("limits.instance_capacity[%d].max: must be >= 0", i)
		}
	}
	for a, p := range s.Limits.FailureRates {
		if a != "*" && !actionSet()[a] {
			return fmt.Errorf("limits.failure_rates.%s: unknown action", a)
		}
		if p < 0 || p > 1 {
			return fmt.Errorf("limits.failure_rates.%s: must be within [0,1], got %v", a, p)
		}
	}
	for k, b := range s.Throttling.Buckets {
		if b.Capacity < 1 || b.RefillPerSecond < 0 {
			return fmt.Errorf("throttling.buckets.%s: capacity must be >= 1 and refill_per_second >= 0", k)
		}
	}
	for i, f := range s.Faults {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("faults[%d]: %w", i, err)
		}
	}
	defaults := 0
	vpcNames := map[string]bool{"default": true}
	for i, v := range s.VPCs {
		p, err := netip.ParsePrefix(v.CIDR)
		if err != nil || !p.Addr().Is4() || p.Bits() < 16 || p.Bits() > 28 {
			return fmt.Errorf("vpcs[%d].cidr: want an IPv4 CIDR between /16 and /28, got %q", i, v.CIDR)
		}
		if v.ID != "" && !strings.HasPrefix(v.ID, "vpc-") {
			return fmt.Errorf("vpcs[%d].id: must start with vpc-, got %q", i, v.ID)
		}
		if v.Default {
			defaults++
		}
		if v.ID != "" {
			vpcNames[v.ID] = true
		}
		if n := v.Tags["Name"]; n != "" {
			vpcNames[n] = true
		}
		for j, sn := range v.Subnets {
			sp, err := netip.ParsePrefix(sn.CIDR)
			if err != nil || !sp.Addr().Is4() || sp.Bits() < p.Bits() || sp.Bits() > 28 || !p.Contains(sp.Addr()) {
				return fmt.Errorf("vpcs[%d].subnets[%d].cidr: want an IPv4 CIDR (/%d../28) inside %s, got %q", i, j, p.Bits(), v.CIDR, sn.CIDR)
			}
			if !zones[sn.Zone] {
				return fmt.Errorf("vpcs[%d].subnets[%d].zone: unknown zone %q", i, j, sn.Zone)
			}
			if sn.UsedIPs < 0 || sn.UsedIPs > subnetSize(sp) {
				return fmt.Errorf("vpcs[%d].subnets[%d].used_ips: must be within [0,%d]", i, j, subnetSize(sp))
			}
			if sn.ID != "" && !strings.HasPrefix(sn.ID, "subnet-") {
				return fmt.Errorf("vpcs[%d].subnets[%d].id: must start with subnet-, got %q", i, j, sn.ID)
			}
		}
	}
	if defaults > 1 {
		return fmt.Errorf("vpcs: at most one VPC may be default")
	}
	for i, g := range s.SecurityGroups {
		if g.Name == "" {
			return fmt.Errorf("security_groups[%d].name: required", i)
		}
		if !vpcNames[g.VPC] {
			return fmt.Errorf("security_groups[%d].vpc: unknown VPC %q (use a VPC id, its Name tag or \"default\")", i, g.VPC)
		}
	}
	for i, im := range s.Images {
		if im.Name == "" {
			return fmt.Errorf("images[%d].name: required", i)
		}
		if !validArch(im.Architecture) {
			return fmt.Errorf("images[%d].architecture: want x86_64, arm64, x86_64_mac or arm64_mac, got %q", i, im.Architecture)
		}
		if im.CreationDate != "" {
			if _, err := time.Parse(time.RFC3339, im.CreationDate); err != nil {
				return fmt.Errorf("images[%d].creation_date: want RFC 3339, got %q", i, im.CreationDate)
			}
		}
		if im.ID != "" && !strings.HasPrefix(im.ID, "ami-") {
			return fmt.Errorf("images[%d].id: must start with ami-, got %q", i, im.ID)
		}
		if im.Platform != "" && im.Platform != "windows" {
			return fmt.Errorf("images[%d].platform: want \"\" or \"windows\", got %q", i, im.Platform)
		}
	}
	for i, sn := range s.Snapshots {
		if sn.SizeGB <= 0 {
			return fmt.Errorf("snapshots[%d].size_gb: must be > 0", i)
		}
		if sn.StartTime != "" {
			if _, err := time.Parse(time.RFC3339, sn.StartTime); err != nil {
				return fmt.Errorf("snapshots[%d].start_time: want RFC 3339, got %q", i, sn.StartTime)
			}
		}
	}
	for i, k := range s.KeyPairs {
		if k.Name == "" {
			return fmt.Errorf("key_pairs[%d].name: required", i)
		}
		if k.Type != "" && k.Type != "rsa" && k.Type != "ed25519" {
			return fmt.Errorf("key_pairs[%d].type: want rsa or ed25519, got %q", i, k.Type)
		}
	}
	for i, k := range s.KMSKeys {
		for j, a := range k.Aliases {
			if !strings.HasPrefix(a, "alias/") || strings.HasPrefix(a, "alias/aws/") || len(a) <= len("alias/") {
				return fmt.Errorf("kms_keys[%d].aliases[%d]: want \"alias/<name>\" (not alias/aws/...), got %q", i, j, a)
			}
		}
	}
	for i, q := range s.Quotas {
		if q.Code == "" || q.Name == "" {
			return fmt.Errorf("quotas[%d]: code and name are required", i)
		}
		if q.Value < 0 {
			return fmt.Errorf("quotas[%d].value: must be >= 0", i)
		}
	}
	for i, h := range s.Hosts {
		if !zones[h.Zone] {
			return fmt.Errorf("hosts[%d].zone: unknown zone %q", i, h.Zone)
		}
		if h.InstanceType == "" {
			return fmt.Errorf("hosts[%d].instance_type: required", i)
		}
		if h.Quantity < 0 {
			return fmt.Errorf("hosts[%d].quantity: must be >= 0", i)
		}
	}
	for i, t := range s.InstanceTypes {
		if t.Name == "" || !strings.Contains(t.Name, ".") {
			return fmt.Errorf("instance_types[%d].name: want family.size, got %q", i, t.Name)
		}
		if t.VCPUs <= 0 {
			return fmt.Errorf("instance_types[%d].vcpus: must be > 0", i)
		}
		if !validArch(t.Architecture) {
			return fmt.Errorf("instance_types[%d].architecture: want x86_64, arm64, x86_64_mac or arm64_mac, got %q", i, t.Architecture)
		}
	}
	return nil
}

func (t *Timings) validate() error {
	check := func(key string, d core.Duration) error {
		if d < 0 {
			return fmt.Errorf("timings.%s: must not be negative, got %s", key, d)
		}
		return nil
	}
	for _, c := range []struct {
		k string
		d core.Duration
	}{
		{"scrubbing_duration", t.ScrubbingDuration}, {"available_lag", t.AvailableLag},
		{"mac_min_allocation", t.MacMinAllocation}, {"boot_time", t.BootTime},
		{"mac_boot_time", t.MacBootTime}, {"stop_delay", t.StopDelay},
		{"terminate_delay", t.TerminateDelay}, {"snapshot_delay", t.SnapshotDelay},
		{"image_delay", t.ImageDelay}, {"terminated_retention", t.TerminatedRetention},
		{"released_retention", t.ReleasedRetention},
	} {
		if err := check(c.k, c.d); err != nil {
			return err
		}
	}
	for k, d := range t.BootTimes {
		if err := check("boot_times."+k, d); err != nil {
			return err
		}
	}
	for k, d := range t.ScrubbingDurations {
		if err := check("scrubbing_durations."+k, d); err != nil {
			return err
		}
	}
	return nil
}

func validArch(a string) bool {
	switch a {
	case "x86_64", "arm64", "x86_64_mac", "arm64_mac":
		return true
	}
	return false
}

// subnetSize is the number of usable addresses (AWS reserves 5 per subnet).
func subnetSize(p netip.Prefix) int {
	return (1 << (32 - p.Bits())) - 5
}
