package aws

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// Options are the driver-specific options of a label definition (seed keys).
type Options struct {
	Image          string            `json:"image"`           // AMI ID, name or Tag:Value
	InstanceType   string            `json:"instance_type"`   // EC2 instance type
	SecurityGroup  string            `json:"security_group"`  // SG ID or name (seed)
	SecurityGroups []string          `json:"security_groups"` // list form
	Tags           map[string]string `json:"tags"`            // instance tags
	EncryptKey     string            `json:"encrypt_key"`     // KMS key id/ARN or alias/name for new disks
	Pool           string            `json:"pool"`            // dedicated pool name from the config
	PoolZones      []string          `json:"pool_zones"`      // narrows the pool's zones

	UserdataFormat string `json:"userdata_format"` // "", json, env, export, ps1
	UserdataPrefix string `json:"userdata_prefix"` // key prefix for env/export/ps1

	TaskImageName       string `json:"task_image_name"`        // image task name base
	TaskImageEncryptKey string `json:"task_image_encrypt_key"` // re-encrypt the image task's AMI
}

// amiNameRe is the character set EC2 accepts in AMI names.
var amiNameRe = regexp.MustCompile(`^[A-Za-z0-9()\[\] ./\-'@_]{3,114}$`)

// userdata formats accepted by userdata_format.
var userdataFormats = []string{"json", "env", "export", "ps1"}

// ParseOptions decodes definition options, rejecting unknown keys.
func ParseOptions(raw []byte) (*Options, error) {
	o := &Options{}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return o, nil
	}
	if err := decodeStrict(raw, o); err != nil {
		return nil, fmt.Errorf("options: %w", err)
	}
	return o, nil
}

// Groups returns security_group and security_groups merged, without duplicates.
func (o *Options) Groups() []string {
	var out []string
	if o.SecurityGroup != "" {
		out = append(out, o.SecurityGroup)
	}
	for _, g := range o.SecurityGroups {
		if g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// diskSpec is one parsed disk of a definition.
type diskSpec struct {
	Device     string
	VolumeType ec2types.VolumeType
	IOPS       int32
	Throughput int32
	Size       int32
	Clone      string
	Tags       map[string]string
}

// parseDiskType parses "<type>[:iops[:throughput]]" (default gp3).
func parseDiskType(s string) (ec2types.VolumeType, int32, int32, error) {
	if s == "" {
		return ec2types.VolumeTypeGp3, 0, 0, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return "", 0, 0, fmt.Errorf("%q: want <type>[:iops[:throughput]]", s)
	}
	vt := ec2types.VolumeType(parts[0])
	if !slices.Contains(vt.Values(), vt) {
		return "", 0, 0, fmt.Errorf("%q: unknown volume type %q (known: %v)", s, parts[0], vt.Values())
	}
	var iops, tput int32
	if len(parts) > 1 && parts[1] != "" {
		n, err := strconv.ParseInt(parts[1], 10, 32)
		if err != nil || n <= 0 {
			return "", 0, 0, fmt.Errorf("%q: iops must be a positive integer", s)
		}
		switch vt {
		case ec2types.VolumeTypeGp3, ec2types.VolumeTypeIo1, ec2types.VolumeTypeIo2:
		default:
			return "", 0, 0, fmt.Errorf("%q: iops is only settable for gp3, io1 and io2", s)
		}
		iops = int32(n)
	}
	if len(parts) > 2 && parts[2] != "" {
		n, err := strconv.ParseInt(parts[2], 10, 32)
		if err != nil || n <= 0 {
			return "", 0, 0, fmt.Errorf("%q: throughput must be a positive integer (MiB/s)", s)
		}
		if vt != ec2types.VolumeTypeGp3 {
			return "", 0, 0, fmt.Errorf("%q: throughput is only settable for gp3", s)
		}
		tput = int32(n)
	}
	if (vt == ec2types.VolumeTypeIo1 || vt == ec2types.VolumeTypeIo2) && iops == 0 {
		return "", 0, 0, fmt.Errorf("%q: %s needs iops (e.g. %s:3000)", s, vt, vt)
	}
	return vt, iops, tput, nil
}

// parseDiskLabel parses "k:v,k2:v2" into tags.
func parseDiskLabel(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("%q: want <tag_key>:<tag_value>[,<tag_key>:<tag_value>]", item)
		}
		k = strings.TrimSpace(k)
		if err := validateTag(k, v); err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("duplicate tag key %q", k)
		}
		out[k] = v
	}
	return out, nil
}

// parseDisks validates and sorts the definition disks by device name.
func parseDisks(disks map[string]core.Disk) ([]diskSpec, error) {
	names := make([]string, 0, len(disks))
	for n := range disks {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]diskSpec, 0, len(disks))
	for _, name := range names {
		d := disks[name]
		field := "resources.disks." + name
		if !strings.HasPrefix(name, "/dev/") && !strings.HasPrefix(name, "xvd") && !strings.HasPrefix(name, "sd") {
			return nil, fmt.Errorf("%s: device name must look like /dev/sdf or xvdf", field)
		}
		vt, iops, tput, err := parseDiskType(d.Type)
		if err != nil {
			return nil, fmt.Errorf("%s.type: %w", field, err)
		}
		tags, err := parseDiskLabel(d.Label)
		if err != nil {
			return nil, fmt.Errorf("%s.label: %w", field, err)
		}
		if d.Reuse {
			return nil, fmt.Errorf("%s.reuse: not supported by the aws driver", field)
		}
		if d.Size == 0 && d.Clone == "" {
			return nil, fmt.Errorf("%s: size (GB) or clone (snapshot) is required", field)
		}
		if d.Size > 65536 {
			return nil, fmt.Errorf("%s.size: %d GB is larger than the EBS maximum 65536", field, d.Size)
		}
		if d.Clone != "" && !strings.HasPrefix(d.Clone, "snap-") && !isTagRef(d.Clone) {
			return nil, fmt.Errorf("%s.clone: %q must be a snapshot id (snap-...) or Tag:Value", field, d.Clone)
		}
		out = append(out, diskSpec{Device: name, VolumeType: vt, IOPS: iops, Throughput: tput,
			Size: int32(d.Size), Clone: d.Clone, Tags: tags})
	}
	return out, nil
}

// isTagRef reports whether s has the Tag:Value form.
func isTagRef(s string) bool {
	k, v, ok := strings.Cut(s, ":")
	return ok && k != "" && v != ""
}

// imageRef is the image to resolve for a definition: the image option, or
// else the first definition image joined as name-version.
func imageRef(def core.Definition, o *Options) string {
	if o.Image != "" {
		return o.Image
	}
	if len(def.Images) > 0 {
		img := def.Images[0]
		if img.Name != "" && img.Version != "" {
			return img.Name + "-" + img.Version
		}
		return img.Name
	}
	return ""
}

// isMacType reports whether an instance type runs on mac dedicated hosts.
func isMacType(t string) bool { return strings.HasPrefix(t, "mac") }

// ValidateDefinition checks a label definition at creation; the error names
// the offending field.
func (d *Driver) ValidateDefinition(def core.Definition) error {
	_, _, err := d.parseDefinition(def)
	return err
}

// parseDefinition validates def and returns its options and disks (cached,
// shared: read-only).
func (d *Driver) parseDefinition(def core.Definition) (*Options, []diskSpec, error) {
	p, err := d.definition(def)
	if err != nil {
		return nil, nil, err
	}
	return p.opts, p.disks, nil
}

// parseDefinitionUncached validates def and returns its options and disks.
func (d *Driver) parseDefinitionUncached(def core.Definition) (*Options, []diskSpec, error) {
	o, err := ParseOptions(def.Options)
	if err != nil {
		return nil, nil, err
	}
	if o.Pool != "" && d.poolConfig(o.Pool) == nil {
		return nil, nil, fmt.Errorf("options.pool: %q is not a dedicated_pool of driver %s (known: %v)", o.Pool, d.name, d.poolNames())
	}
	if o.InstanceType == "" {
		if p := d.poolConfig(o.Pool); p != nil {
			o.InstanceType = p.Type
		} else {
			return nil, nil, errors.New("options.instance_type: required")
		}
	}
	if strings.ContainsAny(o.InstanceType, " \t") || !strings.Contains(o.InstanceType, ".") {
		return nil, nil, fmt.Errorf("options.instance_type: %q is not an EC2 instance type", o.InstanceType)
	}
	ref := imageRef(def, o)
	if ref == "" {
		return nil, nil, errors.New("options.image: required (or a definition image name)")
	}
	for i, g := range o.Groups() {
		if strings.TrimSpace(g) != g {
			return nil, nil, fmt.Errorf("options.security_groups[%d]: %q has surrounding spaces", i, g)
		}
	}
	for k, v := range o.Tags {
		if err := validateTag(k, v); err != nil {
			return nil, nil, fmt.Errorf("options.tags.%s: %w", k, err)
		}
	}
	if o.EncryptKey != "" && strings.TrimSpace(o.EncryptKey) != o.EncryptKey {
		return nil, nil, errors.New("options.encrypt_key: has surrounding spaces")
	}
	if o.UserdataFormat != "" && !slices.Contains(userdataFormats, o.UserdataFormat) {
		return nil, nil, fmt.Errorf("options.userdata_format: %q is not one of %v", o.UserdataFormat, userdataFormats)
	}
	if o.TaskImageName != "" && !amiNameRe.MatchString(o.TaskImageName) {
		return nil, nil, fmt.Errorf("options.task_image_name: %q must be 3-114 characters of letters, digits, ()[] ./-'@_", o.TaskImageName)
	}
	if o.TaskImageEncryptKey != "" && strings.TrimSpace(o.TaskImageEncryptKey) != o.TaskImageEncryptKey {
		return nil, nil, errors.New("options.task_image_encrypt_key: has surrounding spaces")
	}
	if o.UserdataPrefix != "" && o.UserdataFormat == "" {
		return nil, nil, errors.New("options.userdata_prefix: needs userdata_format")
	}
	if o.Pool != "" {
		p := d.poolConfig(o.Pool)
		if p == nil {
			return nil, nil, fmt.Errorf("options.pool: %q is not a dedicated_pool of driver %s (known: %v)", o.Pool, d.name, d.poolNames())
		}
		if o.InstanceType != p.Type {
			return nil, nil, fmt.Errorf("options.instance_type: %q differs from the type %q of pool %q", o.InstanceType, p.Type, o.Pool)
		}
		for i, z := range o.PoolZones {
			if !slices.Contains(p.Zones, z) {
				return nil, nil, fmt.Errorf("options.pool_zones[%d]: zone %q is not a zone of pool %q (%v)", i, z, o.Pool, p.Zones)
			}
		}
	} else if len(o.PoolZones) > 0 {
		return nil, nil, errors.New("options.pool_zones: needs options.pool")
	}
	if n := def.Resources.Network; n != "" && !strings.HasPrefix(n, "vpc-") && !strings.HasPrefix(n, "subnet-") && !isTagRef(n) {
		return nil, nil, fmt.Errorf("resources.network: %q must be empty, a VPC id, a subnet id or Tag:Value", n)
	}
	if _, err := core.ParseDuration(def.Resources.Lifetime); err != nil {
		return nil, nil, fmt.Errorf("resources.lifetime: %w", err)
	}
	disks, err := parseDisks(def.Resources.Disks)
	if err != nil {
		return nil, nil, err
	}
	return o, disks, nil
}
