package sim

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteTextSeedShape(t *testing.T) {
	r := simulate(t, csvOf([2]time.Duration{0, time.Hour}, [2]time.Duration{10 * time.Minute, time.Hour}), Params{MaxHosts: 1})
	var b bytes.Buffer
	if err := Write(&b, r, "text"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	want := []string{
		"Simulator statistics:",
		"Max: Instances: 1 Hosts: 1 Queue: 1 wait (minutes): 147.00",
		"",
		"                              Jan",
		"Instances       h/mon:       2.00",
		"Hosts           h/mon:       2.23",
		"Queue           h/mon:       2.45",
		"Queue Mean wait s/mon:    4410.00",
	}
	for i, w := range want {
		if lines[i] != w {
			t.Fatalf("line %d:\n got %q\nwant %q\n%s", i+1, lines[i], w, b.String())
		}
	}
	for _, s := range []string{"Jobs:            read 2 = served 2 + unserved 0", "Cost:            $1.45", "API calls:", "RunInstances=2"} {
		if !strings.Contains(b.String(), s) {
			t.Fatalf("missing %q in\n%s", s, b.String())
		}
	}
}

func TestWriteJSONAndCSV(t *testing.T) {
	r := simulate(t, csvOf([2]time.Duration{0, time.Hour}), Params{})
	var b bytes.Buffer
	if err := Write(&b, r, "json"); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back["jobs_served"].(float64) != 1 || back["api_calls"].(map[string]any)["RunInstances"] == nil {
		t.Fatalf("json %s", b.String())
	}
	b.Reset()
	if err := Write(&b, r, "csv"); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[1][0] != "2025-01" || recs[2][0] != "TOTAL" || recs[1][1] != "1.00" {
		t.Fatalf("csv %v", recs)
	}
	if err := Write(io.Discard, r, "xml"); err == nil || !strings.Contains(err.Error(), "format") {
		t.Fatalf("want a format error, got %v", err)
	}
}

func TestWriteHTMLSelfContained(t *testing.T) {
	r := simulate(t, csvOf([2]time.Duration{0, time.Hour}, [2]time.Duration{30 * time.Hour, time.Hour}), Params{})
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if n := strings.Count(page, "<svg"); n != 4 {
		t.Fatalf("%d charts, want 4", n)
	}
	for _, bad := range []string{"<script src", "<link", "https://", "@import"} {
		if strings.Contains(page, bad) {
			t.Fatalf("page references the network: %q", bad)
		}
	}
	for _, s := range []string{"Hosts by state", "Queue length", "Monthly cost", "Simulator statistics:"} {
		if !strings.Contains(page, s) {
			t.Fatalf("missing %q", s)
		}
	}
	// 31 hourly samples (t0 .. t0+31h07m).
	if len(r.Samples) != 32 {
		t.Fatalf("%d samples", len(r.Samples))
	}
}

func TestDownsample(t *testing.T) {
	in := make([]Sample, 10)
	for i := range in {
		in[i] = Sample{T: t0.Add(time.Duration(i) * time.Hour), Queue: i, HostsBusy: 2}
	}
	out := downsample(in, 5)
	if len(out) != 5 || out[0].Queue != 1 || out[4].Queue != 9 || out[2].HostsBusy != 2 {
		t.Fatalf("%+v", out)
	}
}

func TestSweepGrid(t *testing.T) {
	in := csvOf([2]time.Duration{0, time.Hour}, [2]time.Duration{10 * time.Minute, time.Hour})
	open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(in)), nil }
	a1, err := ParseSweep("max-hosts=1,2")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := ParseSweep("scrubbing-delay=5m,0")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := Sweep(context.Background(), open, Params{}, []SweepAxis{a1, a2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
	for i, want := range []struct {
		max, sd string
		wait    float64
	}{{"1", "5m", 147 * 60}, {"1", "0", 147 * 60}, {"2", "5m", 0}, {"2", "0", 0}} {
		r := rows[i]
		if r.Err != "" || r.Values["max-hosts"] != want.max || r.Values["scrubbing-delay"] != want.sd || r.Summary.WaitMax != want.wait {
			t.Fatalf("row %d: %+v", i, r)
		}
		if r.Result.Params.ScrubbingDelay != map[string]string{"5m": "5m0s", "0": "0s"}[want.sd] {
			t.Fatalf("row %d: scrubbing delay %s", i, r.Result.Params.ScrubbingDelay)
		}
	}
	var b bytes.Buffer
	if err := WriteSweep(&b, rows, "csv"); err != nil {
		t.Fatal(err)
	}
	recs, _ := csv.NewReader(&b).ReadAll()
	if len(recs) != 5 || recs[0][0] != "max-hosts" || recs[0][1] != "scrubbing-delay" {
		t.Fatalf("%v", recs)
	}
	if _, err := ParseSweep("max-hosts"); err == nil {
		t.Fatal("want an error for a sweep without values")
	}
	if _, err := ParseSweep("colour=red"); err == nil || !strings.Contains(err.Error(), "unknown parameter") {
		t.Fatalf("got %v", err)
	}
	if _, err := ParseSweep("scrubbing-delay=5x"); err == nil || !strings.Contains(err.Error(), "scrubbing-delay") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadNodeConfigAndLabel(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "node.yaml")
	os.WriteFile(node, []byte(`
node_name: n1
drivers:
  - name: aws
    cfg:
      region: us-west-2
      key_id: AKIA
      secret_key: s3cret
      dedicated_pool:
        macs:
          type: mac2-m2.metal
          zone: us-west-2b
          max: 3
          scrubbing_delay: 10m
          release_delay: 2d
`), 0o600)
	var p Params
	if err := LoadNodeConfig(node, "", &p); err != nil {
		t.Fatal(err)
	}
	if p.PoolName != "macs" || p.InstanceType != "mac2-m2.metal" || p.MaxHosts != 3 || p.Zones[0] != "us-west-2b" ||
		*p.ScrubbingDelay != 10*time.Minute || *p.ReleaseDelay != 48*time.Hour {
		t.Fatalf("%+v", p)
	}
	r := simulate(t, csvOf([2]time.Duration{0, time.Hour}), p)
	if r.PricePerHostHour != 0.878 || r.Params.Zones[0] != "us-west-2b" {
		t.Fatalf("%+v", r.Params)
	}

	mapForm := filepath.Join(dir, "node2.yaml")
	os.WriteFile(mapForm, []byte("drivers:\n  providers:\n    aws/prod:\n      dedicated_pool:\n        a: {type: mac2.metal, zone: us-west-2a, max: 0}\n"), 0o600)
	if err := LoadNodeConfig(mapForm, "", &Params{}); err == nil || !strings.Contains(err.Error(), "dedicated_pool.a.max") {
		t.Fatalf("got %v", err)
	}
	bad := filepath.Join(dir, "node3.yaml")
	os.WriteFile(bad, []byte("drivers:\n  - name: aws\n    cfg:\n      dedicated_pool:\n        a: {type: mac2.metal, zone: us-west-2a, max: 2, colour: red}\n"), 0o600)
	if err := LoadNodeConfig(bad, "", &Params{}); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("got %v", err)
	}

	label := filepath.Join(dir, "label.yaml")
	os.WriteFile(label, []byte(`
name: mac
version: 1
definitions:
  - driver: aws
    options:
      image: macos-14
      instance_type: mac2-m2.metal
      pool: macs
`), 0o600)
	var lp Params
	if err := LoadNodeConfig(node, "", &lp); err != nil {
		t.Fatal(err)
	}
	if err := LoadLabel(label, &lp); err != nil {
		t.Fatal(err)
	}
	if lp.Definition == nil || lp.PoolName != "macs" || lp.Image != "macos-14" {
		t.Fatalf("%+v", lp)
	}
	r = simulate(t, csvOf([2]time.Duration{0, time.Hour}), lp)
	if r.JobsServed != 1 {
		t.Fatalf("served %d", r.JobsServed)
	}
	nopool := filepath.Join(dir, "label2.yaml")
	os.WriteFile(nopool, []byte("name: x\ndefinitions:\n  - driver: aws\n    options: {instance_type: mac2.metal}\n"), 0o600)
	if err := LoadLabel(nopool, &Params{}); err == nil || !strings.Contains(err.Error(), "definitions[0].options.pool") {
		t.Fatalf("got %v", err)
	}
}
