package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runSimulateCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newSimulateCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errb.String(), err
}

func TestSimulateCommand(t *testing.T) {
	dir := t.TempDir()
	wl := filepath.Join(dir, "w.csv")
	os.WriteFile(wl, []byte("startTime,endTime,executionTime,jobName,stageName\n1735689600,1735693200,3600,a,b\n1735690200,1735693800,3600,a,b\n"), 0o600)

	out, _, err := runSimulateCmd(t, wl, "--max-hosts", "1", "--format", "json", "--report", filepath.Join(dir, "r.html"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Served  int64   `json:"jobs_served"`
		WaitMax float64 `json:"wait_max_seconds"`
		Params  struct {
			MaxHosts int `json:"max_hosts"`
		} `json:"params"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.Served != 2 || r.Params.MaxHosts != 1 || r.WaitMax != 147*60 {
		t.Fatalf("%+v", r)
	}
	if page, err := os.ReadFile(filepath.Join(dir, "r.html")); err != nil || !strings.Contains(string(page), "<svg") {
		t.Fatalf("report: %v", err)
	}

	out, _, err = runSimulateCmd(t, wl, "--sweep", "max-hosts=1,2", "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[1], "1,") {
		t.Fatalf("sweep output:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{wl, "--scrubbing-delay", "soon"}, "scrubbing-delay"},
		{[]string{wl, "--format", "xml"}, "format"},
		{[]string{wl, "--failure-rate", "2"}, "failure-rate"},
		{[]string{filepath.Join(dir, "missing.csv")}, "missing.csv"},
		{[]string{wl, "--sweep", "nope=1"}, "unknown parameter"},
	} {
		if _, _, err := runSimulateCmd(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error naming %q", c.args, err, c.want)
		}
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("startTime,endTime,executionTime,jobName,stageName\n10,20,5,a,b\n5,20,5,a,b\n"), 0o600)
	if _, _, err := runSimulateCmd(t, bad); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("got %v", err)
	}
}
