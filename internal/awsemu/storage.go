package awsemu

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ---- volumes ----

type volumeSpec struct {
	device              string
	size                int32
	vtype               types.VolumeType
	iops, throughput    int32
	encrypted           bool
	kmsARN              string
	snapID              string
	deleteOnTermination bool
}

type volume struct {
	objBase
	volumeSpec
	zone       string
	created    time.Time
	tags       tagSet
	attach     *instance
	attachTime time.Time
}

func (v *volume) tagList() tagSet { return v.tags }

func (v *volume) filterValues(name string, w *World) []string {
	switch name {
	case "volume-id":
		return append(w.fbuf[:0], v.id)
	case "attachment.instance-id":
		if v.attach != nil {
			return append(w.fbuf[:0], v.attach.id)
		}
	case "attachment.device":
		if v.attach != nil {
			return append(w.fbuf[:0], v.device)
		}
	case "attachment.status":
		if v.attach != nil {
			return append(w.fbuf[:0], "attached")
		}
	case "attachment.delete-on-termination":
		if v.attach != nil {
			return append(w.fbuf[:0], boolStr(v.deleteOnTermination))
		}
	case "availability-zone":
		return append(w.fbuf[:0], v.zone)
	case "create-time":
		return append(w.fbuf[:0], isoTime(v.created))
	case "encrypted":
		return append(w.fbuf[:0], boolStr(v.encrypted))
	case "size":
		return append(w.fbuf[:0], itoa(int64(v.size)))
	case "snapshot-id":
		return append(w.fbuf[:0], v.snapID)
	case "status":
		return append(w.fbuf[:0], string(v.state()))
	case "volume-type":
		return append(w.fbuf[:0], string(v.vtype))
	case "kms-key-id":
		return append(w.fbuf[:0], v.kmsARN)
	}
	return nil
}

var volumeFilters = set("volume-id", "attachment.instance-id", "attachment.device", "attachment.status", "attachment.delete-on-termination",
	"availability-zone", "create-time", "encrypted", "size", "snapshot-id", "status", "volume-type", "kms-key-id")

func (v *volume) state() types.VolumeState {
	if v.attach != nil {
		return types.VolumeStateInUse
	}
	return types.VolumeStateAvailable
}

func (v *volume) sdk(w *World) types.Volume {
	out := types.Volume{
		VolumeId:           aws.String(v.id),
		AvailabilityZone:   aws.String(v.zone),
		AvailabilityZoneId: aws.String(w.zoneID(v.zone)),
		CreateTime:         aws.Time(v.created),
		Encrypted:          aws.Bool(v.encrypted),
		Size:               aws.Int32(v.size),
		SnapshotId:         aws.String(v.snapID),
		State:              v.state(),
		VolumeType:         v.vtype,
		MultiAttachEnabled: aws.Bool(false),
		Tags:               v.tags.sdk(),
		Attachments:        []types.VolumeAttachment{},
	}
	if v.iops > 0 {
		out.Iops = aws.Int32(v.iops)
	}
	if v.throughput > 0 {
		out.Throughput = aws.Int32(v.throughput)
	}
	if v.encrypted {
		out.KmsKeyId = aws.String(v.kmsARN)
	}
	if v.attach != nil {
		out.Attachments = append(out.Attachments, types.VolumeAttachment{
			VolumeId: aws.String(v.id), InstanceId: aws.String(v.attach.id), Device: aws.String(v.device),
			AttachTime: aws.Time(v.attachTime), DeleteOnTermination: aws.Bool(v.deleteOnTermination), State: types.VolumeAttachmentStateAttached,
		})
	}
	return out
}

// planVolumes merges the image's block devices with the request's; it
// appends them to dst (scratch reused across calls).
func (w *World) planVolumes(dst []volumeSpec, img *image, req []types.BlockDeviceMapping) ([]volumeSpec, error) {
	specs := append(dst[:0], img.bdms...)
	for _, b := range req {
		dev := aws.ToString(b.DeviceName)
		if dev == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter BlockDeviceMapping.DeviceName")
		}
		idx := slices.IndexFunc(specs, func(s volumeSpec) bool { return s.device == dev })
		if b.NoDevice != nil {
			if idx == 0 && dev == img.rootDevice {
				return nil, Errorf("InvalidBlockDeviceMapping", "The device '%s' is the root device and cannot be suppressed.", dev)
			}
			if idx >= 0 {
				specs = slices.Delete(specs, idx, idx+1)
			}
			continue
		}
		e := b.Ebs
		if e == nil {
			continue // instance store / virtual names: not emulated
		}
		var s volumeSpec
		fresh := idx < 0
		if fresh {
			s = volumeSpec{device: dev, vtype: types.VolumeTypeGp2, deleteOnTermination: true}
		} else {
			s = specs[idx]
		}
		if e.SnapshotId != nil {
			if !fresh {
				return nil, Errorf("InvalidBlockDeviceMapping", "The snapshot of the image's device '%s' cannot be replaced.", dev)
			}
			sid := *e.SnapshotId
			snap, ok := w.snapshots.get(sid)
			if !ok || !w.snapshotVisible(snap) {
				return nil, Errorf("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", sid)
			}
			s.snapID = sid
			s.size = snap.size
			s.encrypted = snap.encrypted
			s.kmsARN = snap.kmsARN
		}
		if e.VolumeSize != nil {
			if *e.VolumeSize < s.size {
				return nil, Errorf("InvalidBlockDeviceMapping", "Volume of size %dGB is smaller than snapshot '%s', expect size >= %dGB", *e.VolumeSize, s.snapID, s.size)
			}
			s.size = *e.VolumeSize
		}
		if fresh && s.size == 0 {
			return nil, Errorf("InvalidBlockDeviceMapping", "The device '%s' needs a volume size or a snapshot id.", dev)
		}
		if e.VolumeType != "" {
			s.vtype = e.VolumeType
			s.iops, s.throughput = 0, 0
		}
		if e.Iops != nil {
			s.iops = *e.Iops
		}
		if e.Throughput != nil {
			s.throughput = *e.Throughput
		}
		if e.DeleteOnTermination != nil {
			s.deleteOnTermination = *e.DeleteOnTermination
		}
		if e.KmsKeyId != nil && !aws.ToBool(e.Encrypted) && !s.encrypted {
			return nil, Errorf("InvalidParameterDependency", "The parameter KmsKeyId requires the parameter Encrypted to be set.")
		}
		if aws.ToBool(e.Encrypted) {
			s.encrypted = true
		}
		if s.encrypted {
			if e.KmsKeyId != nil {
				k, err := w.resolveKMS(*e.KmsKeyId)
				if err != nil {
					return nil, err
				}
				s.kmsARN = k.arn(w)
			} else if s.kmsARN == "" {
				s.kmsARN = w.ebsDefaultKey().arn(w)
			}
		}
		if err := validateVolume(&s); err != nil {
			return nil, err
		}
		if fresh {
			specs = append(specs, s)
		} else {
			specs[idx] = s
		}
	}
	return specs, nil
}

func validateVolume(s *volumeSpec) error {
	lo, hi := int32(1), int32(16384)
	switch s.vtype {
	case types.VolumeTypeGp2, types.VolumeTypeGp3:
	case types.VolumeTypeIo1, types.VolumeTypeIo2:
		lo = 4
		if s.iops == 0 {
			return Errorf("InvalidParameterCombination", "The parameter iops must be specified for %s volumes.", s.vtype)
		}
	case types.VolumeTypeSt1, types.VolumeTypeSc1:
		lo = 125
	case types.VolumeTypeStandard:
		hi = 1024
	default:
		return Errorf("InvalidParameterValue", "Value (%s) for parameter volumeType is invalid. Valid values: standard, io1, io2, gp2, sc1, st1, gp3.", s.vtype)
	}
	if s.size < lo || s.size > hi {
		return Errorf("InvalidParameterValue", "Volume of %dGiB is out of range for %s volumes (%d-%d GiB).", s.size, s.vtype, lo, hi)
	}
	switch s.vtype {
	case types.VolumeTypeGp3:
		if s.iops == 0 {
			s.iops = 3000
		}
		if s.throughput == 0 {
			s.throughput = 125
		}
		if s.iops < 3000 || s.iops > 16000 {
			return Errorf("InvalidParameterValue", "Volume iops of %d is out of range for gp3 (3000-16000).", s.iops)
		}
		if s.throughput < 125 || s.throughput > 1000 {
			return Errorf("InvalidParameterValue", "Volume throughput of %d is out of range for gp3 (125-1000).", s.throughput)
		}
	case types.VolumeTypeIo1, types.VolumeTypeIo2:
		if s.throughput != 0 {
			return Errorf("InvalidParameterCombination", "The parameter throughput is not supported for %s volumes.", s.vtype)
		}
		if s.iops < 100 || s.iops > 64000 {
			return Errorf("InvalidParameterValue", "Volume iops of %d is out of range for %s (100-64000).", s.iops, s.vtype)
		}
	default:
		if s.iops != 0 && s.vtype != types.VolumeTypeGp2 {
			return Errorf("InvalidParameterCombination", "The parameter iops is not supported for %s volumes.", s.vtype)
		}
		if s.vtype == types.VolumeTypeGp2 {
			s.iops = max(100, min(16000, 3*s.size))
		}
		if s.throughput != 0 {
			return Errorf("InvalidParameterCombination", "The parameter throughput is not supported for %s volumes.", s.vtype)
		}
	}
	return nil
}

// DescribeVolumes lists EBS volumes.
func (w *World) DescribeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput, _ ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	return serve(ctx, w, "DescribeVolumes", in, func(in *ec2.DescribeVolumesInput) (*ec2.DescribeVolumesOutput, error) {
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		fs, err := compileFilters(in.Filters, volumeFilters)
		if err != nil {
			return nil, err
		}
		if len(in.VolumeIds) > 0 && in.MaxResults != nil {
			return nil, Errorf("InvalidParameterCombination", "The parameter volumeSet cannot be used with the parameter maxResults")
		}
		p, err := w.newPager("volume", in.MaxResults, in.NextToken, 5, 500)
		if err != nil {
			return nil, err
		}
		src := w.volumes.all(p.after)
		if len(in.VolumeIds) > 0 {
			if err := checkIDs("InvalidVolumeID.Malformed", "vol", in.VolumeIds); err != nil {
				return nil, err
			}
			objs, missing := pick(&w.volumes, in.VolumeIds, nil)
			if len(missing) > 0 {
				return nil, notFound("InvalidVolume.NotFound", "volume", missing)
			}
			src = sliceSeq(objs)
		}
		items, next := collect(src, p, func(v *volume) bool { return w.matches(v, fs) })
		out := &ec2.DescribeVolumesOutput{NextToken: next, Volumes: make([]types.Volume, 0, len(items))}
		for _, v := range items {
			out.Volumes = append(out.Volumes, v.sdk(w))
		}
		return out, nil
	})
}

// ---- snapshots ----

type snapshot struct {
	objBase
	ownerID, ownerAlias string
	volumeID            string
	size                int32
	encrypted           bool
	kmsARN              string
	description         string
	started, completes  time.Time
	tags                tagSet
	usedBy              []string // image ids
}

func (s *snapshot) state(now time.Time) types.SnapshotState {
	if now.Before(s.completes) {
		return types.SnapshotStatePending
	}
	return types.SnapshotStateCompleted
}

func (s *snapshot) progress(now time.Time) string {
	if !now.Before(s.completes) {
		return "100%"
	}
	total := s.completes.Sub(s.started)
	if total <= 0 {
		return "100%"
	}
	return fmt.Sprintf("%d%%", int(99*now.Sub(s.started)/total))
}

func (s *snapshot) tagList() tagSet { return s.tags }

func (s *snapshot) filterValues(name string, w *World) []string {
	switch name {
	case "snapshot-id":
		return append(w.fbuf[:0], s.id)
	case "status":
		return append(w.fbuf[:0], string(s.state(w.now)))
	case "volume-id":
		return append(w.fbuf[:0], s.volumeID)
	case "owner-id":
		return append(w.fbuf[:0], s.ownerID)
	case "owner-alias":
		if s.ownerAlias != "" {
			return append(w.fbuf[:0], s.ownerAlias)
		}
	case "description":
		return append(w.fbuf[:0], s.description)
	case "encrypted":
		return append(w.fbuf[:0], boolStr(s.encrypted))
	case "progress":
		return append(w.fbuf[:0], s.progress(w.now))
	case "start-time":
		return append(w.fbuf[:0], isoTime(s.started))
	case "volume-size":
		return append(w.fbuf[:0], itoa(int64(s.size)))
	case "kms-key-id":
		return append(w.fbuf[:0], s.kmsARN)
	}
	return nil
}

var snapshotFilters = set("snapshot-id", "status", "volume-id", "owner-id", "owner-alias", "description", "encrypted", "progress", "start-time", "volume-size", "kms-key-id")

func (s *snapshot) sdk(w *World) types.Snapshot {
	out := types.Snapshot{
		SnapshotId:  aws.String(s.id),
		OwnerId:     aws.String(s.ownerID),
		VolumeId:    aws.String(s.volumeID),
		VolumeSize:  aws.Int32(s.size),
		Encrypted:   aws.Bool(s.encrypted),
		Description: aws.String(s.description),
		StartTime:   aws.Time(s.started),
		State:       s.state(w.now),
		Progress:    aws.String(s.progress(w.now)),
		StorageTier: types.StorageTierStandard,
		Tags:        s.tags.sdk(),
		SseType:     types.SSETypeNone,
	}
	if s.ownerAlias != "" {
		out.OwnerAlias = aws.String(s.ownerAlias)
	}
	if s.encrypted {
		out.KmsKeyId = aws.String(s.kmsARN)
	}
	if out.State == types.SnapshotStateCompleted {
		out.CompletionTime = aws.Time(s.completes)
	}
	return out
}

func (w *World) snapshotVisible(s *snapshot) bool {
	return s.ownerID == w.spec.AccountID || s.ownerAlias == "amazon"
}

func (w *World) newSnapshot(owner, alias, volID string, size int32, enc bool, kms, desc string, tags tagSet) *snapshot {
	s := &snapshot{objBase: w.newObj("snap"), ownerID: owner, ownerAlias: alias, volumeID: volID, size: size,
		encrypted: enc, kmsARN: kms, description: desc, started: w.now, completes: w.now.Add(w.spec.Timings.SnapshotDelay.D()), tags: slices.Clone(tags)}
	w.snapshots.add(s)
	return s
}

func (w *World) ownerSet(owners []string) (map[string]bool, error) {
	if len(owners) == 0 {
		return nil, nil
	}
	m := map[string]bool{}
	for _, o := range owners {
		switch {
		case o == "self":
			m[w.spec.AccountID] = true
		case o == "amazon" || o == "aws-marketplace" || o == "aws-backup-vault":
			m[o] = true
		case len(o) == 12 && strings.Trim(o, "0123456789") == "":
			m[o] = true
		default:
			return nil, Errorf("InvalidUserID.Malformed", "Invalid user id: \"%s\"", o)
		}
	}
	return m, nil
}

// DescribeSnapshots lists snapshots (the account's by default).
func (w *World) DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	return serve(ctx, w, "DescribeSnapshots", in, func(in *ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error) {
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		fs, err := compileFilters(in.Filters, snapshotFilters)
		if err != nil {
			return nil, err
		}
		owners, err := w.ownerSet(in.OwnerIds)
		if err != nil {
			return nil, err
		}
		if len(in.SnapshotIds) > 0 && in.MaxResults != nil {
			return nil, Errorf("InvalidParameterCombination", "The parameter snapshotSet cannot be used with the parameter maxResults")
		}
		p, err := w.newPager("snapshot", in.MaxResults, in.NextToken, 5, 1000)
		if err != nil {
			return nil, err
		}
		src := w.snapshots.all(p.after)
		explicit := len(in.SnapshotIds) > 0
		if explicit {
			if err := checkIDs("InvalidSnapshotID.Malformed", "snap", in.SnapshotIds); err != nil {
				return nil, err
			}
			objs, missing := pick(&w.snapshots, in.SnapshotIds, w.snapshotVisible)
			if len(missing) > 0 {
				return nil, notFound("InvalidSnapshot.NotFound", "snapshot", missing)
			}
			src = sliceSeq(objs)
		}
		items, next := collect(src, p, func(s *snapshot) bool {
			switch {
			case owners != nil:
				if !owners[s.ownerID] && !owners[s.ownerAlias] {
					return false
				}
			case !explicit && s.ownerID != w.spec.AccountID:
				return false
			}
			return w.matches(s, fs)
		})
		out := &ec2.DescribeSnapshotsOutput{NextToken: next, Snapshots: make([]types.Snapshot, 0, len(items))}
		for _, s := range items {
			out.Snapshots = append(out.Snapshots, s.sdk(w))
		}
		return out, nil
	})
}

// CreateSnapshots snapshots the volumes of an instance.
func (w *World) CreateSnapshots(ctx context.Context, in *ec2.CreateSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error) {
	return serve(ctx, w, "CreateSnapshots", in, func(in *ec2.CreateSnapshotsInput) (*ec2.CreateSnapshotsOutput, error) {
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		if in.InstanceSpecification == nil || aws.ToString(in.InstanceSpecification.InstanceId) == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter InstanceSpecification.InstanceId")
		}
		id := *in.InstanceSpecification.InstanceId
		if err := checkIDs("InvalidInstanceID.Malformed", "i", []string{id}); err != nil {
			return nil, err
		}
		inst, ok := w.instances.get(id)
		if !ok {
			return nil, notFound("InvalidInstanceID.NotFound", "instance ID", []string{id})
		}
		if !inst.termAt.IsZero() {
			return nil, Errorf("IncorrectState", "The instance '%s' is not in a state from which snapshots can be created.", id)
		}
		tags, err := tagSpecs(in.TagSpecifications, types.ResourceTypeSnapshot)
		if err != nil {
			return nil, err
		}
		exclude := in.InstanceSpecification.ExcludeDataVolumeIds
		for _, vid := range exclude {
			if !slices.ContainsFunc(inst.volumes, func(v *volume) bool { return v.id == vid }) {
				return nil, Errorf("InvalidParameterValue", "Volume %s is not attached to instance %s.", vid, id)
			}
		}
		desc := aws.ToString(in.Description)
		out := &ec2.CreateSnapshotsOutput{Snapshots: []types.SnapshotInfo{}}
		for _, v := range inst.volumes {
			boot := v.device == inst.img.rootDevice
			if (boot && aws.ToBool(in.InstanceSpecification.ExcludeBootVolume)) || slices.Contains(exclude, v.id) {
				continue
			}
			t := slices.Clone(tags[types.ResourceTypeSnapshot])
			if in.CopyTagsFromSource == types.CopyTagsFromSourceVolume {
				for _, x := range v.tags {
					if _, ok := t.get(x.k); !ok {
						t.set(x.k, x.v)
					}
				}
			}
			s := w.newSnapshot(w.spec.AccountID, "", v.id, v.size, v.encrypted, v.kmsARN, desc, t)
			out.Snapshots = append(out.Snapshots, types.SnapshotInfo{
				SnapshotId: aws.String(s.id), VolumeId: aws.String(v.id), VolumeSize: aws.Int32(v.size),
				Encrypted: aws.Bool(v.encrypted), Description: aws.String(desc), OwnerId: aws.String(s.ownerID),
				Progress: aws.String(s.progress(w.now)), StartTime: aws.Time(s.started), State: s.state(w.now),
				Tags: s.tags.sdk(), SseType: types.SSETypeNone,
			})
		}
		return out, nil
	})
}

// DeleteSnapshot deletes an account snapshot not used by an image.
func (w *World) DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, _ ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	return serve(ctx, w, "DeleteSnapshot", in, func(in *ec2.DeleteSnapshotInput) (*ec2.DeleteSnapshotOutput, error) {
		id := aws.ToString(in.SnapshotId)
		if id == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter SnapshotId")
		}
		if err := checkIDs("InvalidSnapshotID.Malformed", "snap", []string{id}); err != nil {
			return nil, err
		}
		s, ok := w.snapshots.get(id)
		if !ok || !w.snapshotVisible(s) {
			return nil, Errorf("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
		}
		if s.ownerID != w.spec.AccountID {
			return nil, Errorf("UnauthorizedOperation", "You are not authorized to perform this operation. The snapshot '%s' belongs to another account.", id)
		}
		if len(s.usedBy) > 0 {
			return nil, Errorf("InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s", id, s.usedBy[0])
		}
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		w.snapshots.remove(id)
		return &ec2.DeleteSnapshotOutput{}, nil
	})
}

// ---- images ----

type image struct {
	objBase
	name, description   string
	ownerID, ownerAlias string
	public              bool
	arch, platform      string
	created             time.Time
	availableAt         time.Time
	rootDevice          string
	bdms                []volumeSpec
	tags                tagSet
	sourceImage         string
	sourceInstance      string
}

func (im *image) state(now time.Time) types.ImageState {
	if now.Before(im.availableAt) {
		return types.ImageStatePending
	}
	return types.ImageStateAvailable
}

func (w *World) imageVisible(im *image) bool { return im.public || im.ownerID == w.spec.AccountID }

func (im *image) tagList() tagSet { return im.tags }

func (im *image) filterValues(name string, w *World) []string {
	switch name {
	case "image-id":
		return append(w.fbuf[:0], im.id)
	case "name":
		return append(w.fbuf[:0], im.name)
	case "description":
		return append(w.fbuf[:0], im.description)
	case "architecture":
		return append(w.fbuf[:0], im.arch)
	case "owner-id":
		return append(w.fbuf[:0], im.ownerID)
	case "owner-alias":
		if im.ownerAlias != "" {
			return append(w.fbuf[:0], im.ownerAlias)
		}
	case "is-public":
		return append(w.fbuf[:0], boolStr(im.public))
	case "state":
		return append(w.fbuf[:0], string(im.state(w.now)))
	case "creation-date":
		return append(w.fbuf[:0], isoTime(im.created))
	case "image-type":
		return append(w.fbuf[:0], "machine")
	case "platform":
		if im.platform != "" {
			return append(w.fbuf[:0], im.platform)
		}
	case "root-device-type":
		return append(w.fbuf[:0], "ebs")
	case "root-device-name":
		return append(w.fbuf[:0], im.rootDevice)
	case "virtualization-type":
		return append(w.fbuf[:0], "hvm")
	case "hypervisor":
		return append(w.fbuf[:0], "xen")
	case "block-device-mapping.snapshot-id":
		out := w.fbuf[:0]
		for _, b := range im.bdms {
			out = append(out, b.snapID)
		}
		return out
	case "block-device-mapping.encrypted":
		enc := false
		for _, b := range im.bdms {
			enc = enc || b.encrypted
		}
		return append(w.fbuf[:0], boolStr(enc))
	}
	return nil
}

var imageFilters = set("image-id", "name", "description", "architecture", "owner-id", "owner-alias", "is-public", "state", "creation-date",
	"image-type", "platform", "root-device-type", "root-device-name", "virtualization-type", "hypervisor",
	"block-device-mapping.snapshot-id", "block-device-mapping.encrypted")

func (im *image) sdk(w *World) types.Image {
	out := types.Image{
		ImageId:            aws.String(im.id),
		Name:               aws.String(im.name),
		Description:        aws.String(im.description),
		OwnerId:            aws.String(im.ownerID),
		Public:             aws.Bool(im.public),
		Architecture:       types.ArchitectureValues(im.arch),
		CreationDate:       aws.String(isoTime(im.created)),
		State:              im.state(w.now),
		ImageType:          types.ImageTypeValuesMachine,
		ImageLocation:      aws.String(im.ownerID + "/" + im.name),
		RootDeviceName:     aws.String(im.rootDevice),
		RootDeviceType:     types.DeviceTypeEbs,
		VirtualizationType: types.VirtualizationTypeHvm,
		Hypervisor:         types.HypervisorTypeXen,
		EnaSupport:         aws.Bool(true),
		PlatformDetails:    aws.String("Linux/UNIX"),
		UsageOperation:     aws.String("RunInstances"),
		Tags:               im.tags.sdk(),
	}
	if im.ownerAlias != "" {
		out.ImageOwnerAlias = aws.String(im.ownerAlias)
		out.ImageLocation = aws.String(im.ownerAlias + "/" + im.name)
	}
	if im.platform == "windows" {
		out.Platform = types.PlatformValuesWindows
		out.PlatformDetails = aws.String("Windows")
	}
	if im.sourceImage != "" {
		out.SourceImageId = aws.String(im.sourceImage)
		out.SourceImageRegion = aws.String(w.spec.Region)
	}
	if im.sourceInstance != "" {
		out.SourceInstanceId = aws.String(im.sourceInstance)
	}
	for _, b := range im.bdms {
		e := &types.EbsBlockDevice{
			DeleteOnTermination: aws.Bool(b.deleteOnTermination),
			SnapshotId:          aws.String(b.snapID),
			VolumeSize:          aws.Int32(b.size),
			VolumeType:          b.vtype,
			Encrypted:           aws.Bool(b.encrypted),
		}
		if b.iops > 0 {
			e.Iops = aws.Int32(b.iops)
		}
		if b.throughput > 0 {
			e.Throughput = aws.Int32(b.throughput)
		}
		if b.encrypted {
			e.KmsKeyId = aws.String(b.kmsARN)
		}
		out.BlockDeviceMappings = append(out.BlockDeviceMappings, types.BlockDeviceMapping{DeviceName: aws.String(b.device), Ebs: e})
	}
	return out
}

// DescribeImages lists images visible to the account (public and own).
func (w *World) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return serve(ctx, w, "DescribeImages", in, func(in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		fs, err := compileFilters(in.Filters, imageFilters)
		if err != nil {
			return nil, err
		}
		owners, err := w.ownerSet(in.Owners)
		if err != nil {
			return nil, err
		}
		if len(in.ImageIds) > 0 && in.MaxResults != nil {
			return nil, Errorf("InvalidParameterCombination", "The parameter imagesSet cannot be used with the parameter maxResults")
		}
		p, err := w.newPager("image", in.MaxResults, in.NextToken, 1, 1000)
		if err != nil {
			return nil, err
		}
		src := w.images.all(p.after)
		if len(in.ImageIds) > 0 {
			if err := checkIDs("InvalidAMIID.Malformed", "ami", in.ImageIds); err != nil {
				return nil, err
			}
			objs, missing := pick(&w.images, in.ImageIds, w.imageVisible)
			if len(missing) > 0 {
				return nil, Errorf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", strings.Join(missing, ", "))
			}
			src = sliceSeq(objs)
		}
		items, next := collect(src, p, func(im *image) bool {
			if !w.imageVisible(im) {
				return false
			}
			if owners != nil && !owners[im.ownerID] && !owners[im.ownerAlias] {
				return false
			}
			return w.matches(im, fs)
		})
		out := &ec2.DescribeImagesOutput{NextToken: next, Images: make([]types.Image, 0, len(items))}
		for _, im := range items {
			out.Images = append(out.Images, im.sdk(w))
		}
		return out, nil
	})
}

func validImageName(n string) error {
	if len(n) < 3 || len(n) > 128 {
		return Errorf("InvalidAMIName.Malformed", "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'")
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("()[] ./-'@_", c)) {
			return Errorf("InvalidAMIName.Malformed", "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'")
		}
	}
	return nil
}

func (w *World) checkImageName(name string) error {
	if err := validImageName(name); err != nil {
		return err
	}
	for _, im := range w.images.order {
		if live(im) && im.ownerID == w.spec.AccountID && im.name == name {
			return Errorf("InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s", name, im.id)
		}
	}
	return nil
}

func (w *World) addImage(im *image) {
	for _, b := range im.bdms {
		if s, ok := w.snapshots.get(b.snapID); ok {
			s.usedBy = append(s.usedBy, im.id)
		}
	}
	w.images.add(im)
}

// CreateImage creates an AMI from an instance (one snapshot per volume).
func (w *World) CreateImage(ctx context.Context, in *ec2.CreateImageInput, _ ...func(*ec2.Options)) (*ec2.CreateImageOutput, error) {
	return serve(ctx, w, "CreateImage", in, func(in *ec2.CreateImageInput) (*ec2.CreateImageOutput, error) {
		id := aws.ToString(in.InstanceId)
		if id == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter InstanceId")
		}
		name := aws.ToString(in.Name)
		if name == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter Name")
		}
		if err := checkIDs("InvalidInstanceID.Malformed", "i", []string{id}); err != nil {
			return nil, err
		}
		inst, ok := w.instances.get(id)
		if !ok {
			return nil, notFound("InvalidInstanceID.NotFound", "instance ID", []string{id})
		}
		if !inst.termAt.IsZero() {
			return nil, Errorf("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be imaged.", id)
		}
		if err := w.checkImageName(name); err != nil {
			return nil, err
		}
		tags, err := tagSpecs(in.TagSpecifications, types.ResourceTypeImage, types.ResourceTypeSnapshot)
		if err != nil {
			return nil, err
		}
		skip := map[string]bool{}
		for _, b := range in.BlockDeviceMappings {
			if b.NoDevice != nil {
				skip[aws.ToString(b.DeviceName)] = true
			}
		}
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		im := &image{objBase: w.newObj("ami"), name: name, description: aws.ToString(in.Description), ownerID: w.spec.AccountID,
			arch: inst.img.arch, platform: inst.img.platform, created: w.now, rootDevice: inst.img.rootDevice, tags: tags[types.ResourceTypeImage],
			sourceInstance: inst.id}
		delay := w.spec.Timings.SnapshotDelay.D()
		for _, v := range inst.volumes {
			if skip[v.device] {
				continue
			}
			s := w.newSnapshot(w.spec.AccountID, "", v.id, v.size, v.encrypted, v.kmsARN,
				fmt.Sprintf("Created by CreateImage(%s) for %s", inst.id, im.id), tags[types.ResourceTypeSnapshot])
			b := v.volumeSpec
			b.snapID = s.id
			b.deleteOnTermination = true
			im.bdms = append(im.bdms, b)
		}
		im.availableAt = w.now.Add(max(delay, w.spec.Timings.ImageDelay.D()))
		w.addImage(im)
		return &ec2.CreateImageOutput{ImageId: aws.String(im.id)}, nil
	})
}

// CopyImage copies an AMI in the region, optionally re-encrypting its snapshots.
func (w *World) CopyImage(ctx context.Context, in *ec2.CopyImageInput, _ ...func(*ec2.Options)) (*ec2.CopyImageOutput, error) {
	return serve(ctx, w, "CopyImage", in, func(in *ec2.CopyImageInput) (*ec2.CopyImageOutput, error) {
		src := aws.ToString(in.SourceImageId)
		if src == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter SourceImageId")
		}
		if aws.ToString(in.SourceRegion) == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter SourceRegion")
		}
		name := aws.ToString(in.Name)
		if name == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter Name")
		}
		if !wellFormed("ami", src) {
			return nil, Errorf("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", src)
		}
		orig, ok := w.images.get(src)
		if !ok || !w.imageVisible(orig) || aws.ToString(in.SourceRegion) != w.spec.Region {
			return nil, Errorf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", src)
		}
		if orig.state(w.now) != types.ImageStateAvailable {
			return nil, Errorf("IncorrectState", "Image %s is not in the available state.", src)
		}
		if in.KmsKeyId != nil && !aws.ToBool(in.Encrypted) {
			return nil, Errorf("InvalidParameterDependency", "The parameter KmsKeyId requires the parameter Encrypted to be set.")
		}
		kmsARN := ""
		if aws.ToBool(in.Encrypted) {
			if in.KmsKeyId != nil {
				k, err := w.resolveKMS(*in.KmsKeyId)
				if err != nil {
					return nil, err
				}
				kmsARN = k.arn(w)
			} else {
				kmsARN = w.ebsDefaultKey().arn(w)
			}
		}
		token := aws.ToString(in.ClientToken)
		if token != "" {
			if prev, ok := w.copyTokens[token]; ok {
				return &ec2.CopyImageOutput{ImageId: aws.String(prev)}, nil
			}
		}
		if err := w.checkImageName(name); err != nil {
			return nil, err
		}
		tags, err := tagSpecs(in.TagSpecifications, types.ResourceTypeImage, types.ResourceTypeSnapshot)
		if err != nil {
			return nil, err
		}
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		imTags := tags[types.ResourceTypeImage]
		if aws.ToBool(in.CopyImageTags) {
			for _, t := range orig.tags {
				if _, ok := imTags.get(t.k); !ok {
					imTags.set(t.k, t.v)
				}
			}
		}
		im := &image{objBase: w.newObj("ami"), name: name, description: aws.ToString(in.Description), ownerID: w.spec.AccountID,
			arch: orig.arch, platform: orig.platform, created: w.now, rootDevice: orig.rootDevice, tags: imTags, sourceImage: orig.id}
		for _, b := range orig.bdms {
			enc, key := b.encrypted, b.kmsARN
			if kmsARN != "" {
				enc, key = true, kmsARN
			}
			s := w.newSnapshot(w.spec.AccountID, "", "vol-ffffffff", b.size, enc, key,
				fmt.Sprintf("Copied for DestinationAmi %s from SourceAmi %s for SourceSnapshot %s. Task created on %s.", im.id, orig.id, b.snapID, w.now.UTC().Format(time.RFC3339)),
				tags[types.ResourceTypeSnapshot])
			nb := b
			nb.snapID, nb.encrypted, nb.kmsARN = s.id, enc, key
			im.bdms = append(im.bdms, nb)
		}
		im.availableAt = w.now.Add(max(w.spec.Timings.SnapshotDelay.D(), w.spec.Timings.ImageDelay.D()))
		w.addImage(im)
		if token != "" {
			w.copyTokens[token] = im.id
		}
		return &ec2.CopyImageOutput{ImageId: aws.String(im.id)}, nil
	})
}

// DeregisterImage deregisters an account image (its snapshots remain unless
// DeleteAssociatedSnapshots is set).
func (w *World) DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	return serve(ctx, w, "DeregisterImage", in, func(in *ec2.DeregisterImageInput) (*ec2.DeregisterImageOutput, error) {
		id := aws.ToString(in.ImageId)
		if id == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter ImageId")
		}
		if !wellFormed("ami", id) {
			return nil, Errorf("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", id)
		}
		im, ok := w.images.get(id)
		if !ok || !w.imageVisible(im) {
			return nil, Errorf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		}
		if im.ownerID != w.spec.AccountID {
			return nil, Errorf("AuthFailure", "Not authorized for image:%s", id)
		}
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		w.images.remove(id)
		out := &ec2.DeregisterImageOutput{Return: aws.Bool(true)}
		for _, b := range im.bdms {
			s, ok := w.snapshots.get(b.snapID)
			if !ok {
				continue
			}
			s.usedBy = slices.DeleteFunc(s.usedBy, func(x string) bool { return x == id })
			if aws.ToBool(in.DeleteAssociatedSnapshots) {
				rc := types.DeleteSnapshotReturnCode{SnapshotId: aws.String(s.id), ReturnCode: types.SnapshotReturnCodesSuccess}
				if len(s.usedBy) > 0 {
					rc.ReturnCode = types.SnapshotReturnCodesErrorCodeClientError
				} else {
					w.snapshots.remove(s.id)
				}
				out.DeleteSnapshotResults = append(out.DeleteSnapshotResults, rc)
			}
		}
		return out, nil
	})
}
