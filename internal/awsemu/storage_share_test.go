package awsemu

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The launch path packs an instance, its boot volume, their tags, its
// client token and every name of the launch into shared allocations, and
// each output into one allocation. These tests check that nothing of that
// is visible: objects stay independent, outputs never alias world state.

func tagMap(ts []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func describeInstance(t *testing.T, w *World, id string) types.Instance {
	t.Helper()
	out, err := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances %s: %v", id, err)
	}
	return out.Reservations[0].Instances[0]
}

func volumeTags(t *testing.T, w *World, id string) map[string]string {
	t.Helper()
	out, err := w.DescribeVolumes(bg, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil || len(out.Volumes) != 1 {
		t.Fatalf("DescribeVolumes %s: %v", id, err)
	}
	return tagMap(out.Volumes[0].Tags)
}

func TestLaunchSharedStorageIsIndependent(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	var instTags []types.Tag // six tags: more than the inline storage holds
	for _, k := range []string{"f", "e", "d", "c", "b", "a"} {
		instTags = append(instTags, types.Tag{Key: aws.String(k), Value: aws.String("v" + k)})
	}
	volTags := []types.Tag{{Key: aws.String("vol"), Value: aws.String("1")}}
	out := runLinux(t, w, func(in *ec2.RunInstancesInput) {
		in.MinCount, in.MaxCount = aws.Int32(3), aws.Int32(3)
		in.ClientToken = aws.String("multi-1")
		in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(10)}}}
		in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: instTags}, {ResourceType: types.ResourceTypeVolume, Tags: volTags}}
	})
	if len(out.Instances) != 3 {
		t.Fatalf("instances: %d", len(out.Instances))
	}
	seen := map[string]bool{aws.ToString(out.ReservationId): true}
	for i, inst := range out.Instances {
		id := aws.ToString(inst.InstanceId)
		if !wellFormed("i", id) || seen[id] {
			t.Fatalf("instance %d: bad or repeated id %q", i, id)
		}
		seen[id] = true
		if len(inst.BlockDeviceMappings) != 2 {
			t.Fatalf("instance %d: %d volumes", i, len(inst.BlockDeviceMappings))
		}
		for _, b := range inst.BlockDeviceMappings {
			vid := aws.ToString(b.Ebs.VolumeId)
			if !wellFormed("vol", vid) || seen[vid] {
				t.Fatalf("instance %d: bad or repeated volume id %q", i, vid)
			}
			seen[vid] = true
			if got := volumeTags(t, w, vid); len(got) != 1 || got["vol"] != "1" {
				t.Fatalf("volume %s tags %v", vid, got)
			}
		}
		if got := tagMap(inst.Tags); len(got) != 6 || got["a"] != "va" {
			t.Fatalf("instance %d tags %v", i, got)
		}
		if eni := aws.ToString(inst.NetworkInterfaces[0].NetworkInterfaceId); !wellFormed("eni", eni) || seen[eni] {
			t.Fatalf("instance %d: bad or repeated interface id %q", i, eni)
		}
	}
	first := aws.ToString(out.Instances[0].InstanceId)
	firstVol := aws.ToString(out.Instances[0].BlockDeviceMappings[0].Ebs.VolumeId)

	// A caller mutating its output changes nothing in the world.
	*out.ReservationId = "r-mutated"
	*out.Instances[0].InstanceId = "i-mutated"
	*out.Instances[0].Tags[0].Value = "mutated"
	out.Instances[0].Tags = append(out.Instances[0].Tags, types.Tag{Key: aws.String("extra")})
	*out.Instances[0].BlockDeviceMappings[0].Ebs.VolumeId = "vol-mutated"
	got := describeInstance(t, w, first)
	if aws.ToString(got.InstanceId) != first || len(got.Tags) != 6 || tagMap(got.Tags)["a"] != "va" ||
		aws.ToString(got.BlockDeviceMappings[0].Ebs.VolumeId) != firstVol {
		t.Fatalf("caller mutation leaked into the world: %+v", got)
	}

	// Tagging one instance or volume leaves its siblings alone (in place
	// overwrite and growth of the tag set).
	for _, tags := range [][]types.Tag{{{Key: aws.String("a"), Value: aws.String("new")}}, {{Key: aws.String("g"), Value: aws.String("vg")}}} {
		if _, err := w.CreateTags(bg, &ec2.CreateTagsInput{Resources: []string{first, firstVol}, Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	if m := tagMap(describeInstance(t, w, first).Tags); m["a"] != "new" || m["g"] != "vg" || len(m) != 7 {
		t.Fatalf("tagged instance: %v", m)
	}
	if m := volumeTags(t, w, firstVol); m["a"] != "new" || m["vol"] != "1" || len(m) != 3 {
		t.Fatalf("tagged volume: %v", m)
	}
	for _, inst := range out.Instances[1:] {
		if m := tagMap(describeInstance(t, w, aws.ToString(inst.InstanceId)).Tags); m["a"] != "va" || len(m) != 6 {
			t.Fatalf("sibling instance tags changed: %v", m)
		}
		for _, b := range inst.BlockDeviceMappings {
			if m := volumeTags(t, w, aws.ToString(b.Ebs.VolumeId)); len(m) != 1 {
				t.Fatalf("sibling volume tags changed: %v", m)
			}
		}
	}
}

func TestOneInstanceTokenLifetime(t *testing.T) {
	w, clk := newTestWorld(t, nil)
	run := func() *ec2.RunInstancesOutput {
		return runLinux(t, w, func(in *ec2.RunInstancesInput) {
			in.ClientToken = aws.String("one-1")
			in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}}
		})
	}
	a := run()
	b := run() // replay: same reservation and instance, fresh output
	id := aws.ToString(a.Instances[0].InstanceId)
	if aws.ToString(b.ReservationId) != aws.ToString(a.ReservationId) || aws.ToString(b.Instances[0].InstanceId) != id {
		t.Fatalf("replay answered another launch")
	}
	if &b.Instances[0] == &a.Instances[0] || b.Instances[0].InstanceId == a.Instances[0].InstanceId {
		t.Fatalf("replay output shares memory with the first output")
	}
	if _, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if c := run(); aws.ToString(c.Instances[0].InstanceId) != id { // still visible: still idempotent
		t.Fatalf("token forgotten before the instance was purged")
	}
	clk.Advance(2 * time.Hour) // past TerminatedRetention: purged with its token
	if c := run(); aws.ToString(c.Instances[0].InstanceId) == id {
		t.Fatalf("token of a purged instance still answered")
	}
}

func TestMultiItemOutputs(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	var ids []string
	for range 3 {
		ids = append(ids, aws.ToString(runLinux(t, w, nil).Instances[0].InstanceId))
	}
	// duplicates are answered once, in request order
	out, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{ids[2], ids[0], ids[2], ids[1]}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range out.TerminatingInstances {
		got = append(got, aws.ToString(c.InstanceId))
		if c.CurrentState.Name != types.InstanceStateNameShuttingDown || aws.ToInt32(c.CurrentState.Code) != 32 {
			t.Fatalf("state change %+v", c)
		}
	}
	if !slices.Equal(got, []string{ids[2], ids[0], ids[1]}) {
		t.Fatalf("terminating %v", got)
	}
	h1 := allocHost(t, w, "mac2.metal", "us-west-2a", false)
	h2 := allocHost(t, w, "mac2.metal", "us-west-2a", false)
	hs, err := w.DescribeHosts(bg, &ec2.DescribeHostsInput{HostIds: []string{h2, h1, h2}})
	if err != nil || len(hs.Hosts) != 2 || aws.ToString(hs.Hosts[0].HostId) != h1 || aws.ToString(hs.Hosts[1].HostId) != h2 {
		t.Fatalf("DescribeHosts by ids: %v %+v", err, hs)
	}
	*hs.Hosts[0].HostId = "h-mutated"
	if aws.ToString(hs.Hosts[1].HostId) != h2 || aws.ToString(describeHost(t, w, h1).HostId) != h1 {
		t.Fatalf("host outputs share memory")
	}
}

// runHash must not depend on how its fields were buffered: long user data
// takes the streaming path, short requests the one-call path.
func TestRunHashStable(t *testing.T) {
	long := strings.Repeat("QUFB", 200)
	mk := func(ud string, tagV string) *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{ImageId: aws.String(linuxImage), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), UserData: aws.String(ud),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String(tagV)}}}}}
	}
	for _, ud := range []string{"", "QUFB", long} {
		if first, again := runHashOf(mk(ud, "v")), runHashOf(mk(ud, "v")); first != again {
			t.Fatalf("user data %d bytes: hash not stable", len(ud))
		}
		if runHashOf(mk(ud, "v")) == runHashOf(mk(ud, "w")) {
			t.Fatalf("user data %d bytes: a changed tag keeps the hash", len(ud))
		}
	}
	if runHashOf(mk("QUFB", "v")) == runHashOf(mk(long, "v")) {
		t.Fatalf("changed user data keeps the hash")
	}
}

// TestSlabOutputsIndependent: the usual one-item outputs are carved from
// shared arrays (slab); every call must still get memory of its own, so
// that a caller keeping or mutating one output never sees another change.
func TestSlabOutputsIndependent(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	var runs []*ec2.RunInstancesOutput
	var terms []*ec2.TerminateInstancesOutput
	var descs []*ec2.DescribeHostsOutput
	hid := allocHost(t, w, "m5.large", "us-west-2a", false)
	for range 300 { // more than one slab of each output
		out := runLinux(t, w, nil)
		runs = append(runs, out)
		id := aws.ToString(out.Instances[0].InstanceId)
		term, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		terms = append(terms, term)
		d, err := w.DescribeHosts(bg, &ec2.DescribeHostsInput{HostIds: []string{hid}})
		if err != nil || len(d.Hosts) != 1 {
			t.Fatal(err)
		}
		descs = append(descs, d)
	}
	want := make([]string, len(runs))
	for i := range runs {
		want[i] = aws.ToString(runs[i].Instances[0].InstanceId)
		// callers may write through what they were given
		*runs[i].ReservationId = "mutated"
		*runs[i].Instances[0].Placement.AvailabilityZone = "mutated"
		*terms[i].TerminatingInstances[0].CurrentState.Code = -1
		*descs[i].Hosts[0].HostId = "mutated"
		descs[i].Hosts[0].Tags = append(descs[i].Hosts[0].Tags, types.Tag{Key: aws.String("k")})
	}
	for i := range runs {
		if got := aws.ToString(runs[i].Instances[0].InstanceId); got != want[i] {
			t.Fatalf("output %d: instance id %q, want %q", i, got, want[i])
		}
		if got := aws.ToString(terms[i].TerminatingInstances[0].InstanceId); got != want[i] {
			t.Fatalf("terminate output %d: instance id %q, want %q", i, got, want[i])
		}
		if got := len(descs[i].Hosts[0].Tags); got != 1 {
			t.Fatalf("host output %d: %d tags", i, got)
		}
	}
	d, err := w.DescribeHosts(bg, &ec2.DescribeHostsInput{HostIds: []string{hid}})
	if err != nil || aws.ToString(d.Hosts[0].HostId) != hid || len(d.Hosts[0].Tags) != 0 {
		t.Fatalf("world changed by callers: %v %+v", err, d)
	}
	if got := describeInstance(t, w, want[0]); aws.ToString(got.Placement.AvailabilityZone) == "mutated" || *got.State.Code != 48 && *got.State.Code != 32 {
		t.Fatalf("world changed by callers: %+v", got)
	}
}

// TestDescribeHostsByIDFastPath: the poll path (ids only) answers exactly
// what the general path (forced with a filter every host matches) answers,
// errors included.
func TestDescribeHostsByIDFastPath(t *testing.T) {
	w, clk := newTestWorld(t, nil)
	var h []string
	for range 10 {
		h = append(h, allocHost(t, w, "mac2.metal", "us-west-2a", false))
	}
	if _, err := runOnHost(w, h[2], "mac2.metal", macArmImage); err != nil {
		t.Fatal(err)
	}
	clk.Advance(25 * time.Hour)
	if out, err := w.ReleaseHosts(bg, &ec2.ReleaseHostsInput{HostIds: []string{h[5]}}); err != nil || len(out.Successful) != 1 {
		t.Fatalf("release: %v %+v", err, out)
	}
	all := []types.Filter{{Name: aws.String("availability-zone"), Values: []string{"us-west-2a"}}}
	for _, ids := range [][]string{
		{h[3]}, {h[2], h[0]}, {h[4], h[1], h[4], h[5]}, h[:9], h, // (h[:9]: more than the fast path holds)
		{h[0], "h-0123456789abcdef0", "h-00000000"}, {"h-0123456789abcdef0"}, {h[1], "h-xyz"},
	} {
		fast, ferr := w.DescribeHosts(bg, &ec2.DescribeHostsInput{HostIds: slices.Clone(ids)})
		gen, gerr := w.DescribeHosts(bg, &ec2.DescribeHostsInput{HostIds: slices.Clone(ids), Filter: all})
		if (ferr == nil) != (gerr == nil) || (ferr != nil && ferr.Error() != gerr.Error()) {
			t.Fatalf("%v: errors differ: %v / %v", ids, ferr, gerr)
		}
		if !reflect.DeepEqual(fast, gen) {
			t.Fatalf("%v: outputs differ:\n%+v\n%+v", ids, fast, gen)
		}
	}
}

// TestLaunchLedgerIDNumber: launch gives the ledger the number of the
// instance id it generated (instead of parsing the id): both must agree.
func TestLaunchLedgerIDNumber(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	for range 50 {
		out := runLinux(t, w, nil)
		id := aws.ToString(out.Instances[0].InstanceId)
		inst, ok := w.instances.get(id)
		want, parsed := parseInstID(id)
		if !ok || !parsed || w.ledger.instances[inst.led].id != want {
			t.Fatalf("%s: ledger id %x, want %x (%v %v)", id, w.ledger.instances[inst.led].id, want, ok, parsed)
		}
	}
}

// runHashOf is runHash with the request's tags parsed afresh.
func runHashOf(in *ec2.RunInstancesInput) uint64 {
	return runHash(in, new(tagCache).parseSpecs(nil, in.TagSpecifications))
}
