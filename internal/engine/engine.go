// Package engine runs the application lifecycle of a node (SPEC §2):
// NEW -> ELECTED -> ALLOCATED -> DEALLOCATE -> DEALLOCATED, or ERROR.
//
// Every state change is a compare-and-set through the store, so a
// Deallocate racing an allocation, or two nodes sharing one database, can
// never lose an update or leak a resource. The engine is a reconciler: one
// pass (Reconcile) looks at what needs doing, starts per-application workers
// (bounded by a semaphore) for driver calls, and says when it wants to run
// next. Run drives passes on real timers and on Wake signals; tests and the
// simulator call Reconcile/Settle with a *clock.Virtual. The engine reads
// time only through Options.Clock.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// Errors the API maps to status codes. Validation failures are
// *ValidationError values, which match ErrInvalidArgument with errors.Is.
var (
	// ErrInvalidArgument: the request is malformed (field named in the message).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrFailedPrecondition: the request is well formed but the current state
	// forbids it (deallocating a dead application, removing a label in use).
	ErrFailedPrecondition = errors.New("failed precondition")
)

// ValidationError names the field of a rejected request. It matches
// ErrInvalidArgument and unwraps to its cause (e.g. store.ErrNotFound for an
// unknown label).
type ValidationError struct {
	Field  string
	Reason string
	Err    error
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Is makes a ValidationError match ErrInvalidArgument.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidArgument }

// Unwrap returns the cause, if any.
func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Options configure an Engine.
type Options struct {
	Store store.Store
	// Drivers are the prepared driver instances by instance name ("aws", "aws/prod").
	Drivers map[string]driver.Driver
	// Clock is the only source of time for decisions (default clock.Real).
	Clock    clock.Clock
	NodeName string
	Logger   *slog.Logger // default slog.Default()

	// DefaultLifetime applies when a definition's resources.lifetime is "" or
	// "0"; <= 0 means no timeout.
	DefaultLifetime time.Duration
	// AllocationRetry is the number of extra allocation attempts after the
	// first failure before the application goes to ERROR.
	AllocationRetry int
	// CleanupInterval: dead applications older than this are purged (<= 0 disables).
	CleanupInterval time.Duration
	// LabelRemoveAtMin/Max bound remove_at of temporary (version 0) labels.
	LabelRemoveAtMin, LabelRemoveAtMax time.Duration

	// NodeIdentifiers describe this node; a definition with
	// resources.node_filter is served only if every filter (a path.Match
	// pattern) matches one of them.
	NodeIdentifiers []string
	// SlotsLimit caps the slots (definition resources.slots, default 1) of
	// the resources this node holds or is allocating; 0 = no limit.
	SlotsLimit uint

	// Workers bounds the concurrent driver operations (default 128).
	Workers int
	// RetryBackoff is the first delay before retrying a failed allocation or
	// deallocation and the first capacity re-check; it doubles up to
	// MaxBackoff (defaults 1s and 1m).
	RetryBackoff, MaxBackoff time.Duration
	// SweepInterval is how often the engine looks for work it may have missed
	// (other nodes' requests, cleanup, temporary labels); default 30s.
	SweepInterval time.Duration
	// OnState, when set, is called after every state the engine records
	// (metrics, tests, benchmarks). It must not block.
	OnState func(appUID string, status core.Status)
}

// Engine runs the lifecycle. Its methods are safe for concurrent use.
type Engine struct {
	opts    Options
	st      store.Store
	clk     clock.Clock
	log     *slog.Logger
	drivers map[string]driver.Driver

	wake         chan struct{}
	sem          chan struct{}
	maintenance  atomic.Bool
	launched     atomic.Int64 // workers ever started (Settle)
	housekeeping atomic.Bool  // cleanup / temporary labels running

	passMu sync.Mutex // one Reconcile pass at a time

	mu            sync.Mutex
	busy          map[string]bool      // app uid -> a worker owns it
	dirty         map[string]bool      // apps to drive on the next pass
	verify        map[string]bool      // apps whose resource must be checked with driver.Status
	retryAt       map[string]time.Time // app -> next worker attempt (deallocation retries)
	queueAt       map[string]time.Time // NEW app -> next allocation attempt
	failures      map[string]int       // consecutive failures of a step or capacity shortages (backoff)
	startDef      map[string]int       // rotation: first definition to try for a NEW app
	pending       map[string]int64     // in-flight allocations per driver instance
	pendingSlots  int64                // slots of the in-flight allocations
	deadlines     deadlineHeap
	labels        map[string]*core.Label // immutable (version >= 1) labels
	capBackoff    time.Duration
	capRetryAt    time.Time
	nextSweep     time.Time
	labelRemoveAt time.Time // earliest known remove_at of a temporary label
	inflight      int
	idle          chan struct{} // closed when inflight drops to 0
}

// New checks opts and returns an engine. It does not start anything: call
// Run (which recovers first), or Recover and Reconcile/Settle yourself.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, errors.New("engine: Store is required")
	}
	if strings.TrimSpace(opts.NodeName) == "" {
		return nil, errors.New("engine: NodeName is required")
	}
	if opts.AllocationRetry < 0 {
		return nil, fmt.Errorf("engine: allocation_retry: must be >= 0, got %d", opts.AllocationRetry)
	}
	if opts.LabelRemoveAtMin < 0 || opts.LabelRemoveAtMax < 0 || (opts.LabelRemoveAtMax > 0 && opts.LabelRemoveAtMin > opts.LabelRemoveAtMax) {
		return nil, fmt.Errorf("engine: label_remove_at_min (%s) / label_remove_at_max (%s): need 0 <= min <= max",
			opts.LabelRemoveAtMin, opts.LabelRemoveAtMax)
	}
	for name, d := range opts.Drivers {
		if d == nil {
			return nil, fmt.Errorf("engine: driver %q is nil", name)
		}
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Workers <= 0 {
		opts.Workers = 128
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = time.Second
	}
	if opts.MaxBackoff < opts.RetryBackoff {
		opts.MaxBackoff = max(time.Minute, opts.RetryBackoff)
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = 30 * time.Second
	}
	drivers := make(map[string]driver.Driver, len(opts.Drivers))
	for k, v := range opts.Drivers {
		drivers[k] = v
	}
	idle := make(chan struct{})
	close(idle)
	return &Engine{
		opts:       opts,
		st:         opts.Store,
		clk:        opts.Clock,
		log:        opts.Logger.With("node", opts.NodeName),
		drivers:    drivers,
		wake:       make(chan struct{}, 1),
		sem:        make(chan struct{}, opts.Workers),
		busy:       map[string]bool{},
		dirty:      map[string]bool{},
		verify:     map[string]bool{},
		retryAt:    map[string]time.Time{},
		queueAt:    map[string]time.Time{},
		failures:   map[string]int{},
		startDef:   map[string]int{},
		pending:    map[string]int64{},
		labels:     map[string]*core.Label{},
		capBackoff: opts.RetryBackoff,
		idle:       idle,
	}, nil
}

// NodeName is the name this engine claims applications as.
func (e *Engine) NodeName() string { return e.opts.NodeName }

// Wake asks for a reconcile pass soon (something changed). It never blocks.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// SetMaintenance stops (on) or resumes (off) taking NEW applications. Work
// on applications already taken continues.
func (e *Engine) SetMaintenance(on bool) {
	e.maintenance.Store(on)
	if !on {
		e.Wake()
	}
	e.log.Info("maintenance mode", "on", on)
}

// Maintenance reports whether the engine is in maintenance mode.
func (e *Engine) Maintenance() bool { return e.maintenance.Load() }

// Run recovers, then reconciles until ctx is done: after every pass it
// waits for the pass's next wake-up time or a Wake, on real timers (a
// clock with a Factor() method, such as clock.Scaled, shortens the waits).
// When ctx is done it waits for running workers and returns nil.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.Recover(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("engine: recover: %w", err)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next, err := e.Reconcile(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			e.log.Error("reconcile failed", "err", err)
			next = e.clk.Now().Add(e.opts.RetryBackoff)
		}
		timer.Reset(e.wallDelay(next))
		select {
		case <-ctx.Done():
		case <-e.wake:
		case <-timer.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	// Workers stop with ctx; wait so nothing runs after Run returns.
	_ = e.WaitIdle(context.Background())
	return nil
}

// wallDelay converts the wait until next (on the engine clock) to wall time.
func (e *Engine) wallDelay(next time.Time) time.Duration {
	if next.IsZero() {
		return time.Hour
	}
	d := next.Sub(e.clk.Now())
	if f, ok := e.clk.(interface{ Factor() float64 }); ok && f.Factor() > 0 {
		d = time.Duration(float64(d) / f.Factor())
	}
	if d < 0 {
		d = 0
	}
	return d
}

// WaitIdle blocks until no worker is running or ctx is done.
func (e *Engine) WaitIdle(ctx context.Context) error {
	e.mu.Lock()
	ch := e.idle
	e.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Settle runs passes and waits for their workers until a pass starts no
// new work; it returns the next wake-up time. Tests and the simulator use
// it with a virtual clock: Settle, advance the clock to next, Settle again.
func (e *Engine) Settle(ctx context.Context) (time.Time, error) {
	for {
		before := e.launched.Load()
		next, err := e.Reconcile(ctx)
		if err != nil {
			return next, err
		}
		if err := e.WaitIdle(ctx); err != nil {
			return next, err
		}
		e.mu.Lock()
		more := len(e.dirty) > 0
		e.mu.Unlock()
		if e.launched.Load() == before && !more {
			return next, nil
		}
	}
}

// markDirty asks the next pass to drive app.
func (e *Engine) markDirty(uid string) {
	e.mu.Lock()
	e.dirty[uid] = true
	e.mu.Unlock()
}

// tryBusy marks app as owned by a worker; false if one already owns it.
// The caller must e.mu.Lock.
func (e *Engine) tryBusyLocked(uid string) bool {
	if e.busy[uid] {
		return false
	}
	e.busy[uid] = true
	e.inflight++
	if e.inflight == 1 {
		e.idle = make(chan struct{})
	}
	return true
}

// release ends a worker's ownership of app and wakes the loop: the worker
// may have armed a deadline or a retry, freed capacity or left the
// application dirty, all of which change what the next pass does or when.
func (e *Engine) release(uid string) {
	e.mu.Lock()
	delete(e.busy, uid)
	e.inflight--
	if e.inflight == 0 {
		close(e.idle)
	}
	e.mu.Unlock()
	e.Wake()
}

// transition is store.Transition plus logging and the OnState hook.
func (e *Engine) transition(ctx context.Context, uid string, from, to core.Status, desc string) error {
	if err := e.st.Transition(ctx, uid, from, to, desc); err != nil {
		return err
	}
	e.log.Debug("application state", "app", uid, "from", from, "to", to)
	if e.opts.OnState != nil {
		e.opts.OnState(uid, to)
	}
	return nil
}

// backoff returns RetryBackoff doubled n-1 times, capped at MaxBackoff.
func (e *Engine) backoff(n int) time.Duration {
	d := e.opts.RetryBackoff
	for i := 1; i < n && d < e.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, e.opts.MaxBackoff)
}

// driverNames lists the configured driver instances (for error messages).
func (e *Engine) driverNames() string {
	names := make([]string, 0, len(e.drivers))
	for k := range e.drivers {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// label returns a label, from the cache for immutable versions.
func (e *Engine) label(ctx context.Context, uid string) (*core.Label, error) {
	e.mu.Lock()
	l := e.labels[uid]
	e.mu.Unlock()
	if l != nil {
		return l, nil
	}
	l, err := e.st.GetLabel(ctx, uid)
	if err != nil {
		return nil, err
	}
	if l.Version >= 1 {
		e.mu.Lock()
		e.labels[uid] = l
		e.mu.Unlock()
	}
	return l, nil
}
