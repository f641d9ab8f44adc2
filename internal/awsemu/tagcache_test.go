package awsemu

import (
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// tagsByID answers the tags of every instance and volume by id (through
// DescribeTags' SDK-shaped siblings: DescribeInstances and DescribeVolumes).
func tagsByID(t *testing.T, w *World) map[string]map[string]string {
	t.Helper()
	got := map[string]map[string]string{}
	add := func(id string, tags []types.Tag) {
		m := map[string]string{}
		for _, x := range tags {
			m[aws.ToString(x.Key)] = aws.ToString(x.Value)
		}
		got[id] = m
	}
	insts, err := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range insts.Reservations {
		for _, i := range r.Instances {
			add(aws.ToString(i.InstanceId), i.Tags)
		}
	}
	vols, err := w.DescribeVolumes(bg, &ec2.DescribeVolumesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols.Volumes {
		add(aws.ToString(v.VolumeId), v.Tags)
	}
	return got
}

// Launches with equal tags share one parsed set; re-tagging one object must
// change that object only.
func TestSharedLaunchTagsCopyOnWrite(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	tags := []types.Tag{{Key: aws.String("A"), Value: aws.String("1")}, {Key: aws.String("B"), Value: aws.String("2")}}
	mod := func(in *ec2.RunInstancesInput) {
		in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}, {ResourceType: types.ResourceTypeVolume, Tags: tags}}
	}
	var ids []string
	for range 3 {
		out := runLinux(t, w, mod)
		ids = append(ids, aws.ToString(out.Instances[0].InstanceId), aws.ToString(out.Instances[0].BlockDeviceMappings[0].Ebs.VolumeId))
	}
	// (white box: the sharing this test is about)
	i0, _ := w.instances.get(ids[0])
	i1, _ := w.instances.get(ids[2])
	if &i0.tags[0] != &i1.tags[0] || &i0.tags[0] != &i0.volumes[0].tags[0] {
		t.Fatal("launches with equal tags do not share their tag set")
	}
	before := tagsByID(t, w)
	want := map[string]string{"A": "1", "B": "2"}
	for _, id := range ids {
		if !maps.Equal(before[id], want) {
			t.Fatalf("%s tags %v, want %v", id, before[id], want)
		}
	}
	// overwrite a key of the second instance and add one to the first volume
	if _, err := w.CreateTags(bg, &ec2.CreateTagsInput{Resources: []string{ids[2]}, Tags: []types.Tag{{Key: aws.String("A"), Value: aws.String("x")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.CreateTags(bg, &ec2.CreateTagsInput{Resources: []string{ids[1]}, Tags: []types.Tag{{Key: aws.String("0"), Value: aws.String("y")}}}); err != nil {
		t.Fatal(err)
	}
	after := tagsByID(t, w)
	for i, id := range ids {
		want := map[string]string{"A": "1", "B": "2"}
		switch i {
		case 1:
			want["0"] = "y"
		case 2:
			want["A"] = "x"
		}
		if !maps.Equal(after[id], want) {
			t.Errorf("%s tags %v, want %v", id, after[id], want)
		}
	}
	// a later launch with the same tags still gets the original ones
	out := runLinux(t, w, mod)
	if got := tagsByID(t, w)[aws.ToString(out.Instances[0].InstanceId)]; !maps.Equal(got, map[string]string{"A": "1", "B": "2"}) {
		t.Fatalf("new launch tags %v", got)
	}
}

// The cache is checked by content: a request struct reused with a tag
// value changed in place (same slices, same pointers) gets the new value,
// and its client token sees different parameters.
func TestLaunchTagsCheckedByContent(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	val := "1"
	tags := []types.Tag{{Key: aws.String("A"), Value: &val}}
	in := &ec2.RunInstancesInput{ImageId: aws.String(linuxImage), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}}, ClientToken: aws.String("tok-1")}
	first, err := w.RunInstances(bg, in)
	if err != nil {
		t.Fatal(err)
	}
	val = "2"
	if _, err := w.RunInstances(bg, in); apiCode(err) != "IdempotentParameterMismatch" {
		t.Fatalf("same token, changed tag value: %v", err)
	}
	in.ClientToken = aws.String("tok-2")
	second, err := w.RunInstances(bg, in)
	if err != nil {
		t.Fatal(err)
	}
	got := tagsByID(t, w)
	if v := got[aws.ToString(first.Instances[0].InstanceId)]["A"]; v != "1" {
		t.Fatalf("first instance A=%q", v)
	}
	if v := got[aws.ToString(second.Instances[0].InstanceId)]["A"]; v != "2" {
		t.Fatalf("second instance A=%q", v)
	}
	// the first request again (same content as the first call): a replay
	val = "1"
	in.ClientToken = aws.String("tok-1")
	again, err := w.RunInstances(bg, in)
	if err != nil || aws.ToString(again.Instances[0].InstanceId) != aws.ToString(first.Instances[0].InstanceId) {
		t.Fatalf("replay: %v", err)
	}
}

// Parsed sets equal what splitTagSpecs builds: unsorted and repeated keys,
// several specs of one type, empty lists, and the same errors in order.
func TestMergeParsedTagsLikeSplitTagSpecs(t *testing.T) {
	tg := func(kv ...string) []types.Tag {
		var out []types.Tag
		for i := 0; i < len(kv); i += 2 {
			out = append(out, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		return out
	}
	inst, vol, key := types.ResourceTypeInstance, types.ResourceTypeVolume, types.ResourceTypeKeyPair
	cases := [][]types.TagSpecification{
		nil,
		{{ResourceType: inst}},
		{{ResourceType: inst, Tags: tg("b", "1", "a", "2", "b", "3")}},
		{{ResourceType: inst, Tags: tg("a", "1", "c", "2")}, {ResourceType: inst, Tags: tg("b", "3", "a", "4")}},
		{{ResourceType: inst, Tags: tg("a", "1")}, {ResourceType: vol, Tags: tg("a", "1")}},
		{{ResourceType: inst, Tags: tg("a", "1")}, {ResourceType: key, Tags: tg("a", "1")}},
		{{ResourceType: inst, Tags: tg("aws:x", "1")}, {ResourceType: key}},
		{{ResourceType: inst, Tags: tg("", "1")}},
		{{ResourceType: vol, Tags: tg("a", "1", "a", "1")}, {ResourceType: inst, Tags: tg("z", "1")}, {ResourceType: vol, Tags: tg("a", "2")}},
	}
	var c tagCache
	for i, specs := range cases {
		for round := range 2 { // (the second round hits the cache)
			var want, got [3]tagSet
			werr := splitTagSpecs(specs, runTagTypes[:], want[:])
			gerr := mergeParsedTags(specs, c.parseSpecs(nil, specs), runTagTypes[:], got[:])
			if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
				t.Fatalf("case %d round %d: error %v, want %v", i, round, gerr, werr)
			}
			if werr != nil {
				continue
			}
			for k := range want {
				if len(want[k]) != len(got[k]) || (len(want[k]) > 0 && string(fmtTags(want[k])) != string(fmtTags(got[k]))) {
					t.Fatalf("case %d round %d type %d: %v, want %v", i, round, k, got[k], want[k])
				}
				if cap(got[k]) != len(got[k]) {
					t.Fatalf("case %d: set not capped (an append would write the shared array)", i)
				}
			}
		}
	}
}

func fmtTags(t tagSet) []byte {
	var b []byte
	for _, x := range t {
		b = append(b, x.k...)
		b = append(b, '=')
		b = append(b, x.v...)
		b = append(b, ';')
	}
	return b
}
