package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
	"github.com/aquarium-fish/aquarium-fish/internal/driver/testdriver"
	"github.com/aquarium-fish/aquarium-fish/internal/engine"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
	"github.com/aquarium-fish/aquarium-fish/internal/store/storetest"
)

var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// backends runs fn as a subtest on SQLite and on PostgreSQL (skipped when
// no server answers, unless AQUARIUM_REQUIRE_POSTGRES=1).
func backends(t *testing.T, fn func(t *testing.T, h *harness)) {
	t.Helper()
	for _, b := range []string{"sqlite", "postgres"} {
		t.Run(b, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			var st store.Store
			if b == "sqlite" {
				st = storetest.OpenSQLite(t, store.WithClock(clk))
			} else {
				st = storetest.OpenPostgres(t, store.WithClock(clk))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			t.Cleanup(cancel)
			h := &harness{t: t, ctx: ctx, clk: clk, st: st, drivers: map[string]*testdriver.Driver{}}
			fn(t, h)
		})
	}
}

type harness struct {
	t       *testing.T
	ctx     context.Context
	clk     *clock.Virtual
	st      store.Store
	drivers map[string]*testdriver.Driver
	e       *engine.Engine
}

// driver returns (creating and preparing it once) the test driver instance name.
func (h *harness) driver(name, cfg string) *testdriver.Driver {
	h.t.Helper()
	if d, ok := h.drivers[name]; ok {
		return d
	}
	d, err := driver.New(name)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := d.Prepare(h.ctx, []byte(cfg)); err != nil {
		h.t.Fatal(err)
	}
	h.drivers[name] = d.(*testdriver.Driver)
	return h.drivers[name]
}

// engine builds an engine over every driver created so far.
func (h *harness) engine(node string, mod func(*engine.Options)) *engine.Engine {
	h.t.Helper()
	drvs := map[string]driver.Driver{}
	for k, v := range h.drivers {
		drvs[k] = v
	}
	opts := engine.Options{
		Store:            h.st,
		Drivers:          drvs,
		Clock:            h.clk,
		NodeName:         node,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		AllocationRetry:  3,
		CleanupInterval:  10 * time.Minute,
		LabelRemoveAtMin: 30 * time.Second,
		LabelRemoveAtMax: 72 * time.Hour,
		SweepInterval:    5 * time.Minute,
	}
	if mod != nil {
		mod(&opts)
	}
	e, err := engine.New(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.e = e
	return e
}

func def(drv string, options string, lifetime string) core.Definition {
	d := core.Definition{Driver: drv, Resources: core.Resources{Cpu: 2, Ram: 4, Lifetime: lifetime}}
	if options != "" {
		d.Options = json.RawMessage(options)
	}
	return d
}

func (h *harness) label(name string, md string, defs ...core.Definition) *core.Label {
	h.t.Helper()
	l := &core.Label{Name: name, Version: 1, Definitions: defs}
	if md != "" {
		l.Metadata = json.RawMessage(md)
	}
	if err := h.e.CreateLabel(h.ctx, l); err != nil {
		h.t.Fatalf("CreateLabel %s: %v", name, err)
	}
	return l
}

func (h *harness) app(l *core.Label, md string) string {
	h.t.Helper()
	a := &core.Application{LabelUID: l.UID, OwnerName: "tester"}
	if md != "" {
		a.Metadata = json.RawMessage(md)
	}
	if err := h.e.CreateApplication(h.ctx, a); err != nil {
		h.t.Fatalf("CreateApplication: %v", err)
	}
	return a.UID
}

// settle runs passes until nothing new starts and returns the next wake-up.
func (h *harness) settle() time.Time {
	h.t.Helper()
	next, err := h.e.Settle(h.ctx)
	if err != nil {
		h.t.Fatalf("Settle: %v", err)
	}
	return next
}

// runFor advances the virtual clock by d, stopping at every wake-up the
// engine asked for, as Run would.
func (h *harness) runFor(d time.Duration) {
	h.t.Helper()
	end := h.clk.Now().Add(d)
	for i := 0; ; i++ {
		if i > 10000 {
			h.t.Fatal("runFor: too many wake-ups")
		}
		next := h.settle()
		if next.After(end) || !next.After(h.clk.Now()) {
			break
		}
		h.clk.Set(next)
	}
	h.clk.Set(end)
	h.settle()
}

func (h *harness) status(uid string) core.Status {
	h.t.Helper()
	cur, err := h.st.CurrentState(h.ctx, uid)
	if err != nil {
		h.t.Fatalf("CurrentState %s: %v", uid, err)
	}
	return cur.Status
}

func (h *harness) wantStatus(uid string, want core.Status) {
	h.t.Helper()
	if got := h.status(uid); got != want {
		h.t.Fatalf("application %s is %s, want %s (history: %s)", uid, got, want, h.history(uid))
	}
}

func (h *harness) history(uid string) string {
	h.t.Helper()
	states, err := h.st.ListStates(h.ctx, uid)
	if err != nil {
		return err.Error()
	}
	out := ""
	for _, s := range states {
		out += fmt.Sprintf("[%s %q] ", s.Status, s.Description)
	}
	return out
}

func (h *harness) statuses(uid string) []core.Status {
	h.t.Helper()
	states, err := h.st.ListStates(h.ctx, uid)
	if err != nil {
		h.t.Fatal(err)
	}
	out := make([]core.Status, len(states))
	for i, s := range states {
		out[i] = s.Status
	}
	return out
}

func (h *harness) resource(uid string) *core.Resource {
	h.t.Helper()
	r, err := h.st.GetResource(h.ctx, uid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) tasks(uid string) map[string]core.Task {
	h.t.Helper()
	ts, err := h.st.ListTasks(h.ctx, uid)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]core.Task{}
	for _, t := range ts {
		out[t.UID] = t
	}
	return out
}

func (h *harness) task(app, name string, when core.Status, options string) string {
	h.t.Helper()
	tk := &core.Task{ApplicationUID: app, Task: name, When: when}
	if options != "" {
		tk.Options = json.RawMessage(options)
	}
	if err := h.e.CreateTask(h.ctx, tk); err != nil {
		h.t.Fatalf("CreateTask %s: %v", name, err)
	}
	return tk.UID
}

func equalStatuses(got []core.Status, want ...core.Status) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
