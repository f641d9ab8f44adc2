package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
	"github.com/aquarium-fish/aquarium-fish/internal/meta"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// isObject reports whether raw is empty/null or a JSON object.
func isObject(raw json.RawMessage) bool {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || string(b) == "null" {
		return true
	}
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil
}

// CreateLabel validates l (errors name the field, drivers validate their
// definitions) and stores it. UID and CreatedAt are filled in; a temporary
// label (version 0) without remove_at gets now + LabelRemoveAtMax.
func (e *Engine) CreateLabel(ctx context.Context, l *core.Label) error {
	if l == nil {
		return invalid("label", "must be set")
	}
	now := e.clk.Now()
	if err := e.validateLabel(l, now); err != nil {
		return err
	}
	if l.Version == 0 && l.RemoveAt == nil && e.opts.LabelRemoveAtMax > 0 {
		at := now.Add(e.opts.LabelRemoveAtMax)
		l.RemoveAt = &at
	}
	if l.UID == "" {
		l.UID = uuid.NewString()
	}
	l.CreatedAt = now
	if err := e.st.CreateLabel(ctx, l); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("label %s version %d: %w", l.Name, l.Version, err)
		}
		return fmt.Errorf("create label: %w", err)
	}
	e.noteRemoveAt(l.RemoveAt)
	e.log.Info("label created", "label", l.UID, "name", l.Name, "version", l.Version)
	return nil
}

// UpdateLabel validates and stores a new content for an existing temporary
// (version 0) label. remove_at left empty keeps the current one. The
// definitions cannot change while active applications use the label (their
// resources point at a definition by index).
func (e *Engine) UpdateLabel(ctx context.Context, l *core.Label) error {
	if l == nil {
		return invalid("label", "must be set")
	}
	cur, err := e.st.GetLabel(ctx, l.UID)
	if err != nil {
		return fmt.Errorf("update label: %w", err)
	}
	if cur.Version != 0 {
		return fmt.Errorf("update label %s: version %d is immutable, only version 0 can change: %w", cur.UID, cur.Version, ErrFailedPrecondition)
	}
	if l.Version != 0 {
		return invalid("label.version", "an update keeps version 0, got %d", l.Version)
	}
	if err := e.validateLabel(l, e.clk.Now()); err != nil {
		return err
	}
	if l.RemoveAt == nil {
		l.RemoveAt = cur.RemoveAt
	}
	oldDefs, _ := json.Marshal(cur.Definitions)
	newDefs, _ := json.Marshal(l.Definitions)
	if !bytes.Equal(oldDefs, newDefs) {
		n, err := e.activeUsers(ctx, l.UID)
		if err != nil {
			return fmt.Errorf("update label %s: %w", l.UID, err)
		}
		if n > 0 {
			return fmt.Errorf("update label %s: its definitions cannot change while %d active application(s) use it: %w",
				l.UID, n, ErrFailedPrecondition)
		}
	}
	l.CreatedAt = cur.CreatedAt
	if err := e.st.UpdateLabel(ctx, l); err != nil {
		return fmt.Errorf("update label: %w", err)
	}
	e.noteRemoveAt(l.RemoveAt)
	e.log.Info("label updated", "label", l.UID, "name", l.Name)
	return nil
}

// noteRemoveAt makes the engine wake up for a temporary label's removal.
func (e *Engine) noteRemoveAt(at *time.Time) {
	if at == nil {
		return
	}
	e.mu.Lock()
	if e.labelRemoveAt.IsZero() || at.Before(e.labelRemoveAt) {
		e.labelRemoveAt = *at
	}
	e.mu.Unlock()
	e.Wake()
}

// validateLabel checks every field of l; errors name the field.
func (e *Engine) validateLabel(l *core.Label, now time.Time) error {
	if strings.TrimSpace(l.Name) == "" {
		return invalid("label.name", "must not be empty")
	}
	if l.Version < 0 {
		return invalid("label.version", "must be >= 0, got %d", l.Version)
	}
	if len(l.Definitions) == 0 {
		return invalid("label.definitions", "at least one definition is required")
	}
	for i, def := range l.Definitions {
		field := fmt.Sprintf("label.definitions[%d]", i)
		if def.Driver == "" {
			return invalid(field+".driver", "must not be empty")
		}
		drv, ok := e.drivers[def.Driver]
		if !ok {
			return invalid(field+".driver", "driver %q is not configured on this node (configured: %s)", def.Driver, e.driverNames())
		}
		if _, err := core.ParseDuration(def.Resources.Lifetime); err != nil {
			return invalid(field+".resources.lifetime", "%v", err)
		}
		for j, pattern := range def.Resources.NodeFilter {
			if _, err := path.Match(pattern, ""); err != nil || strings.TrimSpace(pattern) == "" {
				return invalid(fmt.Sprintf("%s.resources.node_filter[%d]", field, j), "invalid pattern %q", pattern)
			}
		}
		if !isObject(def.Options) {
			return invalid(field+".options", "must be an object")
		}
		if err := drv.ValidateDefinition(def); err != nil {
			return &ValidationError{Field: field, Reason: err.Error(), Err: err}
		}
	}
	if !isObject(l.Metadata) {
		return invalid("label.metadata", "must be a JSON object")
	}
	for i, v := range l.VisibleFor {
		if strings.TrimSpace(v) == "" {
			return invalid(fmt.Sprintf("label.visible_for[%d]", i), "must not be empty")
		}
	}
	if l.Version != 0 && l.RemoveAt != nil {
		return invalid("label.remove_at", "only a temporary label (version 0) can have remove_at")
	}
	if l.Version == 0 && l.RemoveAt != nil {
		if l.RemoveAt.Before(now.Add(e.opts.LabelRemoveAtMin)) {
			return invalid("label.remove_at", "must be at least %s from now (label_remove_at_min)", e.opts.LabelRemoveAtMin)
		}
		if e.opts.LabelRemoveAtMax > 0 && l.RemoveAt.After(now.Add(e.opts.LabelRemoveAtMax)) {
			return invalid("label.remove_at", "must be at most %s from now (label_remove_at_max)", e.opts.LabelRemoveAtMax)
		}
	}
	return nil
}

// activeUsers counts the active applications of a label.
func (e *Engine) activeUsers(ctx context.Context, labelUID string) (int, error) {
	apps, err := e.st.ListByStatus(ctx, 0, activeStatuses...)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range apps {
		if a.LabelUID == labelUID {
			n++
		}
	}
	return n, nil
}

// activeStatuses are the states in which an application may still hold or
// get a resource.
var activeStatuses = []core.Status{core.StatusNew, core.StatusElected, core.StatusAllocated, core.StatusDeallocate}

// RemoveLabel deletes a label that no active application uses. For a
// temporary label (version 0) the driver's image_delete task runs first for
// every definition whose image no other label uses.
func (e *Engine) RemoveLabel(ctx context.Context, uid string) error {
	l, err := e.st.GetLabel(ctx, uid)
	if err != nil {
		return fmt.Errorf("remove label: %w", err)
	}
	users, err := e.activeUsers(ctx, uid)
	if err != nil {
		return fmt.Errorf("remove label %s: %w", uid, err)
	}
	if users > 0 {
		return fmt.Errorf("remove label %s (%s:%d): %d active application(s) use it: %w",
			uid, l.Name, l.Version, users, ErrFailedPrecondition)
	}
	if l.Version == 0 {
		if err := e.deleteImages(ctx, l); err != nil {
			return fmt.Errorf("remove label %s: %w", uid, err)
		}
	}
	if err := e.st.DeleteLabel(ctx, uid); err != nil {
		return fmt.Errorf("remove label: %w", err)
	}
	e.mu.Lock()
	delete(e.labels, uid)
	e.mu.Unlock()
	e.log.Info("label removed", "label", uid, "name", l.Name, "version", l.Version)
	return nil
}

// imageRefs is what identifies the images a definition boots: its images[]
// (name-version or url) and the common "image" driver option.
func imageRefs(def core.Definition) []string {
	var refs []string
	for _, img := range def.Images {
		if img.URL != "" {
			refs = append(refs, "url:"+img.URL)
		}
		if img.Name != "" {
			n := img.Name
			if img.Version != "" {
				n += "-" + img.Version
			}
			refs = append(refs, "image:"+n)
		}
	}
	var opts struct {
		Image string `json:"image"`
	}
	if len(def.Options) > 0 && json.Unmarshal(def.Options, &opts) == nil && opts.Image != "" {
		refs = append(refs, "image:"+opts.Image)
	}
	return refs
}

// deleteImages runs image_delete for the definitions of l whose images no
// other label (of the same driver) refers to.
func (e *Engine) deleteImages(ctx context.Context, l *core.Label) error {
	others, err := e.st.ListLabels(ctx, store.LabelFilter{})
	if err != nil {
		return fmt.Errorf("list labels: %w", err)
	}
	used := map[string]bool{}
	for _, o := range others {
		if o.UID == l.UID {
			continue
		}
		for _, d := range o.Definitions {
			for _, r := range imageRefs(d) {
				used[d.Driver+"\x00"+r] = true
			}
		}
	}
	for i, def := range l.Definitions {
		refs := imageRefs(def)
		if len(refs) == 0 {
			continue
		}
		shared := false
		for _, r := range refs {
			shared = shared || used[def.Driver+"\x00"+r]
		}
		drv := e.drivers[def.Driver]
		if shared || drv == nil {
			continue
		}
		task, err := drv.Task("image_delete", nil)
		if errors.Is(err, driver.ErrTaskNotAvailable) {
			continue
		}
		if err != nil {
			return fmt.Errorf("definitions[%d]: image_delete: %w", i, err)
		}
		if _, err := task.Execute(ctx, driver.TaskTarget{Definition: def}); err != nil {
			return fmt.Errorf("definitions[%d]: image_delete: %w", i, err)
		}
		e.log.Info("image of temporary label deleted", "label", l.UID, "definition", i, "driver", def.Driver)
	}
	return nil
}

// CreateApplication validates a (the label must exist and have
// definitions; metadata must be an object), stores it as NEW and wakes the
// engine. Visibility of the label to the caller is the API's business.
func (e *Engine) CreateApplication(ctx context.Context, a *core.Application) error {
	if a == nil {
		return invalid("application", "must be set")
	}
	if strings.TrimSpace(a.LabelUID) == "" {
		return invalid("application.label_uid", "must not be empty")
	}
	if !isObject(a.Metadata) {
		return invalid("application.metadata", "must be a JSON object")
	}
	l, err := e.label(ctx, a.LabelUID)
	if errors.Is(err, store.ErrNotFound) {
		return &ValidationError{Field: "application.label_uid", Reason: fmt.Sprintf("label %q not found", a.LabelUID), Err: err}
	}
	if err != nil {
		return fmt.Errorf("create application: %w", err)
	}
	if len(l.Definitions) == 0 {
		return invalid("application.label_uid", "label %q (%s:%d) has no definitions", l.UID, l.Name, l.Version)
	}
	if _, err := meta.Merge(a.Metadata, l.Metadata); err != nil {
		return invalid("application.metadata", "%v", err)
	}
	if a.UID == "" {
		a.UID = uuid.NewString()
	}
	a.CreatedAt = e.clk.Now()
	e.mu.Lock()
	e.startDef[a.UID] = 0
	e.mu.Unlock()
	if err := e.st.CreateApplication(ctx, a); err != nil {
		e.mu.Lock()
		delete(e.startDef, a.UID)
		e.mu.Unlock()
		return fmt.Errorf("create application: %w", err)
	}
	if e.opts.OnState != nil {
		e.opts.OnState(a.UID, core.StatusNew)
	}
	e.Wake()
	return nil
}

// Deallocate requests the end of an application from any active state:
// NEW goes straight to DEALLOCATED; ELECTED and ALLOCATED go to DEALLOCATE
// and the engine finishes the job (tasks, driver Deallocate, DEALLOCATED).
// A dead application gives ErrFailedPrecondition; DEALLOCATE is a no-op.
func (e *Engine) Deallocate(ctx context.Context, appUID string) error {
	for range 16 {
		cur, err := e.st.CurrentState(ctx, appUID)
		if err != nil {
			return fmt.Errorf("deallocate application %s: %w", appUID, err)
		}
		switch cur.Status {
		case core.StatusNew:
			err = e.transition(ctx, appUID, core.StatusNew, core.StatusDeallocated, "deallocated before allocation")
		case core.StatusElected, core.StatusAllocated:
			err = e.transition(ctx, appUID, cur.Status, core.StatusDeallocate, "deallocation requested")
		case core.StatusDeallocate:
			return nil
		default:
			return fmt.Errorf("deallocate application %s: it is already %s: %w", appUID, cur.Status, ErrFailedPrecondition)
		}
		if errors.Is(err, store.ErrConflict) {
			continue // it moved meanwhile; look again
		}
		if err != nil {
			return fmt.Errorf("deallocate application %s: %w", appUID, err)
		}
		e.markDirty(appUID)
		e.Wake()
		return nil
	}
	return fmt.Errorf("deallocate application %s: state keeps changing, try again: %w", appUID, store.ErrConflict)
}

// CreateTask validates t (when must be ALLOCATED or DEALLOCATE; the
// application must be active) and stores it; a task for an application
// that is already in its phase runs right away.
func (e *Engine) CreateTask(ctx context.Context, t *core.Task) error {
	if t == nil {
		return invalid("task", "must be set")
	}
	if strings.TrimSpace(t.ApplicationUID) == "" {
		return invalid("task.application_uid", "must not be empty")
	}
	if strings.TrimSpace(t.Task) == "" {
		return invalid("task.task", "must not be empty")
	}
	if t.When != core.TaskWhenAllocated && t.When != core.TaskWhenDeallocate {
		return invalid("task.when", "must be %s or %s, got %q", core.TaskWhenAllocated, core.TaskWhenDeallocate, t.When)
	}
	if !isObject(t.Options) {
		return invalid("task.options", "must be a JSON object")
	}
	cur, err := e.st.CurrentState(ctx, t.ApplicationUID)
	if errors.Is(err, store.ErrNotFound) {
		return &ValidationError{Field: "task.application_uid", Reason: fmt.Sprintf("application %q not found", t.ApplicationUID), Err: err}
	}
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	if isDead(cur.Status) {
		return fmt.Errorf("create task for application %s: it is %s: %w", t.ApplicationUID, cur.Status, ErrFailedPrecondition)
	}
	if t.UID == "" {
		t.UID = uuid.NewString()
	}
	now := e.clk.Now()
	t.Result = nil
	t.CreatedAt, t.UpdatedAt = now, now
	if err := e.st.CreateTask(ctx, t); err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	// Read the state after the insert: either this sees ALLOCATED/DEALLOCATE
	// or the worker that moves the application there sees the task.
	if cur, err = e.st.CurrentState(ctx, t.ApplicationUID); err == nil &&
		(cur.Status == core.StatusAllocated || cur.Status == core.StatusDeallocate || isDead(cur.Status)) {
		e.markDirty(t.ApplicationUID)
		e.Wake()
	}
	return nil
}
