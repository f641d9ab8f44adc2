// Package testdriver is the "test" driver: an in-memory resource provider
// for core and engine tests, demos and benchmarks. It is configurable
// (capacity, failures, delays), records what it was asked to do, and keeps
// its own resource table so Status answers like a real cloud would, also
// across an engine restart that reuses the same driver instance.
package testdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

// Kind is the registered driver kind.
const Kind = "test"

func init() {
	driver.Register(Kind, func(name string) driver.Driver { return New(name) })
}

// Config is the JSON configuration of the test driver. Every field is optional.
type Config struct {
	// Capacity is the total number of resources the driver can hold at once;
	// 0 means unlimited.
	Capacity int64 `json:"capacity"`
	// FailProbability is the chance (0..1) that an allocation fails.
	FailProbability float64 `json:"fail_probability"`
	// FailNext makes the next N allocations fail.
	FailNext int `json:"fail_next"`
	// Seed seeds the random source used by FailProbability (0 = fixed default).
	Seed uint64 `json:"seed"`
	// AllocateDelay and DeallocateDelay simulate cloud latency ("1s", "2m").
	AllocateDelay core.Duration `json:"allocate_delay"`
	// DeallocateDelay: see AllocateDelay.
	DeallocateDelay core.Duration `json:"deallocate_delay"`
}

// Options are the driver-specific options of a label definition.
type Options struct {
	// Fail makes every allocation of this definition fail.
	Fail bool `json:"fail,omitempty"`
	// FailMessage is the error text of such a failure.
	FailMessage string `json:"fail_message,omitempty"`
	// Image names the image the definition boots; image_delete reports it.
	Image string `json:"image,omitempty"`
}

// Hooks let tests block or fail the driver at precise points. A hook that
// returns an error makes the operation fail with it.
type Hooks struct {
	// BeforeAllocate runs before anything is created.
	BeforeAllocate func(ctx context.Context, req driver.AllocateRequest) error
	// AfterAllocate runs after the resource exists in the driver's table,
	// before Allocate returns it (an error here undoes the resource).
	AfterAllocate func(ctx context.Context, res core.Resource) error
	// BeforeDeallocate runs before a resource is removed.
	BeforeDeallocate func(ctx context.Context, res core.Resource) error
}

// TaskCall records one executed task.
type TaskCall struct {
	Task           string          `json:"task"`
	ApplicationUID string          `json:"application_uid,omitempty"`
	Identifier     string          `json:"identifier,omitempty"`
	When           core.Status     `json:"when,omitempty"`
	Options        json.RawMessage `json:"options,omitempty"`
	Image          string          `json:"image,omitempty"`
}

// Stats counts the driver's calls.
type Stats struct {
	Allocations        int // successful Allocate calls that created a resource
	AllocateCalls      int // every Allocate call
	AllocateFailures   int
	Deallocations      int // resources actually removed
	DeallocateCalls    int // every Deallocate call
	DeallocateFailures int
	StatusCalls        int
}

// Driver is the test driver. It is safe for concurrent use.
type Driver struct {
	name string

	mu        sync.Mutex
	cfg       Config
	clk       clock.Clock
	rnd       *rand.Rand
	failNext  int
	failDeall int
	hooks     Hooks
	seq       int
	table     map[string]core.Resource // by application uid
	tasks     []TaskCall
	stats     Stats
}

// New returns an unconfigured test driver named name (call Prepare to configure).
func New(name string) *Driver {
	return &Driver{
		name:  name,
		clk:   clock.Real{},
		rnd:   rand.New(rand.NewPCG(1, 2)),
		table: map[string]core.Resource{},
	}
}

// Name returns the instance name.
func (d *Driver) Name() string { return d.name }

// Prepare parses the JSON config. Unknown keys and bad values are errors
// naming the key.
func (d *Driver) Prepare(_ context.Context, cfg []byte) error {
	var c Config
	if len(bytes.TrimSpace(cfg)) > 0 && string(bytes.TrimSpace(cfg)) != "null" {
		dec := json.NewDecoder(bytes.NewReader(cfg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return fmt.Errorf("test driver %q config: %w", d.name, err)
		}
	}
	switch {
	case c.Capacity < 0:
		return fmt.Errorf("test driver %q config: capacity: must be >= 0", d.name)
	case c.FailProbability < 0 || c.FailProbability > 1:
		return fmt.Errorf("test driver %q config: fail_probability: must be between 0 and 1", d.name)
	case c.FailNext < 0:
		return fmt.Errorf("test driver %q config: fail_next: must be >= 0", d.name)
	case c.AllocateDelay < 0:
		return fmt.Errorf("test driver %q config: allocate_delay: must not be negative", d.name)
	case c.DeallocateDelay < 0:
		return fmt.Errorf("test driver %q config: deallocate_delay: must not be negative", d.name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg = c
	d.failNext = c.FailNext
	seed := c.Seed
	if seed == 0 {
		seed = 1
	}
	d.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return nil
}

// SetClock sets the clock used for delays (a clock.Scaled shortens them).
func (d *Driver) SetClock(c clock.Clock) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c == nil {
		c = clock.Real{}
	}
	d.clk = c
}

// SetHooks installs test hooks (zero Hooks removes them).
func (d *Driver) SetHooks(h Hooks) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hooks = h
}

// SetCapacity changes the total capacity (0 = unlimited).
func (d *Driver) SetCapacity(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg.Capacity = n
}

// FailNextAllocations makes the next n allocations fail.
func (d *Driver) FailNextAllocations(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failNext = n
}

// FailNextDeallocations makes the next n deallocations fail.
func (d *Driver) FailNextDeallocations(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failDeall = n
}

// Forget drops a resource from the table as if the cloud lost it.
func (d *Driver) Forget(appUID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.table, appUID)
}

// Live returns the application uids that currently hold a resource, sorted.
func (d *Driver) Live() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.table))
	for k := range d.table {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TaskCalls returns a copy of the executed tasks, in order.
func (d *Driver) TaskCalls() []TaskCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]TaskCall(nil), d.tasks...)
}

// Stats returns the call counters.
func (d *Driver) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

func parseOptions(raw json.RawMessage) (Options, error) {
	var o Options
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return o, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return o, fmt.Errorf("options: must be an object")
	}
	for k, v := range fields {
		var err error
		switch k {
		case "fail":
			err = json.Unmarshal(v, &o.Fail)
		case "fail_message":
			err = json.Unmarshal(v, &o.FailMessage)
		case "image":
			err = json.Unmarshal(v, &o.Image)
		default:
			return o, fmt.Errorf("options.%s: unknown option (known: fail, fail_message, image)", k)
		}
		if err != nil {
			return o, fmt.Errorf("options.%s: invalid value %s", k, v)
		}
	}
	return o, nil
}

// ValidateDefinition checks the definition options and resources.
func (d *Driver) ValidateDefinition(def core.Definition) error {
	if _, err := parseOptions(def.Options); err != nil {
		return err
	}
	if def.Resources.Slots != nil && *def.Resources.Slots == 0 {
		return errors.New("resources.slots: must be at least 1 when set")
	}
	for path, disk := range def.Resources.Disks {
		if path == "" {
			return errors.New("resources.disks: disk path must not be empty")
		}
		if disk.Size == 0 && disk.Clone == "" && !disk.Reuse {
			return fmt.Errorf("resources.disks.%s.size: must be set for a new disk", path)
		}
	}
	return nil
}

// AvailableCapacity is the free part of the configured capacity.
func (d *Driver) AvailableCapacity(_ context.Context, _ core.Definition) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cfg.Capacity == 0 {
		return 1 << 30, nil
	}
	free := d.cfg.Capacity - int64(len(d.table))
	if free < 0 {
		free = 0
	}
	return free, nil
}

// wait blocks for delay on the driver's clock (a clock.Scaled shortens it).
func (d *Driver) wait(ctx context.Context, delay time.Duration) error {
	if delay <= 0 {
		return nil
	}
	d.mu.Lock()
	clk := d.clk
	d.mu.Unlock()
	if s, ok := clk.(interface{ Factor() float64 }); ok && s.Factor() > 0 {
		delay = time.Duration(float64(delay) / s.Factor())
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Allocate creates a resource, or returns the existing one for the same
// application (idempotent by ApplicationUID).
func (d *Driver) Allocate(ctx context.Context, req driver.AllocateRequest) (*core.Resource, error) {
	if req.ApplicationUID == "" {
		return nil, errors.New("test driver: allocate: empty application uid")
	}
	opts, err := parseOptions(req.Definition.Options)
	if err != nil {
		return nil, fmt.Errorf("test driver: allocate: %w", err)
	}
	d.mu.Lock()
	d.stats.AllocateCalls++
	hooks := d.hooks
	delay := d.cfg.AllocateDelay.D()
	if res, ok := d.table[req.ApplicationUID]; ok {
		d.mu.Unlock()
		return &res, nil
	}
	d.mu.Unlock()

	fail := func(err error) (*core.Resource, error) {
		d.mu.Lock()
		d.stats.AllocateFailures++
		d.mu.Unlock()
		return nil, err
	}
	if hooks.BeforeAllocate != nil {
		if err := hooks.BeforeAllocate(ctx, req); err != nil {
			return fail(err)
		}
	}
	if err := d.wait(ctx, delay); err != nil {
		return fail(err)
	}
	if opts.Fail {
		msg := opts.FailMessage
		if msg == "" {
			msg = "definition configured to fail"
		}
		return fail(fmt.Errorf("test driver: %s", msg))
	}

	d.mu.Lock()
	if res, ok := d.table[req.ApplicationUID]; ok { // a concurrent call won
		d.mu.Unlock()
		return &res, nil
	}
	if d.failNext > 0 {
		d.failNext--
		d.stats.AllocateFailures++
		d.mu.Unlock()
		return nil, errors.New("test driver: injected allocation failure")
	}
	if d.cfg.FailProbability > 0 && d.rnd.Float64() < d.cfg.FailProbability {
		d.stats.AllocateFailures++
		d.mu.Unlock()
		return nil, errors.New("test driver: random allocation failure")
	}
	if d.cfg.Capacity > 0 && int64(len(d.table)) >= d.cfg.Capacity {
		d.stats.AllocateFailures++
		d.mu.Unlock()
		return nil, fmt.Errorf("test driver: %d of %d slots used: %w", len(d.table), d.cfg.Capacity, driver.ErrCapacity)
	}
	d.seq++
	n := d.seq
	res := core.Resource{
		ApplicationUID: req.ApplicationUID,
		Identifier:     fmt.Sprintf("test-%06d", n),
		IPAddr:         fmt.Sprintf("10.%d.%d.%d", (n>>16)&0xff, (n>>8)&0xff, n&0xff),
		HwAddr:         fmt.Sprintf("02:00:00:%02x:%02x:%02x", (n>>16)&0xff, (n>>8)&0xff, n&0xff),
		Authentication: req.Definition.Authentication,
	}
	d.table[req.ApplicationUID] = res
	d.stats.Allocations++
	d.mu.Unlock()

	if hooks.AfterAllocate != nil {
		if err := hooks.AfterAllocate(ctx, res); err != nil {
			// Leave nothing behind on failure.
			d.mu.Lock()
			delete(d.table, req.ApplicationUID)
			d.stats.AllocateFailures++
			d.mu.Unlock()
			return nil, err
		}
	}
	return &res, nil
}

// Status reports whether the resource is in the table.
func (d *Driver) Status(_ context.Context, res core.Resource) (driver.ResourceStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.StatusCalls++
	if cur, ok := d.table[res.ApplicationUID]; ok && (res.Identifier == "" || res.Identifier == cur.Identifier) {
		return driver.StatusAllocated, nil
	}
	return driver.StatusNone, nil
}

// Deallocate removes the resource. Removing a resource that is already gone
// succeeds (idempotent).
func (d *Driver) Deallocate(ctx context.Context, res core.Resource) error {
	d.mu.Lock()
	d.stats.DeallocateCalls++
	hooks := d.hooks
	delay := d.cfg.DeallocateDelay.D()
	d.mu.Unlock()
	if hooks.BeforeDeallocate != nil {
		if err := hooks.BeforeDeallocate(ctx, res); err != nil {
			d.mu.Lock()
			d.stats.DeallocateFailures++
			d.mu.Unlock()
			return err
		}
	}
	if err := d.wait(ctx, delay); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failDeall > 0 {
		d.failDeall--
		d.stats.DeallocateFailures++
		return errors.New("test driver: injected deallocation failure")
	}
	if cur, ok := d.table[res.ApplicationUID]; ok && (res.Identifier == "" || res.Identifier == cur.Identifier) {
		delete(d.table, res.ApplicationUID)
		d.stats.Deallocations++
	}
	return nil
}

// Task returns the "snapshot", "image" or "image_delete" task.
func (d *Driver) Task(name string, options []byte) (driver.Task, error) {
	switch name {
	case "snapshot", "image", "image_delete":
	default:
		return nil, driver.ErrTaskNotAvailable
	}
	if len(bytes.TrimSpace(options)) > 0 && !json.Valid(options) {
		return nil, fmt.Errorf("task %s: options: invalid JSON", name)
	}
	return &task{d: d, name: name, options: append(json.RawMessage(nil), options...)}, nil
}

type task struct {
	d       *Driver
	name    string
	options json.RawMessage
}

func (t *task) Name() string { return t.name }

// Execute records the call and returns a result shaped like the AWS driver's.
func (t *task) Execute(_ context.Context, target driver.TaskTarget) (json.RawMessage, error) {
	opts, _ := parseOptions(target.Definition.Options)
	call := TaskCall{
		Task:           t.name,
		ApplicationUID: target.Resource.ApplicationUID,
		Identifier:     target.Resource.Identifier,
		When:           target.When,
		Options:        t.options,
		Image:          opts.Image,
	}
	d := t.d
	d.mu.Lock()
	d.tasks = append(d.tasks, call)
	n := len(d.tasks)
	if t.name != "image_delete" {
		if _, ok := d.table[target.Resource.ApplicationUID]; !ok {
			d.mu.Unlock()
			return nil, fmt.Errorf("task %s: resource %q not found", t.name, target.Resource.Identifier)
		}
	}
	d.mu.Unlock()
	switch t.name {
	case "snapshot":
		return json.Marshal(map[string]any{"snapshots": []string{fmt.Sprintf("snap-test-%06d", n)}})
	case "image":
		return json.Marshal(map[string]any{"image": fmt.Sprintf("ami-test-%06d", n), "image_name": fmt.Sprintf("%s-%06d", opts.Image, n)})
	default:
		return json.Marshal(map[string]any{"deleted": opts.Image})
	}
}
