package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
)

func TestReadLabelFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bare := write("bare.yaml", "name: l1\nversion: 2\ndefinitions:\n  - driver: aws\n    options: {image: ubuntu-22.04, instance_type: t3.small}\n    resources: {lifetime: 1h, node_filter: [a]}\n")
	l, err := readLabelFile(bare)
	if err != nil || l.Name != "l1" || l.Version != 2 || l.Definitions[0].Resources.Lifetime != "1h" || l.Definitions[0].Options.Fields["instance_type"].GetStringValue() != "t3.small" {
		t.Fatalf("bare YAML: %v %v", l, err)
	}
	wrapped := write("wrapped.json", `{"label":{"name":"l2","visibleFor":["bob"],"definitions":[{"driver":"aws"}]}}`)
	if l, err := readLabelFile(wrapped); err != nil || l.Name != "l2" || l.VisibleFor[0] != "bob" {
		t.Fatalf("wrapped JSON: %v %v", l, err)
	}
	for _, ex := range []string{"label-linux.yaml", "label-mac.yaml", "label-disks.yaml", "label-linux.json"} {
		if l, err := readLabelFile(filepath.Join("..", "..", "examples", ex)); err != nil || l.Name == "" || len(l.Definitions) == 0 {
			t.Errorf("example %s: %v %v", ex, l, err)
		}
	}
	bad := write("bad.yaml", "name: l3\ndefinitions:\n  - driver: aws\n    resourcez: {}\n")
	if _, err := readLabelFile(bad); err == nil || !strings.Contains(err.Error(), "resourcez") {
		t.Fatalf("unknown field not named: %v", err)
	}
	if _, err := readLabelFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestParseMeta(t *testing.T) {
	st, err := parseMeta([]string{"JOB=build", "N=3", "FLAG=true", "EMPTY="})
	if err != nil {
		t.Fatal(err)
	}
	f := st.Fields
	if f["JOB"].GetStringValue() != "build" || f["N"].GetNumberValue() != 3 || !f["FLAG"].GetBoolValue() || f["EMPTY"].GetStringValue() != "" {
		t.Fatalf("meta: %v", st)
	}
	if _, err := parseMeta([]string{"novalue"}); err == nil {
		t.Fatal("k without = accepted")
	}
	if st, err := parseMeta(nil); err != nil || st != nil {
		t.Fatalf("no meta: %v %v", st, err)
	}
}

func TestAuthorization(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin.password"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AQUARIUM_TOKEN", "")
	t.Setenv("AQUARIUM_PASSWORD", "")
	o := &clientOptions{User: "admin", Dir: dir}
	h, err := o.authorization()
	if err != nil || h != "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:s3cret")) {
		t.Fatalf("admin from data dir: %q %v", h, err)
	}
	o = &clientOptions{User: "bob", Dir: dir}
	if _, err := o.authorization(); err == nil {
		t.Fatal("bob must not get admin's password")
	}
	o.Token = "tok"
	if h, _ := o.authorization(); h != "Bearer tok" {
		t.Fatalf("token: %q", h)
	}
}

func TestPrintFormats(t *testing.T) {
	labels := []*pb.Label{{Uid: "u1", Name: "n1", Version: 1}, {Uid: "u2", Name: "n2"}}
	for _, format := range []string{"table", "json", "yaml"} {
		c := &clients{opts: &clientOptions{Output: format}}
		var b bytes.Buffer
		if err := c.print(&b, list[*pb.Label](labels), row{"UID", "NAME"}, []row{{"u1", "n1"}, {"u2", "n2"}}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		want := map[string]string{"table": "UID", "json": `"uid": "u1"`, "yaml": "uid: u2"}[format]
		if !strings.Contains(out, want) {
			t.Errorf("%s output lacks %q:\n%s", format, want, out)
		}
	}
	if _, err := (&clientOptions{Output: "xml"}).connect(); err == nil {
		t.Fatal("bad -o accepted")
	}
}
