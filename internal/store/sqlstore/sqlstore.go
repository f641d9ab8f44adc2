// Package sqlstore is the one implementation of store.Store over
// database/sql, shared by store/sqlite and store/postgres. A small Dialect
// says how the two engines differ: placeholders, row locking for claims,
// how constraint violations are reported, single-statement writes
// (PostgreSQL) and group commit (SQLite). Statements are prepared once and
// cached (stmts.go).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// Dialect describes an SQL engine.
type Dialect struct {
	// Name is used in error messages ("sqlite", "postgres").
	Name string
	// Numbered placeholders ($1, $2...) instead of "?".
	Numbered bool
	// LockForClaim is appended to the SELECT that picks NEW applications in
	// ClaimNew (e.g. " FOR UPDATE SKIP LOCKED"); empty when the engine
	// serializes writers itself (SQLite's single writer).
	LockForClaim string
	// IsUnique reports a unique/primary-key violation.
	IsUnique func(error) bool
	// IsForeignKey reports a foreign-key violation.
	IsForeignKey func(error) bool
	// SingleStatementWrites makes Transition, CreateApplication and ClaimNew
	// one statement each (data-modifying WITH) and runs single-statement
	// writes without BEGIN/COMMIT, saving round trips on a client/server
	// database.
	SingleStatementWrites bool
	// GroupCommit lets concurrent write transactions share one database
	// transaction (each in its own savepoint), so one commit serves many
	// callers. For single-writer engines (see batcher).
	GroupCommit bool
}

// Store implements store.Store.
type Store struct {
	w     *sql.DB // writes (and reads inside write transactions)
	r     *sql.DB // reads outside transactions; may equal w
	d     Dialect
	clock clock.Clock

	rebound sync.Map // query with ? -> query for the dialect
	closers []func() error
	batch   *batcher // nil unless Dialect.GroupCommit

	stmts     sync.Map // stmtKey -> *sql.Stmt
	pendingMu sync.Mutex
	pending   map[string]bool // queries to prepare on the writer after a transaction
}

var _ store.Store = (*Store)(nil)

// New returns a Store over write and read handles (they may be the same).
// The schema must already be migrated. closers run on Close after the
// handles are closed.
func New(w, r *sql.DB, d Dialect, opts store.Options, closers ...func() error) *Store {
	if r == nil {
		r = w
	}
	c := opts.Clock
	if c == nil {
		c = clock.Real{}
	}
	s := &Store{w: w, r: r, d: d, clock: c, closers: closers}
	if d.GroupCommit {
		s.batch = newBatcher(w, d.Name, s.preparePending)
		s.batch.exec = func(ctx context.Context, tx *sql.Tx, q string) error {
			_, err := s.in(tx).ExecContext(ctx, q)
			return err
		}
	}
	return s
}

// DB returns the write handle (for tests and tools).
func (s *Store) DB() *sql.DB { return s.w }

// Close closes the database handles.
func (s *Store) Close() error {
	var errs []error
	if s.batch != nil {
		s.batch.close()
	}
	errs = append(errs, s.closeStmts())
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// q rewrites a query written with "?" placeholders for the dialect.
func (s *Store) q(query string) string {
	if !s.d.Numbered {
		return query
	}
	if v, ok := s.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	out := b.String()
	s.rebound.Store(query, out)
	return out
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// txFunc is the body of a write transaction. It must use the ctx it is
// given (not the caller's) for its statements.
type txFunc func(ctx context.Context, tx *sql.Tx) error

// inTx runs fn in a write transaction and commits it when fn returns nil.
// With a batching dialect fn may share the transaction with other callers'
// functions, isolated by a savepoint; it is still all-or-nothing for fn.
func (s *Store) inTx(ctx context.Context, fn txFunc) error {
	if s.batch != nil {
		return s.batch.do(ctx, fn)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", s.d.Name, err)
	}
	defer s.preparePending()
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", s.d.Name, err)
	}
	return nil
}

// writeRow runs fn, which issues exactly one write statement, atomically:
// in autocommit when the dialect allows, otherwise in a write transaction.
func (s *Store) writeRow(ctx context.Context, fn func(ctx context.Context, r runner) error) error {
	if s.d.SingleStatementWrites && s.batch == nil {
		return fn(ctx, s.wr())
	}
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error { return fn(ctx, s.in(tx)) })
}

// execW runs one write statement in a write transaction and returns the
// number of rows it affected.
func (s *Store) execW(ctx context.Context, query string, args ...any) (int64, error) {
	if s.d.SingleStatementWrites && s.batch == nil {
		// One statement is atomic by itself: skip BEGIN/COMMIT round trips.
		res, err := s.wr().ExecContext(ctx, query, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	var n int64
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.in(tx).ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// classify maps a driver error to a store sentinel, wrapped with what.
func (s *Store) classify(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	case s.d.IsUnique != nil && s.d.IsUnique(err):
		return fmt.Errorf("%s: %w", what, store.ErrAlreadyExists)
	case s.d.IsForeignKey != nil && s.d.IsForeignKey(err):
		return fmt.Errorf("%s: referenced object: %w", what, store.ErrNotFound)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
