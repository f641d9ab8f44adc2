package aws

import (
	"encoding/json"
	"maps"
	"reflect"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// clientToken is the token Allocate uses for def (which takes the hash from
// the parsed-definition cache).
func clientToken(appUID string, def core.Definition, gen int) string {
	return clientTokenOf(appUID, definitionHash(def), gen)
}

// referenceTags is the plain map merge buildTags must reproduce.
func referenceTags(labelTags, instanceTags map[string]string, node, appUID, labelName, labelUID string) []ec2types.Tag {
	m := map[string]string{}
	maps.Copy(m, labelTags)
	maps.Copy(m, instanceTags)
	if _, ok := m[TagName]; !ok {
		name := "aquarium-" + appUID
		if labelName != "" {
			name = labelName + "-" + appUID
		}
		m[TagName] = name
	}
	m[TagApplication] = appUID
	if labelUID != "" {
		m[TagLabel] = labelUID
	}
	if node != "" {
		m[TagNode] = node
	}
	return toTags(m)
}

func tagPairs(ts []ec2types.Tag) [][2]string {
	out := make([][2]string, len(ts))
	for i, t := range ts {
		out[i] = [2]string{awssdk.ToString(t.Key), awssdk.ToString(t.Value)}
	}
	return out
}

func TestBuildTagsMatchesMapMerge(t *testing.T) {
	labelSets := []map[string]string{nil, {"team": "ci"}, {"Name": "mine", "A": "1", "zz": "z"},
		{"AquariumLabel": "fake", "AquariumNode": "n0", "AquariumApplication": "x", "B": "b"}}
	instSets := []map[string]string{nil, {"team": "infra"}, {"Name": "inst", "Aquarium": "y"}}
	for _, lt := range labelSets {
		for _, it := range instSets {
			for _, node := range []string{"", "node-1"} {
				for _, luid := range []string{"", "label-uid"} {
					for _, lname := range []string{"", "mac-ci"} {
						d := New("aws", WithNodeName(node))
						d.cfg = &Config{InstanceTags: it}
						opts, _ := json.Marshal(map[string]any{"image": "ami-1", "instance_type": "t3.micro", "tags": lt})
						p, err := d.definition(core.Definition{Options: opts})
						if err != nil {
							t.Fatal(err)
						}
						got := tagPairs(d.buildTags(p, "app-1", lname, luid))
						want := tagPairs(referenceTags(lt, it, node, "app-1", lname, luid))
						if !reflect.DeepEqual(got, want) {
							t.Fatalf("label %v instance %v node %q: got %v, want %v", lt, it, node, got, want)
						}
					}
				}
			}
		}
	}
}

// The parsed-definition cache hits only for the same definition and config,
// and does not cache errors.
func TestDefinitionCache(t *testing.T) {
	d := New("aws")
	d.cfg = &Config{}
	disks := map[string]core.Disk{"/dev/sdf": {Size: 10}}
	def := core.Definition{Options: json.RawMessage(`{"image":"ami-1","instance_type":"t3.micro"}`),
		Resources: core.Resources{Disks: disks}}
	p1, err := d.definition(def)
	if err != nil {
		t.Fatal(err)
	}
	if p2, _ := d.definition(def); p2 != p1 {
		t.Fatal("same definition parsed twice")
	}
	disks["/dev/sdf"] = core.Disk{Size: 20} // the caller changes its map afterwards
	p3, err := d.definition(def)
	if err != nil || p3 == p1 || p3.disks[0].Size != 20 || p1.disks[0].Size != 10 {
		t.Fatalf("changed disks: %+v, %v", p3, err)
	}
	if p1.defHash != definitionHash(core.Definition{Options: def.Options,
		Resources: core.Resources{Disks: map[string]core.Disk{"/dev/sdf": {Size: 10}}}}) {
		t.Fatal("cached hash differs from the definition's")
	}
	d.cfg = &Config{} // a new Prepare
	if p4, _ := d.definition(def); p4 == p3 {
		t.Fatal("cache hit across configs")
	}
	bad := core.Definition{Options: json.RawMessage(`{"image":"ami-1"}`)}
	for range 2 {
		if _, err := d.definition(bad); err == nil || err.Error() != "options.instance_type: required" {
			t.Fatalf("bad definition: %v", err)
		}
	}
	auth := def
	auth.Authentication = &core.Authentication{Username: "u"}
	if p5, _ := d.definition(auth); p5.defHash == p3.defHash {
		t.Fatal("authentication does not change the token hash")
	}
}
