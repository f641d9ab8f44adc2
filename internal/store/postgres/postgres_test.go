package postgres_test

import (
	"testing"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
	"github.com/aquarium-fish/aquarium-fish/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.OpenPostgres(t) })
}

func TestClock(t *testing.T) {
	storetest.RunClock(t, func(t *testing.T, c clock.Clock) store.Store {
		return storetest.OpenPostgres(t, store.WithClock(c))
	})
}

// Two stores on one schema are two nodes sharing the database.
func TestMultiNode(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	a := storetest.OpenPostgresDSN(t, dsn)
	b := storetest.OpenPostgresDSN(t, dsn)
	storetest.RunMultiNode(t, a, b)
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return storetest.OpenPostgres(b) })
}
