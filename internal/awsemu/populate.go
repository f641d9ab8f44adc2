package awsemu

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// newObj allocates the next creation sequence number and a fresh id.
func (w *World) newObj(prefix string) objBase {
	id := w.newID(prefix)
	return objBase{seq: w.seq, id: id}
}

// withID uses an explicit id from the spec or a fresh one.
func (w *World) withID(prefix, id string) objBase {
	if id == "" {
		return w.newObj(prefix)
	}
	return objBase{seq: w.nextSeq(), id: id}
}

// populate creates the spec's resources.
func (w *World) populate() error {
	s := w.spec
	w.ledger.init()
	w.copyTokens = map[string]string{}
	for _, q := range s.Quotas {
		svc := q.Service
		if svc == "" {
			svc = "ec2"
		}
		unit := q.Unit
		if unit == "" {
			unit = "None"
		}
		w.quotas = append(w.quotas, &quota{service: svc, code: q.Code, name: q.Name, value: q.Value, unit: unit})
	}
	byName := map[string]*vpc{}
	for i, vs := range s.VPCs {
		p := netip.MustParsePrefix(vs.CIDR)
		v := &vpc{objBase: w.withID("vpc", vs.ID), cidr: p.Masked(), isDefault: vs.Default, tags: tagsFromMap(vs.Tags)}
		if _, dup := w.vpcs.get(v.id); dup {
			return fmt.Errorf("vpcs[%d].id: duplicate id %s", i, v.id)
		}
		w.vpcs.add(v)
		byName[v.id] = v
		if n := vs.Tags["Name"]; n != "" {
			byName[n] = v
		}
		if vs.Default {
			byName["default"] = v
		}
		w.groups.add(&securityGroup{objBase: w.newObj("sg"), name: "default", description: "default VPC security group", vpc: v})
		for j, ss := range vs.Subnets {
			sp := netip.MustParsePrefix(ss.CIDR)
			for _, other := range w.subnets.order {
				if other.vpc == v && other.cidr.Overlaps(sp) {
					return fmt.Errorf("vpcs[%d].subnets[%d].cidr: %s overlaps %s", i, j, ss.CIDR, other.cidr)
				}
			}
			sn := newSubnet(w.withID("subnet", ss.ID), v, ss.Zone, sp, ss.DefaultForAZ || vs.Default, tagsFromMap(ss.Tags))
			if _, dup := w.subnets.get(sn.id); dup {
				return fmt.Errorf("vpcs[%d].subnets[%d].id: duplicate id %s", i, j, sn.id)
			}
			for range ss.UsedIPs {
				sn.allocIP()
			}
			w.subnets.add(sn)
		}
	}
	for i, gs := range s.SecurityGroups {
		v := byName[gs.VPC]
		if v == nil {
			return fmt.Errorf("security_groups[%d].vpc: unknown VPC %q", i, gs.VPC)
		}
		if w.groupByName(v, gs.Name) != nil {
			return fmt.Errorf("security_groups[%d].name: %q already exists in %s", i, gs.Name, v.id)
		}
		desc := gs.Description
		if desc == "" {
			desc = gs.Name
		}
		w.groups.add(&securityGroup{objBase: w.withID("sg", gs.ID), name: gs.Name, description: desc, vpc: v, tags: tagsFromMap(gs.Tags)})
	}

	// KMS: the AWS managed EBS key always exists.
	ebs := &kmsKey{objBase: w.withID("", fmt.Sprintf("%08x-0000-4000-8000-%012x", w.idRng.Uint32(), w.idRng.Uint64()&0xffffffffffff)),
		description: "Default key that protects my EBS volumes when no other key is defined", managed: true, enabled: true, created: w.now}
	w.kmsKeys.add(ebs)
	w.aliases.add(&kmsAlias{objBase: w.withID("", "alias/aws/ebs"), target: ebs, created: w.now})
	for i, ks := range s.KMSKeys {
		id := ks.ID
		if id == "" {
			id = fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", w.idRng.Uint32(), w.idRng.IntN(0x10000), w.idRng.IntN(0x1000), w.idRng.IntN(0x1000), w.idRng.Uint64()&0xffffffffffff)
		}
		if _, dup := w.kmsKeys.get(id); dup {
			return fmt.Errorf("kms_keys[%d].id: duplicate id %s", i, id)
		}
		k := &kmsKey{objBase: w.withID("", id), description: ks.Description, enabled: !ks.Disabled, created: w.now}
		w.kmsKeys.add(k)
		for j, a := range ks.Aliases {
			if _, dup := w.aliases.get(a); dup {
				return fmt.Errorf("kms_keys[%d].aliases[%d]: duplicate alias %s", i, j, a)
			}
			w.aliases.add(&kmsAlias{objBase: w.withID("", a), target: k, created: w.now})
		}
	}

	for i, ss := range s.Snapshots {
		start := w.now
		if ss.StartTime != "" {
			start, _ = time.Parse(time.RFC3339, ss.StartTime)
		}
		kms := ""
		if ss.Encrypted {
			k := w.ebsDefaultKey()
			if ss.KMSKey != "" {
				var err error
				if k, err = w.resolveKMS(ss.KMSKey); err != nil {
					return fmt.Errorf("snapshots[%d].kms_key: %w", i, err)
				}
			}
			kms = k.arn(w)
		}
		sn := &snapshot{objBase: w.withID("snap", ss.ID), ownerID: s.AccountID, volumeID: "vol-ffffffff", size: ss.SizeGB,
			encrypted: ss.Encrypted, kmsARN: kms, description: ss.Description, started: start, completes: start, tags: tagsFromMap(ss.Tags)}
		w.snapshots.add(sn)
	}

	for i, is := range s.Images {
		owner, alias := s.AccountID, ""
		switch is.Owner {
		case "", "self":
		case "amazon":
			owner, alias = "137112412989", "amazon"
		default:
			owner = is.Owner
		}
		created := w.now
		if is.CreationDate != "" {
			created, _ = time.Parse(time.RFC3339, is.CreationDate)
		}
		root := is.RootDevice
		if root == "" {
			root = "/dev/xvda"
			if is.Architecture == "x86_64_mac" || is.Architecture == "arm64_mac" {
				root = "/dev/sda1"
			}
		}
		size := is.RootSizeGB
		if size == 0 {
			size = 8
		}
		b := w.withID("ami", is.ID)
		if _, dup := w.images.get(b.id); dup {
			return fmt.Errorf("images[%d].id: duplicate id %s", i, b.id)
		}
		snap := &snapshot{objBase: w.newObj("snap"), ownerID: owner, ownerAlias: alias, volumeID: "vol-ffffffff", size: size,
			description: "Root volume of " + is.Name, started: created, completes: created}
		w.snapshots.add(snap)
		im := &image{objBase: b, name: is.Name, description: is.Description, ownerID: owner, ownerAlias: alias,
			public: is.Public || alias == "amazon", arch: is.Architecture, platform: is.Platform, created: created, availableAt: created,
			rootDevice: root, tags: tagsFromMap(is.Tags),
			bdms: []volumeSpec{{device: root, size: size, vtype: types.VolumeTypeGp3, iops: 3000, throughput: 125, snapID: snap.id, deleteOnTermination: true}}}
		w.addImage(im)
	}

	for i, hs := range s.Hosts {
		qty := hs.Quantity
		if qty == 0 {
			qty = 1
		}
		in := &ec2.AllocateHostsInput{AvailabilityZone: aws.String(hs.Zone), InstanceType: aws.String(hs.InstanceType), Quantity: aws.Int32(int32(qty))}
		if hs.AutoPlacement {
			in.AutoPlacement = types.AutoPlacementOn
		}
		if len(hs.Tags) > 0 {
			in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeDedicatedHost, Tags: tagsFromMap(hs.Tags).sdk()}}
		}
		if _, err := w.allocateHosts(in); err != nil {
			return fmt.Errorf("hosts[%d]: %w", i, err)
		}
	}
	for i, ks := range s.KeyPairs {
		if w.keyByName(ks.Name) != nil {
			return fmt.Errorf("key_pairs[%d].name: duplicate %s", i, ks.Name)
		}
		if _, _, err := w.addKeyPair(ks.Name, types.KeyType(ks.Type), tagsFromMap(ks.Tags)); err != nil {
			return fmt.Errorf("key_pairs[%d]: %w", i, err)
		}
	}
	return nil
}
