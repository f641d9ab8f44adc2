// Package storetest is the conformance suite every store.Store must pass,
// plus helpers that open throw-away SQLite and PostgreSQL stores for tests
// of other packages (the engine runs its scenarios on both).
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aquarium-fish/aquarium-fish/internal/store"
	"github.com/aquarium-fish/aquarium-fish/internal/store/postgres"
	"github.com/aquarium-fish/aquarium-fish/internal/store/sqlite"
)

// DefaultPostgresDSN is used when AQUARIUM_TEST_POSTGRES_DSN is unset.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// OpenSQLite opens a SQLite store on a fresh file in t.TempDir() and closes
// it at cleanup.
func OpenSQLite(t testing.TB, opts ...store.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "fish.db"), opts...)
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// basePostgresDSN returns the server DSN, or skips the test when the server
// does not answer (fails instead when AQUARIUM_REQUIRE_POSTGRES=1).
func basePostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("AQUARIUM_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = DefaultPostgresDSN
	}
	return dsn
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("AQUARIUM_REQUIRE_POSTGRES") == "1" {
		t.Fatalf("PostgreSQL is required (AQUARIUM_REQUIRE_POSTGRES=1) but not available: %v", err)
	}
	t.Skipf("PostgreSQL not available (set AQUARIUM_TEST_POSTGRES_DSN): %v", err)
}

// PostgresDSN creates a fresh schema on the test server and returns a DSN
// whose search_path selects it; the schema is dropped at cleanup. Several
// stores opened with the same DSN share the schema (several nodes).
// Without a server the test is skipped, unless AQUARIUM_REQUIRE_POSTGRES=1.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := basePostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		unavailable(t, err)
	}
	defer conn.Close(context.Background())
	schema := "fishtest_" + randomHex(8)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	out, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("AQUARIUM_TEST_POSTGRES_DSN: %v", err)
	}
	return out
}

// withSearchPath adds search_path=schema to a URL or key=value DSN.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse DSN: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + schema, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// OpenPostgres opens a PostgreSQL store on a fresh schema (see PostgresDSN)
// and closes it at cleanup.
func OpenPostgres(t testing.TB, opts ...store.Option) *postgres.Store {
	t.Helper()
	return OpenPostgresDSN(t, PostgresDSN(t), opts...)
}

// OpenPostgresDSN opens a PostgreSQL store on dsn (from PostgresDSN) and
// closes it at cleanup; use it to open a second node on the same schema.
func OpenPostgresDSN(t testing.TB, dsn string, opts ...store.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, opts...)
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
