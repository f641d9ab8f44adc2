package testdriver

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

func prepared(t *testing.T, cfg string) *Driver {
	t.Helper()
	d, err := driver.New("test/unit")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Prepare(context.Background(), []byte(cfg)); err != nil {
		t.Fatalf("Prepare(%s): %v", cfg, err)
	}
	return d.(*Driver)
}

func TestPrepareErrorsNameTheKey(t *testing.T) {
	cases := map[string]string{
		`{"capacity":-1}`:            "capacity",
		`{"fail_probability":2}`:     "fail_probability",
		`{"fail_next":-3}`:           "fail_next",
		`{"allocate_delay":"xx"}`:    "invalid duration",
		`{"deallocate_delay":"-1s"}`: "deallocate_delay",
		`{"bogus":1}`:                "bogus",
	}
	for cfg, want := range cases {
		err := New("test").Prepare(context.Background(), []byte(cfg))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Prepare(%s) = %v, want error mentioning %q", cfg, err, want)
		}
	}
	if err := New("test").Prepare(context.Background(), nil); err != nil {
		t.Errorf("empty config: %v", err)
	}
}

func TestValidateDefinition(t *testing.T) {
	d := prepared(t, `{}`)
	zero := uint(0)
	cases := []struct {
		def  core.Definition
		want string
	}{
		{core.Definition{Driver: "test", Options: json.RawMessage(`{"fail":"yes"}`)}, "options.fail"},
		{core.Definition{Driver: "test", Options: json.RawMessage(`{"colour":1}`)}, "options.colour"},
		{core.Definition{Driver: "test", Options: json.RawMessage(`[1]`)}, "options: must be an object"},
		{core.Definition{Driver: "test", Resources: core.Resources{Slots: &zero}}, "resources.slots"},
		{core.Definition{Driver: "test", Resources: core.Resources{Disks: map[string]core.Disk{"/dev/sdb": {}}}}, "resources.disks./dev/sdb.size"},
	}
	for _, c := range cases {
		err := d.ValidateDefinition(c.def)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateDefinition(%s) = %v, want %q", c.def.Options, err, c.want)
		}
	}
	ok := core.Definition{Driver: "test", Options: json.RawMessage(`{"image":"ubuntu","fail":false}`)}
	if err := d.ValidateDefinition(ok); err != nil {
		t.Errorf("valid definition: %v", err)
	}
}

func TestAllocateIdempotentCapacityStatusDeallocate(t *testing.T) {
	ctx := context.Background()
	d := prepared(t, `{"capacity":2}`)
	def := core.Definition{Driver: "test"}
	a1, err := d.Allocate(ctx, driver.AllocateRequest{ApplicationUID: "a1", Definition: def})
	if err != nil {
		t.Fatal(err)
	}
	again, err := d.Allocate(ctx, driver.AllocateRequest{ApplicationUID: "a1", Definition: def})
	if err != nil || again.Identifier != a1.Identifier {
		t.Fatalf("second Allocate for the same app = %v, %v; want the same resource %s", again, err, a1.Identifier)
	}
	if c, _ := d.AvailableCapacity(ctx, def); c != 1 {
		t.Fatalf("capacity after one allocation = %d, want 1", c)
	}
	if _, err := d.Allocate(ctx, driver.AllocateRequest{ApplicationUID: "a2", Definition: def}); err != nil {
		t.Fatal(err)
	}
	_, err = d.Allocate(ctx, driver.AllocateRequest{ApplicationUID: "a3", Definition: def})
	if !errors.Is(err, driver.ErrCapacity) {
		t.Fatalf("third allocation over capacity 2: err = %v, want ErrCapacity", err)
	}
	if s, _ := d.Status(ctx, *a1); s != driver.StatusAllocated {
		t.Fatalf("Status = %s, want allocated", s)
	}
	if err := d.Deallocate(ctx, *a1); err != nil {
		t.Fatal(err)
	}
	if err := d.Deallocate(ctx, *a1); err != nil {
		t.Fatalf("second Deallocate must be idempotent: %v", err)
	}
	if s, _ := d.Status(ctx, *a1); s != driver.StatusNone {
		t.Fatalf("Status after Deallocate = %s, want none", s)
	}
	if got := d.Live(); len(got) != 1 || got[0] != "a2" {
		t.Fatalf("Live = %v, want [a2]", got)
	}
}

func TestInjectedFailures(t *testing.T) {
	ctx := context.Background()
	d := prepared(t, `{"fail_next":1}`)
	def := core.Definition{Driver: "test"}
	if _, err := d.Allocate(ctx, driver.AllocateRequest{ApplicationUID: "x", Definition: def}); err == nil {
		t.Fatal("fail_next=1: first allocation succeeded")
	}
	if _, err := d.Allocate(ctx, driver.AllocateRequest{ApplicationUID: "x", Definition: def}); err != nil {
		t.Fatalf("second allocation: %v", err)
	}
	failing := core.Definition{Driver: "test", Options: json.RawMessage(`{"fail":true,"fail_message":"no such image"}`)}
	_, err := d.Allocate(ctx, driver.AllocateRequest{ApplicationUID: "y", Definition: failing})
	if err == nil || !strings.Contains(err.Error(), "no such image") {
		t.Fatalf("failing definition: err = %v", err)
	}
	if live := d.Live(); len(live) != 1 {
		t.Fatalf("failed allocations left resources: %v", live)
	}
	d.FailNextDeallocations(1)
	res := core.Resource{ApplicationUID: "x"}
	if err := d.Deallocate(ctx, res); err == nil {
		t.Fatal("injected deallocation failure not reported")
	}
	if err := d.Deallocate(ctx, res); err != nil || len(d.Live()) != 0 {
		t.Fatalf("retry Deallocate: %v, live %v", err, d.Live())
	}

	p := prepared(t, `{"fail_probability":1}`)
	if _, err := p.Allocate(ctx, driver.AllocateRequest{ApplicationUID: "z", Definition: def}); err == nil {
		t.Fatal("fail_probability=1 allocated")
	}
}

func TestTasks(t *testing.T) {
	ctx := context.Background()
	d := prepared(t, `{}`)
	if _, err := d.Task("reboot", nil); !errors.Is(err, driver.ErrTaskNotAvailable) {
		t.Fatalf("unknown task: %v", err)
	}
	def := core.Definition{Driver: "test", Options: json.RawMessage(`{"image":"img"}`)}
	res, err := d.Allocate(ctx, driver.AllocateRequest{ApplicationUID: "a", Definition: def})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := d.Task("snapshot", []byte(`{"full":true}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := tk.Execute(ctx, driver.TaskTarget{Resource: *res, Definition: def, When: core.StatusAllocated})
	if err != nil || !strings.Contains(string(out), "snap-test-") {
		t.Fatalf("snapshot = %s, %v", out, err)
	}
	calls := d.TaskCalls()
	if len(calls) != 1 || calls[0].ApplicationUID != "a" || string(calls[0].Options) != `{"full":true}` || calls[0].When != core.StatusAllocated {
		t.Fatalf("recorded calls = %+v", calls)
	}
}

func TestDelaysFollowTheClockAndStopWithTheContext(t *testing.T) {
	d := prepared(t, `{"allocate_delay":"1h","deallocate_delay":"1h"}`)
	// 1h at 360000x is 10ms of wall time.
	d.SetClock(clock.NewScaled(time.Now(), 360000))
	ctx := context.Background()
	res, err := d.Allocate(ctx, driver.AllocateRequest{ApplicationUID: "a", Definition: core.Definition{Driver: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Deallocate(ctx, *res); err != nil {
		t.Fatal(err)
	}
	// At real speed the delay would be an hour; a cancelled context ends it.
	d.SetClock(clock.Real{})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Allocate(cctx, driver.AllocateRequest{ApplicationUID: "b", Definition: core.Definition{Driver: "test"}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Allocate with a cancelled context: %v", err)
	}
	if len(d.Live()) != 0 {
		t.Fatalf("live = %v", d.Live())
	}
}
