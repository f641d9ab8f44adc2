package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// maxBatch bounds how many callers share one transaction.
const maxBatch = 64

// errClosed is returned for writes after Close.
var errClosed = errors.New("store is closed")

type opResult struct {
	err  error
	lead bool // not a result: the receiver now leads the next batch
}

type writeOp struct {
	ctx  context.Context
	fn   txFunc
	done chan opResult // buffered 1: a lead signal, then the result
}

// batcher is a group commit for a single-writer database. A caller that
// finds no write in progress runs its write at once (no handoff); callers
// arriving meanwhile queue up, and when the running batch commits, the
// first of them leads the next batch, which takes every queued write. Each
// write runs in its own savepoint: a failing write rolls back to it and
// affects nobody else; a failing commit fails every write of the batch
// (none of them happened).
type batcher struct {
	db    *sql.DB
	name  string
	after func() // runs after each batch, outside any transaction
	// exec runs a savepoint statement in tx (through the statement cache).
	exec func(ctx context.Context, tx *sql.Tx, query string) error

	mu     sync.Mutex
	busy   bool // a leader is running a batch
	closed bool
	queue  []*writeOp
	wg     sync.WaitGroup // calls in progress
}

func newBatcher(db *sql.DB, name string, after func()) *batcher {
	return &batcher{db: db, name: name, after: after, exec: func(ctx context.Context, tx *sql.Tx, q string) error {
		_, err := tx.ExecContext(ctx, q)
		return err
	}}
}

// do runs fn in a (possibly shared) write transaction and returns its
// outcome. Once queued, the caller waits for the outcome even if ctx ends
// meanwhile, so an error always means "not written"; ctx is checked just
// before fn runs.
func (b *batcher) do(ctx context.Context, fn txFunc) error {
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan opResult, 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("%s: %w", b.name, errClosed)
	}
	b.wg.Add(1)
	defer b.wg.Done()
	b.queue = append(b.queue, op)
	if b.busy {
		b.mu.Unlock()
		r := <-op.done
		if !r.lead {
			return r.err
		}
		b.mu.Lock() // lead: op is at the head of the queue
	}
	b.busy = true
	n := min(len(b.queue), maxBatch)
	batch := make([]*writeOp, n)
	copy(batch, b.queue)
	b.queue = b.queue[n:]
	b.mu.Unlock()

	b.run(batch)
	if b.after != nil {
		b.after()
	}

	b.mu.Lock()
	if len(b.queue) > 0 {
		b.queue[0].done <- opResult{lead: true}
	} else {
		b.busy = false
		b.queue = nil
	}
	b.mu.Unlock()
	return (<-op.done).err
}

// close refuses new writes and waits for the ones in progress.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
}

// run executes one batch and delivers every result. Statements use a
// context without cancellation: interrupting a statement would abort the
// shared transaction.
func (b *batcher) run(batch []*writeOp) {
	results := make([]error, len(batch))
	finish := func(commitErr error) {
		for i, op := range batch {
			if results[i] == nil && commitErr != nil {
				results[i] = commitErr
			}
			op.done <- opResult{err: results[i]}
		}
	}
	ctx := context.Background()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		finish(fmt.Errorf("%s: begin: %w", b.name, err))
		return
	}
	single := len(batch) == 1
	for i, op := range batch {
		if err := op.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		opCtx := context.WithoutCancel(op.ctx)
		if single {
			results[i] = op.fn(opCtx, tx)
			continue
		}
		if err := b.exec(ctx, tx, "SAVEPOINT fish_op"); err != nil {
			_ = tx.Rollback()
			finish(fmt.Errorf("%s: savepoint: %w", b.name, err))
			return
		}
		if results[i] = op.fn(opCtx, tx); results[i] != nil {
			if err := b.exec(ctx, tx, "ROLLBACK TO SAVEPOINT fish_op"); err != nil {
				// The transaction is unusable: nothing of this batch may commit.
				_ = tx.Rollback()
				finish(fmt.Errorf("%s: rollback to savepoint: %w", b.name, err))
				return
			}
		}
		if err := b.exec(ctx, tx, "RELEASE SAVEPOINT fish_op"); err != nil {
			_ = tx.Rollback()
			finish(fmt.Errorf("%s: release savepoint: %w", b.name, err))
			return
		}
	}
	if single && results[0] != nil {
		_ = tx.Rollback()
		finish(nil)
		return
	}
	if err := tx.Commit(); err != nil {
		finish(fmt.Errorf("%s: commit: %w", b.name, err))
		return
	}
	finish(nil)
}
