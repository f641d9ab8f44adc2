package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

func TestParseConfigErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, cfg, want string
	}{
		{"unknown key", `{"region":"us-west-2","regoin":"x"}`, `unknown key "regoin"`},
		{"bad region", `{"region":"mars"}`, "region:"},
		{"secret without key", `{"region":"us-west-2","secret_key":"s"}`, "key_id: required"},
		{"key without secret", `{"region":"us-west-2","key_id":"AKIA"}`, "secret_key: required"},
		{"bad account", `{"account_ids":["123"]}`, "account_ids[0]"},
		{"bad duration", `{"snapshot_create_wait":"5 parsecs"}`, "snapshot_create_wait"},
		{"negative wait", `{"image_create_wait":"-1h"}`, "image_create_wait: must not be negative"},
		{"bad base_url", `{"base_url":"ftp://x"}`, "base_url"},
		{"bad tag", `{"instance_tags":{"aws:x":"y"}}`, "instance_tags.aws:x"},
		{"pool unknown key", `{"dedicated_pool":{"macs":{"type":"mac2.metal","zone":"us-west-2a","max":1,"bogus":1}}}`, `dedicated_pool.macs: unknown key "bogus"`},
		{"pool bad max", `{"dedicated_pool":{"macs":{"type":"mac2.metal","zone":"us-west-2a","max":0}}}`, "dedicated_pool.macs.max"},
		{"pool no type", `{"dedicated_pool":{"macs":{"zone":"us-west-2a","max":1}}}`, "dedicated_pool.macs.type"},
		{"wrong type", `{"account_ids":"123456789012"}`, "account_ids"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.cfg))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseConfig(%s) error = %v, want it to contain %q", c.cfg, err, c.want)
			}
		})
	}
}

func TestParseConfigDefaultsAndSecrets(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"region":"us-west-2","key_id":"AKIAEXAMPLE","secret_key":"TOPSECRET",
		"snapshot_create_wait":"1d","dedicated_pool":{"macs":{"type":"mac2.metal","zone":"us-west-2c","max":3,"scrubbing_delay":"10m30s"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SnapshotCreateWait.D() != 24*time.Hour || cfg.ImageCreateWait.D() != DefaultImageCreateWait {
		t.Fatalf("waits = %v/%v", cfg.SnapshotCreateWait, cfg.ImageCreateWait)
	}
	if cfg.InstanceKeyPrefix != DefaultInstanceKeyPrefix {
		t.Fatalf("prefix = %q", cfg.InstanceKeyPrefix)
	}
	p := cfg.DedicatedPool["macs"]
	if p == nil || p.Name != "macs" || len(p.Zones) != 1 || p.Zones[0] != "us-west-2c" || p.ScrubbingDelay.D() != 10*time.Minute+30*time.Second {
		t.Fatalf("pool = %+v", p)
	}
	if s := cfg.String(); strings.Contains(s, "TOPSECRET") || strings.Contains(s, "AKIAEXAMPLE") {
		t.Fatalf("String() leaks credentials: %s", s)
	}
}

func TestParseDiskType(t *testing.T) {
	cases := []struct {
		in         string
		vt         ec2types.VolumeType
		iops, tput int32
		err        string
	}{
		{"", ec2types.VolumeTypeGp3, 0, 0, ""},
		{"gp2", ec2types.VolumeTypeGp2, 0, 0, ""},
		{"gp3:4000:250", ec2types.VolumeTypeGp3, 4000, 250, ""},
		{"io2:3000", ec2types.VolumeTypeIo2, 3000, 0, ""},
		{"io1", "", 0, 0, "needs iops"},
		{"gp9", "", 0, 0, "unknown volume type"},
		{"gp2:100", "", 0, 0, "only settable"},
		{"io2:3000:100", "", 0, 0, "throughput is only settable for gp3"},
		{"gp3:x", "", 0, 0, "iops must be"},
		{"gp3:1:2:3", "", 0, 0, "want <type>"},
	}
	for _, c := range cases {
		vt, iops, tput, err := parseDiskType(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseDiskType(%q) err = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || vt != c.vt || iops != c.iops || tput != c.tput {
			t.Errorf("parseDiskType(%q) = %v %d %d %v", c.in, vt, iops, tput, err)
		}
	}
}

func TestValidateDefinitionNamesTheField(t *testing.T) {
	d := New("aws", WithClients(Clients{}))
	cfg, err := ParseConfig([]byte(`{"dedicated_pool":{"macs":{"type":"mac2.metal","zones":["us-west-2a","us-west-2b"],"max":2}}}`))
	if err != nil {
		t.Fatal(err)
	}
	d.cfg = cfg
	def := func(opts string, res core.Resources) core.Definition {
		return core.Definition{Driver: "aws", Options: json.RawMessage(opts), Resources: res}
	}
	disk := func(d core.Disk) core.Resources { return core.Resources{Disks: map[string]core.Disk{"/dev/sdf": d}} }
	cases := []struct {
		name string
		def  core.Definition
		want string // "" = valid
	}{
		{"ok", def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{}), ""},
		{"ok from images", core.Definition{Options: json.RawMessage(`{"instance_type":"t3.micro"}`), Images: []core.Image{{Name: "ubuntu", Version: "22.04"}}}, ""},
		{"ok pool default type", def(`{"image":"macos-14","pool":"macs","pool_zones":["us-west-2b"]}`, core.Resources{}), ""},
		{"unknown option", def(`{"image":"x","instance_type":"t3.micro","imagee":"y"}`, core.Resources{}), `options: unknown key "imagee"`},
		{"no type", def(`{"image":"x"}`, core.Resources{}), "options.instance_type: required"},
		{"no image", def(`{"instance_type":"t3.micro"}`, core.Resources{}), "options.image: required"},
		{"bad userdata format", def(`{"image":"x","instance_type":"t3.micro","userdata_format":"yaml"}`, core.Resources{}), "options.userdata_format"},
		{"prefix without format", def(`{"image":"x","instance_type":"t3.micro","userdata_prefix":"P"}`, core.Resources{}), "options.userdata_prefix"},
		{"unknown pool", def(`{"image":"x","instance_type":"mac2.metal","pool":"nope"}`, core.Resources{}), `options.pool: "nope"`},
		{"zone outside pool", def(`{"image":"x","pool":"macs","pool_zones":["us-west-2c"]}`, core.Resources{}), "options.pool_zones[0]"},
		{"zones without pool", def(`{"image":"x","instance_type":"t3.micro","pool_zones":["us-west-2a"]}`, core.Resources{}), "options.pool_zones: needs options.pool"},
		{"pool type mismatch", def(`{"image":"x","instance_type":"mac1.metal","pool":"macs"}`, core.Resources{}), "options.instance_type"},
		{"bad tag", def(`{"image":"x","instance_type":"t3.micro","tags":{"":"v"}}`, core.Resources{}), "options.tags."},
		{"bad network", def(`{"image":"x","instance_type":"t3.micro"}`, core.Resources{Network: "mynet"}), "resources.network"},
		{"bad disk type", def(`{"image":"x","instance_type":"t3.micro"}`, disk(core.Disk{Type: "ssd", Size: 10})), "resources.disks./dev/sdf.type"},
		{"bad disk label", def(`{"image":"x","instance_type":"t3.micro"}`, disk(core.Disk{Size: 10, Label: "novalue"})), "resources.disks./dev/sdf.label"},
		{"disk without size", def(`{"image":"x","instance_type":"t3.micro"}`, disk(core.Disk{})), "size (GB) or clone"},
		{"bad clone", def(`{"image":"x","instance_type":"t3.micro"}`, disk(core.Disk{Clone: "vol-1"})), "resources.disks./dev/sdf.clone"},
		{"reuse", def(`{"image":"x","instance_type":"t3.micro"}`, disk(core.Disk{Size: 1, Reuse: true})), "reuse: not supported"},
		{"bad lifetime", def(`{"image":"x","instance_type":"t3.micro"}`, core.Resources{Lifetime: "soon"}), "resources.lifetime"},
		{"bad task image name", def(`{"image":"x","instance_type":"t3.micro","task_image_name":"a:b"}`, core.Resources{}), "options.task_image_name"},
		{"bad sg type", def(`{"image":"x","instance_type":"t3.micro","security_groups":"sg-1"}`, core.Resources{}), "security_groups"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := d.ValidateDefinition(c.def)
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want ErrorClass
	}{
		{nil, ClassNone},
		{awsemu.Errorf("RequestLimitExceeded", "slow down"), ClassRetryable},
		{&awsemu.APIError{Code: "Whatever", HTTPStatus: http.StatusServiceUnavailable}, ClassRetryable},
		{awsemu.ServerErrorf("InsufficientInstanceCapacity", "no"), ClassCapacity},
		{awsemu.ServerErrorf("InsufficientHostCapacity", "no"), ClassCapacity},
		{awsemu.Errorf("HostLimitExceeded", "no"), ClassCapacity},
		{awsemu.Errorf("InsufficientCapacityOnHost", "no"), ClassCapacity},
		{awsemu.Errorf("InvalidInstanceID.NotFound", "no"), ClassNotFound},
		{awsemu.Errorf("InvalidParameterValue", "no"), ClassPermanent},
		{&smithy.GenericAPIError{Code: "ThrottlingException"}, ClassRetryable},
		{fmt.Errorf("wrapped: %w", awsemu.Errorf("InvalidKeyPair.NotFound", "x")), ClassNotFound},
		{context.Canceled, ClassPermanent},
		{errors.New("plain"), ClassPermanent},
	}
	for _, c := range cases {
		if got := Classify(c.err); got != c.want {
			t.Errorf("Classify(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if err := awsErr("ec2 RunInstances", awsemu.ServerErrorf("InsufficientInstanceCapacity", "no")); !errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("capacity error does not wrap driver.ErrCapacity: %v", err)
	}
	if err := awsErr("ec2 RunInstances", awsemu.Errorf("InvalidParameterValue", "no")); errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("permanent error wraps driver.ErrCapacity: %v", err)
	}
}

func TestClientToken(t *testing.T) {
	def := core.Definition{Driver: "aws", Options: json.RawMessage(`{"image":"x"}`)}
	uid := "0b4e7c1a-3c2f-4b55-9a0e-2f8f1d6f6c11"
	a, b := clientToken(uid, def, 0), clientToken(uid, def, 0)
	if a != b || !strings.HasPrefix(a, uid) || len(a) > 64 {
		t.Fatalf("tokens %q %q", a, b)
	}
	if clientToken(uid, def, 1) == a {
		t.Fatal("generation does not change the token")
	}
	def2 := def
	def2.Options = json.RawMessage(`{"image":"y"}`)
	if clientToken(uid, def2, 0) == a {
		t.Fatal("definition does not change the token")
	}
	long := strings.Repeat("u", 100)
	if tok := clientToken(long, def, 0); len(tok) > 64 {
		t.Fatalf("token too long: %d", len(tok))
	}
}

func TestQuotaFor(t *testing.T) {
	cases := map[string]string{
		"t3.micro": "L-1216C47A", "c5n.large": "L-1216C47A", "m7g.xlarge": "L-1216C47A",
		"g5.xlarge": "L-DB2E81BA", "vt1.3xlarge": "L-DB2E81BA", "p4d.24xlarge": "L-417A185B",
		"x2idn.16xlarge": "L-7295265B", "inf2.xlarge": "L-1945791B", "trn1.2xlarge": "L-2C3B7624",
		"dl1.24xlarge": "L-6E869C2A", "hpc6a.48xlarge": "L-F7808C92", "u-6tb1.metal": "L-43DA4232",
		"f1.2xlarge": "L-74FC7D96",
	}
	for typ, want := range cases {
		if got := quotaFor(typ).Code; got != want {
			t.Errorf("quotaFor(%s) = %s, want %s", typ, got, want)
		}
	}
}

func TestUnknownTask(t *testing.T) {
	d := New("aws")
	if _, err := d.Task("defrag", nil); !errors.Is(err, driver.ErrTaskNotAvailable) {
		t.Fatalf("err = %v", err)
	}
	if _, err := d.Task("snapshot", []byte(`{"ful":true}`)); err == nil || !strings.Contains(err.Error(), `unknown key "ful"`) {
		t.Fatalf("err = %v", err)
	}
	if tk, err := d.Task("image", []byte(`{"full":true}`)); err != nil || tk.Name() != "image" {
		t.Fatalf("task %v err %v", tk, err)
	}
}

func TestRegistered(t *testing.T) {
	dr, err := driver.New("aws/prod")
	if err != nil {
		t.Fatal(err)
	}
	if dr.Name() != "aws/prod" {
		t.Fatalf("name = %s", dr.Name())
	}
}
