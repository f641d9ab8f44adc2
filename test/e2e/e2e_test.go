// Package e2e starts the real aquarium-fish binary with no config (embedded
// SQLite and emulated AWS) and drives the seed's flow over HTTP, exactly as
// curl or the CLI would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/tlsutil"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fish-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "aquarium-fish")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	build := exec.Command("go", "build", "-o", binary, "../../cmd/aquarium-fish")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build aquarium-fish:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuf collects the node's output for failure reports.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fish struct {
	t        *testing.T
	dir      string
	url      string
	emulator string
	password string
	hc       *http.Client
	out      *syncBuf
}

// startNode runs `aquarium-fish --dir D --api ADDR` (no config) and waits
// until /healthz answers over TLS with the generated CA.
func startNode(t *testing.T) *fish {
	t.Helper()
	dir := t.TempDir()
	api, emu := freePort(t), freePort(t)
	out := &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, "--dir", dir, "--api", api, "--emulator-listen", emu, "--time-scale", "120")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("node output:\n%s", out.String())
		}
	})
	f := &fish{t: t, dir: dir, url: "https://" + api, emulator: "http://" + emu, out: out}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("node did not come up:\n%s", out.String())
		}
		if f.hc == nil {
			if cfg, err := tlsutil.ClientConfig(filepath.Join(dir, tlsutil.CAFile)); err == nil {
				f.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
			}
		}
		if f.hc != nil {
			if resp, err := f.hc.Get(f.url + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	pw, err := os.ReadFile(filepath.Join(dir, "admin.password"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "admin.password"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.password mode: %v %v", st.Mode(), err)
	}
	f.password = strings.TrimSpace(string(pw))
	if !strings.Contains(out.String(), f.password) {
		t.Fatalf("the admin password was not printed on first start")
	}
	if !strings.Contains(out.String(), "EMULATED AWS") {
		t.Fatalf("no loud notice about the emulated AWS:\n%s", out.String())
	}
	return f
}

type answer struct {
	code int
	body map[string]any
	raw  string
}

// post is `curl -u admin:PW -H 'Content-Type: CT' --data-binary BODY URL/grpc/aquarium.v2.METHOD`.
func (f *fish) post(method, ctype, body string) answer {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url+"/grpc/aquarium.v2."+method, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	req.SetBasicAuth("admin", f.password)
	return f.do(req)
}

func (f *fish) do(req *http.Request) answer {
	f.t.Helper()
	resp, err := f.hc.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, raw: string(b)}
	_ = json.Unmarshal(b, &a.body)
	return a
}

func (f *fish) ok(method, body string) map[string]any {
	f.t.Helper()
	a := f.post(method, "application/json", body)
	if a.code != 200 || a.body["status"] != true {
		f.t.Fatalf("%s: %d %s", method, a.code, a.raw)
	}
	d, _ := a.body["data"].(map[string]any)
	return d
}

func (f *fish) waitState(app, want string, within time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		d := f.ok("ApplicationService/GetState", `{"application_uid":"`+app+`"}`)
		last, _ = d["status"].(string)
		if last == want {
			return
		}
		if last == "ERROR" {
			f.t.Fatalf("application %s went to ERROR: %v", app, d["description"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("application %s: %s after %s, want %s", app, last, within, want)
}

// emulatorState is the part of /_emulator/state the test checks.
type emulatorState struct {
	Instances []struct {
		InstanceId       string
		PrivateIpAddress string
		State            struct{ Name string }
		Tags             []struct{ Key, Value string }
	} `json:"instances"`
	Volumes []struct {
		VolumeId    string
		State       string
		Attachments []struct{ InstanceId string }
	} `json:"volumes"`
	KeyPairs []struct{ KeyName string } `json:"key_pairs"`
	Hosts    []struct {
		HostId string
		State  string
	} `json:"hosts"`
	Snapshots []struct {
		SnapshotId string
		State      string
	} `json:"snapshots"`
}

func (f *fish) emulatorState() emulatorState {
	f.t.Helper()
	resp, err := http.Get(f.emulator + "/_emulator/state")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var s emulatorState
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		f.t.Fatal(err)
	}
	return s
}

func readExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSeedFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	f := startNode(t)

	// Unauthenticated -> 401.
	req, _ := http.NewRequest(http.MethodPost, f.url+"/grpc/aquarium.v2.ApplicationService/List", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	if a := f.do(req); a.code != http.StatusUnauthorized || a.body["code"] != "unauthenticated" {
		t.Fatalf("unauthenticated: %d %s", a.code, a.raw)
	}

	// The example label, as YAML over HTTP.
	a := f.post("LabelService/Create", "application/yaml", readExample(t, "label-linux.yaml"))
	if a.code != 200 {
		t.Fatalf("create label: %d %s", a.code, a.raw)
	}
	labelUID := a.body["data"].(map[string]any)["uid"].(string)

	// The other examples are valid for the embedded region too.
	for _, ex := range []string{"label-mac.yaml", "label-disks.yaml"} {
		if a := f.post("LabelService/Create", "text/yaml", readExample(t, ex)); a.code != 200 {
			t.Fatalf("%s: %d %s", ex, a.code, a.raw)
		}
	}
	if a := f.post("LabelService/Create", "application/json", readExample(t, "label-linux.json")); a.code != 200 {
		t.Fatalf("label-linux.json: %d %s", a.code, a.raw)
	}
	// Bad YAML -> invalid_argument naming the field.
	if a := f.post("LabelService/Create", "text/yaml", "label:\n  name: x\n  version: 1\n  definitions:\n    - driver: aws\n      options: {image: ubuntu-22.04}\n"); a.code != 400 || !strings.Contains(a.raw, "instance_type") {
		t.Fatalf("bad definition: %d %s", a.code, a.raw)
	}

	app := f.ok("ApplicationService/Create", `{"application":{"label_uid":"`+labelUID+`","metadata":{"JOB":"build-42","RUNS":1000000}}}`)
	appUID := app["uid"].(string)
	f.waitState(appUID, "ALLOCATED", 60*time.Second)

	res := f.ok("ApplicationService/GetResource", `{"application_uid":"`+appUID+`"}`)
	instanceID, _ := res["identifier"].(string)
	ip, _ := res["ipAddr"].(string)
	if !strings.HasPrefix(instanceID, "i-") || net.ParseIP(ip) == nil {
		t.Fatalf("resource: %v", res)
	}
	st := f.emulatorState()
	found := false
	for _, in := range st.Instances {
		if in.InstanceId == instanceID {
			found = true
			if in.PrivateIpAddress != ip || (in.State.Name != "running" && in.State.Name != "pending") {
				t.Fatalf("emulator instance %s: ip %s state %s", instanceID, in.PrivateIpAddress, in.State.Name)
			}
		}
	}
	if !found {
		t.Fatalf("instance %s not in the emulator", instanceID)
	}

	// The meta API, from the resource's address (the emulated-IP header is
	// honoured only with the embedded emulator and only from loopback).
	meta := func(hdrIP, q string) answer {
		req, _ := http.NewRequest(http.MethodGet, f.url+"/meta/v1/data/"+q, nil)
		if hdrIP != "" {
			req.Header.Set("X-Aquarium-Emulated-Resource-IP", hdrIP)
		}
		return f.do(req)
	}
	if a := meta(ip, "?format=env&prefix=fish"); a.code != 200 || !strings.Contains(a.raw, "JOB=build-42") || !strings.Contains(a.raw, "RUNS=1000000") || !strings.Contains(a.raw, "CI_SERVER=") {
		t.Fatalf("meta env: %d %q", a.code, a.raw)
	}
	if a := meta(ip, "?format=json"); a.code != 200 || a.body["JOB"] != "build-42" {
		t.Fatalf("meta json: %d %q", a.code, a.raw)
	}
	if a := meta("", ""); a.code != http.StatusUnauthorized {
		t.Fatalf("meta from a non-resource address: %d", a.code)
	}

	// Snapshot task.
	task := f.ok("ApplicationService/CreateTask", `{"task":{"application_uid":"`+appUID+`","task":"snapshot","when":"ALLOCATED","options":{"full":true}}}`)
	taskUID := task["uid"].(string)
	deadline := time.Now().Add(60 * time.Second)
	var result map[string]any
	for time.Now().Before(deadline) {
		d := f.ok("ApplicationService/GetTask", `{"application_task_uid":"`+taskUID+`"}`)
		if r, ok := d["result"].(map[string]any); ok && len(r) > 0 {
			result = r
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	snaps, _ := result["snapshots"].([]any)
	if len(snaps) == 0 {
		t.Fatalf("snapshot task result: %v", result)
	}

	// Deallocate; the emulator shows the instance terminated, nothing leaked.
	f.ok("ApplicationService/Deallocate", `{"application_uid":"`+appUID+`"}`)
	f.waitState(appUID, "DEALLOCATED", 60*time.Second)
	deadline = time.Now().Add(30 * time.Second)
	for {
		st = f.emulatorState()
		var live []string
		for _, in := range st.Instances {
			if in.State.Name != "terminated" {
				live = append(live, in.InstanceId+"="+in.State.Name)
			}
		}
		var vols []string
		for _, v := range st.Volumes {
			if v.State != "deleted" {
				vols = append(vols, v.VolumeId+"="+v.State)
			}
		}
		if len(live) == 0 && len(vols) == 0 && len(st.KeyPairs) == 0 && len(st.Hosts) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leaked after deallocation: instances %v volumes %v key pairs %v hosts %v", live, vols, st.KeyPairs, st.Hosts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	terminated := false
	for _, in := range st.Instances {
		terminated = terminated || (in.InstanceId == instanceID && in.State.Name == "terminated")
	}
	if !terminated {
		t.Fatalf("instance %s is not listed as terminated", instanceID)
	}
	if a := meta(ip, ""); a.code != http.StatusUnauthorized {
		t.Fatalf("meta after deallocation: %d", a.code)
	}

	// /metrics shows the API calls and the engine's transitions.
	resp, err := f.hc.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`aquarium_application_transitions_total{status="DEALLOCATED"} 1`, `aquarium_api_requests_total{code="unauthenticated",procedure="/aquarium.v2.ApplicationService/List"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestCLI drives the same flow with the binary's client commands; they find
// the CA and the admin password in --dir without any other setup.
func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	f := startNode(t)
	run := func(args ...string) string {
		t.Helper()
		args = append(args, "--node", f.url, "--dir", f.dir)
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("aquarium-fish %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("label", "create", "-f", filepath.Join("..", "..", "examples", "label-linux.yaml"))
	if !strings.Contains(out, "ubuntu-linux") {
		t.Fatalf("label create: %s", out)
	}
	if out := run("label", "list"); !strings.Contains(out, "ubuntu-linux") || !strings.Contains(out, "UID") {
		t.Fatalf("label list: %s", out)
	}
	out = run("app", "create", "--label", "ubuntu-linux:1", "--meta", "JOB=cli", "-o", "json")
	var app struct{ Uid string }
	if err := json.Unmarshal([]byte(out), &app); err != nil || app.Uid == "" {
		t.Fatalf("app create -o json: %v %s", err, out)
	}
	if out := run("app", "wait", app.Uid, "--state", "ALLOCATED"); !strings.Contains(out, "ALLOCATED") {
		t.Fatalf("app wait: %s", out)
	}
	if out := run("app", "list"); !strings.Contains(out, app.Uid) || !strings.Contains(out, "ALLOCATED") {
		t.Fatalf("app list: %s", out)
	}
	out = run("app", "resource", app.Uid, "-o", "yaml")
	if !strings.Contains(out, "identifier: i-") {
		t.Fatalf("app resource -o yaml: %s", out)
	}
	if out := run("task", "create", app.Uid, "--task", "snapshot", "--opt", "full=true"); !strings.Contains(out, "snapshot") {
		t.Fatalf("task create: %s", out)
	}
	if out := run("task", "list", app.Uid); !strings.Contains(out, "snapshot") {
		t.Fatalf("task list: %s", out)
	}
	out = run("user", "create", "carol", "--role", "User")
	if !strings.Contains(out, "generated password") {
		t.Fatalf("user create: %s", out)
	}
	pw := strings.TrimSpace(out[strings.LastIndex(out, ":")+1:])
	// carol cannot see admin's application.
	cmd := exec.Command(binary, "app", "get", app.Uid, "--node", f.url, "--dir", f.dir, "--user", "carol", "--password", pw)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "permission_denied") {
		t.Fatalf("carol app get: %v %s", err, b)
	}
	// A bearer token from `user login` works with --token.
	tok := strings.TrimSpace(run("user", "login"))
	if out := run("user", "me", "--token", tok, "--user", "nobody"); !strings.Contains(out, "admin") {
		t.Fatalf("user me with a token: %s", out)
	}
	if out := run("node", "maintenance", "--on"); !strings.Contains(out, "maintenance=true") {
		t.Fatalf("node maintenance: %s", out)
	}
	run("node", "maintenance", "--off")
	run("app", "deallocate", app.Uid)
	if out := run("app", "wait", app.Uid, "--state", "DEALLOCATED"); !strings.Contains(out, "DEALLOCATED") {
		t.Fatalf("app wait deallocated: %s", out)
	}
}

// TestMacPool: a Mac label on the dedicated pool "mac" of the embedded
// region gets a mac2.metal host; after deallocation the instance is
// terminated and the host is scrubbing (pending), not leaked or released.
func TestMacPool(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	f := startNode(t)
	a := f.post("LabelService/Create", "application/yaml", readExample(t, "label-mac.yaml"))
	if a.code != 200 {
		t.Fatalf("mac label: %d %s", a.code, a.raw)
	}
	app := f.ok("ApplicationService/Create", `{"application":{"label_uid":"`+a.body["data"].(map[string]any)["uid"].(string)+`"}}`)
	appUID := app["uid"].(string)
	f.waitState(appUID, "ALLOCATED", 60*time.Second)
	res := f.ok("ApplicationService/GetResource", `{"application_uid":"`+appUID+`"}`)
	if auth, _ := res["authentication"].(map[string]any); auth["username"] != "ec2-user" {
		t.Fatalf("resource authentication: %v", res["authentication"])
	}
	st := f.emulatorState()
	if len(st.Hosts) != 1 || st.Hosts[0].State != "available" {
		t.Fatalf("hosts while allocated: %+v", st.Hosts)
	}
	f.ok("ApplicationService/Deallocate", `{"application_uid":"`+appUID+`"}`)
	f.waitState(appUID, "DEALLOCATED", 60*time.Second)
	st = f.emulatorState()
	for _, in := range st.Instances {
		if in.InstanceId == res["identifier"] && in.State.Name != "terminated" && in.State.Name != "shutting-down" {
			t.Fatalf("mac instance after deallocation: %s", in.State.Name)
		}
	}
	if len(st.Hosts) != 1 || st.Hosts[0].State != "pending" {
		t.Fatalf("host after deallocation should be scrubbing (pending): %+v", st.Hosts)
	}

	// The pool reports to the node's /metrics.
	resp, err := f.hc.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `aquarium_pool_placements_total{pool="mac",result="ok"} 1`; !strings.Contains(string(b), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// TestConfiguredNode runs the node with a config file in the seed's form
// (drivers: [{name: aws, cfg: {...}}]) against a separately started
// `aquarium-fish emulate`, over plain HTTP (tls.disabled): the path a real
// AWS deployment takes, with base_url pointing at the emulator.
func TestConfiguredNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	emuAddr, apiAddr := freePort(t), freePort(t)
	dir := t.TempDir()
	start := func(args ...string) *syncBuf {
		out := &syncBuf{}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("%s output:\n%s", args[0], out.String())
			}
		})
		return out
	}
	start("emulate", "--listen", emuAddr, "--time-scale", "120")
	cfg := fmt.Sprintf(`node_name: e2e-node
api_address: %s
directory: %s
tls:
  disabled: true
drivers:
  - name: aws
    cfg:
      region: us-west-2
      key_id: AKIAEXAMPLEEXAMPLE00
      secret_key: not-a-real-secret
      base_url: http://%s
      instance_tags:
        AquariumNode: e2e-node
`, apiAddr, dir, emuAddr)
	cfgPath := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The emulator may take a moment to listen; the node needs it at start (STS).
	waitHTTP(t, "http://"+emuAddr+"/_emulator/state")
	out := start("--cfg", cfgPath)
	f := &fish{t: t, dir: dir, url: "http://" + apiAddr, emulator: "http://" + emuAddr, out: out, hc: &http.Client{Timeout: 30 * time.Second}}
	waitHTTP(t, f.url+"/healthz")
	pw, err := os.ReadFile(filepath.Join(dir, "admin.password"))
	if err != nil {
		t.Fatal(err)
	}
	f.password = strings.TrimSpace(string(pw))
	if strings.Contains(out.String(), "EMULATED AWS") || strings.Contains(out.String(), "not-a-real-secret") {
		t.Fatalf("configured node must not announce the embedded emulator nor log the secret:\n%s", out.String())
	}
	a := f.post("LabelService/Create", "application/yaml", readExample(t, "label-linux.yaml"))
	if a.code != 200 {
		t.Fatalf("label: %d %s", a.code, a.raw)
	}
	app := f.ok("ApplicationService/Create", `{"application":{"label_uid":"`+a.body["data"].(map[string]any)["uid"].(string)+`"}}`)
	appUID := app["uid"].(string)
	f.waitState(appUID, "ALLOCATED", 60*time.Second)
	res := f.ok("ApplicationService/GetResource", `{"application_uid":"`+appUID+`"}`)
	tagged := false
	for _, in := range f.emulatorState().Instances {
		if in.InstanceId == res["identifier"] {
			for _, tg := range in.Tags {
				tagged = tagged || (tg.Key == "AquariumNode" && tg.Value == "e2e-node")
			}
		}
	}
	if !tagged {
		t.Fatalf("instance %v lacks the config's instance_tags", res["identifier"])
	}
	// Without the embedded emulator the emulated-IP header is ignored.
	req, _ := http.NewRequest(http.MethodGet, f.url+"/meta/v1/data/", nil)
	req.Header.Set("X-Aquarium-Emulated-Resource-IP", res["ipAddr"].(string))
	if a := f.do(req); a.code != http.StatusUnauthorized {
		t.Fatalf("emulated-IP header honoured on a configured node: %d", a.code)
	}
	f.ok("ApplicationService/Deallocate", `{"application_uid":"`+appUID+`"}`)
	f.waitState(appUID, "DEALLOCATED", 60*time.Second)
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer", url)
}
