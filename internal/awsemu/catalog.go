package awsemu

import (
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// instanceType is one entry of the instance type catalog.
type instanceType struct {
	name      string
	family    string
	vcpus     int32
	memMiB    int64
	arch      string // x86_64, arm64, x86_64_mac, arm64_mac
	hostVCPUs int32  // vCPUs of a dedicated host of the family (0 = no dedicated hosts)
	mac       bool
	metal     bool
	quota     string // on-demand vCPU quota code ("" = none)

	// durations from the spec's timings, resolved once per world (the
	// spec does not change after New)
	boot  time.Duration // pending -> running
	scrub time.Duration // scrubbing of a dedicated host allocated for this type
}

// familyOf returns the family of an instance type ("mac2-m2.metal" -> "mac2-m2").
func familyOf(t string) string {
	if i := strings.IndexByte(t, '.'); i > 0 {
		return t[:i]
	}
	return t
}

func isMacFamily(f string) bool { return strings.HasPrefix(f, "mac") }

func quotaForFamily(f string) string {
	switch {
	case isMacFamily(f):
		return ""
	case strings.HasPrefix(f, "vt"), strings.HasPrefix(f, "g"):
		return QuotaGVT
	case strings.HasPrefix(f, "p"):
		return QuotaP
	case strings.HasPrefix(f, "x"):
		return QuotaX
	}
	return QuotaStandard
}

type famSpec struct {
	family    string
	arch      string
	hostVCPUs int32
	memPerCPU int64 // MiB per vCPU
	sizes     []string
}

var sizeVCPUs = map[string]int32{
	"nano": 2, "micro": 2, "small": 2, "medium": 2, "large": 2, "xlarge": 4, "2xlarge": 8,
	"4xlarge": 16, "8xlarge": 32, "9xlarge": 36, "12xlarge": 48, "16xlarge": 64,
	"18xlarge": 72, "24xlarge": 96,
}

var builtinFamilies = []famSpec{
	{"t3", "x86_64", 96, 0, []string{"nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"}},
	{"t3a", "x86_64", 96, 0, []string{"nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"}},
	{"t4g", "arm64", 64, 0, []string{"nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"}},
	{"m5", "x86_64", 96, 4096, []string{"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "metal"}},
	{"c5", "x86_64", 96, 2048, []string{"large", "xlarge", "2xlarge", "4xlarge", "9xlarge", "12xlarge", "18xlarge", "24xlarge", "metal"}},
	{"r5", "x86_64", 96, 8192, []string{"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "metal"}},
	{"c6g", "arm64", 64, 2048, []string{"medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "metal"}},
	{"m6g", "arm64", 64, 4096, []string{"medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "metal"}},
	{"m7g", "arm64", 64, 4096, []string{"medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "metal"}},
	{"c7g", "arm64", 64, 2048, []string{"medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "metal"}},
	{"m6i", "x86_64", 128, 4096, []string{"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge"}},
	{"c6i", "x86_64", 128, 2048, []string{"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge"}},
	{"g4dn", "x86_64", 96, 4096, []string{"xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"}},
	{"p3", "x86_64", 64, 7808, []string{"2xlarge", "8xlarge", "16xlarge"}},
	{"x1e", "x86_64", 128, 31232, []string{"xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge"}},
}

var t3Mem = map[string]int64{"nano": 512, "micro": 1024, "small": 2048, "medium": 4096, "large": 8192, "xlarge": 16384, "2xlarge": 32768}

func buildCatalog(extra []InstanceTypeSpec) map[string]*instanceType {
	cat := map[string]*instanceType{}
	add := func(t *instanceType) {
		t.family = familyOf(t.name)
		t.mac = isMacFamily(t.family)
		t.metal = strings.HasSuffix(t.name, ".metal")
		t.quota = quotaForFamily(t.family)
		cat[t.name] = t
	}
	for _, f := range builtinFamilies {
		for _, s := range f.sizes {
			v := sizeVCPUs[s]
			if s == "medium" && f.memPerCPU != 0 {
				v = 1
			}
			if s == "metal" {
				v = f.hostVCPUs
			}
			mem := int64(v) * f.memPerCPU
			if f.memPerCPU == 0 {
				mem = t3Mem[s]
			}
			add(&instanceType{name: f.family + "." + s, vcpus: v, memMiB: mem, arch: f.arch, hostVCPUs: f.hostVCPUs})
		}
	}
	for _, m := range []instanceType{
		{name: "mac1.metal", vcpus: 12, memMiB: 32768, arch: "x86_64_mac", hostVCPUs: 12},
		{name: "mac2.metal", vcpus: 8, memMiB: 16384, arch: "arm64_mac", hostVCPUs: 8},
		{name: "mac2-m2.metal", vcpus: 8, memMiB: 24576, arch: "arm64_mac", hostVCPUs: 8},
		{name: "mac2-m2pro.metal", vcpus: 12, memMiB: 32768, arch: "arm64_mac", hostVCPUs: 12},
		{name: "mac2-m1ultra.metal", vcpus: 20, memMiB: 131072, arch: "arm64_mac", hostVCPUs: 20},
		{name: "mac-m4.metal", vcpus: 10, memMiB: 24576, arch: "arm64_mac", hostVCPUs: 10},
		{name: "mac-m4pro.metal", vcpus: 14, memMiB: 49152, arch: "arm64_mac", hostVCPUs: 14},
		{name: "m1.small", vcpus: 1, memMiB: 1740, arch: "x86_64"},
	} {
		m := m
		add(&m)
	}
	for _, e := range extra {
		add(&instanceType{name: e.Name, vcpus: e.VCPUs, memMiB: e.MemoryMiB, arch: e.Architecture, hostVCPUs: e.HostVCPUs})
	}
	return cat
}

// slotsOn is how many instances of type t fit on an empty host of hostVCPUs.
func (t *instanceType) slotsOn(hostVCPUs int32) int32 {
	if t.mac {
		return 1
	}
	if t.vcpus <= 0 {
		return 0
	}
	return hostVCPUs / t.vcpus
}

func (t *instanceType) processorArch() []types.ArchitectureType {
	return []types.ArchitectureType{types.ArchitectureType(t.arch)}
}

func (t *instanceType) toSDK() types.InstanceTypeInfo {
	manu := "Intel"
	switch {
	case t.arch == "arm64_mac":
		manu = "Apple"
	case t.arch == "arm64":
		manu = "AWS"
	}
	threads := int32(2)
	if t.arch == "arm64" || t.arch == "arm64_mac" || t.vcpus == 1 {
		threads = 1
	}
	cores := t.vcpus / threads
	hyper := types.InstanceTypeHypervisorNitro
	if t.metal {
		hyper = ""
	}
	return types.InstanceTypeInfo{
		InstanceType:                  types.InstanceType(t.name),
		CurrentGeneration:             aws.Bool(t.name != "m1.small"),
		BareMetal:                     aws.Bool(t.metal),
		DedicatedHostsSupported:       aws.Bool(t.hostVCPUs > 0),
		BurstablePerformanceSupported: aws.Bool(strings.HasPrefix(t.family, "t")),
		FreeTierEligible:              aws.Bool(t.name == "t3.micro"),
		Hypervisor:                    hyper,
		SupportedInRegion:             aws.Bool(true),
		SupportedRootDeviceTypes:      []types.RootDeviceType{types.RootDeviceTypeEbs},
		SupportedUsageClasses:         []types.UsageClassType{types.UsageClassTypeOnDemand},
		SupportedVirtualizationTypes:  []types.VirtualizationType{types.VirtualizationTypeHvm},
		VCpuInfo: &types.VCpuInfo{
			DefaultVCpus:          aws.Int32(t.vcpus),
			DefaultCores:          aws.Int32(cores),
			DefaultThreadsPerCore: aws.Int32(threads),
		},
		MemoryInfo: &types.MemoryInfo{SizeInMiB: aws.Int64(t.memMiB)},
		ProcessorInfo: &types.ProcessorInfo{
			Manufacturer:           aws.String(manu),
			SupportedArchitectures: t.processorArch(),
		},
	}
}

func (w *World) sortedCatalog() []*instanceType {
	out := make([]*instanceType, 0, len(w.catalog))
	for _, t := range w.catalog {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// familyTypes lists the catalog types of a family, smallest first.
func (w *World) familyTypes(f string) []*instanceType {
	var out []*instanceType
	for _, t := range w.catalog {
		if t.family == f {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].vcpus != out[j].vcpus {
			return out[i].vcpus < out[j].vcpus
		}
		return out[i].name < out[j].name
	})
	return out
}
