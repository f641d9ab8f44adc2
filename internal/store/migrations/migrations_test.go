package migrations_test

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/aquarium-fish/aquarium-fish/internal/store/migrations"
)

func TestFSRendersEveryDialect(t *testing.T) {
	for _, d := range []migrations.Dialect{migrations.SQLite, migrations.Postgres} {
		fsys, err := migrations.FS(d)
		if err != nil {
			t.Fatal(err)
		}
		names, err := fs.Glob(fsys, "*.sql")
		if err != nil || len(names) == 0 {
			t.Fatalf("%s: no migrations (%v)", d, err)
		}
		for _, n := range names {
			b, err := fs.ReadFile(fsys, n)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "{{") {
				t.Errorf("%s/%s: unrendered placeholder", d, n)
			}
			if !strings.Contains(string(b), "-- +goose Up") || !strings.Contains(string(b), "-- +goose Down") {
				t.Errorf("%s/%s: missing goose Up/Down", d, n)
			}
		}
	}
	if _, err := migrations.FS("mysql"); err == nil || !strings.Contains(err.Error(), "mysql") {
		t.Fatalf("unknown dialect: %v", err)
	}
}

// Up applies the schema once; running it again is a no-op.
func TestUpIdempotent(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for range 2 {
		if err := migrations.Up(ctx, db, migrations.SQLite); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range []string{"labels", "applications", "application_states", "resources", "application_tasks", "users", "nodes"} {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
	if err := migrations.Up(ctx, db, "mysql"); err == nil {
		t.Fatal("Up with unknown dialect: no error")
	}
}
