// Package sqlite is the embedded store: SQLite through modernc.org/sqlite
// (pure Go), in WAL mode with foreign keys on.
//
// Writes go through one connection whose transactions start with BEGIN
// IMMEDIATE, so concurrent callers queue in database/sql instead of failing
// with SQLITE_BUSY; reads use a separate read-only pool (WAL lets them run
// beside the writer). ":memory:" uses a single connection for both.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/aquarium-fish/aquarium-fish/internal/store"
	"github.com/aquarium-fish/aquarium-fish/internal/store/migrations"
	"github.com/aquarium-fish/aquarium-fish/internal/store/sqlstore"
)

// Store is the SQLite store.
type Store struct {
	*sqlstore.Store
}

// Memory is the path of a private in-memory database.
const Memory = ":memory:"

// busyTimeoutMS bounds how long a connection waits for another process
// holding the database (several processes on one file); within one process
// the single writer connection already serializes writes.
const busyTimeoutMS = 10000

func dsn(path string, params url.Values) string {
	return "file:" + path + "?" + params.Encode()
}

func baseParams() url.Values {
	p := url.Values{}
	p.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	p.Add("_pragma", "foreign_keys(1)")
	return p
}

// Open opens (creating if needed) the database file at path, or a private
// in-memory database for ":memory:", and applies the migrations.
func Open(ctx context.Context, path string, opts ...store.Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: path: must not be empty")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: path %q: must not contain '?' or '#'", path)
	}
	o := store.ApplyOptions(opts...)
	mem := path == Memory
	if !mem {
		if err := createPrivate(path); err != nil {
			return nil, err
		}
	}

	wp := baseParams()
	wp.Set("_txlock", "immediate")
	if !mem {
		wp.Add("_pragma", "journal_mode(WAL)")
		wp.Add("_pragma", "synchronous(NORMAL)")
	}
	w, err := sql.Open("sqlite", dsn(path, wp))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrations.Up(ctx, w, migrations.SQLite); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	r := w
	if !mem {
		rp := baseParams()
		rp.Add("_pragma", "query_only(1)")
		r, err = sql.Open("sqlite", dsn(path, rp))
		if err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("sqlite: open readers of %s: %w", path, err)
		}
		r.SetMaxOpenConns(4)
		r.SetMaxIdleConns(4)
		if err := r.PingContext(ctx); err != nil {
			_ = r.Close()
			_ = w.Close()
			return nil, fmt.Errorf("sqlite: open readers of %s: %w", path, err)
		}
	}
	return &Store{Store: sqlstore.New(w, r, Dialect(), o)}, nil
}

// createPrivate creates the directory (0700) and an empty database file
// (0600) when they do not exist: the database holds password hashes and
// resource credentials, and SQLite gives its -wal and -shm files the mode
// of the database file.
func createPrivate(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sqlite: create directory of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	return nil
}

// Dialect is the SQLite dialect of the shared implementation.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:         "sqlite",
		GroupCommit:  true,
		IsUnique:     codeIs(sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY),
		IsForeignKey: codeIs(sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY),
	}
}

func codeIs(codes ...int) func(error) bool {
	return func(err error) bool {
		var se *sqlite.Error
		if !errors.As(err, &se) {
			return false
		}
		for _, c := range codes {
			if se.Code() == c {
				return true
			}
		}
		return false
	}
}
