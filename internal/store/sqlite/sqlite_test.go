package sqlite_test

import (
	"context"
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
