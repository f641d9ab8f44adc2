package aws

import (
	"context"
	"fmt"
	"math"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// vcpuQuota is an EC2 on-demand vCPU quota shared by a group of families.
type vcpuQuota struct {
	Code string
	Name string
}

// On-demand vCPU quotas by instance family group (Service Quotas, service "ec2").
var (
	quotaStandard = vcpuQuota{"L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"}
	quotaByGroup  = map[string]vcpuQuota{
		"f":   {"L-74FC7D96", "Running On-Demand F instances"},
		"g":   {"L-DB2E81BA", "Running On-Demand G and VT instances"},
		"vt":  {"L-DB2E81BA", "Running On-Demand G and VT instances"},
		"p":   {"L-417A185B", "Running On-Demand P instances"},
		"x":   {"L-7295265B", "Running On-Demand X instances"},
		"inf": {"L-1945791B", "Running On-Demand Inf instances"},
		"dl":  {"L-6E869C2A", "Running On-Demand DL instances"},
		"trn": {"L-2C3B7624", "Running On-Demand Trn instances"},
		"hpc": {"L-F7808C92", "Running On-Demand HPC instances"},
		"u":   {"L-43DA4232", "Running On-Demand High Memory instances"},
	}
)

// quotaFor returns the vCPU quota of an instance type ("c5.large" -> standard).
func quotaFor(instanceType string) vcpuQuota {
	fam, _, _ := strings.Cut(instanceType, ".")
	fam = strings.TrimPrefix(fam, "u-")
	if strings.HasPrefix(instanceType, "u-") {
		return quotaByGroup["u"]
	}
	i := 0
	for i < len(fam) && fam[i] >= 'a' && fam[i] <= 'z' {
		i++
	}
	letters := fam[:i]
	for _, g := range []string{"inf", "trn", "hpc", "dl", "vt"} {
		if strings.HasPrefix(letters, g) {
			return quotaByGroup[g]
		}
	}
	if len(letters) > 0 {
		if q, ok := quotaByGroup[letters[:1]]; ok {
			return q
		}
	}
	return quotaStandard
}

// AvailableCapacity says how many more instances of def can be had now:
// the pool's capacity, the idle auto-placement hosts for mac types without a
// pool, or else min(vCPU quota left / type vCPUs, free IPs of the subnets).
func (d *Driver) AvailableCapacity(ctx context.Context, def core.Definition) (int64, error) {
	o, _, err := d.parseDefinition(def)
	if err != nil {
		return 0, err
	}
	if o.Pool != "" {
		m := d.poolManager(o.Pool)
		if m == nil {
			return 0, fmt.Errorf("options.pool: pool %q is not running", o.Pool)
		}
		return m.Capacity(o.PoolZones), nil
	}
	if isMacType(o.InstanceType) {
		byZone, err := d.idleAutoPlacementHosts(ctx, o.InstanceType)
		if err != nil {
			return 0, err
		}
		cands, err := d.resolveSubnets(ctx, def.Resources.Network)
		if err != nil {
			return 0, err
		}
		var n int64
		for _, z := range subnetZones(cands.list) {
			n += byZone[z]
		}
		return n, nil
	}
	ti, err := d.instanceType(ctx, o.InstanceType)
	if err != nil {
		return 0, err
	}
	q := quotaFor(o.InstanceType)
	limits, err := d.quotaLimits(ctx)
	if err != nil {
		return 0, err
	}
	byQuota := int64(math.MaxInt64)
	if limit, ok := limits[q.Code]; ok && ti.VCPUs > 0 {
		used, err := d.vcpuUsage(ctx)
		if err != nil {
			return 0, err
		}
		left := int64(limit) - used[q.Code]
		byQuota = max(left, 0) / int64(ti.VCPUs)
	}
	cands, err := d.resolveSubnets(ctx, def.Resources.Network)
	if err != nil {
		return 0, err
	}
	return max(min(byQuota, cands.freeIPs()), 0), nil
}

// quotaLimits returns vCPU quota values by code: AWS defaults overridden by
// the account's applied values.
func (d *Driver) quotaLimits(ctx context.Context) (map[string]float64, error) {
	_, api, _, err := d.state()
	if err != nil {
		return nil, err
	}
	return d.quotas.get(ctx, "ec2", func(ctx context.Context) (map[string]float64, error) {
		out := map[string]float64{}
		dp := servicequotas.NewListAWSDefaultServiceQuotasPaginator(api.Quotas,
			&servicequotas.ListAWSDefaultServiceQuotasInput{ServiceCode: awssdk.String("ec2")})
		for dp.HasMorePages() {
			var page *servicequotas.ListAWSDefaultServiceQuotasOutput
			if err := d.call(ctx, "servicequotas ListAWSDefaultServiceQuotas", func(ctx context.Context) error {
				var e error
				page, e = dp.NextPage(ctx)
				return e
			}); err != nil {
				return nil, err
			}
			for _, q := range page.Quotas {
				if q.QuotaCode != nil && q.Value != nil {
					out[*q.QuotaCode] = *q.Value
				}
			}
		}
		ap := servicequotas.NewListServiceQuotasPaginator(api.Quotas,
			&servicequotas.ListServiceQuotasInput{ServiceCode: awssdk.String("ec2")})
		for ap.HasMorePages() {
			var page *servicequotas.ListServiceQuotasOutput
			if err := d.call(ctx, "servicequotas ListServiceQuotas", func(ctx context.Context) error {
				var e error
				page, e = ap.NextPage(ctx)
				return e
			}); err != nil {
				return nil, err
			}
			for _, q := range page.Quotas {
				if q.QuotaCode != nil && q.Value != nil {
					out[*q.QuotaCode] = *q.Value
				}
			}
		}
		return out, nil
	})
}

// vcpuUsage sums the vCPUs of pending/running instances by quota code.
func (d *Driver) vcpuUsage(ctx context.Context) (map[string]int64, error) {
	_, api, _, err := d.state()
	if err != nil {
		return nil, err
	}
	return d.usage.get(ctx, "usage", func(ctx context.Context) (map[string]int64, error) {
		counts := map[string]int64{}
		p := ec2.NewDescribeInstancesPaginator(api.EC2, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			filter("instance-state-name", "pending", "running")}})
		for p.HasMorePages() {
			var page *ec2.DescribeInstancesOutput
			if err := d.call(ctx, "ec2 DescribeInstances", func(ctx context.Context) error {
				var e error
				page, e = p.NextPage(ctx)
				return e
			}); err != nil {
				return nil, err
			}
			for _, r := range page.Reservations {
				for _, i := range r.Instances {
					counts[string(i.InstanceType)]++
				}
			}
		}
		used := map[string]int64{}
		for t, n := range counts {
			if isMacType(t) {
				continue // dedicated hosts, not vCPU quotas
			}
			ti, err := d.instanceType(ctx, t)
			if err != nil {
				return nil, err
			}
			used[quotaFor(t).Code] += n * int64(ti.VCPUs)
		}
		return used, nil
	})
}

// idleAutoPlacementHosts returns the free instance slots of the given type
// on available hosts with auto-placement on, by zone.
func (d *Driver) idleAutoPlacementHosts(ctx context.Context, instanceType string) (map[string]int64, error) {
	_, api, _, err := d.state()
	if err != nil {
		return nil, err
	}
	return d.idleHosts.get(ctx, instanceType, func(ctx context.Context) (map[string]int64, error) {
		byZone := map[string]int64{}
		p := ec2.NewDescribeHostsPaginator(api.EC2, &ec2.DescribeHostsInput{Filter: []ec2types.Filter{
			filter("auto-placement", "on"), filter("instance-type", instanceType), filter("state", "available")}})
		for p.HasMorePages() {
			var page *ec2.DescribeHostsOutput
			if err := d.call(ctx, "ec2 DescribeHosts", func(ctx context.Context) error {
				var e error
				page, e = p.NextPage(ctx)
				return e
			}); err != nil {
				return nil, err
			}
			for _, h := range page.Hosts {
				if n := hostFreeSlots(h, instanceType); n > 0 {
					byZone[awssdk.ToString(h.AvailabilityZone)] += n
				}
			}
		}
		return byZone, nil
	})
}

func hostFreeSlots(h ec2types.Host, instanceType string) int64 {
	if h.AvailableCapacity != nil {
		for _, c := range h.AvailableCapacity.AvailableInstanceCapacity {
			if awssdk.ToString(c.InstanceType) == instanceType {
				return int64(awssdk.ToInt32(c.AvailableCapacity))
			}
		}
	}
	if len(h.Instances) == 0 {
		return 1
	}
	return 0
}

// noteAllocated books a new instance in the cached capacity views, so the
// next capacity answer is right without a new lookup.
func (d *Driver) noteAllocated(o *Options, zone string) {
	if o.Pool != "" {
		return
	}
	if isMacType(o.InstanceType) {
		d.idleHosts.update(o.InstanceType, func(m map[string]int64) map[string]int64 {
			out := make(map[string]int64, len(m))
			for k, v := range m {
				out[k] = v
			}
			if out[zone] > 0 {
				out[zone]--
			}
			return out
		})
		return
	}
	ti, ok := d.types.peek(o.InstanceType)
	if !ok {
		return
	}
	code := quotaFor(o.InstanceType).Code
	d.usage.update("usage", func(m map[string]int64) map[string]int64 {
		out := make(map[string]int64, len(m)+1)
		for k, v := range m {
			out[k] = v
		}
		out[code] += int64(ti.VCPUs)
		return out
	})
}
