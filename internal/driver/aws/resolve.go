package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// errNoImage marks an image reference that matches no image in the trusted accounts.
var errNoImage = errors.New("no such image")

// imageInfo is what the driver needs to know about a resolved image.
type imageInfo struct {
	ID         string
	Name       string
	RootDevice string
}

// subnetInfo is a candidate subnet of a network reference.
type subnetInfo struct {
	ID      string
	VPC     string
	Zone    string
	FreeIPs int64
}

// subnetSet is the cached answer for a network reference: its candidate
// subnets, sorted by id. ID, VPC and Zone never change once cached; FreeIPs
// is the cached view that pickSubnet books IPs into, in place under mu
// (instead of a copy of the list per allocation).
type subnetSet struct {
	list []subnetInfo
	mu   sync.Mutex // guards list[i].FreeIPs
}

// freeIPs sums the free IPs of the candidates.
func (s *subnetSet) freeIPs() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for i := range s.list {
		n += s.list[i].FreeIPs
	}
	return n
}

// typeInfo holds the facts of an instance type.
type typeInfo struct {
	VCPUs int32
	Archs []string
}

func filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: awssdk.String(name), Values: values}
}

// tagFilter turns "Key:Value" into a tag:Key filter.
func tagFilter(ref string) ec2types.Filter {
	k, v, _ := strings.Cut(ref, ":")
	return filter("tag:"+k, v)
}

// resolveImage resolves an AMI ID verbatim, or Tag:Value / name to the newest
// available image owned by a trusted account.
func (d *Driver) resolveImage(ctx context.Context, ref string) (imageInfo, error) {
	if strings.HasPrefix(ref, "ami-") {
		return imageInfo{ID: ref}, nil
	}
	// Only a prepared driver fills the cache: peek before taking the state.
	if v, ok := d.images.peek(ref); ok {
		return v, nil
	}
	_, api, trusted, err := d.state()
	if err != nil {
		return imageInfo{}, err
	}
	return d.images.get(ctx, ref, func(ctx context.Context) (imageInfo, error) {
		in := &ec2.DescribeImagesInput{Owners: trusted, Filters: []ec2types.Filter{filter("state", "available")}}
		if isTagRef(ref) {
			in.Filters = append(in.Filters, tagFilter(ref))
		} else {
			in.Filters = append(in.Filters, filter("name", ref))
		}
		var best *ec2types.Image
		var bestT time.Time
		p := ec2.NewDescribeImagesPaginator(api.EC2, in)
		for p.HasMorePages() {
			var out *ec2.DescribeImagesOutput
			if err := d.call(ctx, "ec2 DescribeImages", func(ctx context.Context) error {
				var e error
				out, e = p.NextPage(ctx)
				return e
			}); err != nil {
				return imageInfo{}, err
			}
			for i := range out.Images {
				img := &out.Images[i]
				t, _ := time.Parse(time.RFC3339, awssdk.ToString(img.CreationDate))
				if best == nil || t.After(bestT) {
					best, bestT = img, t
				}
			}
		}
		if best == nil {
			return imageInfo{}, fmt.Errorf("options.image: %w: no available image %q owned by trusted accounts %v", errNoImage, ref, trusted)
		}
		return imageInfo{ID: awssdk.ToString(best.ImageId), Name: awssdk.ToString(best.Name),
			RootDevice: awssdk.ToString(best.RootDeviceName)}, nil
	})
}

// resolveSubnets returns the candidate subnets of a network reference.
func (d *Driver) resolveSubnets(ctx context.Context, network string) (*subnetSet, error) {
	// Only a prepared driver fills the cache: peek before taking the state.
	if v, ok := d.subnets.peek(network); ok {
		return v, nil
	}
	_, api, trusted, err := d.state()
	if err != nil {
		return nil, err
	}
	return d.subnets.get(ctx, network, func(ctx context.Context) (*subnetSet, error) {
		var vpcs []string
		var subnetIn *ec2.DescribeSubnetsInput
		switch {
		case strings.HasPrefix(network, "subnet-"):
			subnetIn = &ec2.DescribeSubnetsInput{SubnetIds: []string{network}}
		case strings.HasPrefix(network, "vpc-"):
			vpcs = []string{network}
		case network == "":
			vpcs, err = d.vpcsOf(ctx, api, trusted, network)
			if err != nil {
				return nil, err
			}
			if len(vpcs) == 0 {
				return nil, fmt.Errorf("resources.network: empty, but the account has no default VPC")
			}
		default: // Tag:Value
			vpcs, err = d.vpcsOf(ctx, api, trusted, network)
			if err != nil {
				return nil, err
			}
			if len(vpcs) == 0 {
				subnetIn = &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{tagFilter(network), filter("owner-id", trusted...)}}
			}
		}
		if subnetIn == nil {
			subnetIn = &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{filter("vpc-id", vpcs...)}}
		}
		var out []subnetInfo
		p := ec2.NewDescribeSubnetsPaginator(api.EC2, subnetIn)
		for p.HasMorePages() {
			var page *ec2.DescribeSubnetsOutput
			if err := d.call(ctx, "ec2 DescribeSubnets", func(ctx context.Context) error {
				var e error
				page, e = p.NextPage(ctx)
				return e
			}); err != nil {
				if IsNotFound(err) {
					return nil, fmt.Errorf("resources.network: %q: %w", network, err)
				}
				return nil, err
			}
			out = slices.Grow(out, len(page.Subnets))
			for _, s := range page.Subnets {
				if s.State != "" && s.State != ec2types.SubnetStateAvailable {
					continue
				}
				out = append(out, subnetInfo{ID: awssdk.ToString(s.SubnetId), VPC: awssdk.ToString(s.VpcId),
					Zone: awssdk.ToString(s.AvailabilityZone), FreeIPs: int64(awssdk.ToInt32(s.AvailableIpAddressCount))})
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("resources.network: no available subnet found for %q in trusted accounts", network)
		}
		slices.SortFunc(out, func(a, b subnetInfo) int { return strings.Compare(a.ID, b.ID) })
		return &subnetSet{list: out}, nil
	})
}

// vpcsOf returns the VPCs of an empty (default VPC) or Tag:Value network
// reference, cached for the resolution TTL: VPCs change far less often than
// the free IP counts of their subnets.
func (d *Driver) vpcsOf(ctx context.Context, api Clients, trusted []string, network string) ([]string, error) {
	if v, ok := d.vpcs.peek(network); ok {
		return v, nil
	}
	return d.vpcs.get(ctx, network, func(ctx context.Context) ([]string, error) {
		if network == "" {
			return d.findVpcs(ctx, api, filter("is-default", "true"), filter("owner-id", trusted...))
		}
		return d.findVpcs(ctx, api, tagFilter(network), filter("owner-id", trusted...))
	})
}

func (d *Driver) findVpcs(ctx context.Context, api Clients, filters ...ec2types.Filter) ([]string, error) {
	var ids []string
	p := ec2.NewDescribeVpcsPaginator(api.EC2, &ec2.DescribeVpcsInput{Filters: filters})
	for p.HasMorePages() {
		var page *ec2.DescribeVpcsOutput
		if err := d.call(ctx, "ec2 DescribeVpcs", func(ctx context.Context) error {
			var e error
			page, e = p.NextPage(ctx)
			return e
		}); err != nil {
			return nil, err
		}
		for _, v := range page.Vpcs {
			ids = append(ids, awssdk.ToString(v.VpcId))
		}
	}
	return ids, nil
}

// pickSubnet chooses the subnet with the most free IPs among candidates in
// zones (nil = any) and books one IP in the cached view, so a burst of
// allocations spreads over the subnets without new lookups. Choosing and
// booking happen under one lock, so concurrent allocations see each other's
// bookings. (A set that expired or was replaced meanwhile is no longer
// served, so booking into it is harmless.)
func (d *Driver) pickSubnet(network string, cands *subnetSet, zones []string) (subnetInfo, error) {
	cands.mu.Lock()
	defer cands.mu.Unlock()
	list := cands.list
	best := -1
	for i := range list {
		if zones != nil && !slices.Contains(zones, list[i].Zone) {
			continue
		}
		if best < 0 || list[i].FreeIPs > list[best].FreeIPs {
			best = i
		}
	}
	if best < 0 {
		// A copy, so that zones does not escape (callers pass stack arrays).
		return subnetInfo{}, fmt.Errorf("resources.network: no subnet of %q in zones %v", network, slices.Clone(zones))
	}
	chosen := list[best]
	for i := range list {
		if list[i].ID == chosen.ID && list[i].FreeIPs > 0 {
			list[i].FreeIPs--
		}
	}
	return chosen, nil
}

// allZonesIn reports whether every zone of zs has a candidate.
func allZonesIn(cands []subnetInfo, zs []string) bool {
	for _, z := range zs {
		if !hasZone(cands, z) {
			return false
		}
	}
	return true
}

// hasZone reports whether a candidate is in zone z.
func hasZone(cands []subnetInfo, z string) bool {
	for i := range cands {
		if cands[i].Zone == z {
			return true
		}
	}
	return false
}

// subnetZones lists the zones of the candidates.
func subnetZones(cands []subnetInfo) []string {
	var zs []string
	for _, s := range cands {
		if !slices.Contains(zs, s.Zone) {
			zs = append(zs, s.Zone)
		}
	}
	sort.Strings(zs)
	return zs
}

// resolveGroups resolves security group IDs (verbatim) and names (in the
// subnet's VPC, trusted owners only).
func (d *Driver) resolveGroups(ctx context.Context, vpc string, refs []string) ([]string, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	var names []string
	for _, r := range refs {
		if !strings.HasPrefix(r, "sg-") {
			names = append(names, r)
		}
	}
	if len(names) == 0 {
		return refs, nil
	}
	_, api, trusted, err := d.state()
	if err != nil {
		return nil, err
	}
	return d.groups.get(ctx, vpc+"|"+strings.Join(refs, ","), func(ctx context.Context) ([]string, error) {
		byName := map[string]string{}
		p := ec2.NewDescribeSecurityGroupsPaginator(api.EC2, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
			filter("group-name", names...), filter("vpc-id", vpc), filter("owner-id", trusted...)}})
		for p.HasMorePages() {
			var page *ec2.DescribeSecurityGroupsOutput
			if err := d.call(ctx, "ec2 DescribeSecurityGroups", func(ctx context.Context) error {
				var e error
				page, e = p.NextPage(ctx)
				return e
			}); err != nil {
				return nil, err
			}
			for _, g := range page.SecurityGroups {
				byName[awssdk.ToString(g.GroupName)] = awssdk.ToString(g.GroupId)
			}
		}
		out := make([]string, 0, len(refs))
		for _, r := range refs {
			if strings.HasPrefix(r, "sg-") {
				out = append(out, r)
				continue
			}
			id, ok := byName[r]
			if !ok {
				return nil, fmt.Errorf("options.security_group: no security group named %q in %s owned by trusted accounts", r, vpc)
			}
			out = append(out, id)
		}
		return out, nil
	})
}

// resolveKMSKey turns "alias/name" into the target key id; IDs and ARNs are
// used verbatim.
func (d *Driver) resolveKMSKey(ctx context.Context, field, ref string) (string, error) {
	if ref == "" || !strings.HasPrefix(ref, "alias/") {
		return ref, nil
	}
	_, api, _, err := d.state()
	if err != nil {
		return "", err
	}
	aliases, ok := d.aliases.peek("aliases")
	if !ok {
		aliases, err = d.loadAliases(ctx, api)
	}
	if err != nil {
		return "", err
	}
	id, ok := aliases[ref]
	if !ok {
		d.aliases.invalidate("aliases")
		return "", fmt.Errorf("%s: KMS alias %q not found", field, ref)
	}
	return id, nil
}

// loadAliases returns the KMS alias -> target key map (cached).
func (d *Driver) loadAliases(ctx context.Context, api Clients) (map[string]string, error) {
	return d.aliases.get(ctx, "aliases", func(ctx context.Context) (map[string]string, error) {
		m := map[string]string{}
		p := kms.NewListAliasesPaginator(api.KMS, &kms.ListAliasesInput{})
		for p.HasMorePages() {
			var page *kms.ListAliasesOutput
			if err := d.call(ctx, "kms ListAliases", func(ctx context.Context) error {
				var e error
				page, e = p.NextPage(ctx)
				return e
			}); err != nil {
				return nil, err
			}
			for _, a := range page.Aliases {
				if a.TargetKeyId != nil {
					m[awssdk.ToString(a.AliasName)] = awssdk.ToString(a.TargetKeyId)
				}
			}
		}
		return m, nil
	})
}

// resolveSnapshot resolves snap-… verbatim or Tag:Value to the newest
// completed snapshot owned by a trusted account.
func (d *Driver) resolveSnapshot(ctx context.Context, field, ref string) (string, error) {
	if strings.HasPrefix(ref, "snap-") {
		return ref, nil
	}
	_, api, trusted, err := d.state()
	if err != nil {
		return "", err
	}
	return d.snapshots.get(ctx, ref, func(ctx context.Context) (string, error) {
		var best string
		var bestT time.Time
		p := ec2.NewDescribeSnapshotsPaginator(api.EC2, &ec2.DescribeSnapshotsInput{OwnerIds: trusted,
			Filters: []ec2types.Filter{tagFilter(ref), filter("status", "completed")}})
		for p.HasMorePages() {
			var page *ec2.DescribeSnapshotsOutput
			if err := d.call(ctx, "ec2 DescribeSnapshots", func(ctx context.Context) error {
				var e error
				page, e = p.NextPage(ctx)
				return e
			}); err != nil {
				return "", err
			}
			for _, s := range page.Snapshots {
				t := awssdk.ToTime(s.StartTime)
				if best == "" || t.After(bestT) {
					best, bestT = awssdk.ToString(s.SnapshotId), t
				}
			}
		}
		if best == "" {
			return "", fmt.Errorf("%s: no completed snapshot tagged %q owned by trusted accounts", field, ref)
		}
		return best, nil
	})
}

// instanceType returns the facts of an instance type (cached).
func (d *Driver) instanceType(ctx context.Context, t string) (typeInfo, error) {
	_, api, _, err := d.state()
	if err != nil {
		return typeInfo{}, err
	}
	return d.types.get(ctx, t, func(ctx context.Context) (typeInfo, error) {
		var out *ec2.DescribeInstanceTypesOutput
		if err := d.call(ctx, "ec2 DescribeInstanceTypes", func(ctx context.Context) error {
			var e error
			out, e = api.EC2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{
				InstanceTypes: []ec2types.InstanceType{ec2types.InstanceType(t)}})
			return e
		}); err != nil {
			return typeInfo{}, fmt.Errorf("options.instance_type: %q: %w", t, err)
		}
		if len(out.InstanceTypes) == 0 {
			return typeInfo{}, fmt.Errorf("options.instance_type: %q is not offered in this region", t)
		}
		it := out.InstanceTypes[0]
		ti := typeInfo{}
		if it.VCpuInfo != nil {
			ti.VCPUs = awssdk.ToInt32(it.VCpuInfo.DefaultVCpus)
		}
		if it.ProcessorInfo != nil {
			for _, a := range it.ProcessorInfo.SupportedArchitectures {
				ti.Archs = append(ti.Archs, string(a))
			}
		}
		return ti, nil
	})
}
