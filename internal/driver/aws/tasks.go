package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

// Task names the driver supports.
const (
	TaskSnapshot    = "snapshot"
	TaskImage       = "image"
	TaskImageDelete = "image_delete"
)

// imageNameTimeFormat is the YYMMDD.HHMMSS suffix of image task names (UTC).
const imageNameTimeFormat = "060102.150405"

// Task returns a runnable task or driver.ErrTaskNotAvailable.
func (d *Driver) Task(name string, options []byte) (driver.Task, error) {
	switch name {
	case TaskSnapshot, TaskImage:
		var o struct {
			Full bool `json:"full"`
		}
		if err := decodeTaskOptions(options, &o); err != nil {
			return nil, fmt.Errorf("task %s: %w", name, err)
		}
		if name == TaskSnapshot {
			return &snapshotTask{d: d, full: o.Full}, nil
		}
		return &imageTask{d: d, full: o.Full}, nil
	case TaskImageDelete:
		var o struct {
			Image string `json:"image"`
		}
		if err := decodeTaskOptions(options, &o); err != nil {
			return nil, fmt.Errorf("task %s: %w", name, err)
		}
		return &imageDeleteTask{d: d, image: o.Image}, nil
	}
	return nil, driver.ErrTaskNotAvailable
}

func decodeTaskOptions(raw []byte, v any) error {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return nil
	}
	if err := decodeStrict([]byte(s), v); err != nil {
		return fmt.Errorf("options: %w", err)
	}
	return nil
}

// waitUntil polls check every poll interval (via the driver sleeper) until it
// reports done, fails, or bound elapses on the driver clock.
func (d *Driver) waitUntil(ctx context.Context, what string, bound time.Duration, check func(context.Context) (bool, error)) error {
	deadline := d.clk.Now().Add(bound)
	for {
		done, err := check(ctx)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if done {
			return nil
		}
		if !d.clk.Now().Before(deadline) {
			return fmt.Errorf("wait for %s: not done within %s", what, bound)
		}
		if err := d.sleep(ctx, d.poll); err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
	}
}

// stopInstance soft-stops an instance and waits until it is stopped.
func (d *Driver) stopInstance(ctx context.Context, api Clients, id string, bound time.Duration) error {
	if err := d.call(ctx, "ec2 StopInstances", func(ctx context.Context) error {
		_, e := api.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
		return e
	}); err != nil {
		return err
	}
	return d.waitUntil(ctx, "instance "+id+" stopped", bound, func(ctx context.Context) (bool, error) {
		inst, err := d.describeInstance(ctx, api, id)
		if err != nil {
			return false, err
		}
		if inst.State == nil {
			return false, nil
		}
		switch inst.State.Name {
		case ec2types.InstanceStateNameStopped:
			return true, nil
		case ec2types.InstanceStateNameTerminated, ec2types.InstanceStateNameShuttingDown:
			return false, fmt.Errorf("instance %s is %s", id, inst.State.Name)
		}
		return false, nil
	})
}

func taskTags(target driver.TaskTarget, task string) []ec2types.Tag {
	return toTags(map[string]string{TagApplication: target.Resource.ApplicationUID, "AquariumTask": task})
}

type snapshotTask struct {
	d    *Driver
	full bool
}

func (t *snapshotTask) Name() string { return TaskSnapshot }

// Execute snapshots the instance's data disks (and the root disk with full).
// At DEALLOCATE the instance is stopped first for consistent disks.
func (t *snapshotTask) Execute(ctx context.Context, target driver.TaskTarget) (json.RawMessage, error) {
	d := t.d
	cfg, api, _, err := d.state()
	if err != nil {
		return nil, err
	}
	id := target.Resource.Identifier
	if id == "" {
		return nil, errors.New("snapshot task: resource has no instance id")
	}
	bound := cfg.SnapshotCreateWait.D()
	if target.When == core.StatusDeallocate {
		if err := d.stopInstance(ctx, api, id, bound); err != nil {
			return nil, fmt.Errorf("snapshot task: %w", err)
		}
	}
	var out *ec2.CreateSnapshotsOutput
	if err := d.callOnce(ctx, "ec2 CreateSnapshots", func(ctx context.Context) error {
		var e error
		out, e = api.EC2.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
			InstanceSpecification: &ec2types.InstanceSpecification{InstanceId: awssdk.String(id), ExcludeBootVolume: awssdk.Bool(!t.full)},
			CopyTagsFromSource:    ec2types.CopyTagsFromSourceVolume,
			Description:           awssdk.String("aquarium-fish snapshot of " + id),
			TagSpecifications:     []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: taskTags(target, TaskSnapshot)}},
		})
		return e
	}); err != nil {
		return nil, fmt.Errorf("snapshot task: %w", err)
	}
	ids := make([]string, 0, len(out.Snapshots))
	for _, s := range out.Snapshots {
		ids = append(ids, awssdk.ToString(s.SnapshotId))
	}
	if len(ids) > 0 {
		if err := d.waitSnapshots(ctx, api, ids, bound); err != nil {
			return nil, fmt.Errorf("snapshot task: %w", err)
		}
	}
	d.log.Info("snapshot task done", "application", target.Resource.ApplicationUID, "instance", id, "snapshots", ids)
	return json.Marshal(map[string]any{"snapshots": ids})
}

func (d *Driver) waitSnapshots(ctx context.Context, api Clients, ids []string, bound time.Duration) error {
	return d.waitUntil(ctx, fmt.Sprintf("snapshots %v completed", ids), bound, func(ctx context.Context) (bool, error) {
		var out *ec2.DescribeSnapshotsOutput
		if err := d.call(ctx, "ec2 DescribeSnapshots", func(ctx context.Context) error {
			var e error
			out, e = api.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: ids})
			return e
		}); err != nil {
			return false, err
		}
		done := 0
		for _, s := range out.Snapshots {
			switch s.State {
			case ec2types.SnapshotStateCompleted:
				done++
			case ec2types.SnapshotStateError:
				return false, fmt.Errorf("snapshot %s failed: %s", awssdk.ToString(s.SnapshotId), awssdk.ToString(s.StateMessage))
			}
		}
		return done == len(ids), nil
	})
}

type imageTask struct {
	d    *Driver
	full bool
}

func (t *imageTask) Name() string { return TaskImage }

// Execute creates an AMI of the instance (with its data disks when full),
// re-encrypting it with task_image_encrypt_key when set.
func (t *imageTask) Execute(ctx context.Context, target driver.TaskTarget) (json.RawMessage, error) {
	d := t.d
	cfg, api, _, err := d.state()
	if err != nil {
		return nil, err
	}
	o, _, err := d.parseDefinition(target.Definition)
	if err != nil {
		return nil, fmt.Errorf("image task: %w", err)
	}
	id := target.Resource.Identifier
	if id == "" {
		return nil, errors.New("image task: resource has no instance id")
	}
	bound := cfg.ImageCreateWait.D()
	encKey, err := d.resolveKMSKey(ctx, "options.task_image_encrypt_key", o.TaskImageEncryptKey)
	if err != nil {
		return nil, fmt.Errorf("image task: %w", err)
	}
	if encKey != "" && cfg.Region == "" {
		return nil, errors.New("image task: region: required for task_image_encrypt_key (CopyImage)")
	}
	if target.When == core.StatusDeallocate {
		if err := d.stopInstance(ctx, api, id, bound); err != nil {
			return nil, fmt.Errorf("image task: %w", err)
		}
	}
	base := o.TaskImageName
	if base == "" {
		base = d.imageBaseName(ctx, api, imageRef(target.Definition, o))
	}
	base = strings.Map(func(r rune) rune {
		if strings.ContainsRune("()[] ./-'@_", r) || r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, base)
	if len(base) > 114 { // AMI names are at most 128 characters
		base = base[:114]
	}
	name := base + "-" + d.clk.Now().UTC().Format(imageNameTimeFormat)

	var bdm []ec2types.BlockDeviceMapping
	if !t.full {
		bdm, err = d.dataDisksExcluded(ctx, api, id)
		if err != nil {
			return nil, fmt.Errorf("image task: %w", err)
		}
	}
	tags := taskTags(target, TaskImage)
	createName := name
	if encKey != "" {
		createName = name + ".tmp"
	}
	var created *ec2.CreateImageOutput
	if err := d.callOnce(ctx, "ec2 CreateImage", func(ctx context.Context) error {
		var e error
		created, e = api.EC2.CreateImage(ctx, &ec2.CreateImageInput{
			InstanceId:          awssdk.String(id),
			Name:                awssdk.String(createName),
			NoReboot:            awssdk.Bool(target.When != core.StatusDeallocate),
			BlockDeviceMappings: bdm,
			TagSpecifications: []ec2types.TagSpecification{
				{ResourceType: ec2types.ResourceTypeImage, Tags: tags},
				{ResourceType: ec2types.ResourceTypeSnapshot, Tags: tags},
			},
		})
		return e
	}); err != nil {
		return nil, fmt.Errorf("image task: %w", err)
	}
	imageID := awssdk.ToString(created.ImageId)
	if err := d.waitImage(ctx, api, imageID, bound); err != nil {
		return nil, fmt.Errorf("image task: %w", err)
	}
	if encKey != "" {
		tmpID := imageID
		var copied *ec2.CopyImageOutput
		err := d.call(ctx, "ec2 CopyImage", func(ctx context.Context) error {
			var e error
			copied, e = api.EC2.CopyImage(ctx, &ec2.CopyImageInput{
				Name:              awssdk.String(name),
				SourceImageId:     awssdk.String(tmpID),
				SourceRegion:      awssdk.String(cfg.Region),
				Encrypted:         awssdk.Bool(true),
				KmsKeyId:          awssdk.String(encKey),
				ClientToken:       awssdk.String(tmpID + "-encrypt"),
				TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImage, Tags: tags}},
			})
			return e
		})
		if err == nil {
			imageID = awssdk.ToString(copied.ImageId)
			err = d.waitImage(ctx, api, imageID, bound)
		}
		// The temporary image goes in every case.
		if _, _, derr := d.deleteImage(ctx, api, tmpID); derr != nil {
			d.log.Error("image task: delete temporary image failed", "image", tmpID, "err", derr)
			if err == nil {
				err = derr
			}
		}
		if err != nil {
			return nil, fmt.Errorf("image task: encrypted copy: %w", err)
		}
	}
	d.log.Info("image task done", "application", target.Resource.ApplicationUID, "instance", id, "image", imageID, "name", name)
	return json.Marshal(map[string]string{"image": imageID, "image_name": name})
}

// imageBaseName is the label image's name: the name of an AMI ID, or the
// reference itself (a name or the name-version of the definition image).
func (d *Driver) imageBaseName(ctx context.Context, api Clients, ref string) string {
	if !strings.HasPrefix(ref, "ami-") && !isTagRef(ref) {
		return ref
	}
	if isTagRef(ref) {
		if img, err := d.resolveImage(ctx, ref); err == nil && img.Name != "" {
			return img.Name
		}
		return strings.ReplaceAll(ref, ":", "-")
	}
	var out *ec2.DescribeImagesOutput
	err := d.call(ctx, "ec2 DescribeImages", func(ctx context.Context) error {
		var e error
		out, e = api.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ref}})
		return e
	})
	if err == nil && len(out.Images) > 0 && awssdk.ToString(out.Images[0].Name) != "" {
		return awssdk.ToString(out.Images[0].Name)
	}
	return ref
}

// dataDisksExcluded lists the instance's non-root devices as NoDevice
// mappings, so CreateImage captures the root disk only.
func (d *Driver) dataDisksExcluded(ctx context.Context, api Clients, id string) ([]ec2types.BlockDeviceMapping, error) {
	var bdmOut, rootOut *ec2.DescribeInstanceAttributeOutput
	if err := d.call(ctx, "ec2 DescribeInstanceAttribute", func(ctx context.Context) error {
		var e error
		bdmOut, e = api.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
			InstanceId: awssdk.String(id), Attribute: ec2types.InstanceAttributeNameBlockDeviceMapping})
		return e
	}); err != nil {
		return nil, err
	}
	if err := d.call(ctx, "ec2 DescribeInstanceAttribute", func(ctx context.Context) error {
		var e error
		rootOut, e = api.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
			InstanceId: awssdk.String(id), Attribute: ec2types.InstanceAttributeNameRootDeviceName})
		return e
	}); err != nil {
		return nil, err
	}
	root := ""
	if rootOut.RootDeviceName != nil {
		root = awssdk.ToString(rootOut.RootDeviceName.Value)
	}
	var out []ec2types.BlockDeviceMapping
	for _, m := range bdmOut.BlockDeviceMappings {
		dev := awssdk.ToString(m.DeviceName)
		if dev == "" || dev == root {
			continue
		}
		out = append(out, ec2types.BlockDeviceMapping{DeviceName: awssdk.String(dev), NoDevice: awssdk.String("")})
	}
	return out, nil
}

func (d *Driver) waitImage(ctx context.Context, api Clients, id string, bound time.Duration) error {
	return d.waitUntil(ctx, "image "+id+" available", bound, func(ctx context.Context) (bool, error) {
		var out *ec2.DescribeImagesOutput
		if err := d.call(ctx, "ec2 DescribeImages", func(ctx context.Context) error {
			var e error
			out, e = api.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
			return e
		}); err != nil {
			if IsNotFound(err) {
				return false, nil // not visible yet
			}
			return false, err
		}
		if len(out.Images) == 0 {
			return false, nil
		}
		switch out.Images[0].State {
		case ec2types.ImageStateAvailable:
			return true, nil
		case ec2types.ImageStateFailed, ec2types.ImageStateError, ec2types.ImageStateInvalid, ec2types.ImageStateDeregistered:
			reason := ""
			if out.Images[0].StateReason != nil {
				reason = awssdk.ToString(out.Images[0].StateReason.Message)
			}
			return false, fmt.Errorf("image %s is %s %s", id, out.Images[0].State, reason)
		}
		return false, nil
	})
}

// deleteImage deregisters an image owned by a trusted account and deletes
// its snapshots; it returns the deleted snapshot ids and whether the image
// was found among the trusted accounts' images.
func (d *Driver) deleteImage(ctx context.Context, api Clients, id string) ([]string, bool, error) {
	_, _, trusted, err := d.state()
	if err != nil {
		return nil, false, err
	}
	var out *ec2.DescribeImagesOutput
	if err := d.call(ctx, "ec2 DescribeImages", func(ctx context.Context) error {
		var e error
		out, e = api.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}, Owners: trusted})
		return e
	}); err != nil {
		if IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	if len(out.Images) == 0 || out.Images[0].State == ec2types.ImageStateDeregistered {
		return nil, false, nil
	}
	var snaps []string
	for _, m := range out.Images[0].BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil {
			snaps = append(snaps, *m.Ebs.SnapshotId)
		}
	}
	if err := d.call(ctx, "ec2 DeregisterImage", func(ctx context.Context) error {
		_, e := api.EC2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: awssdk.String(id)})
		return e
	}); err != nil && !IsNotFound(err) {
		return nil, false, err
	}
	for _, s := range snaps {
		if err := d.call(ctx, "ec2 DeleteSnapshot", func(ctx context.Context) error {
			_, e := api.EC2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: awssdk.String(s)})
			return e
		}); err != nil && !IsNotFound(err) {
			return nil, true, fmt.Errorf("delete snapshot %s of image %s: %w", s, id, err)
		}
	}
	return snaps, true, nil
}

type imageDeleteTask struct {
	d     *Driver
	image string
}

func (t *imageDeleteTask) Name() string { return TaskImageDelete }

// Execute deregisters the image (options.image, or the definition's image)
// when it is owned by a trusted account, and deletes its snapshots.
func (t *imageDeleteTask) Execute(ctx context.Context, target driver.TaskTarget) (json.RawMessage, error) {
	d := t.d
	_, api, _, err := d.state()
	if err != nil {
		return nil, err
	}
	ref := t.image
	if ref == "" {
		o, err := ParseOptions(target.Definition.Options)
		if err != nil {
			return nil, fmt.Errorf("image_delete task: %w", err)
		}
		ref = imageRef(target.Definition, o)
	}
	if ref == "" {
		return nil, errors.New("image_delete task: options.image: required (the definition has no image)")
	}
	img, err := d.resolveImage(ctx, ref)
	if errors.Is(err, errNoImage) {
		// Already gone (or never ours): nothing to delete.
		return json.Marshal(map[string]any{"image": ref, "deregistered": false, "deleted_snapshots": []string{}})
	}
	if err != nil {
		return nil, fmt.Errorf("image_delete task: %w", err)
	}
	snaps, found, err := d.deleteImage(ctx, api, img.ID)
	if err != nil {
		return nil, fmt.Errorf("image_delete task: %w", err)
	}
	d.images.invalidate(ref)
	if snaps == nil {
		snaps = []string{}
	}
	if found {
		d.log.Info("image deleted", "image", img.ID, "snapshots", snaps)
	} else {
		d.log.Info("image_delete: image not owned by a trusted account or already gone; left alone", "image", img.ID)
	}
	return json.Marshal(map[string]any{"image": img.ID, "deregistered": found, "deleted_snapshots": snaps})
}
