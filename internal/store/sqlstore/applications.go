package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"github.com/google/uuid"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

const appCols = "seq, uid, owner_name, label_uid, metadata, created_at"

// CreateApplication inserts a and its first state NEW in one transaction,
// filling UID and CreatedAt when empty. The label must exist (ErrNotFound).
func (s *Store) CreateApplication(ctx context.Context, a *core.Application) error {
	if a.LabelUID == "" {
		return fmt.Errorf("create application: label_uid: must not be empty")
	}
	meta, err := rawJSON("metadata", a.Metadata)
	if err != nil {
		return fmt.Errorf("create application: %w", err)
	}
	uid := a.UID
	if uid == "" {
		uid = uuid.NewString()
	}
	created := a.CreatedAt
	if created.IsZero() {
		created = s.clock.Now()
	}
	what := "create application " + uid
	if s.d.SingleStatementWrites {
		err = s.createApplicationOne(ctx, what, uid, a, meta, tsOf(created))
	} else {
		err = s.createApplicationTx(ctx, what, uid, a, meta, tsOf(created))
	}
	if err != nil {
		return err
	}
	a.UID, a.CreatedAt = uid, timeOf(tsOf(created))
	return nil
}

// createApplicationOne inserts the application and its NEW state in one
// statement, only if the label exists.
func (s *Store) createApplicationOne(ctx context.Context, what, uid string, a *core.Application, meta sql.NullString, created int64) error {
	res, err := s.wr().ExecContext(ctx, `WITH a AS (
			INSERT INTO applications (uid, owner_name, label_uid, metadata, created_at, current_status, status_at)
			SELECT ?, ?, uid, ?, CAST(? AS BIGINT), ?, CAST(? AS BIGINT) FROM labels WHERE uid = ? RETURNING uid
		)
		INSERT INTO application_states (uid, application_uid, status, description, created_at)
		SELECT ?, uid, ?, '', CAST(? AS BIGINT) FROM a`,
		uid, a.OwnerName, meta, created, string(core.StatusNew), created, a.LabelUID,
		uuid.NewString(), string(core.StatusNew), created)
	if err != nil {
		return s.classify(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.classify(err, what)
	}
	if n == 0 {
		return fmt.Errorf("%s: label %s: %w", what, a.LabelUID, store.ErrNotFound)
	}
	return nil
}

func (s *Store) createApplicationTx(ctx context.Context, what, uid string, a *core.Application, meta sql.NullString, created int64) error {
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var one int
		err := s.in(tx).QueryRowContext(ctx, "SELECT 1 FROM labels WHERE uid = ?", a.LabelUID).Scan(&one)
		if err != nil {
			return s.classify(err, what+": label "+a.LabelUID)
		}
		_, err = s.in(tx).ExecContext(ctx, `INSERT INTO applications
			(uid, owner_name, label_uid, metadata, created_at, current_status, status_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			uid, a.OwnerName, a.LabelUID, meta, created, string(core.StatusNew), created)
		if err != nil {
			return s.classify(err, what)
		}
		return s.insertState(ctx, tx, uid, core.StatusNew, "", created)
	})
}

func (s *Store) insertState(ctx context.Context, tx *sql.Tx, appUID string, st core.Status, desc string, at int64) error {
	_, err := s.in(tx).ExecContext(ctx, `INSERT INTO application_states
		(uid, application_uid, status, description, created_at) VALUES (?, ?, ?, ?, ?)`,
		uuid.NewString(), appUID, string(st), desc, at)
	return s.classify(err, "record state "+string(st)+" of application "+appUID)
}

type seqApp struct {
	seq int64
	app core.Application
}

func scanApp(sc interface{ Scan(...any) error }) (seqApp, error) {
	var r seqApp
	var meta sql.NullString
	var created int64
	if err := sc.Scan(&r.seq, &r.app.UID, &r.app.OwnerName, &r.app.LabelUID, &meta, &created); err != nil {
		return r, err
	}
	r.app.Metadata = rawOf(meta)
	r.app.CreatedAt = timeOf(created)
	return r, nil
}

func (s *Store) queryApps(ctx context.Context, q querier, what, query string, args ...any) ([]core.Application, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.classify(err, what)
	}
	defer rows.Close()
	var out []seqApp
	for rows.Next() {
		r, err := scanApp(rows)
		if err != nil {
			return nil, s.classify(err, what)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.classify(err, what)
	}
	// RETURNING gives no order guarantee; keep creation order everywhere.
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	apps := make([]core.Application, len(out))
	for i := range out {
		apps[i] = out[i].app
	}
	return apps, nil
}

// GetApplication returns the application uid or ErrNotFound.
func (s *Store) GetApplication(ctx context.Context, uid string) (*core.Application, error) {
	r, err := scanApp(s.rd().QueryRowContext(ctx, "SELECT "+appCols+" FROM applications WHERE uid = ?", uid))
	if err != nil {
		return nil, s.classify(err, "get application "+uid)
	}
	return &r.app, nil
}

// ListApplications returns the applications of owner ("" = all), oldest first.
func (s *Store) ListApplications(ctx context.Context, owner string) ([]core.Application, error) {
	if owner == "" {
		return s.queryApps(ctx, s.rd(), "list applications", "SELECT "+appCols+" FROM applications ORDER BY seq")
	}
	return s.queryApps(ctx, s.rd(), "list applications of "+owner,
		"SELECT "+appCols+" FROM applications WHERE owner_name = ? ORDER BY seq", owner)
}

const stateCols = "uid, application_uid, status, description, created_at"

func scanState(sc interface{ Scan(...any) error }) (*core.ApplicationState, error) {
	var st core.ApplicationState
	var status string
	var created int64
	if err := sc.Scan(&st.UID, &st.ApplicationUID, &status, &st.Description, &created); err != nil {
		return nil, err
	}
	st.Status = core.Status(status)
	st.CreatedAt = timeOf(created)
	return &st, nil
}

// CurrentState returns the latest state of the application or ErrNotFound.
func (s *Store) CurrentState(ctx context.Context, appUID string) (*core.ApplicationState, error) {
	st, err := scanState(s.rd().QueryRowContext(ctx, "SELECT "+stateCols+
		" FROM application_states WHERE application_uid = ? ORDER BY seq DESC LIMIT 1", appUID))
	if err != nil {
		return nil, s.classify(err, "current state of application "+appUID)
	}
	return st, nil
}

// ListStates returns the state history of the application, oldest first;
// ErrNotFound when the application does not exist.
func (s *Store) ListStates(ctx context.Context, appUID string) ([]core.ApplicationState, error) {
	what := "list states of application " + appUID
	rows, err := s.rd().QueryContext(ctx, "SELECT "+stateCols+
		" FROM application_states WHERE application_uid = ? ORDER BY seq", appUID)
	if err != nil {
		return nil, s.classify(err, what)
	}
	defer rows.Close()
	var out []core.ApplicationState
	for rows.Next() {
		st, err := scanState(rows)
		if err != nil {
			return nil, s.classify(err, what)
		}
		out = append(out, *st)
	}
	if err := rows.Err(); err != nil {
		return nil, s.classify(err, what)
	}
	if len(out) == 0 { // every application has at least NEW
		return nil, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return out, nil
}

// Transition appends state `to` only if the current state is `from`, as a
// compare-and-set on applications.current_status in one transaction.
func (s *Store) Transition(ctx context.Context, appUID string, from, to core.Status, description string) error {
	what := fmt.Sprintf("transition application %s %s -> %s", appUID, from, to)
	if s.d.SingleStatementWrites {
		return s.transitionOne(ctx, what, appUID, from, to, description)
	}
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := tsOf(s.clock.Now())
		res, err := s.in(tx).ExecContext(ctx, `UPDATE applications SET current_status = ?, status_at = ?
			WHERE uid = ? AND current_status = ?`, string(to), now, appUID, string(from))
		if err != nil {
			return s.classify(err, what)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return s.classify(err, what)
		}
		if n == 0 {
			var cur string
			err := s.in(tx).QueryRowContext(ctx, "SELECT current_status FROM applications WHERE uid = ?", appUID).Scan(&cur)
			if err != nil {
				return s.classify(err, what)
			}
			return fmt.Errorf("%s: current state is %s: %w", what, cur, store.ErrConflict)
		}
		return s.insertState(ctx, tx, appUID, to, description, now)
	})
}

// transitionOne is Transition as one atomic statement: the compare-and-set
// UPDATE feeds the state INSERT, so both happen or neither.
func (s *Store) transitionOne(ctx context.Context, what, appUID string, from, to core.Status, description string) error {
	now := tsOf(s.clock.Now())
	res, err := s.wr().ExecContext(ctx, `WITH u AS (
			UPDATE applications SET current_status = ?, status_at = ? WHERE uid = ? AND current_status = ? RETURNING uid
		)
		INSERT INTO application_states (uid, application_uid, status, description, created_at)
		SELECT ?, uid, ?, ?, CAST(? AS BIGINT) FROM u`,
		string(to), now, appUID, string(from), uuid.NewString(), string(to), description, now)
	if err != nil {
		return s.classify(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.classify(err, what)
	}
	if n == 1 {
		return nil
	}
	var cur string
	if err := s.rd().QueryRowContext(ctx, "SELECT current_status FROM applications WHERE uid = ?", appUID).Scan(&cur); err != nil {
		return s.classify(err, what)
	}
	return fmt.Errorf("%s: current state is %s: %w", what, cur, store.ErrConflict)
}

func statusArgs(statuses []core.Status) []any {
	args := make([]any, len(statuses))
	for i, st := range statuses {
		args[i] = string(st)
	}
	return args
}

// ListByStatus returns applications whose current state is one of statuses
// (none = any), oldest first, at most limit (0 = no limit).
func (s *Store) ListByStatus(ctx context.Context, limit int, statuses ...core.Status) ([]core.Application, error) {
	query := "SELECT " + appCols + " FROM applications"
	args := statusArgs(statuses)
	if len(statuses) > 0 {
		query += " WHERE current_status IN (" + placeholders(len(statuses)) + ")"
	}
	query += " ORDER BY seq"
	if limit > 0 {
		query += " LIMIT ?"
		args = append(args, limit)
	}
	return s.queryApps(ctx, s.rd(), fmt.Sprintf("list applications by status %v", statuses), query, args...)
}

// ListCurrentStates returns the latest state of each application whose
// current state is one of statuses (none = any), oldest application first,
// at most limit (0 = no limit).
func (s *Store) ListCurrentStates(ctx context.Context, limit int, statuses ...core.Status) ([]core.ApplicationState, error) {
	what := fmt.Sprintf("list current states %v", statuses)
	query := "SELECT s.uid, s.application_uid, s.status, s.description, s.created_at FROM applications a" +
		" JOIN application_states s ON s.seq = (SELECT MAX(m.seq) FROM application_states m WHERE m.application_uid = a.uid)"
	args := statusArgs(statuses)
	if len(statuses) > 0 {
		query += " WHERE a.current_status IN (" + placeholders(len(statuses)) + ")"
	}
	query += " ORDER BY a.seq"
	if limit > 0 {
		query += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.rd().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.classify(err, what)
	}
	defer rows.Close()
	var out []core.ApplicationState
	for rows.Next() {
		st, err := scanState(rows)
		if err != nil {
			return nil, s.classify(err, what)
		}
		out = append(out, *st)
	}
	return out, s.classify(rows.Err(), what)
}

// ClaimNew moves up to limit (0 = all) NEW applications, oldest first, to
// ELECTED for node and returns them. On PostgreSQL the candidates are locked
// with FOR UPDATE SKIP LOCKED, so concurrent nodes claim disjoint sets; on
// SQLite the single writer serializes claims. Either way each application
// is claimed exactly once.
func (s *Store) ClaimNew(ctx context.Context, node string, limit int) ([]core.Application, error) {
	what := "claim new applications for node " + node
	desc := "elected by node " + node
	pick := "SELECT seq FROM applications WHERE current_status = ? ORDER BY seq"
	now := tsOf(s.clock.Now())
	args := []any{string(core.StatusElected), node, now, string(core.StatusNew)}
	if limit > 0 {
		pick += " LIMIT ?"
		args = append(args, limit)
	}
	pick += s.d.LockForClaim
	args = append(args, string(core.StatusNew))
	update := `UPDATE applications SET current_status = ?, node_name = ?, status_at = ?
		WHERE seq IN (` + pick + `) AND current_status = ? RETURNING ` + appCols
	if s.d.SingleStatementWrites {
		// gen_random_uuid: PostgreSQL 13+.
		args = append(args, string(core.StatusElected), desc, now)
		return s.queryApps(ctx, s.wr(), what, `WITH c AS (`+update+`),
			st AS (INSERT INTO application_states (uid, application_uid, status, description, created_at)
				SELECT CAST(gen_random_uuid() AS TEXT), uid, ?, ?, CAST(? AS BIGINT) FROM c)
			SELECT `+appCols+` FROM c`, args...)
	}
	var out []core.Application
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		apps, err := s.queryApps(ctx, s.in(tx), what, update, args...)
		if err != nil {
			return err
		}
		for _, a := range apps {
			if err := s.insertState(ctx, tx, a.UID, core.StatusElected, desc, now); err != nil {
				return err
			}
		}
		out = apps
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteApplication purges the application with its states, resource and
// tasks (ON DELETE CASCADE), or returns ErrNotFound.
func (s *Store) DeleteApplication(ctx context.Context, uid string) error {
	return s.deleteOne(ctx, "DELETE FROM applications WHERE uid = ?", uid, "delete application "+uid)
}
