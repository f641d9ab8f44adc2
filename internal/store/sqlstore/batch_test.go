package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

func openBatchDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "b.db")+"?_txlock=immediate&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec("CREATE TABLE t (k INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return db
}

func insert(k int, fail bool) txFunc {
	return func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO t (k) VALUES (?)", k); err != nil {
			return err
		}
		if fail {
			return fmt.Errorf("op %d: boom", k)
		}
		return nil
	}
}

// A failing write in a shared batch is rolled back to its savepoint after
// it already wrote; the other writes of the batch commit.
func TestBatchIsolatesFailures(t *testing.T) {
	db := openBatchDB(t)
	b := newBatcher(db, "test", nil)
	const n = 40
	release := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	// Op 0 leads and holds the writer until the others are queued, so they
	// all run as one batch.
	wg.Go(func() {
		errs[0] = b.do(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
			<-release
			return insert(0, false)(ctx, tx)
		})
	})
	for {
		b.mu.Lock()
		busy := b.busy
		b.mu.Unlock()
		if busy {
			break
		}
		runtime.Gosched()
	}
	for i := 1; i < n; i++ {
		wg.Go(func() { errs[i] = b.do(context.Background(), insert(i, i%3 == 0)) })
	}
	for {
		b.mu.Lock()
		queued := len(b.queue)
		b.mu.Unlock()
		if queued == n-1 {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()

	var want []int
	for i, err := range errs {
		if i%3 == 0 && i != 0 {
			if err == nil || err.Error() != fmt.Sprintf("op %d: boom", i) {
				t.Fatalf("op %d: got %v, want its own error", i, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
		want = append(want, i)
	}
	rows, err := db.Query("SELECT k FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var k int
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	sort.Ints(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
}

// A constraint error inside a batch leaves the rest of the batch intact.
func TestBatchConstraintError(t *testing.T) {
	db := openBatchDB(t)
	b := newBatcher(db, "test", nil)
	if err := b.do(context.Background(), insert(1, false)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() { errs[i] = b.do(context.Background(), insert(1+i%2, false)) })
	}
	wg.Wait()
	dups, ok := 0, 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			dups++
		}
	}
	if ok != 1 || dups != 19 {
		t.Fatalf("ok %d dups %d, want 1 and 19", ok, dups)
	}
	var count int
	if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&count); err != nil || count != 2 {
		t.Fatalf("count %d, %v", count, err)
	}
}

func TestBatchClosed(t *testing.T) {
	b := newBatcher(openBatchDB(t), "test", nil)
	b.close()
	if err := b.do(context.Background(), insert(1, false)); !errors.Is(err, errClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestBatchCanceledBeforeRun(t *testing.T) {
	db := openBatchDB(t)
	b := newBatcher(db, "test", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.do(ctx, insert(1, false)); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled write: %v", err)
	}
	var count int
	if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&count); err != nil || count != 0 {
		t.Fatalf("canceled write stored %d rows (%v)", count, err)
	}
}

// A statement first run inside a write transaction is prepared once the
// transaction ends and is then reused; reads are prepared on first use.
func TestStatementCache(t *testing.T) {
	for _, gc := range []bool{false, true} {
		t.Run(fmt.Sprint("group_commit=", gc), func(t *testing.T) {
			db := openBatchDB(t)
			s := New(db, db, Dialect{Name: "test", GroupCommit: gc}, store.ApplyOptions())
			ctx := context.Background()
			const ins = "INSERT INTO t (k) VALUES (?)"
			if _, err := s.execW(ctx, ins, 1); err != nil {
				t.Fatal(err)
			}
			if _, ok := s.stmts.Load(stmtKey{db, ins}); !ok {
				t.Fatal("write statement not prepared after its transaction")
			}
			if _, err := s.execW(ctx, ins, 2); err != nil {
				t.Fatal(err)
			}
			var n int
			const count = "SELECT COUNT(*) FROM t WHERE k > ?"
			if err := s.rd().QueryRowContext(ctx, count, 0).Scan(&n); err != nil || n != 2 {
				t.Fatalf("count %d, %v", n, err)
			}
			if _, ok := s.stmts.Load(stmtKey{db, count}); !ok {
				t.Fatal("read statement not cached")
			}
			s.pendingMu.Lock()
			left := len(s.pending)
			s.pendingMu.Unlock()
			if left != 0 {
				t.Fatalf("%d statements still pending", left)
			}
			if err := s.closeStmts(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
