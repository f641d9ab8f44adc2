package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// Recover picks up where a previous run of this node stopped. For every
// resource of this node the workers ask the driver's Status: ALLOCATED ones
// that still exist are re-adopted (lifetime deadline re-armed, pending tasks
// run), vanished ones go to ERROR; an ELECTED application with a recorded
// resource becomes ALLOCATED or ERROR likewise; unfinished deallocations are
// finished by calling the driver. Applications this node ELECTED without a
// recorded resource ask the idempotent driver again. NEW applications simply
// wait in the queue. Run calls Recover before its first pass; the work
// itself happens in the following passes.
func (e *Engine) Recover(ctx context.Context) error {
	resources, err := e.st.ListResources(ctx, e.opts.NodeName)
	if err != nil {
		return fmt.Errorf("list resources of node %s: %w", e.opts.NodeName, err)
	}
	counts := map[core.Status]int{}
	for _, res := range resources {
		cur, err := e.st.CurrentState(ctx, res.ApplicationUID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("recover %s: %w", res.ApplicationUID, err)
		}
		counts[cur.Status]++
		e.mu.Lock()
		switch cur.Status {
		case core.StatusAllocated:
			e.verify[res.ApplicationUID] = true
			e.dirty[res.ApplicationUID] = true
		case core.StatusElected, core.StatusDeallocate, core.StatusDeallocated, core.StatusError:
			e.dirty[res.ApplicationUID] = true
		}
		e.mu.Unlock()
		if cur.Status == core.StatusAllocated {
			e.armDeadline(res.ApplicationUID, res.Timeout)
		}
	}
	// Elected or deallocating applications without a resource record: the
	// workers check who elected them and finish this node's ones.
	apps, err := e.st.ListByStatus(ctx, 0, core.StatusElected, core.StatusDeallocate)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	e.mu.Lock()
	for _, a := range apps {
		e.dirty[a.UID] = true
	}
	e.mu.Unlock()
	e.log.Info("recovered", "resources", len(resources), "allocated", counts[core.StatusAllocated],
		"elected", counts[core.StatusElected], "deallocating", counts[core.StatusDeallocate],
		"unfinished", len(apps))
	e.Wake()
	return nil
}
