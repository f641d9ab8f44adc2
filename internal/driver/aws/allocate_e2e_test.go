package aws

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

const (
	amiUbuntu      = "ami-0a1b2c3d400000009" // account image "ubuntu-22.04", tagged Os=ubuntu
	amiAL2023New   = "ami-0a1b2c3d400000002" // Amazon public, newest al2023 x86_64
	vpcDefault     = "vpc-0d3fa0170000d3fa0"
	vpcAquarium    = "vpc-0a9a1a1000000a9a1"
	subnetAqA      = "subnet-0a9a1a100000000a1" // 40 IPs used
	subnetAqC      = "subnet-0a9a1a100000000c1" // /25
	sgAqSSHDefault = "sg-0d3fa0170000005a0"
	sgAqSSH        = "sg-0a9a1a1000000005a"
	kmsKeyID       = "1234abcd-12ab-34cd-56ef-1234567890ab"
	snapCache      = "snap-0a9a1a10000000001"
)

func TestAllocateBasicAndDeallocate(t *testing.T) {
	e := newEnv(t, "")
	res := e.mustAllocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{Cpu: 2, Ram: 1}), nil)
	inst := e.instance(res.Identifier)
	if got := awssdk.ToString(inst.ImageId); got != amiUbuntu {
		t.Errorf("image = %s, want %s", got, amiUbuntu)
	}
	if inst.InstanceType != "t3.micro" {
		t.Errorf("type = %s", inst.InstanceType)
	}
	if awssdk.ToString(inst.VpcId) != vpcDefault {
		t.Errorf("empty network must use the default VPC, got %s", awssdk.ToString(inst.VpcId))
	}
	if res.IPAddr == "" || res.IPAddr != awssdk.ToString(inst.PrivateIpAddress) {
		t.Errorf("resource IP %q, instance IP %q", res.IPAddr, awssdk.ToString(inst.PrivateIpAddress))
	}
	if res.HwAddr == "" || len(inst.NetworkInterfaces) == 0 || res.HwAddr != awssdk.ToString(inst.NetworkInterfaces[0].MacAddress) {
		t.Errorf("resource MAC %q", res.HwAddr)
	}
	if tok := awssdk.ToString(inst.ClientToken); !strings.HasPrefix(tok, res.ApplicationUID+"-") {
		t.Errorf("ClientToken %q is not derived from the application uid %s", tok, res.ApplicationUID)
	}
	tags := tagMap(inst.Tags)
	if tags[TagApplication] != res.ApplicationUID || tags[TagName] == "" || tags[TagLabel] != "label-1" {
		t.Errorf("instance tags = %v", tags)
	}
	if st, err := e.d.Status(e.ctx, *res); err != nil || st != driver.StatusAllocated {
		t.Fatalf("Status = %v, %v", st, err)
	}
	if err := e.d.Deallocate(e.ctx, *res); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Deallocate(e.ctx, *res); err != nil {
		t.Fatalf("second Deallocate must be a no-op: %v", err)
	}
	if st, err := e.d.Status(e.ctx, *res); err != nil || st != driver.StatusNone {
		t.Fatalf("Status after deallocate = %v, %v", st, err)
	}
	if live := e.liveInstances(); len(live) != 0 {
		t.Fatalf("instances left: %d", len(live))
	}
}

func TestAllocateIsIdempotentPerApplication(t *testing.T) {
	e := newEnv(t, "")
	def := e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{})
	req := driver.AllocateRequest{ApplicationUID: "app-same", Definition: def}
	a, err := e.d.Allocate(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.d.Allocate(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.Identifier != b.Identifier || len(e.liveInstances()) != 1 {
		t.Fatalf("retried Allocate launched twice: %s %s (live %d)", a.Identifier, b.Identifier, len(e.liveInstances()))
	}
	// After a deallocation the same application (a new attempt) gets a fresh instance.
	if err := e.d.Deallocate(e.ctx, *a); err != nil {
		t.Fatal(err)
	}
	c, err := e.d.Allocate(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if c.Identifier == a.Identifier || len(e.liveInstances()) != 1 {
		t.Fatalf("allocation after rollback reused the terminated instance %s", c.Identifier)
	}
}

// Every row of the seed's image option: ID, Name, Tag:Value, and the
// definition image name-version; names/tags only in trusted accounts.
func TestImageResolution(t *testing.T) {
	e := newEnv(t, "")
	cases := []struct {
		name string
		def  core.Definition
		want string
	}{
		{"id", e.def(`{"image":"`+amiAL2023New+`","instance_type":"t3.micro"}`, core.Resources{}), amiAL2023New},
		{"name", e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{}), amiUbuntu},
		{"tag", e.def(`{"image":"Os:ubuntu","instance_type":"t3.micro"}`, core.Resources{}), amiUbuntu},
		{"name-version", core.Definition{Driver: "aws", Options: json.RawMessage(`{"instance_type":"t3.micro"}`),
			Images: []core.Image{{Name: "ubuntu", Version: "22.04"}}}, amiUbuntu},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := e.mustAllocate(c.def, nil)
			if got := awssdk.ToString(e.instance(res.Identifier).ImageId); got != c.want {
				t.Fatalf("image = %s, want %s", got, c.want)
			}
		})
	}
	// An Amazon-owned image by name is refused unless Amazon's account is trusted.
	_, err := e.allocate(e.def(`{"image":"al2023-ami-2023.6.20250101.0-kernel-6.1-x86_64","instance_type":"t3.micro"}`, core.Resources{}), nil)
	if err == nil || !strings.Contains(err.Error(), "options.image") {
		t.Fatalf("untrusted owner's image by name: err = %v", err)
	}
	e2 := newEnv(t, `{"region":"us-west-2","account_ids":["137112412989"]}`)
	res := e2.mustAllocate(e2.def(`{"image":"al2023-ami-2023.6.20250101.0-kernel-6.1-x86_64","instance_type":"t3.micro"}`, core.Resources{}), nil)
	if got := awssdk.ToString(e2.instance(res.Identifier).ImageId); got != amiAL2023New {
		t.Fatalf("trusted account image = %s", got)
	}
}

// Network: empty, VPC id (underused subnet), subnet id, Tag:Value of a VPC.
func TestNetworkResolution(t *testing.T) {
	e := newEnv(t, "")
	cases := []struct {
		network, wantVPC, wantSubnet string
	}{
		{"", vpcDefault, ""},
		{vpcAquarium, vpcAquarium, "subnet-0a9a1a100000000b1"}, // 10 used of a /24: most free
		{subnetAqA, vpcAquarium, subnetAqA},
		{"Project:aquarium", vpcAquarium, "subnet-0a9a1a100000000b1"},
		{"Name:aquarium-c", vpcAquarium, subnetAqC}, // a subnet tag (no VPC has it)
	}
	for _, c := range cases {
		t.Run("network="+c.network, func(t *testing.T) {
			res := e.mustAllocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{Network: c.network}), nil)
			inst := e.instance(res.Identifier)
			if awssdk.ToString(inst.VpcId) != c.wantVPC {
				t.Errorf("vpc = %s, want %s", awssdk.ToString(inst.VpcId), c.wantVPC)
			}
			if c.wantSubnet != "" && awssdk.ToString(inst.SubnetId) != c.wantSubnet {
				t.Errorf("subnet = %s, want %s", awssdk.ToString(inst.SubnetId), c.wantSubnet)
			}
		})
	}
	if _, err := e.allocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{Network: "Project:nothing"}), nil); err == nil ||
		!strings.Contains(err.Error(), "resources.network") {
		t.Fatalf("unknown network tag: err = %v", err)
	}
}

// security_group by name (per VPC) and ID, security_groups list.
func TestSecurityGroups(t *testing.T) {
	e := newEnv(t, "")
	res := e.mustAllocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro","security_group":"aquarium-ssh"}`, core.Resources{Network: vpcAquarium}), nil)
	if got := groupIDs(e.instance(res.Identifier)); len(got) != 1 || got[0] != sgAqSSH {
		t.Fatalf("groups by name in vpc-aquarium = %v, want [%s]", got, sgAqSSH)
	}
	res = e.mustAllocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro","security_group":"aquarium-ssh"}`, core.Resources{}), nil)
	if got := groupIDs(e.instance(res.Identifier)); len(got) != 1 || got[0] != sgAqSSHDefault {
		t.Fatalf("groups by name in the default VPC = %v, want [%s]", got, sgAqSSHDefault)
	}
	res = e.mustAllocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro","security_groups":["`+sgAqSSHDefault+`","default"]}`, core.Resources{}), nil)
	if got := groupIDs(e.instance(res.Identifier)); len(got) != 2 || got[0] != sgAqSSHDefault {
		t.Fatalf("security_groups list = %v", got)
	}
	if _, err := e.allocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro","security_group":"nope"}`, core.Resources{}), nil); err == nil ||
		!strings.Contains(err.Error(), "options.security_group") {
		t.Fatalf("unknown group: err = %v", err)
	}
}

func groupIDs(i ec2types.Instance) []string {
	var out []string
	for _, g := range i.SecurityGroups {
		out = append(out, awssdk.ToString(g.GroupId))
	}
	return out
}

// tags + instance_tags (override) on instance and volumes.
func TestTags(t *testing.T) {
	e := newEnv(t, `{"region":"us-west-2","instance_tags":{"Team":"ci-infra","Node":"fish-1"}}`, envOpt{opts: []Option{WithNodeName("fish-1")}})
	res := e.mustAllocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro","tags":{"Team":"label-team","Purpose":"build"}}`,
		core.Resources{Disks: map[string]core.Disk{"/dev/sdf": {Size: 10}}}), nil)
	tags := tagMap(e.instance(res.Identifier).Tags)
	want := map[string]string{"Team": "ci-infra", "Node": "fish-1", "Purpose": "build", TagApplication: res.ApplicationUID, TagNode: "fish-1"}
	for k, v := range want {
		if tags[k] != v {
			t.Errorf("instance tag %s = %q, want %q (all %v)", k, tags[k], v, tags)
		}
	}
	vols := e.volumesOf(res.Identifier)
	if len(vols) < 2 {
		t.Fatalf("volumes = %d, want root + /dev/sdf", len(vols))
	}
	for dev, v := range vols {
		vt := tagMap(v.Tags)
		if vt["Team"] != "ci-infra" || vt[TagApplication] != res.ApplicationUID {
			t.Errorf("volume %s tags = %v", dev, vt)
		}
	}
}

// disks: type:iops:throughput, size, label tags, clone by ID and Tag:Value, encrypt_key alias.
func TestDisks(t *testing.T) {
	e := newEnv(t, "")
	res := e.mustAllocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro","encrypt_key":"alias/aquarium"}`, core.Resources{Disks: map[string]core.Disk{
		"/dev/sdf": {Type: "gp3:4000:250", Size: 20, Label: "Role:cache,Tier:fast"},
		"/dev/sdg": {Type: "io2:3000", Size: 8},
		"/dev/sdh": {Clone: snapCache},
		"/dev/sdi": {Clone: "Name:aquarium-cache", Size: 60},
		"/dev/sdj": {Size: 5},
	}}), nil)
	vols := e.volumesOf(res.Identifier)
	check := func(dev string, vt ec2types.VolumeType, size, iops, tput int32, snap string) ec2types.Volume {
		t.Helper()
		v, ok := vols[dev]
		if !ok {
			t.Fatalf("no volume at %s (have %v)", dev, sortedKeys(vols))
		}
		if v.VolumeType != vt || awssdk.ToInt32(v.Size) != size || (iops > 0 && awssdk.ToInt32(v.Iops) != iops) ||
			(tput > 0 && awssdk.ToInt32(v.Throughput) != tput) || awssdk.ToString(v.SnapshotId) != snap {
			t.Errorf("%s: type %s size %d iops %d tput %d snap %s", dev, v.VolumeType, awssdk.ToInt32(v.Size),
				awssdk.ToInt32(v.Iops), awssdk.ToInt32(v.Throughput), awssdk.ToString(v.SnapshotId))
		}
		if !awssdk.ToBool(v.Encrypted) || !strings.Contains(awssdk.ToString(v.KmsKeyId), kmsKeyID) {
			t.Errorf("%s: encrypted %v key %s, want key %s", dev, awssdk.ToBool(v.Encrypted), awssdk.ToString(v.KmsKeyId), kmsKeyID)
		}
		return v
	}
	f := check("/dev/sdf", ec2types.VolumeTypeGp3, 20, 4000, 250, "")
	if tg := tagMap(f.Tags); tg["Role"] != "cache" || tg["Tier"] != "fast" || tg[TagApplication] != res.ApplicationUID {
		t.Errorf("/dev/sdf label tags = %v", tg)
	}
	g := check("/dev/sdg", ec2types.VolumeTypeIo2, 8, 3000, 0, "")
	if _, ok := tagMap(g.Tags)["Role"]; ok {
		t.Errorf("label of /dev/sdf leaked to /dev/sdg")
	}
	check("/dev/sdh", ec2types.VolumeTypeGp3, 50, 0, 0, snapCache)
	check("/dev/sdi", ec2types.VolumeTypeGp3, 60, 0, 0, snapCache)
	check("/dev/sdj", ec2types.VolumeTypeGp3, 5, 0, 0, "")
	if err := e.d.Deallocate(e.ctx, *res); err != nil {
		t.Fatal(err)
	}
}

// userdata_format json/env/export/ps1 with userdata_prefix.
func TestUserdata(t *testing.T) {
	e := newEnv(t, "")
	md := map[string]any{"test1": "test2", "testk": "testv"}
	cases := []struct{ format, prefix, want string }{
		{"json", "", `{"test1":"test2","testk":"testv"}`},
		{"env", "", "test1=test2\ntestk=testv\n"},
		{"export", "", "export test1=test2\nexport testk=testv\n"},
		{"ps1", "", "$test1='test2'\n$testk='testv'\n"},
		{"env", "FISH", "FISH_test1=test2\nFISH_testk=testv\n"},
	}
	for _, c := range cases {
		t.Run(c.format+c.prefix, func(t *testing.T) {
			opts := `{"image":"ubuntu-22.04","instance_type":"t3.micro","userdata_format":"` + c.format + `","userdata_prefix":"` + c.prefix + `"}`
			res := e.mustAllocate(e.def(opts, core.Resources{}), md)
			var got string
			e.inspect(func() {
				out, err := e.world.DescribeInstanceAttribute(e.ctx, &ec2.DescribeInstanceAttributeInput{
					InstanceId: awssdk.String(res.Identifier), Attribute: ec2types.InstanceAttributeNameUserData})
				if err != nil {
					t.Fatal(err)
				}
				b, err := base64.StdEncoding.DecodeString(awssdk.ToString(out.UserData.Value))
				if err != nil {
					t.Fatal(err)
				}
				got = string(b)
			})
			if strings.TrimSpace(got) != strings.TrimSpace(c.want) {
				t.Fatalf("user data = %q, want %q", got, c.want)
			}
		})
	}
}

// instance_key: generate creates a key pair per instance, returns the PEM and
// deletes it on deallocate; an existing key name is passed through.
func TestInstanceKey(t *testing.T) {
	e := newEnv(t, `{"region":"us-west-2","instance_key":"generate","instance_key_prefix":"ci-"}`)
	res := e.mustAllocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{}), nil)
	keyName := "ci-" + res.ApplicationUID
	if got := awssdk.ToString(e.instance(res.Identifier).KeyName); got != keyName {
		t.Fatalf("instance key = %q, want %q", got, keyName)
	}
	if res.Authentication == nil || !strings.Contains(res.Authentication.Key, "PRIVATE KEY") {
		t.Fatalf("no PEM in the resource authentication")
	}
	if !hasKeyPair(e, keyName) {
		t.Fatalf("key pair %s not created", keyName)
	}
	if err := e.d.Deallocate(e.ctx, *res); err != nil {
		t.Fatal(err)
	}
	if hasKeyPair(e, keyName) {
		t.Fatalf("key pair %s left after deallocate", keyName)
	}

	e2 := newEnv(t, `{"region":"us-west-2","instance_key":"my-existing-key"}`)
	e2.inspect(func() {
		if _, err := e2.world.CreateKeyPair(e2.ctx, &ec2.CreateKeyPairInput{KeyName: awssdk.String("my-existing-key")}); err != nil {
			t.Fatal(err)
		}
	})
	res2 := e2.mustAllocate(e2.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{}), nil)
	if got := awssdk.ToString(e2.instance(res2.Identifier).KeyName); got != "my-existing-key" {
		t.Fatalf("instance key = %q, want the configured key pair", got)
	}
	if res2.Authentication != nil && res2.Authentication.Key != "" {
		t.Fatal("an existing key pair has no PEM to return")
	}
	if err := e2.d.Deallocate(e2.ctx, *res2); err != nil {
		t.Fatal(err)
	}
	if !hasKeyPair(e2, "my-existing-key") {
		t.Fatal("deallocate must not delete a key pair the driver did not create")
	}
}

func hasKeyPair(e *env, name string) bool {
	for _, k := range e.world.State().KeyPairs {
		if awssdk.ToString(k.KeyName) == name {
			return true
		}
	}
	return false
}

func TestValidationErrorsReachAllocate(t *testing.T) {
	e := newEnv(t, "")
	_, err := e.allocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro","encrypt_key":"alias/missing"}`,
		core.Resources{Disks: map[string]core.Disk{"/dev/sdf": {Size: 1}}}), nil)
	if err == nil || !strings.Contains(err.Error(), "options.encrypt_key") {
		t.Fatalf("missing alias: err = %v", err)
	}
	_, err = e.allocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`,
		core.Resources{Disks: map[string]core.Disk{"/dev/sdf": {Clone: "Name:none"}}}), nil)
	if err == nil || !strings.Contains(err.Error(), "resources.disks./dev/sdf.clone") {
		t.Fatalf("missing snapshot: err = %v", err)
	}
	if n := len(e.liveInstances()); n != 0 {
		t.Fatalf("failed allocations left %d instances", n)
	}
	var apiErr error = err
	if errors.Is(apiErr, driver.ErrCapacity) {
		t.Fatal("a definition error must not look like a capacity error")
	}
}

// Tag:Value resolves to the newest image; the answer is cached for the cache
// TTL on the driver clock, then refreshed.
func TestImageCacheTTLAndNewest(t *testing.T) {
	e := newEnv(t, "")
	def := e.def(`{"image":"Os:ubuntu","instance_type":"t3.micro"}`, core.Resources{})
	res := e.mustAllocate(def, nil)
	e.clk.Advance(time.Minute)
	var newID string
	e.inspect(func() {
		out, err := e.world.CreateImage(e.ctx, &ec2.CreateImageInput{InstanceId: awssdk.String(res.Identifier), Name: awssdk.String("ubuntu-22.04-next"),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImage, Tags: []ec2types.Tag{{Key: awssdk.String("Os"), Value: awssdk.String("ubuntu")}}}}})
		if err != nil {
			t.Fatal(err)
		}
		newID = awssdk.ToString(out.ImageId)
	})
	e.clk.Advance(2 * time.Minute) // the new image is available now
	if got := awssdk.ToString(e.instance(e.mustAllocate(def, nil).Identifier).ImageId); got != amiUbuntu {
		t.Fatalf("within the cache TTL the cached image must be used, got %s", got)
	}
	e.clk.Advance(DefaultCacheTTL)
	if got := awssdk.ToString(e.instance(e.mustAllocate(def, nil).Identifier).ImageId); got != newID {
		t.Fatalf("after the TTL the newest tagged image %s must be used, got %s", newID, got)
	}
}
