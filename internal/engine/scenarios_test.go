package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
	"github.com/aquarium-fish/aquarium-fish/internal/driver/testdriver"
	"github.com/aquarium-fish/aquarium-fish/internal/engine"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

const (
	New         = core.StatusNew
	Elected     = core.StatusElected
	Allocated   = core.StatusAllocated
	Deallocate  = core.StatusDeallocate
	Deallocated = core.StatusDeallocated
	Error       = core.StatusError
)

func TestSingleAllocateDeallocate(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		var got driver.AllocateRequest
		d.SetHooks(testdriver.Hooks{BeforeAllocate: func(_ context.Context, req driver.AllocateRequest) error {
			got = req
			return nil
		}})
		h.engine("node-1", nil)
		l := h.label("ubuntu", `{"b":"label","big":1000000}`, def("test", `{"image":"ubuntu"}`, ""))
		app := h.app(l, `{"a":1,"b":"app"}`)
		h.wantStatus(app, New)
		h.settle()
		h.wantStatus(app, Allocated)

		// Merged metadata: application first, label on top (shallow).
		md, _ := json.Marshal(got.Metadata)
		if string(md) != `{"a":1,"b":"label","big":1000000}` || got.ApplicationUID != app || got.LabelUID != l.UID {
			t.Fatalf("AllocateRequest = %+v (metadata %s)", got, md)
		}
		res := h.resource(app)
		if res == nil || res.NodeName != "node-1" || res.LabelUID != l.UID || res.DefinitionIndex != 0 ||
			!strings.HasPrefix(res.Identifier, "test-") || res.IPAddr == "" || string(res.Metadata) != string(md) || res.Timeout != nil {
			t.Fatalf("resource = %+v", res)
		}
		if live := d.Live(); len(live) != 1 || live[0] != app {
			t.Fatalf("driver holds %v, want [%s]", live, app)
		}

		if err := h.e.Deallocate(h.ctx, app); err != nil {
			t.Fatal(err)
		}
		h.wantStatus(app, Deallocate)
		h.settle()
		h.wantStatus(app, Deallocated)
		if live := d.Live(); len(live) != 0 {
			t.Fatalf("leaked resources: %v", live)
		}
		if h.resource(app) != nil {
			t.Fatal("resource record of a deallocated application kept")
		}
		if s := h.statuses(app); !equalStatuses(s, New, Elected, Allocated, Deallocate, Deallocated) {
			t.Fatalf("history = %v", s)
		}
		if st := d.Stats(); st.Allocations != 1 || st.Deallocations != 1 {
			t.Fatalf("driver stats = %+v", st)
		}
		err := h.e.Deallocate(h.ctx, app)
		if !errors.Is(err, engine.ErrFailedPrecondition) {
			t.Fatalf("Deallocate of a dead application: %v, want ErrFailedPrecondition", err)
		}
	})
}

func TestDefinitionSelectionByCapacity(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		small := h.driver("test/small", `{"capacity":1}`)
		big := h.driver("test/big", `{"capacity":5}`)
		h.engine("node-1", nil)
		l := h.label("multi", "", def("test/small", "", ""), def("test/big", "", ""))
		apps := []string{h.app(l, ""), h.app(l, ""), h.app(l, "")}
		h.settle()
		wantDef := []int{0, 1, 1}
		for i, app := range apps {
			h.wantStatus(app, Allocated)
			if r := h.resource(app); r.DefinitionIndex != wantDef[i] {
				t.Errorf("app %d on definition %d, want %d", i, r.DefinitionIndex, wantDef[i])
			}
		}
		if len(small.Live()) != 1 || len(big.Live()) != 2 {
			t.Fatalf("small holds %v, big holds %v", small.Live(), big.Live())
		}
		if st := small.Stats(); st.AllocateFailures != 0 {
			t.Fatalf("the engine tried a full definition: %+v", st)
		}
	})
}

func TestRetryWithRotationThenError(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		h.driver("test/a", `{}`)
		b := h.driver("test/b", `{}`)
		h.engine("node-1", func(o *engine.Options) { o.AllocationRetry = 2 })

		// A failure on definition 0 makes the next attempt start at definition 1.
		l := h.label("rotate", "", def("test/a", `{"fail":true,"fail_message":"image not found"}`, ""), def("test/b", "", ""))
		app := h.app(l, "")
		h.runFor(time.Minute)
		h.wantStatus(app, Allocated)
		if r := h.resource(app); r.DefinitionIndex != 1 {
			t.Fatalf("allocated on definition %d, want 1 (rotation)", r.DefinitionIndex)
		}
		if s := h.statuses(app); !equalStatuses(s, New, Elected, New, Elected, Allocated) {
			t.Fatalf("history = %s", h.history(app))
		}

		// Every definition fails: 1 + allocation_retry attempts, rotating, then ERROR.
		bad := h.label("bad", "",
			def("test/a", `{"fail":true,"fail_message":"boom-a"}`, ""),
			def("test/b", `{"fail":true,"fail_message":"boom-b"}`, ""))
		app2 := h.app(bad, "")
		h.runFor(10 * time.Minute)
		h.wantStatus(app2, Error)
		states, _ := h.st.ListStates(h.ctx, app2)
		var defs []string
		for _, s := range states {
			if s.Status == Elected {
				defs = append(defs, s.Description[strings.LastIndex(s.Description, "=")+1:])
			}
		}
		if strings.Join(defs, ",") != "0,1,0" {
			t.Fatalf("attempted definitions %v, want 0,1,0 (history %s)", defs, h.history(app2))
		}
		last := states[len(states)-1].Description
		if !strings.Contains(last, "boom-a") || !strings.Contains(last, "3 attempt") {
			t.Fatalf("ERROR description %q does not carry the driver error", last)
		}
		if len(b.Live()) != 1 {
			t.Fatalf("failed allocations left resources: %v", b.Live())
		}
	})
}

func TestCapacityQueueing(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{"capacity":2}`)
		h.engine("node-1", nil)
		l := h.label("two", "", def("test", "", ""))
		a1, a2, a3 := h.app(l, ""), h.app(l, ""), h.app(l, "")
		h.runFor(5 * time.Minute)
		h.wantStatus(a1, Allocated)
		h.wantStatus(a2, Allocated)
		h.wantStatus(a3, New)
		if s := h.statuses(a3); len(s) != 1 {
			t.Fatalf("queued application churned its history: %s", h.history(a3))
		}
		if st := d.Stats(); st.AllocateCalls != 2 {
			t.Fatalf("driver got %d Allocate calls, want 2 (no attempt without capacity)", st.AllocateCalls)
		}
		if err := h.e.Deallocate(h.ctx, a1); err != nil {
			t.Fatal(err)
		}
		h.settle() // no clock advance: the deallocation itself re-opens the queue
		h.wantStatus(a1, Deallocated)
		h.wantStatus(a3, Allocated)
		if live := d.Live(); len(live) != 2 {
			t.Fatalf("driver holds %v", live)
		}
	})
}

func TestDeallocateWhileElected(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		entered, release := make(chan struct{}), make(chan error)
		d.SetHooks(testdriver.Hooks{BeforeAllocate: func(ctx context.Context, _ driver.AllocateRequest) error {
			close(entered)
			return <-release
		}})
		h.engine("node-1", nil)
		l := h.label("l", "", def("test", "", ""))
		app := h.app(l, "")
		if _, err := h.e.Reconcile(h.ctx); err != nil {
			t.Fatal(err)
		}
		<-entered
		h.wantStatus(app, Elected)
		if err := h.e.Deallocate(h.ctx, app); err != nil {
			t.Fatal(err)
		}
		h.wantStatus(app, Deallocate)
		release <- errors.New("cloud said no") // the allocation fails after the request
		h.settle()
		h.wantStatus(app, Deallocated)
		if len(d.Live()) != 0 {
			t.Fatalf("leak: %v", d.Live())
		}
		if s := h.statuses(app); !equalStatuses(s, New, Elected, Deallocate, Deallocated) {
			t.Fatalf("history = %s", h.history(app))
		}
	})
}

func TestDeallocateWhileAllocating(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		entered, release := make(chan struct{}), make(chan struct{})
		d.SetHooks(testdriver.Hooks{AfterAllocate: func(ctx context.Context, _ core.Resource) error {
			close(entered)
			<-release
			return nil
		}})
		h.engine("node-1", nil)
		l := h.label("l", "", def("test", "", ""))
		app := h.app(l, "")
		if _, err := h.e.Reconcile(h.ctx); err != nil {
			t.Fatal(err)
		}
		<-entered // the cloud resource exists, the engine does not know it yet
		if len(d.Live()) != 1 {
			t.Fatal("hook ran before the resource existed")
		}
		if err := h.e.Deallocate(h.ctx, app); err != nil {
			t.Fatal(err)
		}
		close(release)
		h.settle()
		h.wantStatus(app, Deallocated)
		if len(d.Live()) != 0 {
			t.Fatalf("leak: %v", d.Live())
		}
		if st := d.Stats(); st.Allocations != 1 || st.Deallocations != 1 {
			t.Fatalf("driver stats %+v", st)
		}
		for _, s := range h.statuses(app) {
			if s == Allocated {
				t.Fatalf("application became ALLOCATED after Deallocate: %s", h.history(app))
			}
		}
	})
}

func TestDeallocateNew(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		h.engine("node-1", nil)
		l := h.label("l", "", def("test", "", ""))
		app := h.app(l, "")
		if err := h.e.Deallocate(h.ctx, app); err != nil {
			t.Fatal(err)
		}
		h.settle()
		if s := h.statuses(app); !equalStatuses(s, New, Deallocated) {
			t.Fatalf("history = %s", h.history(app))
		}
		if d.Stats().AllocateCalls != 0 {
			t.Fatal("a deallocated NEW application reached the driver")
		}
	})
}

func TestLifetimes(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		h.engine("node-1", func(o *engine.Options) {
			o.DefaultLifetime = 30 * time.Minute
			o.SweepInterval = 100 * 24 * time.Hour
		})
		own := h.app(h.label("own", "", def("test", "", "1h2m3s")), "")
		dflt := h.app(h.label("default", "", def("test", "", "0")), "")
		none := h.app(h.label("none", "", def("test", "", "-1s")), "")
		next := h.settle()
		for _, a := range []string{own, dflt, none} {
			h.wantStatus(a, Allocated)
		}
		if r := h.resource(own); r.Timeout == nil || !r.Timeout.Equal(t0.Add(time.Hour+2*time.Minute+3*time.Second)) {
			t.Fatalf("own lifetime deadline = %v", r.Timeout)
		}
		if r := h.resource(dflt); r.Timeout == nil || !r.Timeout.Equal(t0.Add(30*time.Minute)) {
			t.Fatalf("default lifetime deadline = %v", r.Timeout)
		}
		if r := h.resource(none); r.Timeout != nil {
			t.Fatalf("negative lifetime got deadline %v", r.Timeout)
		}
		if next.After(t0.Add(30 * time.Minute)) {
			t.Fatalf("next wake-up %v is after the first deadline", next)
		}
		h.runFor(29 * time.Minute)
		h.wantStatus(dflt, Allocated)
		h.runFor(2 * time.Minute)
		h.wantStatus(dflt, Deallocated)
		h.wantStatus(own, Allocated)
		h.runFor(32 * time.Minute)
		h.wantStatus(own, Deallocated)
		h.runFor(400 * 24 * time.Hour)
		h.wantStatus(none, Allocated)
		if live := d.Live(); len(live) != 1 || live[0] != none {
			t.Fatalf("driver holds %v, want only %s", live, none)
		}
	})
}

func TestTasks(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		h.engine("node-1", nil)
		l := h.label("l", "", def("test", `{"image":"img"}`, ""))

		// A task created before the application is allocated runs once it is.
		h.e.SetMaintenance(true)
		app := h.app(l, "")
		early := h.task(app, "snapshot", Allocated, `{"full":false}`)
		h.settle()
		h.wantStatus(app, New)
		h.e.SetMaintenance(false)
		h.settle()
		h.wantStatus(app, Allocated)

		snap := h.task(app, "snapshot", Allocated, `{"full":true}`)
		unknown := h.task(app, "reboot", Allocated, "")
		image := h.task(app, "image", Deallocate, "")
		h.settle()
		ts := h.tasks(app)
		for _, id := range []string{early, snap} {
			if !strings.Contains(string(ts[id].Result), "snap-test-") {
				t.Fatalf("snapshot task result = %s", ts[id].Result)
			}
		}
		if string(ts[unknown].Result) != `{"error":"task not available in driver"}` {
			t.Fatalf("unknown task result = %s", ts[unknown].Result)
		}
		if len(ts[image].Result) != 0 {
			t.Fatalf("DEALLOCATE task ran while ALLOCATED: %s", ts[image].Result)
		}
		if err := h.e.Deallocate(h.ctx, app); err != nil {
			t.Fatal(err)
		}
		h.settle()
		h.wantStatus(app, Deallocated)
		ts = h.tasks(app)
		if !strings.Contains(string(ts[image].Result), "ami-test-") {
			t.Fatalf("image task result = %s (it must run before the driver deallocates)", ts[image].Result)
		}
		h.runFor(5 * time.Minute)
		calls := d.TaskCalls()
		if len(calls) != 3 {
			t.Fatalf("driver task calls = %+v, want 3 (each task exactly once)", calls)
		}
		if calls[2].Task != "image" || calls[2].When != Deallocate {
			t.Fatalf("last call = %+v", calls[2])
		}

		// Validation, and no task for dead applications.
		err := h.e.CreateTask(h.ctx, &core.Task{ApplicationUID: app, Task: "snapshot", When: "LATER"})
		if !errors.Is(err, engine.ErrInvalidArgument) || !strings.Contains(err.Error(), "task.when") {
			t.Fatalf("bad when: %v", err)
		}
		err = h.e.CreateTask(h.ctx, &core.Task{ApplicationUID: app, Task: "snapshot", When: Allocated})
		if !errors.Is(err, engine.ErrFailedPrecondition) {
			t.Fatalf("task for a dead application: %v", err)
		}
	})
}

func TestTaskOfApplicationThatNeverRan(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		h.driver("test", `{}`)
		h.engine("node-1", nil)
		h.e.SetMaintenance(true)
		app := h.app(h.label("l", "", def("test", "", "")), "")
		tk := h.task(app, "snapshot", Deallocate, "")
		if err := h.e.Deallocate(h.ctx, app); err != nil {
			t.Fatal(err)
		}
		h.settle()
		if r := h.tasks(app)[tk].Result; !strings.Contains(string(r), "did not run") {
			t.Fatalf("task of a never-allocated application: result %s", r)
		}
	})
}

func TestMaintenance(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		h.engine("node-1", nil)
		l := h.label("l", "", def("test", "", ""))
		before := h.app(l, "")
		h.settle()
		h.wantStatus(before, Allocated)

		h.e.SetMaintenance(true)
		if !h.e.Maintenance() {
			t.Fatal("Maintenance() = false")
		}
		during := h.app(l, "")
		h.runFor(time.Hour)
		h.wantStatus(during, New)
		// Work on taken applications continues in maintenance.
		if err := h.e.Deallocate(h.ctx, before); err != nil {
			t.Fatal(err)
		}
		h.settle()
		h.wantStatus(before, Deallocated)

		h.e.SetMaintenance(false)
		h.settle()
		h.wantStatus(during, Allocated)
		if len(d.Live()) != 1 {
			t.Fatalf("driver holds %v", d.Live())
		}
	})
}

func TestRestartRecovery(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		e1 := h.engine("node-1", nil)
		l := h.label("l", "", def("test", "", "2h"))

		alive := h.app(l, "")    // ALLOCATED, still exists
		vanished := h.app(l, "") // ALLOCATED, gone from the cloud while down
		leaving := h.app(l, "")  // DEALLOCATE, driver failing
		crashed := h.app(l, "")  // ELECTED with the resource recorded, ALLOCATED not
		h.settle()
		for _, a := range []string{alive, vanished, leaving, crashed} {
			h.wantStatus(a, Allocated)
		}
		d.FailNextDeallocations(1)
		if err := e1.Deallocate(h.ctx, leaving); err != nil {
			t.Fatal(err)
		}
		h.settle()
		h.wantStatus(leaving, Deallocate)
		if err := h.st.Transition(h.ctx, crashed, Allocated, Elected, "elected by node=node-1 definition=0"); err != nil {
			t.Fatal(err)
		}

		// An allocation interrupted by the shutdown: ELECTED, nothing recorded.
		entered := make(chan struct{})
		d.SetHooks(testdriver.Hooks{BeforeAllocate: func(ctx context.Context, _ driver.AllocateRequest) error {
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		}})
		interrupted := h.app(l, "")
		ctx1, stop := context.WithCancel(h.ctx)
		if _, err := e1.Reconcile(ctx1); err != nil {
			t.Fatal(err)
		}
		<-entered
		e1.SetMaintenance(true)
		queued := h.app(l, "") // NEW while the node goes down
		stop()
		if err := e1.WaitIdle(h.ctx); err != nil {
			t.Fatal(err)
		}
		h.wantStatus(interrupted, Elected)
		d.SetHooks(testdriver.Hooks{})
		d.Forget(vanished)
		h.clk.Advance(10 * time.Minute)

		// The same driver instance (its table survives), a new engine.
		e2 := h.engine("node-1", nil)
		if err := e2.Recover(h.ctx); err != nil {
			t.Fatal(err)
		}
		h.settle()
		h.wantStatus(alive, Allocated)
		h.wantStatus(vanished, Error)
		h.wantStatus(leaving, Deallocated)
		h.wantStatus(crashed, Allocated)
		h.wantStatus(interrupted, Allocated)
		h.wantStatus(queued, Allocated)
		if h.resource(vanished) != nil || h.resource(leaving) != nil {
			t.Fatal("records of gone resources kept")
		}
		want := map[string]bool{alive: true, crashed: true, interrupted: true, queued: true}
		live := d.Live()
		if len(live) != len(want) {
			t.Fatalf("driver holds %v, want %v", live, want)
		}
		for _, a := range live {
			if !want[a] {
				t.Fatalf("driver holds unexpected %s", a)
			}
		}
		if st := d.Stats(); st.Allocations != 6 {
			t.Fatalf("driver created %d resources, want 6 (no double allocation)", st.Allocations)
		}
		// The stored deadline survived the restart.
		h.runFor(time.Hour + 55*time.Minute)
		h.wantStatus(alive, Deallocated)
		h.wantStatus(crashed, Deallocated)
	})
}

func TestCreateValidation(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		h.driver("test", `{}`)
		h.engine("node-1", nil)
		err := h.e.CreateApplication(h.ctx, &core.Application{LabelUID: "no-such-label"})
		if !errors.Is(err, engine.ErrInvalidArgument) || !errors.Is(err, store.ErrNotFound) ||
			!strings.Contains(err.Error(), "application.label_uid") || !strings.Contains(err.Error(), "no-such-label") {
			t.Fatalf("unknown label: %v", err)
		}
		l := h.label("ok", "", def("test", "", ""))
		err = h.e.CreateApplication(h.ctx, &core.Application{LabelUID: l.UID, Metadata: json.RawMessage(`[1,2]`)})
		if !errors.Is(err, engine.ErrInvalidArgument) || !strings.Contains(err.Error(), "application.metadata") {
			t.Fatalf("bad metadata: %v", err)
		}

		cases := []struct {
			l     core.Label
			field string
		}{
			{core.Label{Version: 1, Definitions: []core.Definition{def("test", "", "")}}, "label.name"},
			{core.Label{Name: "x", Version: 1}, "label.definitions"},
			{core.Label{Name: "x", Version: 1, Definitions: []core.Definition{def("aws", "", "")}}, "label.definitions[0].driver"},
			{core.Label{Name: "x", Version: 1, Definitions: []core.Definition{def("test", "", ""), def("test", "", "1 hour")}}, "label.definitions[1].resources.lifetime"},
			{core.Label{Name: "x", Version: 1, Definitions: []core.Definition{def("test", `{"fail":"often"}`, "")}}, "label.definitions[0]: options.fail"},
			{core.Label{Name: "x", Version: 1, Metadata: json.RawMessage(`"s"`), Definitions: []core.Definition{def("test", "", "")}}, "label.metadata"},
			{core.Label{Name: "x", Version: 2, RemoveAt: &t0, Definitions: []core.Definition{def("test", "", "")}}, "label.remove_at"},
			{core.Label{Name: "x", Version: 0, RemoveAt: &t0, Definitions: []core.Definition{def("test", "", "")}}, "label.remove_at"},
		}
		for _, c := range cases {
			l := c.l
			err := h.e.CreateLabel(h.ctx, &l)
			if !errors.Is(err, engine.ErrInvalidArgument) || !strings.Contains(err.Error(), c.field) {
				t.Errorf("CreateLabel(%+v) = %v, want an invalid-argument error naming %q", c.l, err, c.field)
			}
		}
		dup := &core.Label{Name: "ok", Version: 1, Definitions: []core.Definition{def("test", "", "")}}
		if err := h.e.CreateLabel(h.ctx, dup); !errors.Is(err, store.ErrAlreadyExists) {
			t.Fatalf("duplicate label: %v", err)
		}
	})
}

func TestRemoveLabelAndTemporaryLabels(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		h.engine("node-1", nil)
		shared := h.label("keeper", "", def("test", `{"image":"img-shared"}`, ""))
		at := t0.Add(time.Hour)
		tmp := &core.Label{Name: "tmp", Version: 0, RemoveAt: &at, Definitions: []core.Definition{
			def("test", `{"image":"img-own"}`, ""), def("test", `{"image":"img-shared"}`, "")}}
		if err := h.e.CreateLabel(h.ctx, tmp); err != nil {
			t.Fatal(err)
		}
		app := h.app(tmp, "")
		h.settle()
		if err := h.e.RemoveLabel(h.ctx, tmp.UID); !errors.Is(err, engine.ErrFailedPrecondition) {
			t.Fatalf("removing a label in use: %v", err)
		}
		if err := h.e.Deallocate(h.ctx, app); err != nil {
			t.Fatal(err)
		}
		h.runFor(59 * time.Minute)
		if _, err := h.st.GetLabel(h.ctx, tmp.UID); err != nil {
			t.Fatalf("temporary label removed early: %v", err)
		}
		h.runFor(2 * time.Minute)
		if _, err := h.st.GetLabel(h.ctx, tmp.UID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("temporary label past remove_at still there: %v", err)
		}
		var deleted []string
		for _, c := range d.TaskCalls() {
			if c.Task == "image_delete" {
				deleted = append(deleted, c.Image)
			}
		}
		if strings.Join(deleted, ",") != "img-own" {
			t.Fatalf("image_delete ran for %v, want only img-own (img-shared is used by %s)", deleted, shared.Name)
		}
		// Versioned labels are removed without touching images.
		if err := h.e.RemoveLabel(h.ctx, shared.UID); err != nil {
			t.Fatal(err)
		}
		if n := len(d.TaskCalls()); n != 1 {
			t.Fatalf("%d task calls after removing a versioned label", n)
		}
	})
}

func TestCleanupOfDeadApplications(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		h.driver("test", `{}`)
		h.engine("node-1", func(o *engine.Options) { o.CleanupInterval = 10 * time.Minute })
		l := h.label("l", "", def("test", "", ""))
		dead, alive := h.app(l, ""), h.app(l, "")
		h.settle()
		if err := h.e.Deallocate(h.ctx, dead); err != nil {
			t.Fatal(err)
		}
		h.runFor(9 * time.Minute)
		if _, err := h.st.GetApplication(h.ctx, dead); err != nil {
			t.Fatalf("purged too early: %v", err)
		}
		h.runFor(2 * time.Minute)
		if _, err := h.st.GetApplication(h.ctx, dead); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("dead application older than the cleanup interval kept: %v", err)
		}
		h.wantStatus(alive, Allocated)
	})
}

// Two nodes share one database: every application is allocated exactly once.
func TestTwoNodesClaimExactlyOnce(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		e1 := h.engine("node-1", nil)
		e2 := h.engine("node-2", nil)
		h.e = e1
		l := h.label("l", "", def("test", "", ""))
		var apps []string
		for range 40 {
			apps = append(apps, h.app(l, ""))
		}
		var wg sync.WaitGroup
		for _, e := range []*engine.Engine{e1, e2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.Settle(h.ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		for _, a := range apps {
			h.wantStatus(a, Allocated)
			if s := h.statuses(a); !equalStatuses(s, New, Elected, Allocated) {
				t.Fatalf("history of %s: %s", a, h.history(a))
			}
		}
		if st := d.Stats(); st.AllocateCalls != len(apps) {
			t.Fatalf("%d Allocate calls for %d applications", st.AllocateCalls, len(apps))
		}
		// The other node deallocates an application one node owns, and
		// creates a task for it: the owner does the work after its sweep.
		// Which node won which claims is up to the race, so pick the owner
		// from the resource.
		owned := apps[0]
		owner, other := e1, e2
		if h.resource(owned).NodeName != "node-1" {
			owner, other = e2, e1
		}
		h.e = other
		snap := h.task(owned, "snapshot", Allocated, "")
		if _, err := other.Settle(h.ctx); err != nil {
			t.Fatal(err)
		}
		if r := h.tasks(owned)[snap].Result; len(r) != 0 {
			t.Fatalf("%s ran a task of %s's resource: %s", other.NodeName(), owner.NodeName(), r)
		}
		h.e = owner
		h.runFor(6 * time.Minute) // the owner's next sweep finds it
		if r := h.tasks(owned)[snap].Result; !strings.Contains(string(r), "snap-test-") {
			t.Fatalf("task created through %s did not run on %s: %q", other.NodeName(), owner.NodeName(), r)
		}
		if err := other.Deallocate(h.ctx, owned); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Settle(h.ctx); err != nil {
			t.Fatal(err)
		}
		h.wantStatus(owned, Deallocate)
		h.e = owner
		h.runFor(6 * time.Minute) // the owner's next sweep finds it
		h.wantStatus(owned, Deallocated)
	})
}

func TestDeallocationFailuresAreRetried(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		h.engine("node-1", func(o *engine.Options) { o.RetryBackoff = time.Second; o.MaxBackoff = 8 * time.Second })
		app := h.app(h.label("l", "", def("test", "", "")), "")
		h.settle()
		d.FailNextDeallocations(5)
		if err := h.e.Deallocate(h.ctx, app); err != nil {
			t.Fatal(err)
		}
		h.settle()
		h.wantStatus(app, Deallocate)
		if len(d.Live()) != 1 || h.resource(app) == nil {
			t.Fatal("resource forgotten after a failed deallocation")
		}
		h.runFor(time.Minute) // backoff 1s, 2s, 4s, 8s, 8s
		h.wantStatus(app, Deallocated)
		if st := d.Stats(); st.DeallocateCalls != 6 || len(d.Live()) != 0 {
			t.Fatalf("driver stats %+v, live %v", st, d.Live())
		}
	})
}

func TestUpdateTemporaryLabel(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		h.driver("test", `{}`)
		h.engine("node-1", nil)
		tmp := &core.Label{Name: "tmp", Version: 0, Definitions: []core.Definition{def("test", "", "")}}
		if err := h.e.CreateLabel(h.ctx, tmp); err != nil {
			t.Fatal(err)
		}
		if tmp.RemoveAt == nil || !tmp.RemoveAt.Equal(t0.Add(72*time.Hour)) {
			t.Fatalf("temporary label remove_at = %v, want now + label_remove_at_max", tmp.RemoveAt)
		}
		app := h.app(tmp, "")
		h.settle()

		upd := *tmp
		upd.RemoveAt = nil
		upd.Metadata = json.RawMessage(`{"k":"v"}`)
		if err := h.e.UpdateLabel(h.ctx, &upd); err != nil {
			t.Fatalf("metadata update: %v", err)
		}
		got, _ := h.st.GetLabel(h.ctx, tmp.UID)
		if string(got.Metadata) != `{"k":"v"}` || got.RemoveAt == nil || !got.RemoveAt.Equal(*tmp.RemoveAt) {
			t.Fatalf("after update: metadata %s remove_at %v", got.Metadata, got.RemoveAt)
		}
		upd.Definitions = []core.Definition{def("test", `{"image":"other"}`, "")}
		if err := h.e.UpdateLabel(h.ctx, &upd); !errors.Is(err, engine.ErrFailedPrecondition) {
			t.Fatalf("definitions changed under an active application: %v", err)
		}
		upd.Definitions = []core.Definition{def("test", `{"colour":"red"}`, "")}
		if err := h.e.UpdateLabel(h.ctx, &upd); !errors.Is(err, engine.ErrInvalidArgument) ||
			!strings.Contains(err.Error(), "label.definitions[0]: options.colour") {
			t.Fatalf("invalid update: %v", err)
		}
		fixed := h.label("fixed", "", def("test", "", ""))
		fixedUpd := *fixed
		fixedUpd.Version = 0
		if err := h.e.UpdateLabel(h.ctx, &fixedUpd); !errors.Is(err, engine.ErrFailedPrecondition) {
			t.Fatalf("update of a versioned label: %v", err)
		}
		if err := h.e.Deallocate(h.ctx, app); err != nil {
			t.Fatal(err)
		}
		h.settle()
		upd.Definitions = []core.Definition{def("test", `{"image":"other"}`, "")}
		if err := h.e.UpdateLabel(h.ctx, &upd); err != nil {
			t.Fatalf("definitions update without active applications: %v", err)
		}
	})
}

// A node dies while its driver call is creating the resource; the user then
// deallocates. The restarted node asks the idempotent driver what exists and
// removes it: nothing leaks, nothing is allocated twice.
func TestRestartReclaimsInterruptedAllocation(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		e1 := h.engine("node-1", nil)
		l := h.label("l", "", def("test", "", ""))
		entered, unblock := make(chan struct{}), make(chan struct{})
		d.SetHooks(testdriver.Hooks{AfterAllocate: func(ctx context.Context, _ core.Resource) error {
			close(entered)
			<-unblock // the "dead" node never gets further
			return errors.New("node died")
		}})
		app := h.app(l, "")
		if _, err := e1.Reconcile(h.ctx); err != nil {
			t.Fatal(err)
		}
		<-entered
		if len(d.Live()) != 1 {
			t.Fatal("the driver should hold the half-made resource")
		}
		d.SetHooks(testdriver.Hooks{})
		if err := e1.Deallocate(h.ctx, app); err != nil {
			t.Fatal(err)
		}
		h.wantStatus(app, Deallocate)

		h.engine("node-1", nil) // the restarted node
		if err := h.e.Recover(h.ctx); err != nil {
			t.Fatal(err)
		}
		h.settle()
		h.wantStatus(app, Deallocated)
		if len(d.Live()) != 0 {
			t.Fatalf("leak: %v", d.Live())
		}
		if st := d.Stats(); st.Allocations != 1 {
			t.Fatalf("driver created %d resources, want 1 (the reclaim must re-use the first)", st.Allocations)
		}
		close(unblock) // let the old worker end; it must not disturb anything
		if err := e1.WaitIdle(h.ctx); err != nil {
			t.Fatal(err)
		}
		h.wantStatus(app, Deallocated)
	})
}

// The driver says it has room but then reports a shortage: the application
// stays queued, each re-try later than the last (no history flood).
func TestCapacityShortageAtAllocateBacksOff(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		d.SetHooks(testdriver.Hooks{BeforeAllocate: func(context.Context, driver.AllocateRequest) error {
			return fmt.Errorf("cloud: insufficient capacity: %w", driver.ErrCapacity)
		}})
		h.engine("node-1", func(o *engine.Options) { o.RetryBackoff = time.Second; o.MaxBackoff = time.Minute })
		app := h.app(h.label("l", "", def("test", "", "")), "")
		h.runFor(10 * time.Minute)
		h.wantStatus(app, New)
		// 1+2+4+8+16+32 s, then every minute: about 14 attempts in 10 minutes, not 600.
		if n := d.Stats().AllocateCalls; n < 8 || n > 20 {
			t.Fatalf("%d allocation attempts in 10 minutes", n)
		}
		if strings.Contains(h.history(app), "allocation failed") {
			t.Fatalf("a capacity shortage counted as a failed attempt: %s", h.history(app))
		}
		d.SetHooks(testdriver.Hooks{})
		h.runFor(2 * time.Minute)
		h.wantStatus(app, Allocated)
	})
}

// An application deallocated while its claim waits for a worker slot never
// reaches the driver.
func TestDeallocateWhileWaitingForAWorker(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		first, release := make(chan string, 1), make(chan struct{})
		var once sync.Once
		d.SetHooks(testdriver.Hooks{BeforeAllocate: func(_ context.Context, req driver.AllocateRequest) error {
			blocked := false
			once.Do(func() { blocked = true })
			if blocked {
				first <- req.ApplicationUID
				<-release
			}
			return nil
		}})
		h.engine("node-1", func(o *engine.Options) { o.Workers = 1 })
		l := h.label("l", "", def("test", "", ""))
		a, b := h.app(l, ""), h.app(l, "")
		if _, err := h.e.Reconcile(h.ctx); err != nil {
			t.Fatal(err)
		}
		running := <-first
		waiting := a
		if running == a {
			waiting = b
		}
		h.wantStatus(waiting, New) // claimed in memory, not yet in the store
		if err := h.e.Deallocate(h.ctx, waiting); err != nil {
			t.Fatal(err)
		}
		close(release)
		h.settle()
		h.wantStatus(running, Allocated)
		h.wantStatus(waiting, Deallocated)
		if n := d.Stats().AllocateCalls; n != 1 {
			t.Fatalf("%d Allocate calls, want 1 (the deallocated claim must not reach the driver)", n)
		}
	})
}

func TestSlotsLimitAndNodeFilter(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		h.engine("node-1", func(o *engine.Options) {
			o.SlotsLimit = 3
			o.NodeIdentifiers = []string{"os:linux", "arch:x86_64"}
		})
		two := uint(2)
		big := def("test", "", "")
		big.Resources.Slots = &two
		bigL := h.label("big", "", big)
		smallL := h.label("small", "", def("test", "", ""))
		mac := def("test", "", "")
		mac.Resources.NodeFilter = []string{"os:mac*"}
		macL := h.label("mac", "", mac)
		linux := def("test", "", "")
		linux.Resources.NodeFilter = []string{"os:lin*", "arch:*"}
		linuxL := h.label("linux", "", linux)

		b1, b2, s1 := h.app(bigL, ""), h.app(bigL, ""), h.app(smallL, "")
		h.runFor(time.Minute)
		h.wantStatus(b1, Allocated) // 2 slots
		h.wantStatus(b2, New)       // 2 more would make 4 > 3
		h.wantStatus(s1, Allocated) // 1 more fits: 3
		if err := h.e.Deallocate(h.ctx, b1); err != nil {
			t.Fatal(err)
		}
		h.settle()
		h.wantStatus(b2, Allocated)
		if err := h.e.Deallocate(h.ctx, b2); err != nil {
			t.Fatal(err)
		}
		if err := h.e.Deallocate(h.ctx, s1); err != nil {
			t.Fatal(err)
		}
		h.settle()

		m, lx := h.app(macL, ""), h.app(linuxL, "")
		h.runFor(time.Minute)
		h.wantStatus(m, New) // this node is not a mac
		h.wantStatus(lx, Allocated)
		if len(d.Live()) != 1 {
			t.Fatalf("driver holds %v", d.Live())
		}
		bad := def("test", "", "")
		bad.Resources.NodeFilter = []string{"os:[linux"}
		err := h.e.CreateLabel(h.ctx, &core.Label{Name: "bad", Version: 1, Definitions: []core.Definition{bad}})
		if !errors.Is(err, engine.ErrInvalidArgument) || !strings.Contains(err.Error(), "resources.node_filter[0]") {
			t.Fatalf("bad node_filter pattern: %v", err)
		}
	})
}

// A slow allocation (a Mac boots for minutes) does not eat its lifetime.
func TestLifetimeCountsFromAllocation(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		d := h.driver("test", `{}`)
		d.SetHooks(testdriver.Hooks{BeforeAllocate: func(context.Context, driver.AllocateRequest) error {
			h.clk.Advance(10 * time.Minute)
			return nil
		}})
		h.engine("node-1", nil)
		app := h.app(h.label("mac", "", def("test", "", "1h")), "")
		h.settle()
		if r := h.resource(app); r.Timeout == nil || !r.Timeout.Equal(t0.Add(70*time.Minute)) {
			t.Fatalf("deadline %v, want allocation end + 1h = %v", r.Timeout, t0.Add(70*time.Minute))
		}
	})
}
