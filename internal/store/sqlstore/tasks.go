package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

const taskCols = "uid, application_uid, task, when_status, options, result, created_at, updated_at"

// CreateTask inserts t, filling UID and the times when empty. The
// application must exist (ErrNotFound); when must be ALLOCATED or DEALLOCATE.
func (s *Store) CreateTask(ctx context.Context, t *core.Task) error {
	if t.Task == "" {
		return fmt.Errorf("create task: task: must not be empty")
	}
	if t.When != core.TaskWhenAllocated && t.When != core.TaskWhenDeallocate {
		return fmt.Errorf("create task %q: when: must be %s or %s, got %q", t.Task,
			core.TaskWhenAllocated, core.TaskWhenDeallocate, t.When)
	}
	opts, err := rawJSON("options", t.Options)
	if err != nil {
		return fmt.Errorf("create task %q: %w", t.Task, err)
	}
	res, err := rawJSON("result", t.Result)
	if err != nil {
		return fmt.Errorf("create task %q: %w", t.Task, err)
	}
	uid := t.UID
	if uid == "" {
		uid = uuid.NewString()
	}
	created := t.CreatedAt
	if created.IsZero() {
		created = s.clock.Now()
	}
	updated := t.UpdatedAt
	if updated.IsZero() {
		updated = created
	}
	_, err = s.execW(ctx, "INSERT INTO application_tasks ("+taskCols+") VALUES ("+placeholders(8)+")",
		uid, t.ApplicationUID, t.Task, string(t.When), opts, res, tsOf(created), tsOf(updated))
	if err != nil {
		return s.classify(err, fmt.Sprintf("create task %q for application %s", t.Task, t.ApplicationUID))
	}
	t.UID, t.CreatedAt, t.UpdatedAt = uid, timeOf(tsOf(created)), timeOf(tsOf(updated))
	return nil
}

func scanTask(sc interface{ Scan(...any) error }) (*core.Task, error) {
	var t core.Task
	var when string
	var opts, res sql.NullString
	var created, updated int64
	if err := sc.Scan(&t.UID, &t.ApplicationUID, &t.Task, &when, &opts, &res, &created, &updated); err != nil {
		return nil, err
	}
	t.When = core.Status(when)
	t.Options = rawOf(opts)
	t.Result = rawOf(res)
	t.CreatedAt, t.UpdatedAt = timeOf(created), timeOf(updated)
	return &t, nil
}

// GetTask returns the task uid or ErrNotFound.
func (s *Store) GetTask(ctx context.Context, uid string) (*core.Task, error) {
	t, err := scanTask(s.rd().QueryRowContext(ctx, "SELECT "+taskCols+" FROM application_tasks WHERE uid = ?", uid))
	if err != nil {
		return nil, s.classify(err, "get task "+uid)
	}
	return t, nil
}

// ListTasks returns the tasks of the application ("" = all), oldest first.
func (s *Store) ListTasks(ctx context.Context, appUID string) ([]core.Task, error) {
	query := "SELECT " + taskCols + " FROM application_tasks"
	var args []any
	if appUID != "" {
		query += " WHERE application_uid = ?"
		args = append(args, appUID)
	}
	return s.listTasks(ctx, query+" ORDER BY seq", "list tasks of application "+appUID, args...)
}

// ListPendingTasks lists the tasks that have no result yet, oldest first.
func (s *Store) ListPendingTasks(ctx context.Context) ([]core.Task, error) {
	return s.listTasks(ctx, "SELECT "+taskCols+" FROM application_tasks WHERE result IS NULL ORDER BY seq", "list pending tasks")
}

func (s *Store) listTasks(ctx context.Context, query, what string, args ...any) ([]core.Task, error) {
	rows, err := s.rd().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.classify(err, what)
	}
	defer rows.Close()
	var out []core.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, s.classify(err, what)
		}
		out = append(out, *t)
	}
	return out, s.classify(rows.Err(), what)
}

// SetTaskResult stores the result of task uid once: it is a compare-and-set
// on "no result yet", so a second call returns ErrConflict.
func (s *Store) SetTaskResult(ctx context.Context, uid string, result []byte) error {
	what := "set result of task " + uid
	if len(result) == 0 {
		return fmt.Errorf("%s: result: must not be empty", what)
	}
	res, err := rawJSON("result", result)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := s.execW(ctx, "UPDATE application_tasks SET result = ?, updated_at = ? WHERE uid = ? AND result IS NULL",
		res, tsOf(s.clock.Now()), uid)
	if err != nil {
		return s.classify(err, what)
	}
	if n == 1 {
		return nil
	}
	var one int
	if err := s.rd().QueryRowContext(ctx, "SELECT 1 FROM application_tasks WHERE uid = ?", uid).Scan(&one); err != nil {
		return s.classify(err, what)
	}
	return fmt.Errorf("%s: result already set: %w", what, store.ErrConflict)
}
