package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
	"github.com/aquarium-fish/aquarium-fish/internal/store/sqlite"
	"github.com/aquarium-fish/aquarium-fish/internal/store/storetest"
)

func TestConformanceFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.OpenSQLite(t) })
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), sqlite.Memory)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestClock(t *testing.T) {
	storetest.RunClock(t, func(t *testing.T, c clock.Clock) store.Store {
		return storetest.OpenSQLite(t, store.WithClock(c))
	})
}

// Two handles on one file stand for two processes sharing the database.
func TestMultiNode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fish.db")
	a, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	storetest.RunMultiNode(t, a, b)
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return storetest.OpenSQLite(b) })
}

// The database and its WAL are private to the node's user.
func TestFilesArePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "fish.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.UpsertNode(context.Background(), &store.Node{Name: "n"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(path), path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group/other access", p, fi.Mode().Perm())
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, path := range []string{"", "a?b.db", "x#y"} {
		if _, err := sqlite.Open(context.Background(), path); err == nil {
			t.Errorf("Open(%q): no error", path)
		}
	}
	// A directory where the file should be.
	if _, err := sqlite.Open(context.Background(), t.TempDir()); err == nil {
		t.Error("Open(directory): no error")
	}
}
