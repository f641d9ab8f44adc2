package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// Opener opens a fresh, empty store for one test and arranges its cleanup.
type Opener func(t *testing.T) store.Store

// Run runs the conformance suite against the stores open returns. The
// subtests run in parallel, each on its own fresh store.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		test func(t *testing.T, s store.Store)
	}{
		{"Labels", testLabels},
		{"LabelFilter", testLabelFilter},
		{"Applications", testApplications},
		{"Transition", testTransition},
		{"ListByStatus", testListByStatus},
		{"ListCurrentStates", testListCurrentStates},
		{"ClaimNew", testClaimNew},
		{"DeleteApplication", testDeleteApplication},
		{"Resources", testResources},
		{"Tasks", testTasks},
		{"Users", testUsers},
		{"Nodes", testNodes},
		{"ConcurrentTransition", testConcurrentTransition},
		{"ConcurrentClaimNew", func(t *testing.T, s store.Store) { testConcurrentClaim(t, s, s) }},
		{"ClaimRacesDeallocate", testClaimRacesDeallocate},
		{"ConcurrentTaskResult", testConcurrentTaskResult},
		{"ConcurrentMixedOutcomes", testConcurrentMixed},
		{"CanceledContext", testCanceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, open(t))
		})
	}
}

// RunMultiNode checks exactly-once claims and transitions between two
// Store handles on the same database (two nodes).
func RunMultiNode(t *testing.T, a, b store.Store) {
	t.Run("ClaimNewAcrossNodes", func(t *testing.T) { testConcurrentClaim(t, a, b) })
	t.Run("TransitionAcrossNodes", func(t *testing.T) { testTransitionAcross(t, a, b) })
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func mustErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func jsonEq(t *testing.T, got, want json.RawMessage, what string) {
	t.Helper()
	var g, w any
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: got invalid JSON %q: %v", what, got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: want invalid JSON %q: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s: got %s, want %s", what, got, want)
	}
}

func slots(n uint) *uint { return &n }

func sampleLabel(name string, version int) *core.Label {
	return &core.Label{
		Name:      name,
		Version:   version,
		OwnerName: "alice",
		Definitions: []core.Definition{{
			Driver:  "aws",
			Images:  []core.Image{{Name: "macos", Version: "14.5", Tag: "t"}},
			Options: json.RawMessage(`{"instance_type":"mac2.metal","pool":"p1"}`),
			Resources: core.Resources{
				Cpu: 8, Ram: 16,
				Disks:      map[string]core.Disk{"/dev/sdb": {Type: "gp3:3000", Size: 100, Label: "k:v"}},
				Network:    "vpc-123",
				NodeFilter: []string{"eu"},
				Lifetime:   "1d2h",
				Slots:      slots(1),
			},
			Authentication: &core.Authentication{Username: "admin", Port: 22},
		}, {
			Driver:    "test",
			Resources: core.Resources{Cpu: 1, Ram: 1},
		}},
		Metadata:   json.RawMessage(`{"a":"b","n":1}`),
		VisibleFor: []string{"bob", "carol"},
		CreatedAt:  t0,
	}
}

func testLabels(t *testing.T, s store.Store) {
	c := ctx(t)
	l := sampleLabel("mac", 1)
	must(t, s.CreateLabel(c, l), "create label")
	if l.UID == "" {
		t.Fatal("create label: UID not filled")
	}
	got, err := s.GetLabel(c, l.UID)
	must(t, err, "get label")
	if !got.CreatedAt.Equal(t0) {
		t.Fatalf("created_at: got %v, want %v", got.CreatedAt, t0)
	}
	jsonEq(t, got.Metadata, l.Metadata, "metadata")
	jsonEq(t, got.Definitions[0].Options, l.Definitions[0].Options, "options")
	got.Metadata, got.Definitions[0].Options = l.Metadata, l.Definitions[0].Options
	got.CreatedAt = l.CreatedAt
	if !reflect.DeepEqual(got, l) {
		t.Fatalf("label round trip:\n got %+v\nwant %+v", got, l)
	}

	// (name, version) unique; another version of the name is fine.
	mustErr(t, s.CreateLabel(c, sampleLabel("mac", 1)), store.ErrAlreadyExists, "duplicate (name, version)")
	dupUID := sampleLabel("other", 1)
	dupUID.UID = l.UID
	mustErr(t, s.CreateLabel(c, dupUID), store.ErrAlreadyExists, "duplicate uid")
	must(t, s.CreateLabel(c, sampleLabel("mac", 2)), "create mac v2")

	// Version 0 is editable; other versions are not.
	tmp := sampleLabel("tmp", 0)
	tmp.Metadata = nil
	tmp.VisibleFor = nil
	must(t, s.CreateLabel(c, tmp), "create tmp v0")
	remove := t0.Add(time.Hour)
	tmp.RemoveAt = &remove
	tmp.Definitions = tmp.Definitions[1:]
	tmp.Metadata = json.RawMessage(`{"x":true}`)
	must(t, s.UpdateLabel(c, tmp), "update v0")
	got, err = s.GetLabel(c, tmp.UID)
	must(t, err, "get updated")
	if len(got.Definitions) != 1 || got.Definitions[0].Driver != "test" {
		t.Fatalf("update: definitions %+v", got.Definitions)
	}
	if got.RemoveAt == nil || !got.RemoveAt.Equal(remove) {
		t.Fatalf("update: remove_at %v, want %v", got.RemoveAt, remove)
	}
	jsonEq(t, got.Metadata, tmp.Metadata, "updated metadata")
	if got.VisibleFor != nil {
		t.Fatalf("visible_for: got %v, want nil", got.VisibleFor)
	}
	l.Name = "renamed"
	mustErr(t, s.UpdateLabel(c, l), store.ErrConflict, "update immutable version 1")
	sneaky := *l
	sneaky.Version = 0
	mustErr(t, s.UpdateLabel(c, &sneaky), store.ErrConflict, "update stored version 1 claiming version 0")
	got, err = s.GetLabel(c, l.UID)
	must(t, err, "get after refused update")
	if got.Name != "mac" {
		t.Fatalf("refused update changed the name to %q", got.Name)
	}
	missing := sampleLabel("nope", 0)
	missing.UID = "missing"
	mustErr(t, s.UpdateLabel(c, missing), store.ErrNotFound, "update missing")

	bad := sampleLabel("bad", 1)
	bad.Metadata = json.RawMessage(`{not json`)
	if err := s.CreateLabel(c, bad); err == nil {
		t.Fatal("create label with invalid metadata: no error")
	}
	if err := s.CreateLabel(c, &core.Label{Version: 1}); err == nil {
		t.Fatal("create label without name: no error")
	}

	_, err = s.GetLabel(c, "missing")
	mustErr(t, err, store.ErrNotFound, "get missing label")
	must(t, s.DeleteLabel(c, l.UID), "delete label")
	_, err = s.GetLabel(c, l.UID)
	mustErr(t, err, store.ErrNotFound, "get deleted label")
	mustErr(t, s.DeleteLabel(c, l.UID), store.ErrNotFound, "delete deleted label")
	// The name/version is free again.
	must(t, s.CreateLabel(c, sampleLabel("mac", 1)), "recreate mac v1")
}

func labelKeys(ls []core.Label) []string {
	out := []string{}
	for _, l := range ls {
		out = append(out, fmt.Sprintf("%s:%d", l.Name, l.Version))
	}
	return out
}

func testLabelFilter(t *testing.T, s store.Store) {
	c := ctx(t)
	for _, nv := range []struct {
		n string
		v int
	}{{"b", 1}, {"a", 2}, {"a", 1}, {"b", 3}, {"c", 0}, {"a", 10}} {
		must(t, s.CreateLabel(c, sampleLabel(nv.n, nv.v)), "create label")
	}
	for _, tc := range []struct {
		f    store.LabelFilter
		want []string
	}{
		{store.LabelFilter{}, []string{"a:1", "a:2", "a:10", "b:1", "b:3", "c:0"}},
		{store.LabelFilter{Name: "a"}, []string{"a:1", "a:2", "a:10"}},
		{store.LabelFilter{Version: 1}, []string{"a:1", "b:1"}},
		{store.LabelFilter{Name: "b", Version: 3}, []string{"b:3"}},
		{store.LabelFilter{Latest: true}, []string{"a:10", "b:3", "c:0"}},
		{store.LabelFilter{Name: "b", Latest: true}, []string{"b:3"}},
		{store.LabelFilter{Name: "zzz"}, []string{}},
	} {
		got, err := s.ListLabels(c, tc.f)
		must(t, err, fmt.Sprintf("list %+v", tc.f))
		if k := labelKeys(got); !reflect.DeepEqual(k, tc.want) {
			t.Errorf("list %+v: got %v, want %v", tc.f, k, tc.want)
		}
	}
}

// newApp creates a label (once per name) and an application of it.
func newApp(t *testing.T, s store.Store, owner string) *core.Application {
	t.Helper()
	c := ctx(t)
	ls, err := s.ListLabels(c, store.LabelFilter{Name: "app-label"})
	must(t, err, "list labels")
	var labelUID string
	if len(ls) == 0 {
		l := sampleLabel("app-label", 1)
		must(t, s.CreateLabel(c, l), "create label")
		labelUID = l.UID
	} else {
		labelUID = ls[0].UID
	}
	a := &core.Application{OwnerName: owner, LabelUID: labelUID, Metadata: json.RawMessage(`{"job":"x"}`)}
	must(t, s.CreateApplication(c, a), "create application")
	return a
}

func statuses(sts []core.ApplicationState) []core.Status {
	out := []core.Status{}
	for _, st := range sts {
		out = append(out, st.Status)
	}
	return out
}

func testApplications(t *testing.T, s store.Store) {
	c := ctx(t)
	mustErr(t, s.CreateApplication(c, &core.Application{LabelUID: "missing"}), store.ErrNotFound, "create with unknown label")
	if err := s.CreateApplication(c, &core.Application{}); err == nil {
		t.Fatal("create application without label_uid: no error")
	}
	all, err := s.ListApplications(c, "")
	must(t, err, "list")
	if len(all) != 0 {
		t.Fatalf("failed creates left %d applications", len(all))
	}

	a := newApp(t, s, "alice")
	if a.UID == "" || a.CreatedAt.IsZero() {
		t.Fatalf("create application: uid/created_at not filled: %+v", a)
	}
	got, err := s.GetApplication(c, a.UID)
	must(t, err, "get application")
	jsonEq(t, got.Metadata, a.Metadata, "metadata")
	got.Metadata = a.Metadata
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("application round trip:\n got %+v\nwant %+v", got, a)
	}
	cur, err := s.CurrentState(c, a.UID)
	must(t, err, "current state")
	if cur.Status != core.StatusNew || cur.ApplicationUID != a.UID || cur.UID == "" {
		t.Fatalf("first state: %+v", cur)
	}
	dup := &core.Application{UID: a.UID, LabelUID: a.LabelUID}
	mustErr(t, s.CreateApplication(c, dup), store.ErrAlreadyExists, "duplicate application uid")
	bad := &core.Application{LabelUID: a.LabelUID, Metadata: json.RawMessage(`[`)}
	if err := s.CreateApplication(c, bad); err == nil {
		t.Fatal("create application with invalid metadata: no error")
	}

	b := newApp(t, s, "bob")
	a2 := newApp(t, s, "alice")
	mine, err := s.ListApplications(c, "alice")
	must(t, err, "list alice")
	if len(mine) != 2 || mine[0].UID != a.UID || mine[1].UID != a2.UID {
		t.Fatalf("list alice: got %+v", mine)
	}
	all, err = s.ListApplications(c, "")
	must(t, err, "list all")
	if len(all) != 3 || all[1].UID != b.UID {
		t.Fatalf("list all (creation order): got %+v", all)
	}
	_, err = s.GetApplication(c, "missing")
	mustErr(t, err, store.ErrNotFound, "get missing application")
	_, err = s.CurrentState(c, "missing")
	mustErr(t, err, store.ErrNotFound, "current state of missing application")
	_, err = s.ListStates(c, "missing")
	mustErr(t, err, store.ErrNotFound, "states of missing application")
}

func testTransition(t *testing.T, s store.Store) {
	c := ctx(t)
	a := newApp(t, s, "alice")
	path := []core.Status{core.StatusNew, core.StatusElected, core.StatusAllocated, core.StatusDeallocate, core.StatusDeallocated}
	for i := 1; i < len(path); i++ {
		must(t, s.Transition(c, a.UID, path[i-1], path[i], "to "+string(path[i])), "transition")
		cur, err := s.CurrentState(c, a.UID)
		must(t, err, "current state")
		if cur.Status != path[i] || cur.Description != "to "+string(path[i]) {
			t.Fatalf("after transition to %s: current %+v", path[i], cur)
		}
	}
	// A lost compare-and-set changes nothing.
	err := s.Transition(c, a.UID, core.StatusAllocated, core.StatusError, "late")
	mustErr(t, err, store.ErrConflict, "transition from a stale state")
	sts, err := s.ListStates(c, a.UID)
	must(t, err, "list states")
	if got := statuses(sts); !reflect.DeepEqual(got, path) {
		t.Fatalf("history: got %v, want %v", got, path)
	}
	for _, st := range sts {
		if st.CreatedAt.IsZero() || st.UID == "" {
			t.Fatalf("state without uid/time: %+v", st)
		}
	}
	mustErr(t, s.Transition(c, "missing", core.StatusNew, core.StatusElected, ""), store.ErrNotFound, "transition of missing application")

	// Same-timestamp states still come back in order (virtual clocks do not move).
	b := newApp(t, s, "alice")
	for i := 0; i < 20; i++ {
		from, to := core.StatusNew, core.StatusElected
		if i%2 == 1 {
			from, to = to, from
		}
		must(t, s.Transition(c, b.UID, from, to, fmt.Sprint(i)), "flip")
	}
	sts, err = s.ListStates(c, b.UID)
	must(t, err, "list states")
	for i, st := range sts[1:] {
		if st.Description != fmt.Sprint(i) {
			t.Fatalf("state %d out of order: %+v", i, st)
		}
	}
	cur, err := s.CurrentState(c, b.UID)
	must(t, err, "current")
	if cur.Status != core.StatusNew || cur.Description != "19" {
		t.Fatalf("current after flips: %+v", cur)
	}
}

func uids(apps []core.Application) []string {
	out := []string{}
	for _, a := range apps {
		out = append(out, a.UID)
	}
	return out
}

func testListByStatus(t *testing.T, s store.Store) {
	c := ctx(t)
	var apps []*core.Application
	for i := 0; i < 5; i++ {
		apps = append(apps, newApp(t, s, "alice"))
	}
	must(t, s.Transition(c, apps[1].UID, core.StatusNew, core.StatusElected, ""), "t1")
	must(t, s.Transition(c, apps[3].UID, core.StatusNew, core.StatusError, "boom"), "t3")
	must(t, s.Transition(c, apps[1].UID, core.StatusElected, core.StatusAllocated, ""), "t1b")
	for _, tc := range []struct {
		limit int
		sts   []core.Status
		want  []int
	}{
		{0, []core.Status{core.StatusNew}, []int{0, 2, 4}},
		{2, []core.Status{core.StatusNew}, []int{0, 2}},
		{0, []core.Status{core.StatusAllocated, core.StatusError}, []int{1, 3}},
		{0, []core.Status{core.StatusElected}, []int{}},
		{0, nil, []int{0, 1, 2, 3, 4}},
	} {
		got, err := s.ListByStatus(c, tc.limit, tc.sts...)
		must(t, err, "list by status")
		want := []string{}
		for _, i := range tc.want {
			want = append(want, apps[i].UID)
		}
		if g := uids(got); !reflect.DeepEqual(g, want) {
			t.Errorf("ListByStatus(%d, %v): got %v, want %v", tc.limit, tc.sts, g, want)
		}
	}
}

func testListCurrentStates(t *testing.T, s store.Store) {
	c := ctx(t)
	var apps []*core.Application
	for i := 0; i < 4; i++ {
		apps = append(apps, newApp(t, s, "alice"))
	}
	must(t, s.Transition(c, apps[0].UID, core.StatusNew, core.StatusError, "boom"), "t0")
	must(t, s.Transition(c, apps[2].UID, core.StatusNew, core.StatusElected, ""), "t2")
	must(t, s.Transition(c, apps[2].UID, core.StatusElected, core.StatusDeallocated, "done"), "t2b")
	got, err := s.ListCurrentStates(c, 0, core.StatusDeallocated, core.StatusError)
	must(t, err, "list current states")
	if len(got) != 2 || got[0].ApplicationUID != apps[0].UID || got[0].Status != core.StatusError || got[0].Description != "boom" ||
		got[1].ApplicationUID != apps[2].UID || got[1].Status != core.StatusDeallocated || got[1].Description != "done" {
		t.Fatalf("dead states: %+v", got)
	}
	for _, st := range got {
		cur, err := s.CurrentState(c, st.ApplicationUID)
		must(t, err, "current")
		if !reflect.DeepEqual(*cur, st) {
			t.Fatalf("ListCurrentStates %+v != CurrentState %+v", st, *cur)
		}
	}
	got, err = s.ListCurrentStates(c, 3)
	must(t, err, "list all")
	if len(got) != 3 || got[1].ApplicationUID != apps[1].UID || got[1].Status != core.StatusNew {
		t.Fatalf("all states (limit 3): %+v", got)
	}
	got, err = s.ListCurrentStates(c, 0, core.StatusAllocated)
	must(t, err, "list none")
	if len(got) != 0 {
		t.Fatalf("no ALLOCATED application, got %+v", got)
	}
}

func testClaimNew(t *testing.T, s store.Store) {
	c := ctx(t)
	var apps []*core.Application
	for i := 0; i < 5; i++ {
		apps = append(apps, newApp(t, s, "alice"))
	}
	must(t, s.Transition(c, apps[0].UID, core.StatusNew, core.StatusDeallocated, "cancelled"), "cancel 0")
	got, err := s.ClaimNew(c, "node-a", 2)
	must(t, err, "claim 2")
	if g, w := uids(got), []string{apps[1].UID, apps[2].UID}; !reflect.DeepEqual(g, w) {
		t.Fatalf("claim 2: got %v, want oldest NEW %v", g, w)
	}
	jsonEq(t, got[0].Metadata, apps[1].Metadata, "claimed metadata")
	for _, a := range got {
		cur, err := s.CurrentState(c, a.UID)
		must(t, err, "current")
		if cur.Status != core.StatusElected {
			t.Fatalf("claimed application is %s", cur.Status)
		}
	}
	got, err = s.ClaimNew(c, "node-b", 0)
	must(t, err, "claim all")
	if g, w := uids(got), []string{apps[3].UID, apps[4].UID}; !reflect.DeepEqual(g, w) {
		t.Fatalf("claim rest: got %v, want %v", g, w)
	}
	got, err = s.ClaimNew(c, "node-a", 10)
	must(t, err, "claim none")
	if len(got) != 0 {
		t.Fatalf("claim with nothing NEW: got %v", uids(got))
	}
	sts, err := s.ListStates(c, apps[3].UID)
	must(t, err, "states")
	if got := statuses(sts); !reflect.DeepEqual(got, []core.Status{core.StatusNew, core.StatusElected}) {
		t.Fatalf("claimed history: %v", got)
	}
}

func testDeleteApplication(t *testing.T, s store.Store) {
	c := ctx(t)
	a := newApp(t, s, "alice")
	keep := newApp(t, s, "alice")
	must(t, s.SaveResource(c, &core.Resource{ApplicationUID: a.UID, Identifier: "i-1", IPAddr: "10.0.0.1"}), "save resource")
	task := &core.Task{ApplicationUID: a.UID, Task: "snapshot", When: core.TaskWhenAllocated}
	must(t, s.CreateTask(c, task), "create task")
	must(t, s.DeleteApplication(c, a.UID), "delete application")
	_, err := s.GetApplication(c, a.UID)
	mustErr(t, err, store.ErrNotFound, "get deleted")
	_, err = s.ListStates(c, a.UID)
	mustErr(t, err, store.ErrNotFound, "states of deleted")
	_, err = s.GetResource(c, a.UID)
	mustErr(t, err, store.ErrNotFound, "resource of deleted")
	_, err = s.GetTask(c, task.UID)
	mustErr(t, err, store.ErrNotFound, "task of deleted")
	mustErr(t, s.DeleteApplication(c, a.UID), store.ErrNotFound, "delete twice")
	if _, err := s.GetApplication(c, keep.UID); err != nil {
		t.Fatalf("other application gone: %v", err)
	}
}

func testResources(t *testing.T, s store.Store) {
	c := ctx(t)
	mustErr(t, s.SaveResource(c, &core.Resource{ApplicationUID: "missing"}), store.ErrNotFound, "resource of unknown application")
	a := newApp(t, s, "alice")
	timeout := t0.Add(90 * time.Minute)
	r := &core.Resource{
		ApplicationUID: a.UID, NodeName: "node-a", LabelUID: a.LabelUID, DefinitionIndex: 1,
		Identifier: "i-0abc", IPAddr: "10.1.2.3", HwAddr: "02:00:00:00:00:01",
		Metadata:       json.RawMessage(`{"job":"x","a":"b"}`),
		Timeout:        &timeout,
		Authentication: &core.Authentication{Username: "ec2-user", Key: "-----BEGIN KEY-----", Port: 22},
		DriverData:     json.RawMessage(`{"key_pair":"fish-1"}`),
		CreatedAt:      t0,
	}
	must(t, s.SaveResource(c, r), "save resource")
	if r.UID == "" {
		t.Fatal("save resource: uid not filled")
	}
	got, err := s.GetResource(c, a.UID)
	must(t, err, "get resource")
	jsonEq(t, got.Metadata, r.Metadata, "metadata")
	jsonEq(t, got.DriverData, r.DriverData, "driver_data")
	got.Metadata, got.DriverData = r.Metadata, r.DriverData
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("resource round trip:\n got %+v\nwant %+v", got, r)
	}

	// Update by application keeps the uid and creation time.
	upd := *r
	upd.UID, upd.CreatedAt = "", time.Time{}
	upd.IPAddr, upd.Timeout, upd.Authentication = "10.1.2.4", nil, nil
	must(t, s.SaveResource(c, &upd), "update resource")
	if upd.UID != r.UID || !upd.CreatedAt.Equal(t0) {
		t.Fatalf("update changed identity: uid %s created %v", upd.UID, upd.CreatedAt)
	}
	got, err = s.GetResource(c, a.UID)
	must(t, err, "get updated")
	if got.IPAddr != "10.1.2.4" || got.Timeout != nil || got.Authentication != nil {
		t.Fatalf("updated resource: %+v", got)
	}
	all, err := s.ListResources(c, "")
	must(t, err, "list all")
	if len(all) != 1 {
		t.Fatalf("one application, %d resources", len(all))
	}

	// By IP: the ALLOCATED application's resource wins over a dead one.
	b := newApp(t, s, "bob")
	must(t, s.SaveResource(c, &core.Resource{ApplicationUID: b.UID, NodeName: "node-b", IPAddr: "10.9.9.9", Identifier: "i-b"}), "save b")
	d := newApp(t, s, "bob")
	must(t, s.Transition(c, d.UID, core.StatusNew, core.StatusAllocated, ""), "allocate d")
	must(t, s.SaveResource(c, &core.Resource{ApplicationUID: d.UID, NodeName: "node-a", IPAddr: "10.9.9.9", Identifier: "i-d"}), "save d")
	e := newApp(t, s, "bob")
	must(t, s.SaveResource(c, &core.Resource{ApplicationUID: e.UID, NodeName: "node-b", IPAddr: "10.9.9.9", Identifier: "i-e"}), "save e")
	byIP, err := s.GetResourceByIP(c, "10.9.9.9")
	must(t, err, "by ip")
	if byIP.Identifier != "i-d" {
		t.Fatalf("by ip: got %s, want the ALLOCATED i-d", byIP.Identifier)
	}
	_, err = s.GetResourceByIP(c, "10.0.0.0")
	mustErr(t, err, store.ErrNotFound, "unknown ip")

	nodeA, err := s.ListResources(c, "node-a")
	must(t, err, "list node-a")
	if len(nodeA) != 2 || nodeA[0].ApplicationUID != a.UID || nodeA[1].ApplicationUID != d.UID {
		t.Fatalf("list node-a: %+v", nodeA)
	}
	must(t, s.DeleteResource(c, a.UID), "delete resource")
	_, err = s.GetResource(c, a.UID)
	mustErr(t, err, store.ErrNotFound, "get deleted resource")
	mustErr(t, s.DeleteResource(c, a.UID), store.ErrNotFound, "delete deleted resource")
	if _, err := s.GetApplication(c, a.UID); err != nil {
		t.Fatalf("deleting the resource removed the application: %v", err)
	}
	bad := &core.Resource{ApplicationUID: b.UID, DriverData: json.RawMessage(`nope`)}
	if err := s.SaveResource(c, bad); err == nil {
		t.Fatal("save resource with invalid driver_data: no error")
	}
}

func testTasks(t *testing.T, s store.Store) {
	c := ctx(t)
	a := newApp(t, s, "alice")
	mustErr(t, s.CreateTask(c, &core.Task{ApplicationUID: "missing", Task: "snapshot", When: core.TaskWhenAllocated}),
		store.ErrNotFound, "task of unknown application")
	if err := s.CreateTask(c, &core.Task{ApplicationUID: a.UID, Task: "snapshot", When: core.StatusNew}); err == nil {
		t.Fatal("task with when=NEW: no error")
	}
	t1 := &core.Task{ApplicationUID: a.UID, Task: "snapshot", When: core.TaskWhenAllocated, Options: json.RawMessage(`{"full":true}`), CreatedAt: t0}
	t2 := &core.Task{ApplicationUID: a.UID, Task: "image", When: core.TaskWhenDeallocate}
	must(t, s.CreateTask(c, t1), "create t1")
	must(t, s.CreateTask(c, t2), "create t2")
	got, err := s.GetTask(c, t1.UID)
	must(t, err, "get task")
	jsonEq(t, got.Options, t1.Options, "options")
	if got.Task != "snapshot" || got.When != core.TaskWhenAllocated || got.Result != nil || !got.CreatedAt.Equal(t0) {
		t.Fatalf("task round trip: %+v", got)
	}
	list, err := s.ListTasks(c, a.UID)
	must(t, err, "list tasks")
	if len(list) != 2 || list[0].UID != t1.UID || list[1].UID != t2.UID {
		t.Fatalf("list tasks: %+v", list)
	}
	must(t, s.SetTaskResult(c, t1.UID, []byte(`{"snapshots":["snap-1"]}`)), "set result")
	mustErr(t, s.SetTaskResult(c, t1.UID, []byte(`{"snapshots":["snap-2"]}`)), store.ErrConflict, "set result twice")
	got, err = s.GetTask(c, t1.UID)
	must(t, err, "get task")
	jsonEq(t, got.Result, json.RawMessage(`{"snapshots":["snap-1"]}`), "result kept from the first call")
	mustErr(t, s.SetTaskResult(c, "missing", []byte(`{}`)), store.ErrNotFound, "result of unknown task")
	if err := s.SetTaskResult(c, t2.UID, []byte(`{oops`)); err == nil {
		t.Fatal("invalid result JSON: no error")
	}
	if err := s.SetTaskResult(c, t2.UID, nil); err == nil {
		t.Fatal("empty result: no error")
	}
	got, err = s.GetTask(c, t2.UID)
	must(t, err, "get t2")
	if got.Result != nil {
		t.Fatalf("refused result was stored: %s", got.Result)
	}
	_, err = s.GetTask(c, "missing")
	mustErr(t, err, store.ErrNotFound, "get unknown task")
	pending, err := s.ListPendingTasks(c)
	must(t, err, "list pending tasks")
	if len(pending) != 1 || pending[0].UID != t2.UID {
		t.Fatalf("pending tasks: %+v, want only %s", pending, t2.UID)
	}
}

func testUsers(t *testing.T, s store.Store) {
	c := ctx(t)
	u := &store.User{Name: "alice", PasswordHash: "$argon2id$x", Roles: []string{"User", "Power"}, CreatedAt: t0}
	must(t, s.CreateUser(c, u), "create user")
	mustErr(t, s.CreateUser(c, &store.User{Name: "alice"}), store.ErrAlreadyExists, "duplicate user")
	must(t, s.CreateUser(c, &store.User{Name: "admin", PasswordHash: "h", Roles: []string{"Administrator"}}), "create admin")
	got, err := s.GetUser(c, "alice")
	must(t, err, "get user")
	if got.PasswordHash != u.PasswordHash || !reflect.DeepEqual(got.Roles, u.Roles) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("user round trip: %+v", got)
	}
	u.Roles = []string{"User"}
	u.PasswordHash = "new"
	must(t, s.UpdateUser(c, u), "update user")
	got, err = s.GetUser(c, "alice")
	must(t, err, "get updated")
	if got.PasswordHash != "new" || !reflect.DeepEqual(got.Roles, []string{"User"}) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("updated user: %+v", got)
	}
	mustErr(t, s.UpdateUser(c, &store.User{Name: "nobody"}), store.ErrNotFound, "update missing user")
	list, err := s.ListUsers(c)
	must(t, err, "list users")
	if len(list) != 2 || list[0].Name != "admin" || list[1].Name != "alice" {
		t.Fatalf("list users: %+v", list)
	}
	must(t, s.DeleteUser(c, "alice"), "delete user")
	_, err = s.GetUser(c, "alice")
	mustErr(t, err, store.ErrNotFound, "get deleted user")
	mustErr(t, s.DeleteUser(c, "alice"), store.ErrNotFound, "delete deleted user")
	if err := s.CreateUser(c, &store.User{}); err == nil {
		t.Fatal("user without name: no error")
	}
}

func testNodes(t *testing.T, s store.Store) {
	c := ctx(t)
	n := &store.Node{Name: "node-b", Address: "10.0.0.2:8001", Location: "eu", UpdatedAt: t0}
	must(t, s.UpsertNode(c, n), "insert node")
	must(t, s.UpsertNode(c, &store.Node{Name: "node-a", UpdatedAt: t0}), "insert node-a")
	got, err := s.GetNode(c, "node-b")
	must(t, err, "get node")
	if !reflect.DeepEqual(got, n) {
		t.Fatalf("node round trip: got %+v want %+v", got, n)
	}
	n.Maintenance = true
	n.Address = "10.0.0.3:8001"
	n.UpdatedAt = t0.Add(time.Minute)
	must(t, s.UpsertNode(c, n), "update node")
	got, err = s.GetNode(c, "node-b")
	must(t, err, "get node")
	if !reflect.DeepEqual(got, n) {
		t.Fatalf("node update: got %+v want %+v", got, n)
	}
	list, err := s.ListNodes(c)
	must(t, err, "list nodes")
	if len(list) != 2 || list[0].Name != "node-a" || list[1].Name != "node-b" {
		t.Fatalf("list nodes: %+v", list)
	}
	_, err = s.GetNode(c, "missing")
	mustErr(t, err, store.ErrNotFound, "get missing node")
}

// concurrency is the number of goroutines racing in the concurrent tests.
const concurrency = 16

func testConcurrentTransition(t *testing.T, s store.Store) {
	c := ctx(t)
	a := newApp(t, s, "alice")
	for _, step := range [][2]core.Status{
		{core.StatusNew, core.StatusElected},
		{core.StatusElected, core.StatusAllocated},
		{core.StatusAllocated, core.StatusDeallocate},
	} {
		var wg sync.WaitGroup
		errs := make([]error, concurrency)
		for i := range concurrency {
			wg.Go(func() { errs[i] = s.Transition(c, a.UID, step[0], step[1], fmt.Sprint("g", i)) })
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, store.ErrConflict):
			default:
				t.Fatalf("concurrent transition: unexpected error %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%s -> %s: %d winners, want exactly 1", step[0], step[1], wins)
		}
	}
	sts, err := s.ListStates(c, a.UID)
	must(t, err, "states")
	want := []core.Status{core.StatusNew, core.StatusElected, core.StatusAllocated, core.StatusDeallocate}
	if got := statuses(sts); !reflect.DeepEqual(got, want) {
		t.Fatalf("history after races: %v, want %v", got, want)
	}
}

func testTransitionAcross(t *testing.T, a, b store.Store) {
	c := ctx(t)
	app := newApp(t, a, "alice")
	var wg sync.WaitGroup
	errs := make([]error, 2*concurrency)
	for i := range 2 * concurrency {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() { errs[i] = s.Transition(c, app.UID, core.StatusNew, core.StatusDeallocated, "") })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("unexpected error %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d winners across nodes, want 1", wins)
	}
	sts, err := b.ListStates(c, app.UID)
	must(t, err, "states")
	if len(sts) != 2 {
		t.Fatalf("history %v, want NEW, DEALLOCATED", statuses(sts))
	}
}

// testConcurrentClaim has many goroutines, half on each store handle, claim
// small batches until nothing is NEW: every application is claimed exactly once.
func testConcurrentClaim(t *testing.T, a, b store.Store) {
	c := ctx(t)
	const n = 60
	want := map[string]bool{}
	for range n {
		want[newApp(t, a, "alice").UID] = true
	}
	var mu sync.Mutex
	claimedBy := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, concurrency)
	for i := range concurrency {
		s := a
		if i%2 == 1 {
			s = b
		}
		node := fmt.Sprint("node-", i)
		wg.Go(func() {
			for {
				got, err := s.ClaimNew(c, node, 3)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, app := range got {
					if prev, dup := claimedBy[app.UID]; dup {
						errs <- fmt.Errorf("application %s claimed by %s and %s", app.UID, prev, node)
					}
					claimedBy[app.UID] = node
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimedBy) != n {
		t.Fatalf("claimed %d applications, want %d", len(claimedBy), n)
	}
	for uid := range want {
		sts, err := b.ListStates(c, uid)
		must(t, err, "states")
		if got := statuses(sts); !reflect.DeepEqual(got, []core.Status{core.StatusNew, core.StatusElected}) {
			t.Fatalf("application %s history %v", uid, got)
		}
		if sts[1].Description != "elected by node "+claimedBy[uid] {
			t.Fatalf("application %s: state says %q, claimed by %s", uid, sts[1].Description, claimedBy[uid])
		}
	}
}

// testClaimRacesDeallocate races ClaimNew against NEW -> DEALLOCATE: each
// application ends either claimed or deallocated, never both.
func testClaimRacesDeallocate(t *testing.T, s store.Store) {
	c := ctx(t)
	const n = 40
	var apps []*core.Application
	for range n {
		apps = append(apps, newApp(t, s, "alice"))
	}
	var mu sync.Mutex
	claimed := map[string]bool{}
	deallocated := map[string]bool{}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for {
				got, err := s.ClaimNew(c, fmt.Sprint("node-", i), 2)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, a := range got {
					claimed[a.UID] = true
				}
				mu.Unlock()
			}
		})
	}
	for _, a := range apps {
		wg.Go(func() {
			err := s.Transition(c, a.UID, core.StatusNew, core.StatusDeallocate, "user")
			switch {
			case err == nil:
				mu.Lock()
				deallocated[a.UID] = true
				mu.Unlock()
			case !errors.Is(err, store.ErrConflict):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, a := range apps {
		if claimed[a.UID] == deallocated[a.UID] {
			t.Fatalf("application %s: claimed=%v deallocated=%v, want exactly one", a.UID, claimed[a.UID], deallocated[a.UID])
		}
		cur, err := s.CurrentState(c, a.UID)
		must(t, err, "current")
		want := core.StatusElected
		if deallocated[a.UID] {
			want = core.StatusDeallocate
		}
		if cur.Status != want {
			t.Fatalf("application %s is %s, want %s", a.UID, cur.Status, want)
		}
	}
}

func testConcurrentTaskResult(t *testing.T, s store.Store) {
	c := ctx(t)
	a := newApp(t, s, "alice")
	task := &core.Task{ApplicationUID: a.UID, Task: "image", When: core.TaskWhenDeallocate}
	must(t, s.CreateTask(c, task), "create task")
	var wg sync.WaitGroup
	errs := make([]error, concurrency)
	for i := range concurrency {
		wg.Go(func() { errs[i] = s.SetTaskResult(c, task.UID, fmt.Appendf(nil, `{"winner":%d}`, i)) })
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("goroutines %d and %d both set the result", winner, i)
			}
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("unexpected error %v", err)
		}
	}
	if winner < 0 {
		t.Fatal("no goroutine set the result")
	}
	got, err := s.GetTask(c, task.UID)
	must(t, err, "get task")
	jsonEq(t, got.Result, fmt.Appendf(nil, `{"winner":%d}`, winner), "stored result is the winner's")
}

// testConcurrentMixed runs successful and failing writes at the same time
// (stores may commit concurrent writes together): every failure is
// isolated, every success is kept.
func testConcurrentMixed(t *testing.T, s store.Store) {
	c := ctx(t)
	const n = 48
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprint("unique-", i)
			if i%2 == 0 {
				name = "contended" // same (name, version): one winner
			}
			errs[i] = s.CreateLabel(c, sampleLabel(name, 1))
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case i%2 == 1 && err != nil:
			t.Fatalf("unique label %d failed: %v", i, err)
		case i%2 == 0 && err == nil:
			wins++
		case i%2 == 0 && !errors.Is(err, store.ErrAlreadyExists):
			t.Fatalf("contended label %d: unexpected error %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("contended label created %d times, want 1", wins)
	}
	all, err := s.ListLabels(c, store.LabelFilter{})
	must(t, err, "list")
	if len(all) != n/2+1 {
		t.Fatalf("%d labels stored, want %d", len(all), n/2+1)
	}
}

// testCanceled: a write with a canceled context fails and stores nothing.
func testCanceled(t *testing.T, s store.Store) {
	c, cancel := context.WithCancel(ctx(t))
	cancel()
	if err := s.CreateLabel(c, sampleLabel("canceled", 1)); err == nil {
		t.Fatal("create with a canceled context: no error")
	}
	got, err := s.ListLabels(ctx(t), store.LabelFilter{Name: "canceled"})
	must(t, err, "list")
	if len(got) != 0 {
		t.Fatalf("canceled create stored %d labels", len(got))
	}
}
