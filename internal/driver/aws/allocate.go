package aws

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
	"github.com/aquarium-fish/aquarium-fish/internal/driver/aws/pool"
	"github.com/aquarium-fish/aquarium-fish/internal/ec2ops"
	"github.com/aquarium-fish/aquarium-fish/internal/meta"
	"github.com/aquarium-fish/aquarium-fish/internal/strarena"
)

// Tag keys the driver puts on what it creates.
const (
	TagApplication = "AquariumApplication"
	TagLabel       = "AquariumLabel"
	TagNode        = "AquariumNode"
	TagName        = "Name"
)

// DriverData is what the driver stores in Resource.DriverData to find and
// clean up the resource later.
type DriverData struct {
	KeyName      string `json:"key_name,omitempty"`
	KeyGenerated bool   `json:"key_generated,omitempty"`
	HostID       string `json:"host_id,omitempty"`
	Pool         string `json:"pool,omitempty"`
	Zone         string `json:"zone,omitempty"`
	Subnet       string `json:"subnet,omitempty"`
}

// maxTokenGenerations bounds how often Allocate moves to a fresh ClientToken
// when AWS answers with an instance a previous (rolled back) attempt made.
const maxTokenGenerations = 8

// clientTokenOf derives the RunInstances ClientToken from the application
// uid, the definition hash (definitionHash) and a generation (bumped after a
// rollback, since AWS keeps returning the terminated instance for a used
// token). It is at most 64 ASCII characters, as EC2 requires.
func clientTokenOf(appUID, defHash string, gen int) string {
	if len(appUID)+len(defHash)+2+intLen(gen) <= 64 {
		return appUID + "-" + defHash + "-" + strconv.Itoa(gen)
	}
	h2 := sha256.Sum256([]byte(appUID))
	return hex.EncodeToString(h2[:16]) + "-" + defHash + "-" + strconv.Itoa(gen)
}

// tokenAndName is clientTokenOf and, when withName, defaultName, built as
// one string when the token is the plain form (one allocation instead of
// two; both live as long as the instance's record).
func tokenAndName(appUID, labelName, defHash string, gen int, withName bool) (tok, name string) {
	if !withName || len(appUID)+len(defHash)+2+intLen(gen) > 64 {
		tok = clientTokenOf(appUID, defHash, gen)
		if withName {
			name = defaultName(labelName, appUID)
		}
		return tok, name
	}
	prefix := labelName
	if prefix == "" {
		prefix = "aquarium"
	}
	s := prefix + "-" + appUID + appUID + "-" + defHash + "-" + strconv.Itoa(gen)
	n := len(prefix) + 1 + len(appUID)
	return s[n:], s[:n]
}

// arenaTokenAndName is tokenAndName with both strings carved from one
// string of a (one allocation per chunk instead of one per Allocate: see
// strarena).
func arenaTokenAndName(a *strarena.Arena, appUID, labelName, defHash string, gen int, withName bool) (tok, name string) {
	if len(appUID)+len(defHash)+2+intLen(gen) > 64 {
		return tokenAndName(appUID, labelName, defHash, gen, withName) // (the hashed token: rare)
	}
	prefix := labelName
	if prefix == "" {
		prefix = "aquarium"
	}
	var buf [160]byte
	b := buf[:0]
	if withName {
		b = append(append(append(b, prefix...), '-'), appUID...)
	}
	n := len(b) // the name comes first
	b = append(append(append(append(b, appUID...), '-'), defHash...), '-')
	s := a.String(strconv.AppendInt(b, int64(gen), 10))
	return s[n:], s[:n]
}

// intLen is the length of strconv.Itoa(n).
func intLen(n int) int {
	l := 1
	if n < 0 {
		l++
		n = -n
	}
	for n >= 10 {
		n /= 10
		l++
	}
	return l
}

// tokenKey identifies the client token sequence of one application and
// definition.
type tokenKey struct{ app, defHash string }

// newTokenAndName is tokenAndName of key's current generation (one tokMu
// round trip for both).
func (d *Driver) newTokenAndName(key tokenKey, labelName string, withName bool) (tok, name string) {
	d.tokMu.Lock()
	defer d.tokMu.Unlock()
	gen := 0
	if len(d.tokGen) > 0 { // the usual case (no rollback yet): no key hashing
		gen = d.tokGen[key]
	}
	return arenaTokenAndName(&d.tokArena, key.app, labelName, key.defHash, gen, withName)
}

func (d *Driver) tokenGen(key tokenKey) int {
	d.tokMu.Lock()
	defer d.tokMu.Unlock()
	if len(d.tokGen) == 0 { // the usual case (no rollback yet): no key hashing
		return 0
	}
	return d.tokGen[key]
}

func (d *Driver) bumpTokenGen(key tokenKey) {
	d.tokMu.Lock()
	defer d.tokMu.Unlock()
	d.tokGen[key]++
}

func toTags(m map[string]string) []ec2types.Tag {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]ec2types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, ec2types.Tag{Key: awssdk.String(k), Value: awssdk.String(m[k])})
	}
	return out
}

// launch is a RunInstances input together with the values its pointers
// point to: building it costs one allocation instead of one per field
// (Allocate runs once per job). Each Allocate has its own launch (recycled
// once the Allocate is done: see launches), and a value is never changed
// once a call has been given a pointer to it (the SDK and the emulator only
// read inputs).
type launch struct {
	in                 ec2.RunInstancesInput
	placement          ec2types.Placement
	specs              [2]ec2types.TagSpecification
	minCount, maxCount int32
	imageID, subnetID  string
	hostID, keyName    string
	token              string
	tagVals            tagValues
	// tagBuf backs the tags when they fit: the driver's (up to four) and a
	// few label tags / instance_tags. Seven fill the launch up to the
	// 1152-byte size class (launched took it past 1024); more tags take an
	// allocation of their own.
	tagBuf [7]ec2types.Tag
	// launched is the LaunchInstances dst: the one instance asked for.
	launched [1]ec2ops.Instance
}

// resourceWithData is the resource Allocate returns and the usual backing
// of its DriverData, in one allocation instead of two: 176 bytes hold the
// driver data of ids of AWS's lengths with a pool, a zone, a subnet and a
// key name, and fill the 384-byte size class with the resource. Longer
// driver data takes an allocation of its own.
type resourceWithData struct {
	res  core.Resource
	data [176]byte
}

// launches recycles launch values between Allocates: a launch is large
// (mostly the SDK input) and its allocation, zeroing and collection were
// the biggest single cost of the driver's own Allocate work. Recycling is
// safe because nothing keeps a request once the call has returned (the
// ec2ops and SDK contracts, and the world copies what it keeps).
var launches = sync.Pool{New: func() any { return new(launch) }}

// getLaunch returns a zeroed launch; putLaunch gives it back once no call
// is running with it.
func getLaunch() *launch {
	l := launches.Get().(*launch)
	*l = launch{}
	return l
}

func putLaunch(l *launch) { launches.Put(l) }

// allocation tracks what one Allocate created, for rollback.
type allocation struct {
	keyName    string
	keyCreated bool
	pool       *pool.Manager
	placement  pool.Placement
	reserved   bool
	bound      bool
	instanceID string
	poolToken  string
	// uncertainToken is set when RunInstances got no answer (network error,
	// cancellation): an instance may exist under this client token.
	uncertainToken string
}

// Allocate launches one instance for req. It is idempotent per application
// (ClientToken) and leaves nothing behind when it fails.
func (d *Driver) Allocate(ctx context.Context, req driver.AllocateRequest) (res *core.Resource, err error) {
	cfg, api, pools, err := d.allocState()
	if err != nil {
		return nil, err
	}
	if req.ApplicationUID == "" {
		return nil, errors.New("aws allocate: application uid is required")
	}
	pd, err := d.definitionFor(cfg, req.Definition)
	if err != nil {
		return nil, err
	}
	o, disks := pd.opts, pd.disks
	img, err := d.resolveImage(ctx, pd.imgRef)
	if err != nil {
		return nil, err
	}
	cands, err := d.resolveSubnets(ctx, req.Definition.Resources.Network)
	if err != nil {
		return nil, err
	}
	kmsKey, err := d.resolveKMSKey(ctx, "options.encrypt_key", o.EncryptKey)
	if err != nil {
		return nil, err
	}
	bdm, err := d.blockDevices(ctx, disks, kmsKey)
	if err != nil {
		return nil, err
	}
	var userData *string
	if o.UserdataFormat != "" {
		md := req.Metadata
		if md == nil {
			md = map[string]any{}
		}
		b, err := meta.Serialize(md, o.UserdataFormat, o.UserdataPrefix)
		if err != nil {
			return nil, fmt.Errorf("options.userdata_format: serialize metadata: %w", err)
		}
		if len(b) > 0 {
			userData = awssdk.String(base64.StdEncoding.EncodeToString(b))
		}
	}

	a := &allocation{}
	defer func() {
		if err != nil {
			d.rollback(ctx, api, a)
		}
	}()

	l := getLaunch()
	defer putLaunch(l)
	// Placement: a pool host, host auto-placement for mac types, or none.
	placement := &l.placement
	// zones filters the subnets (nil = any); placeZones are the zones asked
	// of the pool. They are separate variables so that zones can live on the
	// stack (the pool may keep what it is given; see oneZone).
	var zones []string
	var oneZone [1]string
	if o.Pool != "" {
		a.pool = pools[o.Pool]
		if a.pool == nil {
			return nil, fmt.Errorf("options.pool: pool %q is not running", o.Pool)
		}
		want := pd.poolZones
		// The wanted zones that have a subnet. Usually that is all of them:
		// then want itself is passed (config and parsed options are
		// read-only, and so are a PlaceRequest's zones).
		placeZones := want
		if !allZonesIn(cands.list, want) {
			placeZones = nil
			for _, z := range want {
				if hasZone(cands.list, z) {
					placeZones = append(placeZones, z)
				}
			}
		}
		if len(placeZones) == 0 {
			return nil, fmt.Errorf("resources.network: no subnet in the zones %v of pool %q", want, o.Pool)
		}
		a.placement, err = a.pool.Place(ctx, pool.PlaceRequest{Token: req.ApplicationUID, InstanceType: o.InstanceType, Zones: placeZones})
		if err != nil {
			return nil, fmt.Errorf("aws allocate: pool %s: %w", o.Pool, err)
		}
		a.reserved = true
		a.poolToken = req.ApplicationUID
		oneZone[0] = a.placement.Zone
		zones = oneZone[:]
		placement.Tenancy = ec2types.TenancyHost
		l.hostID = a.placement.HostID
		placement.HostId = &l.hostID
	} else if isMacType(o.InstanceType) {
		// Host auto-placement: prefer zones that have an idle host.
		placement.Tenancy = ec2types.TenancyHost
		if byZone, err := d.idleAutoPlacementHosts(ctx, o.InstanceType); err == nil {
			for _, z := range subnetZones(cands.list) {
				if byZone[z] > 0 {
					zones = append(zones, z)
				}
			}
		} else {
			d.log.Warn("idle host lookup failed; placing by free IPs only", "type", o.InstanceType, "err", err)
		}
	}
	subnet, err := d.pickSubnet(req.Definition.Resources.Network, cands, zones)
	if err != nil {
		return nil, err
	}
	if placement.Tenancy == ec2types.TenancyHost && a.placement.Zone == "" {
		placement.AvailabilityZone = awssdk.String(subnet.Zone)
	}
	groups, err := d.resolveGroups(ctx, subnet.VPC, pd.groups)
	if err != nil {
		return nil, err
	}

	tokKey := tokenKey{req.ApplicationUID, pd.defHash}
	l.token, l.tagVals.name = d.newTokenAndName(tokKey, req.LabelName, !pd.hasName)
	tags := d.buildTagsInto(l.tagBuf[:0], &l.tagVals, pd, req.ApplicationUID, req.LabelName, req.LabelUID)
	// Key pair.
	var keyPEM string
	switch cfg.InstanceKey {
	case "":
	case InstanceKeyGenerate:
		a.keyName = cfg.InstanceKeyPrefix + req.ApplicationUID
		keyPEM, err = d.createKeyPair(ctx, api, a.keyName, tags)
		if err != nil {
			return nil, err
		}
		a.keyCreated = true
	default:
		a.keyName = cfg.InstanceKey
	}

	l.minCount, l.maxCount = 1, 1
	l.imageID, l.subnetID = img.ID, subnet.ID
	l.specs[0] = ec2types.TagSpecification{ResourceType: ec2types.ResourceTypeInstance, Tags: tags}
	l.specs[1] = ec2types.TagSpecification{ResourceType: ec2types.ResourceTypeVolume, Tags: tags}
	// Field by field: l is new and zeroed, and a composite literal would
	// write all of the (large) input again.
	in := &l.in
	in.MinCount, in.MaxCount = &l.minCount, &l.maxCount
	in.ImageId = &l.imageID
	in.InstanceType = ec2types.InstanceType(o.InstanceType)
	in.SubnetId = &l.subnetID
	in.SecurityGroupIds = groups
	in.UserData = userData
	in.BlockDeviceMappings = bdm
	in.TagSpecifications = l.specs[:]
	if a.keyName != "" {
		l.keyName = a.keyName
		in.KeyName = &l.keyName
	}
	if placement.Tenancy != "" {
		in.Placement = placement
	}
	var inst ec2ops.Instance
	for attempt := 0; ; attempt++ {
		if attempt == 0 {
			in.ClientToken = &l.token // (made with the Name tag above)
		} else {
			// A new pointer: the value a previous call was given stays.
			in.ClientToken = awssdk.String(clientTokenOf(req.ApplicationUID, pd.defHash, d.tokenGen(tokKey)))
		}
		var got []ec2ops.Instance
		err = d.call(ctx, "ec2 RunInstances", func(ctx context.Context) error {
			var e error
			got, e = api.ops.LaunchInstances(ctx, in, l.launched[:0])
			return e
		})
		switch {
		case err != nil && ErrorCode(err) == "IdempotentParameterMismatch":
			// An earlier attempt of this application launched with other
			// parameters (e.g. another subnet): adopt its instance.
			var byToken ec2types.Instance
			var found bool
			byToken, found, err = d.instanceByToken(ctx, api, awssdk.ToString(in.ClientToken))
			if err != nil {
				return nil, fmt.Errorf("aws allocate: %w", err)
			}
			if !found {
				return nil, fmt.Errorf("aws allocate: client token %s is used but its instance is not found", awssdk.ToString(in.ClientToken))
			}
			inst = ec2ops.FromSDKInstance(&byToken)
		case err != nil:
			if !isAPIError(err) {
				// No answer from AWS: the launch may have happened; rollback
				// looks the token up.
				a.uncertainToken = awssdk.ToString(in.ClientToken)
			}
			return nil, fmt.Errorf("aws allocate: %w", err)
		case len(got) != 1:
			return nil, fmt.Errorf("aws allocate: RunInstances returned %d instances, want 1", len(got))
		default:
			inst = got[0]
		}
		if !stateNameGone(inst.State) {
			break
		}
		// The token belongs to an instance an earlier attempt rolled back.
		d.bumpTokenGen(tokKey)
		if attempt+1 >= maxTokenGenerations {
			return nil, fmt.Errorf("aws allocate: RunInstances keeps returning terminated instance %s", inst.ID)
		}
	}
	a.instanceID = inst.ID
	if a.pool != nil {
		a.pool.Bind(req.ApplicationUID, a.placement.HostID, a.instanceID)
		a.bound = true
	}
	if inst.PrivateIP == "" {
		var described ec2types.Instance
		described, err = d.describeInstance(ctx, api, a.instanceID)
		if err != nil {
			return nil, fmt.Errorf("aws allocate: %w", err)
		}
		inst = ec2ops.FromSDKInstance(&described)
	}
	if err = d.tagDisks(ctx, api, a.instanceID, disks); err != nil {
		return nil, fmt.Errorf("aws allocate: %w", err)
	}

	dd := DriverData{KeyName: a.keyName, KeyGenerated: a.keyCreated, Pool: o.Pool, Subnet: subnet.ID}
	if inst.SubnetID != "" {
		dd.Subnet = inst.SubnetID
	}
	dd.HostID, dd.Zone = inst.HostID, inst.Zone
	if dd.HostID == "" {
		dd.HostID = a.placement.HostID
	}
	if dd.Zone == "" {
		dd.Zone = subnet.Zone
	}
	rd := &resourceWithData{}
	ddJSON, err := appendDriverData(rd.data[:0], dd)
	if err != nil {
		return nil, fmt.Errorf("aws allocate: %w", err)
	}
	rd.res = core.Resource{
		ApplicationUID: req.ApplicationUID,
		LabelUID:       req.LabelUID,
		Identifier:     a.instanceID,
		IPAddr:         inst.PrivateIP,
		HwAddr:         inst.MAC,
		DriverData:     ddJSON[:len(ddJSON):len(ddJSON)], // (appends to it reallocate)
		CreatedAt:      d.clk.Now().UTC(),
	}
	res = &rd.res
	if req.Definition.Authentication != nil || keyPEM != "" {
		auth := core.Authentication{}
		if req.Definition.Authentication != nil {
			auth = *req.Definition.Authentication
		}
		if keyPEM != "" {
			auth.Key = keyPEM
		}
		res.Authentication = &auth
	}
	d.noteAllocated(o, dd.Zone)
	if d.log.Enabled(ctx, slog.LevelInfo) {
		d.log.Info("instance allocated", "application", req.ApplicationUID, "instance", a.instanceID,
			"type", o.InstanceType, "subnet", subnet.ID, "host", dd.HostID, "pool", o.Pool)
	}
	return res, nil
}

// isAPIError reports whether AWS answered err (as opposed to a transport
// failure or a cancellation, after which the outcome is unknown).
func isAPIError(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr)
}

func instanceGone(inst ec2types.Instance) bool { return stateGone(inst.State) }

// stateGone reports whether an instance in state s is gone (or going).
func stateGone(s *ec2types.InstanceState) bool {
	return s != nil && stateNameGone(s.Name)
}

// stateNameGone reports whether an instance in state n is gone (or going);
// "" (no state known) is not.
func stateNameGone(n ec2types.InstanceStateName) bool {
	switch n {
	case ec2types.InstanceStateNameTerminated, ec2types.InstanceStateNameShuttingDown:
		return true
	}
	return false
}

// blockDevices builds the block device mappings of the definition disks.
func (d *Driver) blockDevices(ctx context.Context, disks []diskSpec, kmsKey string) ([]ec2types.BlockDeviceMapping, error) {
	out := make([]ec2types.BlockDeviceMapping, 0, len(disks))
	for _, disk := range disks {
		ebs := &ec2types.EbsBlockDevice{DeleteOnTermination: awssdk.Bool(true), VolumeType: disk.VolumeType}
		if disk.Size > 0 {
			ebs.VolumeSize = awssdk.Int32(disk.Size)
		}
		if disk.IOPS > 0 {
			ebs.Iops = awssdk.Int32(disk.IOPS)
		}
		if disk.Throughput > 0 {
			ebs.Throughput = awssdk.Int32(disk.Throughput)
		}
		if disk.Clone != "" {
			snap, err := d.resolveSnapshot(ctx, "resources.disks."+disk.Device+".clone", disk.Clone)
			if err != nil {
				return nil, err
			}
			ebs.SnapshotId = awssdk.String(snap)
		}
		if kmsKey != "" {
			ebs.Encrypted = awssdk.Bool(true)
			ebs.KmsKeyId = awssdk.String(kmsKey)
		}
		out = append(out, ec2types.BlockDeviceMapping{DeviceName: awssdk.String(disk.Device), Ebs: ebs})
	}
	return out, nil
}

// createKeyPair creates a key pair and returns its PEM. A leftover pair of
// the same name (a crashed earlier attempt) is replaced.
func (d *Driver) createKeyPair(ctx context.Context, api Clients, name string, tags []ec2types.Tag) (string, error) {
	in := &ec2.CreateKeyPairInput{KeyName: awssdk.String(name), KeyType: ec2types.KeyTypeEd25519,
		KeyFormat:         ec2types.KeyFormatPem,
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeKeyPair, Tags: tags}}}
	for attempt := 0; ; attempt++ {
		var out *ec2.CreateKeyPairOutput
		err := d.call(ctx, "ec2 CreateKeyPair", func(ctx context.Context) error {
			var e error
			out, e = api.EC2.CreateKeyPair(ctx, in)
			return e
		})
		if err == nil {
			return awssdk.ToString(out.KeyMaterial), nil
		}
		if ErrorCode(err) != "InvalidKeyPair.Duplicate" || attempt > 0 {
			return "", fmt.Errorf("aws allocate: %w", err)
		}
		if derr := d.deleteKeyPair(ctx, api, name); derr != nil {
			return "", fmt.Errorf("aws allocate: replace leftover key pair %s: %w", name, derr)
		}
	}
}

func (d *Driver) deleteKeyPair(ctx context.Context, api Clients, name string) error {
	err := d.call(ctx, "ec2 DeleteKeyPair", func(ctx context.Context) error {
		_, e := api.EC2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: awssdk.String(name)})
		return e
	})
	if err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}

// instanceByToken finds the instance launched with a client token.
func (d *Driver) instanceByToken(ctx context.Context, api Clients, token string) (ec2types.Instance, bool, error) {
	var out *ec2.DescribeInstancesOutput
	err := d.call(ctx, "ec2 DescribeInstances", func(ctx context.Context) error {
		var e error
		out, e = api.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("client-token", token)}})
		return e
	})
	if err != nil {
		return ec2types.Instance{}, false, err
	}
	var best ec2types.Instance
	found := false
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if !found || instanceGone(best) && !instanceGone(i) {
				best, found = i, true
			}
		}
	}
	return best, found, nil
}

func (d *Driver) describeInstance(ctx context.Context, api Clients, id string) (ec2types.Instance, error) {
	var out *ec2.DescribeInstancesOutput
	err := d.call(ctx, "ec2 DescribeInstances", func(ctx context.Context) error {
		var e error
		out, e = api.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		return e
	})
	if err != nil {
		return ec2types.Instance{}, err
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if awssdk.ToString(i.InstanceId) == id {
				return i, nil
			}
		}
	}
	return ec2types.Instance{}, fmt.Errorf("ec2 DescribeInstances: instance %s not in the answer", id)
}

// tagDisks puts each disk's label tags on its volume.
func (d *Driver) tagDisks(ctx context.Context, api Clients, instanceID string, disks []diskSpec) error {
	if !slices.ContainsFunc(disks, func(d diskSpec) bool { return len(d.Tags) > 0 }) {
		return nil // the usual case: nothing to tag
	}
	want := map[string]map[string]string{}
	for _, disk := range disks {
		if len(disk.Tags) > 0 {
			want[disk.Device] = disk.Tags
		}
	}
	if len(want) == 0 {
		return nil
	}
	const attempts = 5
	for attempt := 1; ; attempt++ {
		var vols []ec2types.Volume
		p := ec2.NewDescribeVolumesPaginator(api.EC2, &ec2.DescribeVolumesInput{
			Filters: []ec2types.Filter{filter("attachment.instance-id", instanceID)}})
		for p.HasMorePages() {
			var page *ec2.DescribeVolumesOutput
			if err := d.call(ctx, "ec2 DescribeVolumes", func(ctx context.Context) error {
				var e error
				page, e = p.NextPage(ctx)
				return e
			}); err != nil {
				return err
			}
			vols = append(vols, page.Volumes...)
		}
		byDev := map[string]string{}
		for _, v := range vols {
			for _, at := range v.Attachments {
				if awssdk.ToString(at.InstanceId) == instanceID {
					byDev[awssdk.ToString(at.Device)] = awssdk.ToString(v.VolumeId)
				}
			}
		}
		missing := false
		for dev := range want {
			if byDev[dev] == "" {
				missing = true
			}
		}
		if !missing {
			devs := slices.Sorted(maps.Keys(want))
			for _, dev := range devs {
				vol := byDev[dev]
				if err := d.call(ctx, "ec2 CreateTags", func(ctx context.Context) error {
					_, e := api.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{vol}, Tags: toTags(want[dev])})
					return e
				}); err != nil {
					return fmt.Errorf("tag volume %s (%s): %w", vol, dev, err)
				}
			}
			return nil
		}
		if attempt >= attempts {
			return fmt.Errorf("volumes of instance %s not attached in time to tag them (have %v)", instanceID, sortedKeys(byDev))
		}
		if err := d.sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// rollback undoes a failed allocation: terminate, delete the generated key
// pair, give the pool slot back. It uses a context that survives the
// caller's cancellation, so a cancelled Allocate still cleans up.
func (d *Driver) rollback(ctx context.Context, api Clients, a *allocation) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if a.instanceID == "" && a.uncertainToken != "" {
		if inst, found, err := d.instanceByToken(ctx, api, a.uncertainToken); err != nil {
			d.log.Error("rollback: looking up a possibly launched instance failed; it may leak", "token", a.uncertainToken, "err", err)
		} else if found && !instanceGone(inst) {
			a.instanceID = awssdk.ToString(inst.InstanceId)
			if a.pool != nil && a.reserved && !a.bound {
				a.pool.Bind(a.poolToken, a.placement.HostID, a.instanceID)
				a.bound = true
			}
		}
	}
	if a.instanceID != "" {
		if err := d.terminate(ctx, api, a.instanceID); err != nil {
			d.log.Error("rollback: terminate instance failed; it may leak", "instance", a.instanceID, "err", err)
		}
	}
	if a.keyCreated {
		if err := d.deleteKeyPair(ctx, api, a.keyName); err != nil {
			d.log.Error("rollback: delete key pair failed; it may leak", "key", a.keyName, "err", err)
		}
	}
	if a.pool != nil {
		switch {
		case a.bound:
			a.pool.InstanceGone(a.placement.HostID, a.instanceID)
		case a.reserved:
			a.pool.Unreserve(a.poolToken, a.placement.HostID)
		}
	}
}

func (d *Driver) terminate(ctx context.Context, api Clients, id string) error {
	// ids goes to the heap (16 bytes): an argument of an interface call
	// escapes. That is still less than the SDK input the call used to take.
	ids := [1]string{id}
	err := d.call(ctx, "ec2 TerminateInstances", func(ctx context.Context) error {
		return api.ops.TerminateInstanceIDs(ctx, ids[:])
	})
	if err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}

// Status reports whether the resource's instance still exists.
func (d *Driver) Status(ctx context.Context, res core.Resource) (driver.ResourceStatus, error) {
	_, api, _, err := d.state()
	if err != nil {
		return "", err
	}
	if res.Identifier == "" {
		return driver.StatusNone, nil
	}
	inst, err := d.describeInstance(ctx, api, res.Identifier)
	if err != nil {
		if IsNotFound(err) {
			return driver.StatusNone, nil
		}
		return "", fmt.Errorf("aws status %s: %w", res.Identifier, err)
	}
	if awssdk.ToString(inst.InstanceId) == "" || instanceGone(inst) {
		return driver.StatusNone, nil
	}
	return driver.StatusAllocated, nil
}

// Deallocate terminates the instance, deletes its generated key pair and
// tells the pool the host's instance is gone. It is idempotent.
func (d *Driver) Deallocate(ctx context.Context, res core.Resource) error {
	// The pools with the clients, under one lock (see allocState).
	_, api, pools, err := d.allocState()
	if err != nil {
		return err
	}
	var dd DriverData
	if len(res.DriverData) > 0 {
		if err := unmarshalDriverData(res.DriverData, &dd); err != nil {
			return fmt.Errorf("aws deallocate %s: bad driver data: %w", res.Identifier, err)
		}
	}
	if res.Identifier != "" {
		if err := d.terminate(ctx, api, res.Identifier); err != nil {
			return fmt.Errorf("aws deallocate %s: %w", res.Identifier, err)
		}
	}
	if dd.KeyGenerated && dd.KeyName != "" {
		if err := d.deleteKeyPair(ctx, api, dd.KeyName); err != nil {
			return fmt.Errorf("aws deallocate %s: delete key pair %s: %w", res.Identifier, dd.KeyName, err)
		}
	}
	if dd.Pool != "" && dd.HostID != "" {
		if m := pools[dd.Pool]; m != nil {
			m.InstanceGone(dd.HostID, res.Identifier)
		}
	}
	if d.log.Enabled(ctx, slog.LevelInfo) {
		d.log.Info("instance deallocated", "application", res.ApplicationUID, "instance", res.Identifier)
	}
	return nil
}
