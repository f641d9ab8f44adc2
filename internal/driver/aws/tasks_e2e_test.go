package aws

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

func runTask(t *testing.T, e *env, name, opts string, res *core.Resource, def core.Definition, when core.Status) (json.RawMessage, error) {
	t.Helper()
	tk, err := e.d.Task(name, []byte(opts))
	if err != nil {
		t.Fatalf("Task(%s): %v", name, err)
	}
	return tk.Execute(e.ctx, driver.TaskTarget{Resource: *res, Definition: def, When: when})
}

func (e *env) snapshot(id string) ec2types.Snapshot {
	for _, s := range e.world.State().Snapshots {
		if awssdk.ToString(s.SnapshotId) == id {
			return s
		}
	}
	return ec2types.Snapshot{}
}

func (e *env) image(id string) (ec2types.Image, bool) {
	for _, i := range e.world.State().Images {
		if awssdk.ToString(i.ImageId) == id {
			return i, true
		}
	}
	return ec2types.Image{}, false
}

func TestSnapshotTask(t *testing.T) {
	e := newEnv(t, "")
	def := e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{Disks: map[string]core.Disk{
		"/dev/sdf": {Size: 10}, "/dev/sdg": {Size: 20}}})
	cases := []struct {
		full     bool
		when     core.Status
		wantN    int
		stopped  bool
		withRoot bool
	}{
		{false, core.StatusAllocated, 2, false, false},
		{true, core.StatusAllocated, 3, false, true},
		{false, core.StatusDeallocate, 2, true, false},
		{true, core.StatusDeallocate, 3, true, true},
	}
	for _, c := range cases {
		t.Run(string(c.when)+map[bool]string{true: "/full", false: ""}[c.full], func(t *testing.T) {
			res := e.mustAllocate(def, nil)
			e.clk.Advance(time.Minute) // running
			out, err := runTask(t, e, TaskSnapshot, `{"full":`+map[bool]string{true: "true", false: "false"}[c.full]+`}`, res, def, c.when)
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				Snapshots []string `json:"snapshots"`
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatal(err)
			}
			if len(r.Snapshots) != c.wantN {
				t.Fatalf("snapshots = %v, want %d", r.Snapshots, c.wantN)
			}
			for _, id := range r.Snapshots {
				s := e.snapshot(id)
				if s.State != ec2types.SnapshotStateCompleted {
					t.Errorf("snapshot %s state %s, want completed (the task waits)", id, s.State)
				}
				if tagMap(s.Tags)[TagApplication] != res.ApplicationUID {
					t.Errorf("snapshot %s tags %v", id, tagMap(s.Tags))
				}
			}
			st := e.instance(res.Identifier).State.Name
			if c.stopped != (st == ec2types.InstanceStateNameStopped) {
				t.Fatalf("instance state after task = %s, stopped wanted %v", st, c.stopped)
			}
		})
	}
}

func TestSnapshotWaitIsBounded(t *testing.T) {
	// The emulator completes snapshots after 30s; a 10s bound must fail clearly.
	e := newEnv(t, `{"region":"us-west-2","snapshot_create_wait":"10s"}`)
	def := e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{Disks: map[string]core.Disk{"/dev/sdf": {Size: 10}}})
	res := e.mustAllocate(def, nil)
	_, err := runTask(t, e, TaskSnapshot, `{}`, res, def, core.StatusAllocated)
	if err == nil || !strings.Contains(err.Error(), "not done within 10s") {
		t.Fatalf("err = %v", err)
	}
}

func TestImageWaitIsBounded(t *testing.T) {
	// The emulator makes images available after 1m; a 30s bound must fail clearly.
	e := newEnv(t, `{"region":"us-west-2","image_create_wait":"30s"}`)
	def := e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{})
	res := e.mustAllocate(def, nil)
	_, err := runTask(t, e, TaskImage, `{}`, res, def, core.StatusAllocated)
	if err == nil || !strings.Contains(err.Error(), "not done within 30s") {
		t.Fatalf("err = %v", err)
	}
}

var imageNameRe = regexp.MustCompile(`^(.+)-(\d{6}\.\d{6})$`)

func checkImageName(t *testing.T, e *env, name, base string) {
	t.Helper()
	m := imageNameRe.FindStringSubmatch(name)
	if m == nil || m[1] != base {
		t.Fatalf("image name %q, want %s-YYMMDD.HHMMSS", name, base)
	}
	ts, err := time.Parse("060102.150405", m[2])
	if err != nil || ts.Before(t0) || ts.After(e.clk.Now()) {
		t.Fatalf("image name time %q outside [%v, %v]", m[2], t0, e.clk.Now())
	}
}

func TestImageTask(t *testing.T) {
	e := newEnv(t, "")
	// Without task_image_name the base is the label image's name.
	def := e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{Disks: map[string]core.Disk{"/dev/sdf": {Size: 10}}})
	for _, full := range []bool{false, true} {
		res := e.mustAllocate(def, nil)
		e.clk.Advance(time.Minute)
		opts := `{"full":false}`
		if full {
			opts = `{"full":true}`
		}
		out, err := runTask(t, e, TaskImage, opts, res, def, core.StatusDeallocate)
		if err != nil {
			t.Fatal(err)
		}
		var r struct{ Image, ImageName string }
		var raw map[string]string
		if err := json.Unmarshal(out, &raw); err != nil {
			t.Fatal(err)
		}
		r.Image, r.ImageName = raw["image"], raw["image_name"]
		checkImageName(t, e, r.ImageName, "ubuntu-22.04")
		img, ok := e.image(r.Image)
		if !ok || img.State != ec2types.ImageStateAvailable || awssdk.ToString(img.Name) != r.ImageName {
			t.Fatalf("image %s: found %v state %s name %s", r.Image, ok, img.State, awssdk.ToString(img.Name))
		}
		var devs []string
		for _, m := range img.BlockDeviceMappings {
			if m.Ebs != nil {
				devs = append(devs, awssdk.ToString(m.DeviceName))
			}
		}
		wantN := 1
		if full {
			wantN = 2
		}
		if len(devs) != wantN {
			t.Fatalf("full=%v: image disks %v, want %d", full, devs, wantN)
		}
		if st := e.instance(res.Identifier).State.Name; st != ec2types.InstanceStateNameStopped {
			t.Fatalf("DEALLOCATE image task must stop the instance first, state %s", st)
		}
	}
}

func TestImageTaskEncryptedCopy(t *testing.T) {
	e := newEnv(t, "")
	def := e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro","task_image_name":"ci-golden","task_image_encrypt_key":"alias/aquarium"}`, core.Resources{})
	res := e.mustAllocate(def, nil)
	e.clk.Advance(time.Minute)
	imagesBefore := len(e.world.State().Images)
	out, err := runTask(t, e, TaskImage, `{}`, res, def, core.StatusAllocated)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]string
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	checkImageName(t, e, raw["image_name"], "ci-golden")
	img, ok := e.image(raw["image"])
	if !ok || img.State != ec2types.ImageStateAvailable {
		t.Fatalf("final image %s not available", raw["image"])
	}
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs == nil {
			continue
		}
		if !awssdk.ToBool(m.Ebs.Encrypted) || !strings.Contains(awssdk.ToString(m.Ebs.KmsKeyId), kmsKeyID) {
			t.Errorf("image disk %s encrypted %v key %s", awssdk.ToString(m.DeviceName), awssdk.ToBool(m.Ebs.Encrypted), awssdk.ToString(m.Ebs.KmsKeyId))
		}
		s := e.snapshot(awssdk.ToString(m.Ebs.SnapshotId))
		if !awssdk.ToBool(s.Encrypted) {
			t.Errorf("snapshot %s not encrypted", awssdk.ToString(s.SnapshotId))
		}
	}
	// The temporary image and its snapshots are gone: one new image in total.
	st := e.world.State()
	live := 0
	for _, i := range st.Images {
		if i.State != ec2types.ImageStateDeregistered {
			live++
		}
		if strings.HasSuffix(awssdk.ToString(i.Name), ".tmp") && i.State != ec2types.ImageStateDeregistered {
			t.Errorf("temporary image %s left", awssdk.ToString(i.ImageId))
		}
	}
	if live != imagesBefore+1 {
		t.Errorf("images: %d before, %d after, want exactly one more", imagesBefore, live)
	}
	for _, s := range st.Snapshots {
		if strings.Contains(awssdk.ToString(s.Description), ".tmp") {
			t.Errorf("snapshot %s of the temporary image left", awssdk.ToString(s.SnapshotId))
		}
	}

	// image_delete removes the image and its snapshots.
	snapIDs := map[string]bool{}
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs != nil {
			snapIDs[awssdk.ToString(m.Ebs.SnapshotId)] = true
		}
	}
	out, err = runTask(t, e, TaskImageDelete, `{"image":"`+raw["image"]+`"}`, res, def, core.StatusAllocated)
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := e.image(raw["image"]); ok && i.State != ec2types.ImageStateDeregistered {
		t.Fatalf("image_delete left image %s (%s): %s", raw["image"], i.State, out)
	}
	if !strings.Contains(string(out), `"deregistered":true`) {
		t.Fatalf("image_delete result = %s", out)
	}
	for _, s := range e.world.State().Snapshots {
		if snapIDs[awssdk.ToString(s.SnapshotId)] {
			t.Fatalf("image_delete left snapshot %s", awssdk.ToString(s.SnapshotId))
		}
	}
}

func TestImageDeleteRefusesUntrustedImage(t *testing.T) {
	e := newEnv(t, "")
	def := e.def(`{"image":"`+amiAL2023New+`","instance_type":"t3.micro"}`, core.Resources{})
	res := &core.Resource{Identifier: "i-none"}
	out, err := runTask(t, e, TaskImageDelete, `{}`, res, def, core.StatusAllocated)
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := e.image(amiAL2023New); !ok || i.State != ec2types.ImageStateAvailable {
		t.Fatalf("an Amazon-owned image must never be deregistered (%s)", out)
	}
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil || r["deregistered"] != false {
		t.Fatalf("result = %s (%v)", out, err)
	}
	// An image that no longer exists is not an error (the label goes anyway).
	out, err = runTask(t, e, TaskImageDelete, `{}`, res, e.def(`{"image":"gone-image","instance_type":"t3.micro"}`, core.Resources{}), core.StatusAllocated)
	if err != nil || !strings.Contains(string(out), `"deregistered":false`) {
		t.Fatalf("missing image: %s, %v", out, err)
	}
}
