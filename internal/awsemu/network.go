package awsemu

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type vpc struct {
	objBase
	cidr      netip.Prefix
	isDefault bool
	tags      tagSet
}

func (v *vpc) tagList() tagSet { return v.tags }

func (v *vpc) filterValues(name string, w *World) []string {
	switch name {
	case "vpc-id":
		return append(w.fbuf[:0], v.id)
	case "cidr", "cidr-block-association.cidr-block", "cidrBlock":
		return append(w.fbuf[:0], v.cidr.String())
	case "is-default", "isDefault":
		return append(w.fbuf[:0], boolStr(v.isDefault))
	case "owner-id":
		return append(w.fbuf[:0], w.spec.AccountID)
	case "state":
		return append(w.fbuf[:0], "available")
	case "dhcp-options-id":
		return append(w.fbuf[:0], "default")
	}
	return nil
}

var vpcFilters = set("vpc-id", "cidr", "cidr-block-association.cidr-block", "cidrBlock", "is-default", "isDefault", "owner-id", "state", "dhcp-options-id")

func (v *vpc) sdk(w *World) types.Vpc {
	return types.Vpc{
		VpcId:           aws.String(v.id),
		CidrBlock:       aws.String(v.cidr.String()),
		IsDefault:       aws.Bool(v.isDefault),
		OwnerId:         aws.String(w.spec.AccountID),
		State:           types.VpcStateAvailable,
		InstanceTenancy: types.TenancyDefault,
		DhcpOptionsId:   aws.String("dopt-0a1b2c3d4e5f60718"),
		CidrBlockAssociationSet: []types.VpcCidrBlockAssociation{{
			AssociationId:  aws.String("vpc-cidr-assoc-" + v.id[4:]),
			CidrBlock:      aws.String(v.cidr.String()),
			CidrBlockState: &types.VpcCidrBlockState{State: types.VpcCidrBlockStateCodeAssociated},
		}},
		Tags: v.tags.sdk(),
	}
}

type subnet struct {
	objBase
	vpc          *vpc
	zone         string
	cidr         netip.Prefix
	defaultForAZ bool
	tags         tagSet
	first        uint32 // network address
	n            uint32 // addresses in the block
	used         []uint64
	usedCount    int
	hint         uint32
	arn, cidrStr string // formatted once, on first output
}

func newSubnet(b objBase, v *vpc, zone string, p netip.Prefix, def bool, tags tagSet) *subnet {
	a := p.Masked().Addr().As4()
	n := uint32(1) << (32 - p.Bits())
	s := &subnet{objBase: b, vpc: v, zone: zone, cidr: p.Masked(), defaultForAZ: def, tags: tags,
		first: uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]), n: n,
		used: make([]uint64, (n+63)/64), hint: 4}
	return s
}

func (s *subnet) usable() int { return int(s.n) - 5 }

func (s *subnet) free() int { return s.usable() - s.usedCount }

func (s *subnet) isUsed(off uint32) bool { return s.used[off/64]&(1<<(off%64)) != 0 }

// allocIP takes the next free address (offsets 0-3 and the last are reserved).
func (s *subnet) allocIP() (uint32, bool) {
	if s.free() <= 0 {
		return 0, false
	}
	span := s.n - 5
	for i := uint32(0); i < span; i++ {
		off := 4 + (s.hint-4+i)%span
		if !s.isUsed(off) {
			s.used[off/64] |= 1 << (off % 64)
			s.usedCount++
			s.hint = off + 1
			if s.hint >= s.n-1 {
				s.hint = 4
			}
			return s.first + off, true
		}
	}
	return 0, false
}

func (s *subnet) freeIP(ip uint32) {
	off := ip - s.first
	if off >= s.n || !s.isUsed(off) {
		return
	}
	s.used[off/64] &^= 1 << (off % 64)
	s.usedCount--
}

func ipString(ip uint32) string {
	var b [15]byte
	return string(appendIP(b[:0], ip))
}

func appendIP(b []byte, ip uint32) []byte {
	for i := 3; i >= 0; i-- {
		b = strconv.AppendUint(b, uint64(ip>>(8*i)&0xff), 10)
		if i > 0 {
			b = append(b, '.')
		}
	}
	return b
}

func (s *subnet) tagList() tagSet { return s.tags }

func (s *subnet) filterValues(name string, w *World) []string {
	switch name {
	case "subnet-id":
		return append(w.fbuf[:0], s.id)
	case "vpc-id":
		return append(w.fbuf[:0], s.vpc.id)
	case "availability-zone", "availabilityZone":
		return append(w.fbuf[:0], s.zone)
	case "availability-zone-id":
		return append(w.fbuf[:0], w.zoneID(s.zone))
	case "cidr-block", "cidr", "cidrBlock":
		return append(w.fbuf[:0], s.cidr.String())
	case "default-for-az", "defaultForAz":
		return append(w.fbuf[:0], boolStr(s.defaultForAZ))
	case "available-ip-address-count":
		return append(w.fbuf[:0], itoa(int64(s.free())))
	case "owner-id":
		return append(w.fbuf[:0], w.spec.AccountID)
	case "state":
		return append(w.fbuf[:0], "available")
	case "subnet-arn":
		return append(w.fbuf[:0], w.subnetARN(s.id))
	}
	return nil
}

var subnetFilters = set("subnet-id", "vpc-id", "availability-zone", "availabilityZone", "availability-zone-id", "cidr-block", "cidr", "cidrBlock",
	"default-for-az", "defaultForAz", "available-ip-address-count", "owner-id", "state", "subnet-arn")

func (w *World) subnetARN(id string) string {
	return fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", w.spec.Region, w.spec.AccountID, id)
}

func (w *World) zoneID(zone string) string {
	if id, ok := w.zoneIDs[zone]; ok {
		return id
	}
	return computeZoneID(w.spec.Region, zone)
}

// computeZoneID derives an AZ id like usw2-az1 from the region and zone name.
func computeZoneID(region, zone string) string {
	if len(zone) == 0 {
		return ""
	}
	idx := int(zone[len(zone)-1]-'a') + 1
	parts := strings.Split(region, "-") // e.g. us, west, 2
	short := ""
	if len(parts) == 3 {
		short = parts[0] + string(parts[1][0]) + parts[2]
		if parts[1] == "central" {
			short = parts[0] + "c" + parts[2]
		}
	}
	return fmt.Sprintf("%s-az%d", short, idx)
}

func (s *subnet) sdk(w *World) types.Subnet {
	if s.arn == "" {
		s.arn, s.cidrStr = w.subnetARN(s.id), s.cidr.String()
	}
	// one allocation for the pointed-to scalars
	p := &struct {
		strs  [7]string
		free  int32
		bools [2]bool
	}{strs: [7]string{s.id, s.arn, s.vpc.id, s.zone, w.zoneID(s.zone), s.cidrStr, w.spec.AccountID},
		free: int32(s.free()), bools: [2]bool{s.defaultForAZ, s.defaultForAZ}}
	return types.Subnet{
		SubnetId:                &p.strs[0],
		SubnetArn:               &p.strs[1],
		VpcId:                   &p.strs[2],
		AvailabilityZone:        &p.strs[3],
		AvailabilityZoneId:      &p.strs[4],
		CidrBlock:               &p.strs[5],
		AvailableIpAddressCount: &p.free,
		DefaultForAz:            &p.bools[0],
		MapPublicIpOnLaunch:     &p.bools[1],
		OwnerId:                 &p.strs[6],
		State:                   types.SubnetStateAvailable,
		Tags:                    s.tags.sdk(),
	}
}

type securityGroup struct {
	objBase
	name, description string
	vpc               *vpc
	tags              tagSet
}

func (g *securityGroup) tagList() tagSet { return g.tags }

func (g *securityGroup) filterValues(name string, w *World) []string {
	switch name {
	case "group-id":
		return append(w.fbuf[:0], g.id)
	case "group-name":
		return append(w.fbuf[:0], g.name)
	case "vpc-id":
		return append(w.fbuf[:0], g.vpc.id)
	case "description":
		return append(w.fbuf[:0], g.description)
	case "owner-id":
		return append(w.fbuf[:0], w.spec.AccountID)
	}
	return nil
}

var groupFilters = set("group-id", "group-name", "vpc-id", "description", "owner-id")

func (g *securityGroup) sdk(w *World) types.SecurityGroup {
	return types.SecurityGroup{
		GroupId:          aws.String(g.id),
		GroupName:        aws.String(g.name),
		Description:      aws.String(g.description),
		VpcId:            aws.String(g.vpc.id),
		OwnerId:          aws.String(w.spec.AccountID),
		SecurityGroupArn: aws.String(fmt.Sprintf("arn:aws:ec2:%s:%s:security-group/%s", w.spec.Region, w.spec.AccountID, g.id)),
		IpPermissionsEgress: []types.IpPermission{{
			IpProtocol: aws.String("-1"),
			IpRanges:   []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}},
		}},
		Tags: g.tags.sdk(),
	}
}

func (w *World) defaultVPC() *vpc {
	for _, v := range w.vpcs.order {
		if v.isDefault {
			return v
		}
	}
	return nil
}

// groupByName finds a security group by name in a VPC.
func (w *World) groupByName(v *vpc, name string) *securityGroup {
	for _, g := range w.groups.order {
		if g.vpc == v && g.name == name {
			return g
		}
	}
	return nil
}

// DescribeVpcs lists VPCs.
func (w *World) DescribeVpcs(ctx context.Context, in *ec2.DescribeVpcsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	return serve(ctx, w, "DescribeVpcs", in, func(in *ec2.DescribeVpcsInput) (*ec2.DescribeVpcsOutput, error) {
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		fs, err := compileFilters(in.Filters, vpcFilters)
		if err != nil {
			return nil, err
		}
		p, err := w.newPager("vpc", in.MaxResults, in.NextToken, 5, 1000)
		if err != nil {
			return nil, err
		}
		src := w.vpcs.all(p.after)
		if len(in.VpcIds) > 0 {
			if err := checkIDs("InvalidVpcID.Malformed", "vpc", in.VpcIds); err != nil {
				return nil, err
			}
			objs, missing := pick(&w.vpcs, in.VpcIds, nil)
			if len(missing) > 0 {
				return nil, notFound("InvalidVpcID.NotFound", "vpc ID", missing)
			}
			src = sliceSeq(objs)
		}
		items, next := collect(src, p, func(v *vpc) bool { return w.matches(v, fs) })
		out := &ec2.DescribeVpcsOutput{NextToken: next, Vpcs: make([]types.Vpc, 0, len(items))}
		for _, v := range items {
			out.Vpcs = append(out.Vpcs, v.sdk(w))
		}
		return out, nil
	})
}

// DescribeSubnets lists subnets with their free address counts.
func (w *World) DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return serve(ctx, w, "DescribeSubnets", in, func(in *ec2.DescribeSubnetsInput) (*ec2.DescribeSubnetsOutput, error) {
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		fs, err := compileFilters(in.Filters, subnetFilters)
		if err != nil {
			return nil, err
		}
		p, err := w.newPager("subnet", in.MaxResults, in.NextToken, 5, 1000)
		if err != nil {
			return nil, err
		}
		var items []*subnet
		var next *string
		if len(in.SubnetIds) > 0 {
			if err := checkIDs("InvalidSubnetID.Malformed", "subnet", in.SubnetIds); err != nil {
				return nil, err
			}
			objs, missing := pick(&w.subnets, in.SubnetIds, nil)
			if len(missing) > 0 {
				return nil, notFound("InvalidSubnetID.NotFound", "subnet ID", missing)
			}
			items, next = collectPicked(objs, p, func(s *subnet) bool { return w.matches(s, fs) })
		} else {
			items, next = collect(w.subnets.all(p.after), p, func(s *subnet) bool { return w.matches(s, fs) })
		}
		out := &ec2.DescribeSubnetsOutput{NextToken: next, Subnets: make([]types.Subnet, 0, len(items))}
		for _, s := range items {
			out.Subnets = append(out.Subnets, s.sdk(w))
		}
		return out, nil
	})
}

// DescribeSecurityGroups lists security groups by id, name (default VPC) or filters.
func (w *World) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return serve(ctx, w, "DescribeSecurityGroups", in, func(in *ec2.DescribeSecurityGroupsInput) (*ec2.DescribeSecurityGroupsOutput, error) {
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		fs, err := compileFilters(in.Filters, groupFilters)
		if err != nil {
			return nil, err
		}
		if (len(in.GroupIds) > 0 || len(in.GroupNames) > 0) && in.MaxResults != nil {
			return nil, Errorf("InvalidParameterCombination", "The parameter groupIds or groupNames cannot be used with the parameter maxResults")
		}
		p, err := w.newPager("sg", in.MaxResults, in.NextToken, 5, 1000)
		if err != nil {
			return nil, err
		}
		src := w.groups.all(p.after)
		if len(in.GroupIds) > 0 || len(in.GroupNames) > 0 {
			if err := checkIDs("InvalidGroupId.Malformed", "sg", in.GroupIds); err != nil {
				return nil, err
			}
			objs, missing := pick(&w.groups, in.GroupIds, nil)
			if len(missing) > 0 {
				return nil, notFound("InvalidGroup.NotFound", "security group", missing)
			}
			dv := w.defaultVPC()
			for _, n := range in.GroupNames {
				var g *securityGroup
				if dv != nil {
					g = w.groupByName(dv, n)
				}
				if g == nil {
					vid := ""
					if dv != nil {
						vid = dv.id
					}
					return nil, Errorf("InvalidGroup.NotFound", "The security group '%s' does not exist in default VPC '%s'", n, vid)
				}
				objs = append(objs, g)
			}
			objs = dedupeSorted(objs)
			src = sliceSeq(objs)
		}
		items, next := collect(src, p, func(g *securityGroup) bool { return w.matches(g, fs) })
		out := &ec2.DescribeSecurityGroupsOutput{NextToken: next, SecurityGroups: make([]types.SecurityGroup, 0, len(items))}
		for _, g := range items {
			out.SecurityGroups = append(out.SecurityGroups, g.sdk(w))
		}
		return out, nil
	})
}

func dedupeSorted[T object](objs []T) []T {
	seen := map[uint64]bool{}
	out := objs[:0]
	for _, o := range objs {
		if !seen[o.base().seq] {
			seen[o.base().seq] = true
			out = append(out, o)
		}
	}
	sortBySeq(out)
	return out
}
