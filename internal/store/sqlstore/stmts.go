package sqlstore

import (
	"context"
	"database/sql"
	"errors"
)

// Prepared statements are cached per database handle: parsing and planning
// a statement costs about as much as running it on SQLite. A statement used
// inside a write transaction cannot be prepared on the pool there (the
// transaction may hold the only connection), so the first use runs it
// unprepared and the statement is prepared after the transaction ends.

type stmtKey struct {
	db    *sql.DB
	query string // already rebound for the dialect
}

// runner runs statements written with "?" placeholders, on a pool or
// inside a write transaction, through cached prepared statements.
type runner struct {
	s    *Store
	tx   *sql.Tx
	pool *sql.DB // when tx is nil
}

// rd runs reads on the read pool.
func (s *Store) rd() runner { return runner{s: s, pool: s.r} }

// wr runs single-statement writes (autocommit) on the write pool. Only for
// dialects without GroupCommit, and never inside a transaction.
func (s *Store) wr() runner { return runner{s: s, pool: s.w} }

// in runs statements inside tx.
func (s *Store) in(tx *sql.Tx) runner { return runner{s: s, tx: tx} }

// stmt returns a prepared statement for query (nil: run it unprepared) and
// the query rebound for the dialect.
func (r runner) stmt(ctx context.Context, query string) (*sql.Stmt, string) {
	q := r.s.q(query)
	if r.tx == nil {
		st, err := r.s.prepared(ctx, r.pool, q)
		if err != nil {
			return nil, q // running it unprepared reports the error
		}
		return st, q
	}
	if v, ok := r.s.stmts.Load(stmtKey{r.s.w, q}); ok {
		return r.tx.StmtContext(ctx, v.(*sql.Stmt)), q
	}
	r.s.pendingMu.Lock()
	if r.s.pending == nil {
		r.s.pending = map[string]bool{}
	}
	r.s.pending[q] = true
	r.s.pendingMu.Unlock()
	return nil, q
}

func (r runner) db() interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
} {
	if r.tx != nil {
		return r.tx
	}
	return r.pool
}

// ExecContext runs a statement.
func (r runner) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st, _ := r.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return r.db().ExecContext(ctx, r.s.q(query), args...)
}

// QueryContext runs a query.
func (r runner) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st, _ := r.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.db().QueryContext(ctx, r.s.q(query), args...)
}

// QueryRowContext runs a query returning at most one row.
func (r runner) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st, _ := r.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.db().QueryRowContext(ctx, r.s.q(query), args...)
}

// prepared returns the cached statement for the rebound query q on db,
// preparing it on first use. Never call it for the writer inside a
// transaction.
func (s *Store) prepared(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	key := stmtKey{db, q}
	if v, ok := s.stmts.Load(key); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if v, loaded := s.stmts.LoadOrStore(key, st); loaded {
		_ = st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

// preparePending prepares, on the writer, the statements that write
// transactions ran unprepared. Call it only outside a transaction.
func (s *Store) preparePending() {
	s.pendingMu.Lock()
	pending := s.pending
	s.pending = nil
	s.pendingMu.Unlock()
	for q := range pending {
		// A statement that cannot be prepared keeps running unprepared
		// and reports its error there.
		_, _ = s.prepared(context.Background(), s.w, q)
	}
}

// closeStmts closes every cached statement.
func (s *Store) closeStmts() error {
	var errs []error
	s.stmts.Range(func(k, v any) bool {
		errs = append(errs, v.(*sql.Stmt).Close())
		s.stmts.Delete(k)
		return true
	})
	return errors.Join(errs...)
}
