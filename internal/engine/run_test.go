package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
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

// waiter turns OnState callbacks into channels, so tests and benchmarks
// wait for states without polling.
type waiter struct {
	mu      sync.Mutex
	waiting map[string]map[core.Status]chan struct{}
	seen    map[string]map[core.Status]bool
	counts  map[core.Status]int
	notify  chan struct{}
}

func newWaiter() *waiter {
	return &waiter{waiting: map[string]map[core.Status]chan struct{}{}, seen: map[string]map[core.Status]bool{},
		counts: map[core.Status]int{}, notify: make(chan struct{}, 1)}
}

func (w *waiter) onState(app string, st core.Status) {
	w.mu.Lock()
	if w.seen[app] == nil {
		w.seen[app] = map[core.Status]bool{}
	}
	w.seen[app][st] = true
	w.counts[st]++
	if ch := w.waiting[app][st]; ch != nil {
		close(ch)
		delete(w.waiting[app], st)
	}
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// wait blocks until app reached st.
func (w *waiter) wait(ctx context.Context, app string, st core.Status) error {
	w.mu.Lock()
	if w.seen[app][st] {
		w.mu.Unlock()
		return nil
	}
	if w.waiting[app] == nil {
		w.waiting[app] = map[core.Status]chan struct{}{}
	}
	ch := w.waiting[app][st]
	if ch == nil {
		ch = make(chan struct{})
		w.waiting[app][st] = ch
	}
	w.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s to be %s: %w", app, st, ctx.Err())
	}
}

// waitCount blocks until n transitions to st were seen.
func (w *waiter) waitCount(ctx context.Context, st core.Status, n int) error {
	for {
		w.mu.Lock()
		got := w.counts[st]
		w.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-w.notify:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d %s (have %d): %w", n, st, got, ctx.Err())
		}
	}
}

// node is an engine driven by Run on real timers, as in production.
type node struct {
	e    *engine.Engine
	d    *testdriver.Driver
	w    *waiter
	l    *core.Label
	stop func()
}

func startNode(tb testing.TB, st store.Store, cfg string, workers int) *node {
	tb.Helper()
	d := testdriver.New("test")
	if err := d.Prepare(context.Background(), []byte(cfg)); err != nil {
		tb.Fatal(err)
	}
	w := newWaiter()
	e, err := engine.New(engine.Options{
		Store: st, Drivers: map[string]driver.Driver{"test": d}, Clock: clock.Real{}, NodeName: "bench",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AllocationRetry: 3,
		CleanupInterval: time.Hour, Workers: workers, OnState: w.onState,
	})
	if err != nil {
		tb.Fatal(err)
	}
	l := &core.Label{Name: "bench", Version: 1, Definitions: []core.Definition{{Driver: "test"}}}
	if err := e.CreateLabel(context.Background(), l); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	n := &node{e: e, d: d, w: w, l: l}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("Run: %v", err)
			}
		})
	}
	return n
}

func TestRunOnRealTimers(t *testing.T) {
	st := storetest.OpenSQLite(t)
	n := startNode(t, st, `{}`, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := &core.Application{LabelUID: n.l.UID}
	if err := n.e.CreateApplication(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := n.w.wait(ctx, a.UID, core.StatusAllocated); err != nil {
		t.Fatal(err)
	}
	if err := n.e.Deallocate(ctx, a.UID); err != nil {
		t.Fatal(err)
	}
	if err := n.w.wait(ctx, a.UID, core.StatusDeallocated); err != nil {
		t.Fatal(err)
	}
	n.stop()
	if live := n.d.Live(); len(live) != 0 {
		t.Fatalf("leak: %v", live)
	}
}

// churn creates n applications from 32 goroutines while Run allocates them,
// then deallocates them all concurrently, and checks that none was lost,
// duplicated or left behind.
func churn(tb testing.TB, st store.Store, n int) time.Duration {
	tb.Helper()
	nd := startNode(tb, st, `{}`, 128)
	defer nd.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	uids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	work := func(f func(i int) error) {
		for g := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < n; i += 32 {
					if err := f(i); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	work(func(i int) error {
		a := &core.Application{LabelUID: nd.l.UID}
		uids[i] = a.UID
		if err := nd.e.CreateApplication(ctx, a); err != nil {
			return err
		}
		uids[i] = a.UID
		return nil
	})
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
	if err := nd.w.waitCount(ctx, core.StatusAllocated, n); err != nil {
		tb.Fatal(err)
	}
	work(func(i int) error { return nd.e.Deallocate(ctx, uids[i]) })
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
	if err := nd.w.waitCount(ctx, core.StatusDeallocated, n); err != nil {
		tb.Fatal(err)
	}
	total := time.Since(start)
	if err := nd.e.WaitIdle(ctx); err != nil { // the workers' last bookkeeping
		tb.Fatal(err)
	}
	nd.stop()

	// Zero lost, duplicated or stuck.
	if live := nd.d.Live(); len(live) != 0 {
		tb.Fatalf("%d resources left in the driver", len(live))
	}
	if s := nd.d.Stats(); s.Allocations != n || s.Deallocations != n {
		tb.Fatalf("driver stats %+v for %d applications", s, n)
	}
	if res, err := st.ListResources(ctx, ""); err != nil || len(res) != 0 {
		tb.Fatalf("%d resource records left (%v)", len(res), err)
	}
	active, err := st.ListByStatus(ctx, 0, core.StatusNew, core.StatusElected, core.StatusAllocated, core.StatusDeallocate, core.StatusError)
	if err != nil || len(active) != 0 {
		tb.Fatalf("%d applications not DEALLOCATED (%v)", len(active), err)
	}
	done, err := st.ListByStatus(ctx, 0, core.StatusDeallocated)
	if err != nil || len(done) != n {
		tb.Fatalf("%d DEALLOCATED applications, want %d (%v)", len(done), n, err)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		states, err := st.ListStates(ctx, uids[i])
		if err != nil {
			tb.Fatal(err)
		}
		var got []core.Status
		for _, s := range states {
			got = append(got, s.Status)
		}
		if !equalStatuses(got, core.StatusNew, core.StatusElected, core.StatusAllocated, core.StatusDeallocate, core.StatusDeallocated) {
			tb.Fatalf("history of %s: %v", uids[i], got)
		}
	}
	return total
}

func TestConcurrentChurn(t *testing.T) {
	n := 200
	if raceEnabled {
		n = 60 // the race detector slows the pure-Go SQLite down ~10x
	}
	t.Run("sqlite", func(t *testing.T) { churn(t, storetest.OpenSQLite(t), n) })
	t.Run("postgres", func(t *testing.T) { churn(t, storetest.OpenPostgres(t), n) })
}

// BenchmarkCreateToAllocated measures Create -> ALLOCATED through Run on
// real timers, SQLite, the test driver: one application at a time.
func BenchmarkCreateToAllocated(b *testing.B) {
	st := storetest.OpenSQLite(b)
	nd := startNode(b, st, `{}`, 0)
	defer nd.stop()
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		a := &core.Application{LabelUID: nd.l.UID}
		if err := nd.e.CreateApplication(ctx, a); err != nil {
			b.Fatal(err)
		}
		if err := nd.w.wait(ctx, a.UID, core.StatusAllocated); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// Benchmark10kApplications creates, allocates and deallocates 10,000
// applications concurrently (run with -benchtime=1x).
func Benchmark10kApplications(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				var st store.Store
				if backend == "sqlite" {
					st = storetest.OpenSQLite(b)
				} else {
					st = storetest.OpenPostgres(b)
				}
				b.StartTimer()
				total := churn(b, st, 10000)
				b.ReportMetric(total.Seconds(), "total-s")
			}
		})
	}
}

// Run waits on real timers for deadlines of a clock.Scaled: a one-hour
// lifetime at 7200x ends after about half a second of wall time.
func TestRunLifetimeOnScaledClock(t *testing.T) {
	st := storetest.OpenSQLite(t)
	d := testdriver.New("test")
	if err := d.Prepare(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	w := newWaiter()
	e, err := engine.New(engine.Options{
		Store: st, Drivers: map[string]driver.Driver{"test": d}, Clock: clock.NewScaled(t0, 7200), NodeName: "n",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), OnState: w.onState,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := &core.Label{Name: "short", Version: 1, Definitions: []core.Definition{{Driver: "test", Resources: core.Resources{Lifetime: "1h"}}}}
	if err := e.CreateLabel(ctx, l); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	a := &core.Application{LabelUID: l.UID}
	if err := e.CreateApplication(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := w.wait(ctx, a.UID, core.StatusDeallocated); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	states, err := st.ListStates(ctx, a.UID)
	if err != nil {
		t.Fatal(err)
	}
	if got := states[3].Description; got != "lifetime ended" {
		t.Fatalf("DEALLOCATE reason %q, want lifetime ended", got)
	}
}

// Deadlines and retries armed by workers reach Run's timer at once (not at
// the next sweep, which is an hour away here).
func TestRunPicksUpWorkerTimers(t *testing.T) {
	st := storetest.OpenSQLite(t)
	d := testdriver.New("test")
	if err := d.Prepare(context.Background(), []byte(`{"fail_next":1}`)); err != nil {
		t.Fatal(err)
	}
	w := newWaiter()
	e, err := engine.New(engine.Options{
		Store: st, Drivers: map[string]driver.Driver{"test": d}, NodeName: "n", AllocationRetry: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), OnState: w.onState,
		RetryBackoff: 20 * time.Millisecond, SweepInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := &core.Label{Name: "short", Version: 1, Definitions: []core.Definition{{Driver: "test", Resources: core.Resources{Lifetime: "300ms"}}}}
	if err := e.CreateLabel(ctx, l); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	a := &core.Application{LabelUID: l.UID}
	if err := e.CreateApplication(ctx, a); err != nil {
		t.Fatal(err)
	}
	// First attempt fails, the retry (after 20ms) allocates, the lifetime ends it.
	if err := w.wait(ctx, a.UID, core.StatusDeallocated); err != nil {
		t.Fatal(err)
	}
	if s := d.Stats(); s.AllocateCalls != 2 || s.Deallocations != 1 {
		t.Fatalf("driver stats %+v", s)
	}
}
