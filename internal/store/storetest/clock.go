package storetest

import (
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// RunClock checks that a store stamps times from the clock it was opened
// with (store.WithClock): defaults of CreatedAt/UpdatedAt and every state.
func RunClock(t *testing.T, open func(t *testing.T, c clock.Clock) store.Store) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	vc := clock.NewVirtual(start)
	s := open(t, vc)
	c := ctx(t)
	l := &core.Label{Name: "clock", Version: 1, Definitions: []core.Definition{{Driver: "test"}}}
	must(t, s.CreateLabel(c, l), "create label")
	a := &core.Application{LabelUID: l.UID}
	must(t, s.CreateApplication(c, a), "create application")
	if !l.CreatedAt.Equal(start) || !a.CreatedAt.Equal(start) {
		t.Fatalf("created_at: label %v, application %v, want %v", l.CreatedAt, a.CreatedAt, start)
	}
	vc.Advance(time.Hour)
	claimed, err := s.ClaimNew(c, "n", 1)
	must(t, err, "claim")
	if len(claimed) != 1 {
		t.Fatalf("claimed %d", len(claimed))
	}
	vc.Advance(time.Hour)
	must(t, s.Transition(c, a.UID, core.StatusElected, core.StatusAllocated, ""), "allocate")
	sts, err := s.ListStates(c, a.UID)
	must(t, err, "states")
	for i, st := range sts {
		if want := start.Add(time.Duration(i) * time.Hour); !st.CreatedAt.Equal(want) {
			t.Fatalf("state %s at %v, want %v", st.Status, st.CreatedAt, want)
		}
	}
	task := &core.Task{ApplicationUID: a.UID, Task: "snapshot", When: core.TaskWhenAllocated}
	must(t, s.CreateTask(c, task), "create task")
	vc.Advance(time.Minute)
	must(t, s.SetTaskResult(c, task.UID, []byte(`{}`)), "result")
	got, err := s.GetTask(c, task.UID)
	must(t, err, "get task")
	if !got.CreatedAt.Equal(start.Add(2*time.Hour)) || !got.UpdatedAt.Equal(start.Add(2*time.Hour+time.Minute)) {
		t.Fatalf("task times: %v %v", got.CreatedAt, got.UpdatedAt)
	}
	n := &store.Node{Name: "n"}
	must(t, s.UpsertNode(c, n), "node")
	if !n.UpdatedAt.Equal(start.Add(2*time.Hour + time.Minute)) {
		t.Fatalf("node heartbeat %v", n.UpdatedAt)
	}
}
