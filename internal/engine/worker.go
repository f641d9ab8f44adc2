package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
	"github.com/aquarium-fish/aquarium-fish/internal/meta"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// Workers own one application at a time (Engine.busy) and are the only
// place the engine calls drivers for it. A worker never holds a store
// transaction across a driver call: every step is "read state, call the
// driver, compare-and-set the outcome".

// allocDone ends the in-flight accounting of a claim.
func (e *Engine) allocDone(c *claim) {
	def := c.label.Definitions[c.defIdx]
	e.mu.Lock()
	e.pending[def.Driver]--
	if e.pending[def.Driver] <= 0 {
		delete(e.pending, def.Driver)
	}
	e.pendingSlots -= slotsOf(def)
	e.mu.Unlock()
}

// allocStart starts the in-flight accounting of a claim.
func (e *Engine) allocStart(c *claim) {
	def := c.label.Definitions[c.defIdx]
	e.mu.Lock()
	e.pending[def.Driver]++
	e.pendingSlots += slotsOf(def)
	e.mu.Unlock()
}

// slotsOf is the number of node slots a definition takes (default 1).
func slotsOf(def core.Definition) int64 {
	if def.Resources.Slots != nil {
		return int64(*def.Resources.Slots)
	}
	return 1
}

// nodeMatches reports whether this node may serve def: every node_filter
// pattern must match one of the node identifiers.
func (e *Engine) nodeMatches(def core.Definition) bool {
	for _, pattern := range def.Resources.NodeFilter {
		ok := false
		for _, id := range e.opts.NodeIdentifiers {
			if m, err := path.Match(pattern, id); err == nil && m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// slotsInUse sums the slots of this node's resources plus the in-flight
// allocations (a resource saved by a still running allocation counts twice
// for a moment, which only errs on the safe side).
func (e *Engine) slotsInUse(ctx context.Context, labels map[string]*core.Label) (int64, error) {
	// In-flight first: an allocation finishing in between is then counted
	// twice, never not at all.
	e.mu.Lock()
	used := e.pendingSlots
	e.mu.Unlock()
	resources, err := e.st.ListResources(ctx, e.opts.NodeName)
	if err != nil {
		return 0, fmt.Errorf("slots in use: %w", err)
	}
	for _, r := range resources {
		l, ok := labels[r.LabelUID]
		if !ok {
			if l, err = e.label(ctx, r.LabelUID); err != nil {
				used++ // unknown label: count the default
				continue
			}
			labels[r.LabelUID] = l
		}
		if r.DefinitionIndex >= 0 && r.DefinitionIndex < len(l.Definitions) {
			used += slotsOf(l.Definitions[r.DefinitionIndex])
		} else {
			used++
		}
	}
	return used, nil
}

// retryLater schedules another worker run for app with backoff.
func (e *Engine) retryLater(uid string) {
	e.mu.Lock()
	e.failures[uid]++
	n := e.failures[uid]
	e.retryAt[uid] = e.clk.Now().Add(e.backoff(n))
	e.mu.Unlock()
}

// lifetimeDeadline turns a definition's resources.lifetime into an absolute
// deadline: "" or "0" = DefaultLifetime, negative = none.
func (e *Engine) lifetimeDeadline(def core.Definition, now time.Time) (*time.Time, error) {
	d, err := core.ParseDuration(def.Resources.Lifetime)
	if err != nil {
		return nil, fmt.Errorf("resources.lifetime: %w", err)
	}
	if d == 0 {
		d = e.opts.DefaultLifetime
	}
	if d <= 0 {
		return nil, nil
	}
	t := now.Add(d)
	return &t, nil
}

// allocate asks the driver for the resource of a claimed (ELECTED)
// application and records the outcome. When the application became
// ALLOCATED it returns its resource (the caller runs the tasks); nil means
// step() must look at the state.
func (e *Engine) allocate(ctx context.Context, c *claim) (allocated *core.Resource) {
	defer e.allocDone(c)
	uid := c.app.UID
	def := c.label.Definitions[c.defIdx]
	log := e.log.With("app", uid, "label", c.label.UID, "definition", c.defIdx, "driver", def.Driver)
	drv := e.drivers[def.Driver]
	if drv == nil {
		e.allocFailed(ctx, c, fmt.Errorf("driver %q is not configured on node %s", def.Driver, e.opts.NodeName))
		return nil
	}
	md, err := meta.Merge(c.app.Metadata, c.label.Metadata)
	if err != nil {
		e.failClaim(ctx, uid, fmt.Sprintf("metadata: %v", err))
		return nil
	}
	if _, err := e.lifetimeDeadline(def, e.clk.Now()); err != nil {
		e.failClaim(ctx, uid, fmt.Sprintf("definition %d: %v", c.defIdx, err))
		return nil
	}
	res, err := drv.Allocate(ctx, driver.AllocateRequest{
		ApplicationUID: uid,
		LabelUID:       c.label.UID,
		LabelName:      c.label.Name,
		Definition:     def,
		Metadata:       md,
	})
	if err == nil && res == nil {
		err = errors.New("driver returned no resource")
	}
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted (shutdown): the application stays ELECTED and
			// recovery asks the (idempotent) driver again.
			log.Info("allocation interrupted", "err", err)
			return nil
		}
		e.allocFailed(ctx, c, err)
		return nil
	}
	// Record what the driver created even if shutdown starts now: store
	// writes are short, and an unrecorded resource would wait for recovery.
	ctx = context.WithoutCancel(ctx)
	mdJSON, err := json.Marshal(md)
	if err != nil {
		mdJSON = nil
	}
	res.ApplicationUID = uid
	res.NodeName = e.opts.NodeName
	res.LabelUID = c.label.UID
	res.DefinitionIndex = c.defIdx
	res.Metadata = mdJSON
	res.CreatedAt = e.clk.Now()
	// The lifetime counts from when the resource is there, not from the claim.
	res.Timeout, _ = e.lifetimeDeadline(def, res.CreatedAt)
	if err := e.st.SaveResource(ctx, res); err != nil {
		// Unrecorded resources must not survive: undo, then count a failure.
		if derr := drv.Deallocate(ctx, *res); derr != nil {
			log.Error("cannot undo unrecorded resource; the next attempt re-adopts it (allocation is idempotent)",
				"identifier", res.Identifier, "err", derr)
		}
		e.allocFailed(ctx, c, fmt.Errorf("save resource: %w", err))
		return nil
	}
	err = e.transition(ctx, uid, core.StatusElected, core.StatusAllocated,
		fmt.Sprintf("allocated %s on definition %d", res.Identifier, c.defIdx))
	switch {
	case err == nil:
		e.forget(uid)
		e.armDeadline(uid, res.Timeout)
		log.Info("application allocated", "identifier", res.Identifier)
		return res
	case errors.Is(err, store.ErrConflict):
		// Deallocate won the race; step() deallocates the saved resource.
		log.Info("deallocation requested during allocation", "identifier", res.Identifier)
	default:
		// The resource is recorded; step() re-adopts it after a Status check.
		log.Error("cannot record ALLOCATED", "err", err)
	}
	return nil
}

// afterAllocated runs the when=ALLOCATED tasks of a just allocated
// application (tasks created before are found here, later ones by
// CreateTask's wake-up).
func (e *Engine) afterAllocated(ctx context.Context, c *claim, res *core.Resource) {
	def := c.label.Definitions[c.defIdx]
	if err := e.runTasks(ctx, c.app.UID, res, e.drivers[def.Driver], def, core.TaskWhenAllocated); err != nil && ctx.Err() == nil {
		e.log.Error("tasks", "app", c.app.UID, "err", err)
		e.retryLater(c.app.UID)
	}
}

// failClaim moves a claimed application that cannot be allocated to
// ERROR before any driver call; if a Deallocate came first, it ends it.
func (e *Engine) failClaim(ctx context.Context, uid, why string) {
	err := e.transition(ctx, uid, core.StatusElected, core.StatusError, why)
	switch {
	case err == nil:
		e.log.Warn("application failed", "app", uid, "reason", why)
		e.forget(uid)
		e.finishTasks(ctx, uid, core.StatusError)
	case errors.Is(err, store.ErrConflict):
		e.finishUnallocated(ctx, uid, why)
	default:
		e.log.Error("cannot record ERROR", "app", uid, "err", err)
		e.retryLater(uid)
	}
}

// allocFailed records a failed allocation attempt: back to NEW with the
// next definition (rotation), to ERROR after AllocationRetry extra
// attempts, or stays NEW (queued) on a capacity shortage.
func (e *Engine) allocFailed(ctx context.Context, c *claim, cause error) {
	uid := c.app.UID
	now := e.clk.Now()
	n := len(c.label.Definitions)
	var err error
	if errors.Is(cause, driver.ErrCapacity) {
		err = e.transition(ctx, uid, core.StatusElected, core.StatusNew,
			fmt.Sprintf("queued: no capacity on definition %d: %v; %s%d", c.defIdx, cause, nextDefKey, c.defIdx))
		if err == nil {
			e.mu.Lock()
			e.startDef[uid] = c.defIdx
			e.failures[uid]++ // consecutive shortages: back off further each time
			e.queueAt[uid] = now.Add(e.backoff(e.failures[uid]))
			e.mu.Unlock()
			e.log.Info("allocation queued: no capacity", "app", uid, "definition", c.defIdx, "err", cause)
			return
		}
	} else {
		states, lerr := e.st.ListStates(ctx, uid)
		if lerr != nil {
			e.log.Error("allocation failed and its history is unreadable; retrying later", "app", uid, "err", cause, "store_err", lerr)
			e.retryLater(uid)
			return
		}
		attempt, total := countFailures(states)+1, 1+e.opts.AllocationRetry
		if attempt >= total {
			why := fmt.Sprintf("allocation failed after %d attempt(s): %v", attempt, cause)
			err = e.transition(ctx, uid, core.StatusElected, core.StatusError, why)
			if err == nil {
				e.log.Warn("application failed", "app", uid, "err", cause, "attempts", attempt)
				e.forget(uid)
				e.markDirty(uid) // finish its tasks
				return
			}
		} else {
			next := (c.defIdx + 1) % n
			err = e.transition(ctx, uid, core.StatusElected, core.StatusNew, failedDesc(c.defIdx, attempt, total, cause.Error(), next))
			if err == nil {
				e.mu.Lock()
				e.startDef[uid] = next
				e.queueAt[uid] = now.Add(e.backoff(attempt))
				e.mu.Unlock()
				e.log.Warn("allocation failed, will retry", "app", uid, "definition", c.defIdx,
					"attempt", attempt, "of", total, "err", cause)
				return
			}
		}
	}
	if errors.Is(err, store.ErrConflict) {
		// A Deallocate came while we were allocating, and nothing was
		// created (drivers leave nothing behind when they fail).
		e.finishUnallocated(ctx, uid, cause.Error())
		return
	}
	e.log.Error("cannot record allocation failure", "app", uid, "err", err)
	e.retryLater(uid)
}

// finishUnallocated ends a DEALLOCATE request for an application that
// holds no resource.
func (e *Engine) finishUnallocated(ctx context.Context, uid, why string) {
	err := e.transition(ctx, uid, core.StatusDeallocate, core.StatusDeallocated, "nothing to deallocate: "+why)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		e.log.Error("cannot record DEALLOCATED", "app", uid, "err", err)
		e.retryLater(uid)
		return
	}
	e.forget(uid)
	e.finishTasks(ctx, uid, core.StatusDeallocated)
}

// step drives an application from its current state as far as it can go
// without waiting for a request or a timer.
func (e *Engine) step(ctx context.Context, uid string) {
	if ctx.Err() != nil {
		return
	}
	cur, err := e.st.CurrentState(ctx, uid)
	if errors.Is(err, store.ErrNotFound) {
		e.forget(uid)
		return
	}
	if err != nil {
		e.log.Error("read state", "app", uid, "err", err)
		e.retryLater(uid)
		return
	}
	switch cur.Status {
	case core.StatusElected:
		e.stepElected(ctx, uid, cur)
	case core.StatusAllocated:
		e.stepAllocated(ctx, uid)
	case core.StatusDeallocate:
		e.stepDeallocate(ctx, uid)
	case core.StatusDeallocated, core.StatusError:
		e.stepDead(ctx, uid, cur.Status)
	}
}

// resourceDriver finds the driver and definition of a resource.
func (e *Engine) resourceDriver(ctx context.Context, res *core.Resource) (driver.Driver, core.Definition, error) {
	l, err := e.label(ctx, res.LabelUID)
	if err != nil {
		return nil, core.Definition{}, fmt.Errorf("label %s of resource %s: %w", res.LabelUID, res.Identifier, err)
	}
	if res.DefinitionIndex < 0 || res.DefinitionIndex >= len(l.Definitions) {
		return nil, core.Definition{}, fmt.Errorf("label %s has no definition %d", l.UID, res.DefinitionIndex)
	}
	def := l.Definitions[res.DefinitionIndex]
	drv := e.drivers[def.Driver]
	if drv == nil {
		return nil, def, fmt.Errorf("driver %q is not configured on node %s", def.Driver, e.opts.NodeName)
	}
	return drv, def, nil
}

func (e *Engine) mine(res *core.Resource) bool {
	return res.NodeName == "" || res.NodeName == e.opts.NodeName
}

// getResource returns the resource of app, nil if there is none.
func (e *Engine) getResource(ctx context.Context, uid string) (*core.Resource, error) {
	res, err := e.st.GetResource(ctx, uid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return res, err
}

// claimOf rebuilds the claim of an application this node elected for
// definition defIdx (to resume or reclaim an interrupted allocation).
func (e *Engine) claimOf(ctx context.Context, uid string, defIdx int) (*claim, error) {
	app, err := e.st.GetApplication(ctx, uid)
	if err != nil {
		return nil, err
	}
	l, err := e.label(ctx, app.LabelUID)
	if err != nil {
		return nil, err
	}
	if defIdx >= len(l.Definitions) {
		return nil, fmt.Errorf("label %s has no definition %d", l.UID, defIdx)
	}
	return &claim{app: *app, label: l, defIdx: defIdx}, nil
}

// stepElected resumes an application this node elected but did not finish
// allocating (interrupted worker, restart).
func (e *Engine) stepElected(ctx context.Context, uid string, cur *core.ApplicationState) {
	node, defIdx, ok := parseElected(cur.Description)
	if !ok || node != e.opts.NodeName {
		return // elected by another node (or not by an engine): not ours
	}
	res, err := e.getResource(ctx, uid)
	if err != nil {
		e.log.Error("read resource", "app", uid, "err", err)
		e.retryLater(uid)
		return
	}
	if res == nil {
		c, err := e.claimOf(ctx, uid, defIdx)
		if err != nil {
			e.log.Error("cannot resume allocation", "app", uid, "err", err)
			e.failClaim(ctx, uid, fmt.Sprintf("cannot resume allocation: %v", err))
			return
		}
		e.log.Info("resuming interrupted allocation", "app", uid, "definition", defIdx)
		e.allocStart(c)
		if res := e.allocate(ctx, c); res != nil {
			e.afterAllocated(ctx, c, res)
			return
		}
		e.step(ctx, uid)
		return
	}
	// The resource was recorded but ALLOCATED was not: the driver decides.
	drv, _, err := e.resourceDriver(ctx, res)
	if err != nil {
		e.log.Error("cannot check resource", "app", uid, "err", err)
		e.retryLater(uid)
		return
	}
	st, err := drv.Status(ctx, *res)
	if err != nil {
		e.log.Warn("resource status failed", "app", uid, "err", err)
		e.retryLater(uid)
		return
	}
	if st == driver.StatusAllocated {
		err = e.transition(ctx, uid, core.StatusElected, core.StatusAllocated, fmt.Sprintf("re-adopted %s", res.Identifier))
		if err == nil {
			e.forget(uid)
			e.armDeadline(uid, res.Timeout)
		}
	} else {
		err = e.transition(ctx, uid, core.StatusElected, core.StatusError, fmt.Sprintf("resource %s vanished before the allocation was recorded", res.Identifier))
		if err == nil {
			e.forget(uid)
			_ = e.st.DeleteResource(ctx, uid)
		}
	}
	if err != nil && !errors.Is(err, store.ErrConflict) {
		e.log.Error("cannot record state", "app", uid, "err", err)
		e.retryLater(uid)
		return
	}
	e.step(ctx, uid)
}

// stepAllocated runs pending when=ALLOCATED tasks (and, after a restart,
// checks that the resource still exists).
func (e *Engine) stepAllocated(ctx context.Context, uid string) {
	res, err := e.getResource(ctx, uid)
	if err != nil || res == nil {
		if err != nil {
			e.log.Error("read resource", "app", uid, "err", err)
			e.retryLater(uid)
		}
		return
	}
	if !e.mine(res) {
		return
	}
	drv, def, err := e.resourceDriver(ctx, res)
	if err != nil {
		e.log.Error("cannot run tasks", "app", uid, "err", err)
		return
	}
	e.mu.Lock()
	verify := e.verify[uid]
	delete(e.verify, uid)
	e.mu.Unlock()
	if verify {
		st, err := drv.Status(ctx, *res)
		if err != nil {
			e.log.Warn("resource status failed; assuming it exists", "app", uid, "err", err)
		} else if st != driver.StatusAllocated {
			err := e.transition(ctx, uid, core.StatusAllocated, core.StatusError,
				fmt.Sprintf("resource %s vanished (driver status %s)", res.Identifier, st))
			if err == nil {
				e.log.Warn("resource vanished", "app", uid, "identifier", res.Identifier)
				_ = e.st.DeleteResource(ctx, uid)
				e.forget(uid)
				e.finishTasks(ctx, uid, core.StatusError)
				return
			}
			if !errors.Is(err, store.ErrConflict) {
				e.log.Error("cannot record ERROR", "app", uid, "err", err)
			}
			e.step(ctx, uid)
			return
		}
	}
	if err := e.runTasks(ctx, uid, res, drv, def, core.TaskWhenAllocated); err != nil && ctx.Err() == nil {
		e.log.Error("tasks", "app", uid, "err", err)
		e.retryLater(uid)
	}
}

// stepDeallocate runs the remaining tasks, then the driver's Deallocate,
// then records DEALLOCATED; a failing driver is retried with backoff, so a
// resource is never silently left behind.
func (e *Engine) stepDeallocate(ctx context.Context, uid string) {
	res, err := e.getResource(ctx, uid)
	if err != nil {
		e.log.Error("read resource", "app", uid, "err", err)
		e.retryLater(uid)
		return
	}
	if res == nil {
		states, err := e.st.ListStates(ctx, uid)
		if err != nil {
			e.log.Error("read history", "app", uid, "err", err)
			e.retryLater(uid)
			return
		}
		node, defIdx, ok := lastElected(states)
		if !ok {
			e.finishUnallocated(ctx, uid, "it was never allocated")
			return
		}
		if node != e.opts.NodeName {
			return // the electing node finishes its own allocation
		}
		// This node elected it and no worker holds it: the allocation was
		// interrupted. Ask the idempotent driver what exists, then remove it.
		c, err := e.claimOf(ctx, uid, defIdx)
		if err != nil {
			e.log.Error("cannot reclaim interrupted allocation", "app", uid, "err", err)
			e.retryLater(uid)
			return
		}
		def := c.label.Definitions[defIdx]
		drv := e.drivers[def.Driver]
		if drv == nil {
			e.log.Error("cannot reclaim interrupted allocation: driver not configured", "app", uid, "driver", def.Driver)
			e.retryLater(uid)
			return
		}
		md, _ := meta.Merge(c.app.Metadata, c.label.Metadata)
		got, aerr := drv.Allocate(ctx, driver.AllocateRequest{ApplicationUID: uid, LabelUID: c.label.UID,
			LabelName: c.label.Name, Definition: def, Metadata: md})
		if aerr != nil || got == nil {
			if ctx.Err() != nil {
				return
			}
			e.finishUnallocated(ctx, uid, fmt.Sprintf("interrupted allocation left nothing (%v)", aerr))
			return
		}
		got.ApplicationUID, got.NodeName, got.LabelUID, got.DefinitionIndex = uid, e.opts.NodeName, c.label.UID, defIdx
		got.CreatedAt = e.clk.Now()
		if err := e.st.SaveResource(ctx, got); err != nil {
			e.log.Error("cannot record reclaimed resource", "app", uid, "err", err)
			e.retryLater(uid)
			return
		}
		res = got
	}
	if !e.mine(res) {
		return
	}
	log := e.log.With("app", uid, "identifier", res.Identifier)
	drv, def, err := e.resourceDriver(ctx, res)
	if err != nil {
		log.Error("cannot deallocate", "err", err)
		e.retryLater(uid)
		return
	}
	if err := e.runTasks(ctx, uid, res, drv, def, core.TaskWhenAllocated, core.TaskWhenDeallocate); err != nil {
		if ctx.Err() == nil {
			log.Error("tasks before deallocation", "err", err)
			e.retryLater(uid)
		}
		return
	}
	if err := drv.Deallocate(ctx, *res); err != nil {
		if ctx.Err() != nil {
			return
		}
		e.retryLater(uid)
		log.Warn("deallocation failed, will retry", "err", err)
		return
	}
	ctx = context.WithoutCancel(ctx) // record it even if shutdown starts now
	err = e.transition(ctx, uid, core.StatusDeallocate, core.StatusDeallocated, fmt.Sprintf("deallocated %s", res.Identifier))
	if err != nil && !errors.Is(err, store.ErrConflict) {
		log.Error("cannot record DEALLOCATED; will retry (driver Deallocate is idempotent)", "err", err)
		e.retryLater(uid)
		return
	}
	if err := e.st.DeleteResource(ctx, uid); err != nil && !errors.Is(err, store.ErrNotFound) {
		log.Error("cannot delete resource record", "err", err)
		e.retryLater(uid) // stepDead finishes it
	} else {
		e.forget(uid)
	}
	log.Info("application deallocated")
	e.finishTasks(ctx, uid, core.StatusDeallocated)
	e.capacityChanged()
}

// stepDead makes sure a dead application holds nothing and that none of
// its tasks stays without a result.
func (e *Engine) stepDead(ctx context.Context, uid string, status core.Status) {
	res, err := e.getResource(ctx, uid)
	if err != nil {
		e.log.Error("read resource", "app", uid, "err", err)
		e.retryLater(uid)
		return
	}
	if res != nil && e.mine(res) {
		drv, _, err := e.resourceDriver(ctx, res)
		if err == nil {
			err = drv.Deallocate(ctx, *res)
		}
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("cleanup of a dead application's resource failed, will retry", "app", uid, "err", err)
				e.retryLater(uid)
			}
			return
		}
		if err := e.st.DeleteResource(ctx, uid); err != nil && !errors.Is(err, store.ErrNotFound) {
			e.retryLater(uid)
			return
		}
		e.capacityChanged()
	}
	e.forget(uid)
	e.finishTasks(ctx, uid, status)
}

// taskNotAvailable is the result of a task the driver does not know (SPEC §2).
var taskNotAvailable = json.RawMessage(`{"error":"task not available in driver"}`)

func errorResult(err error) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	return b
}

// runTasks executes, exactly once, the tasks of app that have no result,
// phase by phase.
func (e *Engine) runTasks(ctx context.Context, uid string, res *core.Resource, drv driver.Driver, def core.Definition, phases ...core.Status) error {
	tasks, err := e.st.ListTasks(ctx, uid)
	if err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	for _, phase := range phases {
		for _, t := range tasks {
			if t.When != phase || len(t.Result) > 0 {
				continue
			}
			result := e.execTask(ctx, drv, res, def, t)
			if ctx.Err() != nil {
				return ctx.Err() // not run to the end: run again after restart
			}
			err := e.st.SetTaskResult(ctx, t.UID, result)
			if err != nil && !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("task %s result: %w", t.UID, err)
			}
			e.log.Info("task done", "app", uid, "task", t.Task, "task_uid", t.UID, "when", t.When)
		}
	}
	return nil
}

func (e *Engine) execTask(ctx context.Context, drv driver.Driver, res *core.Resource, def core.Definition, t core.Task) json.RawMessage {
	task, err := drv.Task(t.Task, t.Options)
	if errors.Is(err, driver.ErrTaskNotAvailable) {
		return taskNotAvailable
	}
	if err != nil {
		return errorResult(err)
	}
	out, err := task.Execute(ctx, driver.TaskTarget{Resource: *res, Definition: def, When: t.When})
	if err != nil {
		return errorResult(err)
	}
	if len(out) == 0 || !json.Valid(out) {
		return json.RawMessage(`{}`)
	}
	return out
}

// finishTasks gives every task of a dead application that never ran a
// result saying so, so no task waits forever.
func (e *Engine) finishTasks(ctx context.Context, uid string, status core.Status) {
	tasks, err := e.st.ListTasks(ctx, uid)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			e.log.Error("list tasks", "app", uid, "err", err)
		}
		return
	}
	for _, t := range tasks {
		if len(t.Result) > 0 {
			continue
		}
		result := errorResult(fmt.Errorf("application is %s; the task did not run", status))
		if err := e.st.SetTaskResult(ctx, t.UID, result); err != nil && !errors.Is(err, store.ErrConflict) {
			e.log.Error("task result", "app", uid, "task_uid", t.UID, "err", err)
		}
	}
}
