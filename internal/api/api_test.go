package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/crypto/bcrypt"

	"github.com/aquarium-fish/aquarium-fish/internal/api"
	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
	"github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2/aquariumv2connect"
	"github.com/aquarium-fish/aquarium-fish/internal/auth"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
	"github.com/aquarium-fish/aquarium-fish/internal/driver/testdriver"
	"github.com/aquarium-fish/aquarium-fish/internal/engine"
	"github.com/aquarium-fish/aquarium-fish/internal/meta"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
	"github.com/aquarium-fish/aquarium-fish/internal/store/sqlite"
)

// node is a real API server over a real engine, SQLite store and the test driver.
type node struct {
	url      string
	st       store.Store
	adminPW  string
	password map[string]string
}

func newNode(t testing.TB) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "fish.db"))
	if err != nil {
		t.Fatal(err)
	}
	td := testdriver.New("test")
	if err := td.Prepare(ctx, nil); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := engine.New(engine.Options{Store: st, Drivers: map[string]driver.Driver{"test": td}, NodeName: "node-1", Logger: log, AllocationRetry: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = eng.Run(ctx) }()
	pw, err := auth.EnsureAdmin(ctx, st, clock.Real{}, dir, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Options{Users: st, Secret: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Options{
		Store: st, Engine: eng, Auth: a, Logger: log, NodeName: "node-1", PasswordCost: bcrypt.MinCost,
		IsInvalid: func(err error) bool { return errors.Is(err, engine.ErrInvalidArgument) },
		Meta:      meta.NewHandler(st, meta.HandlerOptions{Logger: log, EmulatedIPHeader: meta.DefaultEmulatedIPHeader}),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-done
		_ = st.Close()
	})
	n := &node{url: hs.URL, st: st, adminPW: pw, password: map[string]string{"admin": pw}}
	return n
}

type reply struct {
	code int
	body map[string]any
	raw  string
}

// call is the curl-equivalent request: POST a body to /grpc/aquarium.v2.<method>.
func (n *node) call(t testing.TB, user, method, ctype, body string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.url+"/grpc/aquarium.v2."+method, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if user != "" {
		req.SetBasicAuth(user, n.password[user])
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{code: resp.StatusCode, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

func (n *node) mustOK(t testing.TB, user, method, body string) map[string]any {
	t.Helper()
	r := n.call(t, user, method, "application/json", body)
	if r.code != 200 || r.body["status"] != true {
		t.Fatalf("%s as %s: %d %s", method, user, r.code, r.raw)
	}
	d, _ := r.body["data"].(map[string]any)
	return d
}

func (n *node) addUser(t testing.TB, name, role string) {
	t.Helper()
	d := n.mustOK(t, "admin", "UserService/Create", `{"user":{"name":"`+name+`","roles":["`+role+`"]}}`)
	n.password[name] = d["password"].(string)
}

const labelYAML = `
label:
  name: ubuntu
  version: 1
  metadata: {team: ci, JOBS: 4}
  definitions:
    - driver: test
      resources:
        cpu: 2
        ram: 4
        lifetime: 1h
      options:
        image: ubuntu-22.04
`

func (n *node) waitState(t testing.TB, user, app, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := n.mustOK(t, user, "ApplicationService/GetState", `{"application_uid":"`+app+`"}`)
		if d["status"] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("application %s: state %v, want %s", app, d["status"], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUnauthenticated(t *testing.T) {
	n := newNode(t)
	r := n.call(t, "", "UserService/GetMe", "application/json", `{}`)
	if r.code != http.StatusUnauthorized || r.body["code"] != "unauthenticated" || r.body["status"] != false {
		t.Fatalf("no credentials: %d %s", r.code, r.raw)
	}
	n.password["admin"] = "wrong"
	r = n.call(t, "admin", "LabelService/List", "application/json", `{}`)
	if r.code != http.StatusUnauthorized {
		t.Fatalf("bad password: %d %s", r.code, r.raw)
	}
	// Credentials are checked before the body is read: bad bodies and YAML
	// from strangers still get 401, and a User gets 403 before parsing.
	for _, ct := range []string{"application/json", "text/yaml"} {
		if r := n.call(t, "", "LabelService/Create", ct, `{"label":`); r.code != http.StatusUnauthorized || r.body["status"] != false {
			t.Fatalf("unauthenticated %s with a bad body: %d %s", ct, r.code, r.raw)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, n.url+"/grpc/aquarium.v2.ApplicationService/List", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer af1.forged.token")
	if r := do(t, req); r.code != http.StatusUnauthorized {
		t.Fatalf("forged bearer: %d %s", r.code, r.raw)
	}
}

func TestFlowAndRBAC(t *testing.T) {
	n := newNode(t)
	n.addUser(t, "alice", auth.RoleUser)
	n.addUser(t, "bob", auth.RoleUser)
	n.addUser(t, "pat", auth.RolePower)

	// YAML label with snake_case keys; the answer is lowerCamelCase JSON.
	r := n.call(t, "alice", "LabelService/Create", "text/yaml", labelYAML)
	if r.code != 200 || r.body["status"] != true {
		t.Fatalf("create label: %d %s", r.code, r.raw)
	}
	lbl := r.body["data"].(map[string]any)
	if lbl["ownerName"] != "alice" || lbl["createdAt"] == nil || lbl["uid"] == "" {
		t.Fatalf("label answer not lowerCamelCase/complete: %s", r.raw)
	}
	labelUID := lbl["uid"].(string)

	// lowerCamelCase request keys work too.
	app := n.mustOK(t, "alice", "ApplicationService/Create", `{"application":{"labelUid":"`+labelUID+`","metadata":{"JOB":"build-1","N":1000000}}}`)
	appUID := app["uid"].(string)
	if app["ownerName"] != "alice" || app["labelUid"] != labelUID {
		t.Fatalf("application answer: %v", app)
	}
	n.waitState(t, "alice", appUID, "ALLOCATED")
	res := n.mustOK(t, "alice", "ApplicationService/GetResource", `{"application_uid":"`+appUID+`"}`)
	if res["identifier"] == "" || res["ipAddr"] == "" {
		t.Fatalf("resource: %v", res)
	}

	// bob can neither see nor touch alice's application.
	for _, m := range []string{"Get", "GetState", "GetResource", "Deallocate", "ListTask"} {
		r := n.call(t, "bob", "ApplicationService/"+m, "application/json", `{"application_uid":"`+appUID+`"}`)
		if r.code != http.StatusForbidden || r.body["code"] != "permission_denied" {
			t.Errorf("bob %s: %d %s", m, r.code, r.raw)
		}
	}
	for _, m := range []string{"List", "ListState", "ListResource"} {
		r := n.call(t, "bob", "ApplicationService/"+m, "application/json", `{}`)
		if r.code != 200 || strings.Contains(r.raw, appUID) {
			t.Errorf("bob %s leaks alice's application: %s", m, r.raw)
		}
	}
	r = n.call(t, "admin", "ApplicationService/List", "application/json", `{}`)
	if !strings.Contains(r.raw, appUID) {
		t.Errorf("admin must see every application: %s", r.raw)
	}
	// bob cannot create an application in alice's name either: owner is the caller.
	bobApp := n.mustOK(t, "bob", "ApplicationService/Create", `{"application":{"label_uid":"`+labelUID+`","owner_name":"alice"}}`)
	if bobApp["ownerName"] != "bob" {
		t.Errorf("owner taken from the request: %v", bobApp)
	}
	// Users may not run tasks or manage users; Power may run tasks on its own apps.
	r = n.call(t, "alice", "ApplicationService/CreateTask", "application/json", `{"task":{"application_uid":"`+appUID+`","task":"snapshot","when":"ALLOCATED"}}`)
	if r.code != http.StatusForbidden {
		t.Errorf("User CreateTask: %d %s", r.code, r.raw)
	}
	r = n.call(t, "alice", "UserService/Create", "application/json", `{"user":{"name":"eve"}}`)
	if r.code != http.StatusForbidden {
		t.Errorf("User creating users: %d %s", r.code, r.raw)
	}
	r = n.call(t, "pat", "ApplicationService/CreateTask", "application/json", `{"task":{"application_uid":"`+appUID+`","task":"snapshot","when":"ALLOCATED"}}`)
	if r.code != http.StatusForbidden {
		t.Errorf("Power task on another's application: %d %s", r.code, r.raw)
	}
	patApp := n.mustOK(t, "pat", "ApplicationService/Create", `{"application":{"label_uid":"`+labelUID+`"}}`)
	n.waitState(t, "pat", patApp["uid"].(string), "ALLOCATED")
	task := n.mustOK(t, "pat", "ApplicationService/CreateTask", `{"task":{"application_uid":"`+patApp["uid"].(string)+`","task":"snapshot","when":"ALLOCATED","options":{"full":true}}}`)
	if task["when"] != "ALLOCATED" || task["task"] != "snapshot" {
		t.Errorf("task: %v", task)
	}

	// A second label version by bob is visible to alice (empty visible_for),
	// a label visible only to bob is not.
	r = n.call(t, "bob", "LabelService/Create", "application/yaml", "label: {name: secret, version: 1, visible_for: [bob], definitions: [{driver: test}]}")
	if r.code != 200 {
		t.Fatalf("bob label: %s", r.raw)
	}
	secretUID := r.body["data"].(map[string]any)["uid"].(string)
	if r := n.call(t, "alice", "LabelService/Get", "application/json", `{"label_uid":"`+secretUID+`"}`); r.code != http.StatusNotFound {
		t.Errorf("alice sees bob's private label: %d %s", r.code, r.raw)
	}
	if r := n.call(t, "alice", "ApplicationService/Create", "application/json", `{"application":{"label_uid":"`+secretUID+`"}}`); r.code != http.StatusNotFound {
		t.Errorf("alice allocates bob's private label: %d %s", r.code, r.raw)
	}
	if r := n.call(t, "alice", "LabelService/List", "application/json", `{"name":"ubuntu","version":"last"}`); r.code != 200 || strings.Contains(r.raw, secretUID) || !strings.Contains(r.raw, labelUID) {
		t.Errorf("label list: %s", r.raw)
	}
	if r := n.call(t, "bob", "LabelService/Remove", "application/json", `{"label_uid":"`+labelUID+`"}`); r.code != http.StatusForbidden {
		t.Errorf("bob removes alice's label: %d %s", r.code, r.raw)
	}

	// The meta API answers the resource's own metadata, from its address only.
	get := func(hdr string, q string) reply {
		req, _ := http.NewRequest(http.MethodGet, n.url+"/meta/v1/data/"+q, nil)
		if hdr != "" {
			req.Header.Set(meta.DefaultEmulatedIPHeader, hdr)
		}
		return do(t, req)
	}
	if r := get("", "?format=env"); r.code != http.StatusUnauthorized {
		t.Errorf("meta from a non-resource address: %d %s", r.code, r.raw)
	}
	if r := get(res["ipAddr"].(string), "?format=env&prefix=fish"); r.code != 200 || !strings.Contains(r.raw, "FISH_JOB=build-1\n") && !strings.Contains(r.raw, "fish_JOB=build-1\n") || !strings.Contains(r.raw, "team=ci") {
		t.Errorf("meta env: %d %q", r.code, r.raw)
	}
	if r := get(res["ipAddr"].(string), "?format=json"); r.code != 200 || !strings.Contains(r.raw, `"N":1000000`) {
		t.Errorf("meta json: %d %q", r.code, r.raw)
	}

	// Deallocate: alice's app goes away and the meta API stops answering.
	n.mustOK(t, "alice", "ApplicationService/Deallocate", `{"application_uid":"`+appUID+`"}`)
	n.waitState(t, "alice", appUID, "DEALLOCATED")
	if r := get(res["ipAddr"].(string), ""); r.code != http.StatusUnauthorized {
		t.Errorf("meta after deallocation: %d %s", r.code, r.raw)
	}
}

func TestBadInput(t *testing.T) {
	n := newNode(t)
	cases := []struct {
		name, ctype, body, method, want string
	}{
		{"wrong type", "application/json", `{"label":{"name":5}}`, "LabelService/Create", "name"},
		{"unknown field", "application/json", `{"label":{"name":"x","colour":"red"}}`, "LabelService/Create", "colour"},
		{"missing name", "application/json", `{"label":{"definitions":[{"driver":"test"}]}}`, "LabelService/Create", "label.name"},
		{"no definitions", "text/yaml", "label: {name: x, version: 1}", "LabelService/Create", "label.definitions"},
		{"unknown driver", "text/yaml", "label: {name: x, version: 1, definitions: [{driver: nope}]}", "LabelService/Create", "driver"},
		{"bad yaml", "application/yaml", "label: {name: [", "LabelService/Create", "YAML"},
		{"bad yaml type", "text/yaml", "label:\n  name: x\n  version: one\n", "LabelService/Create", "version"},
		{"bad json", "application/json", `{"label":`, "LabelService/Create", "unmarshal"},
		{"no label uid", "application/json", `{"application":{}}`, "ApplicationService/Create", "application.label_uid"},
		{"bad when", "application/json", `{"task":{"application_uid":"x","task":"snapshot","when":"NEW"}}`, "ApplicationService/CreateTask", "task.when"},
		{"bad version filter", "application/json", `{"version":"newest"}`, "LabelService/List", "version"},
		{"bad role", "application/json", `{"user":{"name":"z","roles":["God"]}}`, "UserService/Create", "user.roles[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := n.call(t, "admin", c.method, c.ctype, c.body)
			if r.code != http.StatusBadRequest || r.body["code"] != "invalid_argument" || r.body["status"] != false {
				t.Fatalf("%d %s", r.code, r.raw)
			}
			msg, _ := r.body["message"].(string)
			t.Logf("%s -> %s", c.name, msg)
			if !strings.Contains(msg, c.want) {
				t.Fatalf("message %q does not name %q", msg, c.want)
			}
		})
	}
}

func TestTokensAndTypedClient(t *testing.T) {
	n := newNode(t)
	hc := http.DefaultClient
	authc := aquariumv2connect.NewAuthServiceClient(hc, n.url+"/grpc", connect.WithProtoJSON())
	ctx := context.Background()
	login, err := authc.Login(ctx, connect.NewRequest(&pb.AuthServiceLoginRequest{Username: "admin", Password: n.adminPW}))
	if err != nil {
		t.Fatal(err)
	}
	tok := login.Msg.Data
	if tok.Token == "" || tok.RefreshToken == "" || !tok.ExpiresAt.AsTime().After(time.Now()) {
		t.Fatalf("tokens: %v", tok)
	}
	users := aquariumv2connect.NewUserServiceClient(hc, n.url+"/grpc", connect.WithProtoJSON())
	req := connect.NewRequest(&pb.UserServiceGetMeRequest{})
	req.Header().Set("Authorization", "Bearer "+tok.Token)
	me, err := users.GetMe(ctx, req)
	if err != nil || me.Msg.Data.Name != "admin" || !me.Msg.Status {
		t.Fatalf("GetMe: %v %v", me, err)
	}
	ref, err := authc.RefreshToken(ctx, connect.NewRequest(&pb.AuthServiceRefreshTokenRequest{RefreshToken: tok.RefreshToken}))
	if err != nil || ref.Msg.Data.Token == "" {
		t.Fatalf("refresh: %v", err)
	}
	// The binary protobuf (gRPC-compatible) codec works on the same paths.
	usersProto := aquariumv2connect.NewUserServiceClient(hc, n.url+"/grpc")
	req2 := connect.NewRequest(&pb.UserServiceGetMeRequest{})
	req2.Header().Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+n.adminPW)))
	if _, err := usersProto.GetMe(ctx, req2); err != nil {
		t.Fatalf("proto codec: %v", err)
	}
	// Failed logins are rate limited per address.
	var last error
	for range 12 {
		_, last = authc.Login(ctx, connect.NewRequest(&pb.AuthServiceLoginRequest{Username: "admin", Password: "nope"}))
	}
	if connect.CodeOf(last) != connect.CodeResourceExhausted {
		t.Fatalf("after 12 failures: %v", last)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	n := newNode(t)
	resp, err := http.Get(n.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	n.mustOK(t, "admin", "UserService/GetMe", `{}`)
	resp, err = http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `aquarium_api_requests_total{code="ok",procedure="/aquarium.v2.UserService/GetMe"} 1`) {
		t.Fatalf("metrics: %s", b)
	}
}

func benchCall(b *testing.B, n *node, method, authz string) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, n.url+"/grpc/aquarium.v2."+method, strings.NewReader(`{}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", authz)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("%s: HTTP %d", method, resp.StatusCode)
				return
			}
		}
	})
}

func bearer(b *testing.B, n *node) string {
	b.Helper()
	r := n.call(b, "", "AuthService/Login", "application/json", `{"username":"admin","password":"`+n.adminPW+`"}`)
	tok, _ := r.body["data"].(map[string]any)["token"].(string)
	if tok == "" {
		b.Fatalf("login: %s", r.raw)
	}
	return "Bearer " + tok
}

// BenchmarkGetMeBearer: UserService/GetMe over HTTP with a bearer token.
func BenchmarkGetMeBearer(b *testing.B) {
	n := newNode(b)
	benchCall(b, n, "UserService/GetMe", bearer(b, n))
}

// BenchmarkGetMeBasic: the same with HTTP Basic (verified-credential cache).
func BenchmarkGetMeBasic(b *testing.B) {
	n := newNode(b)
	benchCall(b, n, "UserService/GetMe", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+n.adminPW)))
}

// BenchmarkApplicationList: ApplicationService/List (bearer) with 50 applications.
func BenchmarkApplicationList(b *testing.B) {
	n := newNode(b)
	r := n.call(b, "admin", "LabelService/Create", "text/yaml", labelYAML)
	uid := r.body["data"].(map[string]any)["uid"].(string)
	for range 50 {
		n.mustOK(b, "admin", "ApplicationService/Create", `{"application":{"label_uid":"`+uid+`"}}`)
	}
	benchCall(b, n, "ApplicationService/List", bearer(b, n))
}

func TestLabelsUsersNodes(t *testing.T) {
	n := newNode(t)
	n.addUser(t, "alice", auth.RoleUser)
	n.addUser(t, "bob", auth.RoleUser)

	// Version 0 labels are editable by their owner only; versioned ones are not.
	tmp := n.mustOK(t, "alice", "LabelService/Create", `{"label":{"name":"tmp","version":0,"definitions":[{"driver":"test"}]}}`)
	tmpUID := tmp["uid"].(string)
	if r := n.call(t, "bob", "LabelService/Update", "application/json", `{"label":{"uid":"`+tmpUID+`","name":"tmp","definitions":[{"driver":"test"}]}}`); r.code != http.StatusForbidden {
		t.Errorf("bob updates alice's label: %d %s", r.code, r.raw)
	}
	upd := n.mustOK(t, "alice", "LabelService/Update", `{"label":{"uid":"`+tmpUID+`","name":"tmp","metadata":{"k":"v"},"definitions":[{"driver":"test"}]}}`)
	if upd["metadata"].(map[string]any)["k"] != "v" || upd["ownerName"] != "alice" {
		t.Errorf("update: %v", upd)
	}
	v1 := n.mustOK(t, "alice", "LabelService/Create", `{"label":{"name":"tmp","version":1,"definitions":[{"driver":"test"}]}}`)
	if r := n.call(t, "alice", "LabelService/Update", "application/json", `{"label":{"uid":"`+v1["uid"].(string)+`","name":"tmp","definitions":[{"driver":"test"}]}}`); r.code != http.StatusBadRequest || r.body["code"] != "failed_precondition" {
		t.Errorf("update of a versioned label: %d %s", r.code, r.raw)
	}
	if r := n.call(t, "alice", "LabelService/Create", "application/json", `{"label":{"name":"tmp","version":1,"definitions":[{"driver":"test"}]}}`); r.code != http.StatusConflict || r.body["code"] != "already_exists" {
		t.Errorf("duplicate name:version: %d %s", r.code, r.raw)
	}
	list := n.call(t, "alice", "LabelService/List", "application/json", `{"name":"tmp","version":1}`)
	if got := len(list.body["data"].([]any)); got != 1 {
		t.Errorf("list name+version: %d labels: %s", got, list.raw)
	}
	n.mustOK(t, "alice", "LabelService/Remove", `{"label_uid":"`+tmpUID+`"}`)
	if r := n.call(t, "alice", "LabelService/Get", "application/json", `{"label_uid":"`+tmpUID+`"}`); r.code != http.StatusNotFound {
		t.Errorf("removed label: %d %s", r.code, r.raw)
	}

	// Users: admin only, except GetMe; roles are listed.
	for _, m := range []string{"UserService/List", "UserService/Get", "NodeService/SetMaintenance"} {
		if r := n.call(t, "alice", m, "application/json", `{"user_name":"bob","maintenance":true}`); r.code != http.StatusForbidden {
			t.Errorf("alice %s: %d %s", m, r.code, r.raw)
		}
	}
	me := n.mustOK(t, "alice", "UserService/GetMe", `{}`)
	if me["name"] != "alice" || me["password"] != nil {
		t.Errorf("GetMe: %v", me)
	}
	roles := n.call(t, "alice", "RoleService/List", "application/json", `{}`)
	if !strings.Contains(roles.raw, `"Power"`) {
		t.Errorf("roles: %s", roles.raw)
	}
	// A password change takes effect at once, cached credentials included.
	n.mustOK(t, "admin", "UserService/Update", `{"user":{"name":"alice","password":"n3w-pass"}}`)
	if r := n.call(t, "alice", "UserService/GetMe", "application/json", `{}`); r.code != http.StatusUnauthorized {
		t.Errorf("old password after change: %d", r.code)
	}
	n.password["alice"] = "n3w-pass"
	n.mustOK(t, "alice", "UserService/GetMe", `{}`)
	n.mustOK(t, "admin", "UserService/Remove", `{"user_name":"alice"}`)
	if r := n.call(t, "alice", "UserService/GetMe", "application/json", `{}`); r.code != http.StatusUnauthorized {
		t.Errorf("removed user: %d", r.code)
	}
	if r := n.call(t, "admin", "UserService/Remove", "application/json", `{"user_name":"admin"}`); r.code == 200 {
		t.Errorf("admin removed itself")
	}

	// Nodes: maintenance is recorded and visible.
	n.mustOK(t, "admin", "NodeService/SetMaintenance", `{"maintenance":true}`)
	this := n.mustOK(t, "bob", "NodeService/GetThis", `{}`)
	if this["name"] != "node-1" || this["maintenance"] != true {
		t.Errorf("GetThis: %v", this)
	}
	if r := n.call(t, "admin", "NodeService/SetMaintenance", "application/json", `{"shutdown":true}`); r.code != http.StatusNotImplemented {
		t.Errorf("shutdown without a handler: %d %s", r.code, r.raw)
	}
}
