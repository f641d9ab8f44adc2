package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// claim is a NEW application a pass chose for a definition.
type claim struct {
	app    core.Application
	label  *core.Label
	defIdx int
}

// claim moves a NEW application this pass chose to ELECTED for this node
// (compare-and-set: exactly one node or a Deallocate wins). It runs in the
// worker, once it has a slot, so claims proceed in parallel and a
// Deallocate that comes while the worker waits ends the application
// without any driver call.
func (e *Engine) claim(ctx context.Context, c *claim) bool {
	err := e.transition(ctx, c.app.UID, core.StatusNew, core.StatusElected, electedDesc(e.opts.NodeName, c.defIdx))
	if err == nil {
		return true
	}
	e.allocDone(c)
	if !errors.Is(err, store.ErrConflict) && ctx.Err() == nil {
		e.log.Error("claim failed", "app", c.app.UID, "err", err)
		e.mu.Lock()
		e.queueAt[c.app.UID] = e.clk.Now().Add(e.opts.RetryBackoff)
		e.mu.Unlock()
	}
	return false
}

// Reconcile runs one pass: it starts workers for applications that need
// driver work (claimed NEW ones, requested deallocations, expired
// lifetimes, due retries, new tasks) and returns when it wants to run
// next. It never waits for the workers (see Settle and WaitIdle).
func (e *Engine) Reconcile(ctx context.Context) (time.Time, error) {
	e.passMu.Lock()
	defer e.passMu.Unlock()
	now := e.clk.Now()
	var errs []error

	// Lifetimes that ended.
	for _, uid := range e.dueDeadlines(now) {
		err := e.transition(ctx, uid, core.StatusAllocated, core.StatusDeallocate, "lifetime ended")
		switch {
		case err == nil:
			e.log.Info("resource lifetime ended", "app", uid)
			e.markDirty(uid)
		case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
			// already moving on (deallocation requested, purged)
		default:
			e.armDeadline(uid, &now) // try again on the next pass
			errs = append(errs, err)
		}
	}

	// Periodic sweep: things this node may not have been told about.
	e.mu.Lock()
	labelDue := !e.labelRemoveAt.IsZero() && !now.Before(e.labelRemoveAt)
	e.mu.Unlock()
	if !now.Before(e.nextSweep) || labelDue {
		if err := e.sweep(ctx, now); err != nil {
			errs = append(errs, err)
		} else {
			e.nextSweep = now.Add(e.opts.SweepInterval)
		}
	}

	// Requested work and due retries.
	e.mu.Lock()
	var drive []string
	for uid := range e.dirty {
		if !e.busy[uid] {
			drive = append(drive, uid)
			delete(e.dirty, uid)
		}
	}
	for uid, at := range e.retryAt {
		if !at.After(now) && !e.busy[uid] && !e.dirty[uid] {
			drive = append(drive, uid)
			delete(e.retryAt, uid)
		}
	}
	e.mu.Unlock()
	for _, uid := range drive {
		e.launch(ctx, uid, nil)
	}

	// The queue of NEW applications.
	if !e.maintenance.Load() {
		if err := e.claimNew(ctx, now); err != nil {
			errs = append(errs, err)
		}
	}
	return e.nextWake(now), errors.Join(errs...)
}

// nextWake is the earliest time something is due.
func (e *Engine) nextWake(now time.Time) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	next := e.nextSweep
	consider := func(t time.Time) {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	if e.deadlines.Len() > 0 {
		consider(e.deadlines[0].at)
	}
	for _, at := range e.retryAt {
		consider(at)
	}
	for _, at := range e.queueAt {
		consider(at)
	}
	consider(e.capRetryAt)
	consider(e.labelRemoveAt)
	if next.Before(now) {
		next = now
	}
	return next
}

// launch starts a worker for app unless one already owns it (then the app
// stays dirty and the owner's release wakes the engine). c is set for an
// application this pass just claimed; busy is then already taken.
func (e *Engine) launch(ctx context.Context, uid string, c *claim) {
	if c == nil {
		e.mu.Lock()
		if !e.tryBusyLocked(uid) {
			e.dirty[uid] = true
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
	}
	e.launched.Add(1)
	go func() {
		defer e.release(uid)
		select {
		case e.sem <- struct{}{}:
		case <-ctx.Done():
			if c != nil {
				e.allocDone(c)
			}
			return
		}
		defer func() { <-e.sem }()
		if c != nil {
			if !e.claim(ctx, c) {
				return
			}
			if res := e.allocate(ctx, c); res != nil {
				e.afterAllocated(ctx, c, res)
				return
			}
		}
		e.step(ctx, uid)
	}()
}

// startFor returns the first definition to try for a NEW application.
func (e *Engine) startFor(ctx context.Context, uid string) (int, error) {
	e.mu.Lock()
	n, ok := e.startDef[uid]
	e.mu.Unlock()
	if ok {
		return n, nil
	}
	cur, err := e.st.CurrentState(ctx, uid)
	if err != nil {
		return 0, err
	}
	n, _ = parseNextDef(cur.Description)
	e.mu.Lock()
	e.startDef[uid] = n
	e.mu.Unlock()
	return n, nil
}

// claimNew walks the NEW applications oldest first and claims (CAS NEW ->
// ELECTED) each one for which a definition has capacity, trying
// definitions in order from its rotation start.
//
// The claim is store.Transition(NEW, ELECTED), the same exactly-once
// compare-and-set ClaimNew is built on, applied to the applications this
// pass chose rather than to "the oldest N": capacity, rotation and retry
// back-off decide per application, and the ELECTED description records the
// node and the chosen definition (electedDesc), which recovery needs to
// resume or reclaim an interrupted allocation with the same definition.
func (e *Engine) claimNew(ctx context.Context, now time.Time) error {
	apps, err := e.st.ListByStatus(ctx, 0, core.StatusNew)
	if err != nil {
		return fmt.Errorf("list NEW applications: %w", err)
	}
	type capKey struct {
		label string
		def   int
	}
	// Free capacity of a definition = what the driver reports minus the
	// allocations in flight (read before asking the driver, so a completion
	// in between is counted twice rather than not at all), cached for the
	// pass and reduced by every claim of the same driver made since.
	type capSnap struct{ free, claimsAt int64 }
	caps := map[capKey]capSnap{}
	claims := map[string]int64{}
	labels := map[string]*core.Label{}
	queued := false
	var errs []error
	var slotsUsed int64
	if e.opts.SlotsLimit > 0 && len(apps) > 0 {
		if slotsUsed, err = e.slotsInUse(ctx, labels); err != nil {
			return err
		}
	}
	for i := range apps {
		app := apps[i]
		e.mu.Lock()
		skip := e.busy[app.UID]
		if at, ok := e.queueAt[app.UID]; ok && !skip {
			if at.After(now) {
				skip = true
			} else {
				delete(e.queueAt, app.UID)
			}
		}
		e.mu.Unlock()
		if skip {
			continue
		}
		l, ok := labels[app.LabelUID]
		if !ok {
			l, err = e.label(ctx, app.LabelUID)
			if errors.Is(err, store.ErrNotFound) {
				e.fail(ctx, app.UID, core.StatusNew, fmt.Sprintf("label %s not found", app.LabelUID))
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			labels[app.LabelUID] = l
		}
		n := len(l.Definitions)
		if n == 0 {
			e.fail(ctx, app.UID, core.StatusNew, fmt.Sprintf("label %s has no definitions", l.UID))
			continue
		}
		start, err := e.startFor(ctx, app.UID)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		chosen := -1
		for k := range n {
			idx := (start + k) % n
			def := l.Definitions[idx]
			drv := e.drivers[def.Driver]
			if drv == nil || !e.nodeMatches(def) {
				continue // another node may serve this definition
			}
			if e.opts.SlotsLimit > 0 && slotsUsed+slotsOf(def) > int64(e.opts.SlotsLimit) {
				continue // node_slots_limit
			}
			key := capKey{l.UID, idx}
			snap, ok := caps[key]
			if !ok {
				e.mu.Lock()
				inFlight := e.pending[def.Driver]
				e.mu.Unlock()
				c, err := drv.AvailableCapacity(ctx, def)
				if err != nil {
					e.log.Warn("capacity check failed", "label", l.UID, "definition", idx, "driver", def.Driver, "err", err)
					c = 0
				}
				snap = capSnap{free: c - inFlight, claimsAt: claims[def.Driver]}
				caps[key] = snap
			}
			if snap.free-(claims[def.Driver]-snap.claimsAt) > 0 {
				chosen = idx
				break
			}
		}
		if chosen < 0 {
			queued = true
			continue
		}
		c := &claim{app: app, label: l, defIdx: chosen}
		e.mu.Lock()
		if !e.tryBusyLocked(app.UID) {
			e.mu.Unlock()
			continue
		}
		e.mu.Unlock()
		e.allocStart(c)
		claims[l.Definitions[chosen].Driver]++
		slotsUsed += slotsOf(l.Definitions[chosen])
		e.launch(ctx, app.UID, c) // the worker makes the claim (in parallel with others)
	}
	e.mu.Lock()
	// Forget NEW-queue bookkeeping of applications that left NEW elsewhere
	// (deallocated through another node, purged).
	if len(e.startDef) > len(apps) {
		isNew := make(map[string]bool, len(apps))
		for _, a := range apps {
			isNew[a.UID] = true
		}
		for uid := range e.startDef {
			if !isNew[uid] && !e.busy[uid] {
				delete(e.startDef, uid)
				delete(e.queueAt, uid)
			}
		}
	}
	if queued {
		if e.capRetryAt.IsZero() || !e.capRetryAt.After(now) {
			e.capRetryAt = now.Add(e.capBackoff)
			e.capBackoff = min(e.capBackoff*2, e.opts.MaxBackoff)
		}
	} else {
		e.capRetryAt = time.Time{}
		e.capBackoff = e.opts.RetryBackoff
	}
	e.mu.Unlock()
	return errors.Join(errs...)
}

// capacityChanged resets the capacity backoff: something was freed.
func (e *Engine) capacityChanged() {
	e.mu.Lock()
	e.capBackoff = e.opts.RetryBackoff
	e.capRetryAt = time.Time{}
	e.mu.Unlock()
	e.Wake()
}

// fail moves an application to ERROR from `from`.
func (e *Engine) fail(ctx context.Context, uid string, from core.Status, why string) {
	if err := e.transition(ctx, uid, from, core.StatusError, why); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			e.log.Error("cannot record ERROR", "app", uid, "err", err)
		}
		return
	}
	e.log.Warn("application failed", "app", uid, "reason", why)
	e.forget(uid)
	e.markDirty(uid) // finish its tasks
}

// forget drops in-memory bookkeeping of an application that left the queue.
func (e *Engine) forget(uid string) {
	e.mu.Lock()
	delete(e.startDef, uid)
	delete(e.retryAt, uid)
	delete(e.queueAt, uid)
	delete(e.failures, uid)
	e.mu.Unlock()
}

// sweep finds work this node was not told about (other nodes' API calls,
// interrupted workers), purges old dead applications and removes expired
// temporary labels.
func (e *Engine) sweep(ctx context.Context, now time.Time) error {
	var errs []error
	apps, err := e.st.ListByStatus(ctx, 0, core.StatusElected, core.StatusDeallocate)
	if err != nil {
		errs = append(errs, fmt.Errorf("sweep: %w", err))
	}
	// Tasks created through another node reach the owner of the resource
	// only here: their applications get a pass (a node skips the ones it
	// does not own).
	tasks, err := e.st.ListPendingTasks(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("sweep tasks: %w", err))
	}
	e.mu.Lock()
	for _, a := range apps {
		if !e.busy[a.UID] {
			e.dirty[a.UID] = true
		}
	}
	for _, t := range tasks {
		if !e.busy[t.ApplicationUID] {
			e.dirty[t.ApplicationUID] = true
		}
	}
	e.mu.Unlock()
	// Housekeeping may call drivers (image_delete) and touch many rows: it
	// runs beside the passes, one at a time.
	if e.housekeeping.CompareAndSwap(false, true) {
		e.goTracked(func() {
			defer e.housekeeping.Store(false)
			if err := e.cleanup(ctx, now); err != nil && ctx.Err() == nil {
				e.log.Error("cleanup", "err", err)
			}
			if err := e.removeExpiredLabels(ctx, now); err != nil && ctx.Err() == nil {
				e.log.Error("temporary labels", "err", err)
			}
		})
	}
	return errors.Join(errs...)
}

// goTracked runs f on a goroutine that WaitIdle and Settle wait for.
func (e *Engine) goTracked(f func()) {
	e.mu.Lock()
	e.inflight++
	if e.inflight == 1 {
		e.idle = make(chan struct{})
	}
	e.mu.Unlock()
	e.launched.Add(1)
	go func() {
		defer func() {
			e.mu.Lock()
			e.inflight--
			if e.inflight == 0 {
				close(e.idle)
			}
			e.mu.Unlock()
			e.Wake()
		}()
		f()
	}()
}

// cleanup purges dead applications whose last state is older than CleanupInterval.
func (e *Engine) cleanup(ctx context.Context, now time.Time) error {
	if e.opts.CleanupInterval <= 0 {
		return nil
	}
	dead, err := e.st.ListByStatus(ctx, 0, core.StatusDeallocated, core.StatusError)
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	limit := now.Add(-e.opts.CleanupInterval)
	purged := 0
	for _, a := range dead {
		cur, err := e.st.CurrentState(ctx, a.UID)
		if err != nil || cur.CreatedAt.After(limit) {
			continue
		}
		// A dead application may still have a resource row if its final
		// driver cleanup has not succeeded yet; keep it until it has.
		if _, err := e.st.GetResource(ctx, a.UID); err == nil {
			continue
		}
		if err := e.st.DeleteApplication(ctx, a.UID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("cleanup %s: %w", a.UID, err)
		}
		purged++
	}
	if purged > 0 {
		e.log.Info("purged dead applications", "count", purged)
	}
	return nil
}

// removeExpiredLabels removes temporary labels past remove_at (those still
// in use wait) and remembers the next remove_at.
func (e *Engine) removeExpiredLabels(ctx context.Context, now time.Time) error {
	labels, err := e.st.ListLabels(ctx, store.LabelFilter{Version: 0})
	if err != nil {
		return fmt.Errorf("temporary labels: %w", err)
	}
	var next time.Time
	var errs []error
	for _, l := range labels {
		if l.Version != 0 || l.RemoveAt == nil {
			continue
		}
		if l.RemoveAt.After(now) {
			if next.IsZero() || l.RemoveAt.Before(next) {
				next = *l.RemoveAt
			}
			continue
		}
		err := e.RemoveLabel(ctx, l.UID)
		switch {
		case err == nil, errors.Is(err, store.ErrNotFound):
		case errors.Is(err, ErrFailedPrecondition):
			e.log.Debug("temporary label expired but still in use", "label", l.UID)
		default:
			errs = append(errs, err)
		}
	}
	e.mu.Lock()
	e.labelRemoveAt = next
	e.mu.Unlock()
	return errors.Join(errs...)
}
