package storeopen_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aquarium-fish/aquarium-fish/internal/config"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store/postgres"
	"github.com/aquarium-fish/aquarium-fish/internal/store/sqlite"
	"github.com/aquarium-fish/aquarium-fish/internal/store/storeopen"
	"github.com/aquarium-fish/aquarium-fish/internal/store/storetest"
)

func TestSQLiteInDirectory(t *testing.T) {
	cfg := config.Default()
	cfg.Directory = filepath.Join(t.TempDir(), "data")
	s, err := storeopen.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*sqlite.Store); !ok {
		t.Fatalf("got %T, want *sqlite.Store", s)
	}
	if err := s.CreateLabel(context.Background(), &core.Label{Name: "x", Version: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Directory, config.SQLiteFile)); err != nil {
		t.Fatalf("database file not in the data directory: %v", err)
	}
}

func TestPostgresDSN(t *testing.T) {
	cfg := config.Default()
	cfg.Database = storetest.PostgresDSN(t)
	s, err := storeopen.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*postgres.Store); !ok {
		t.Fatalf("got %T, want *postgres.Store", s)
	}
}

func TestUnknownDatabase(t *testing.T) {
	cfg := config.Default()
	cfg.Database = "mysql://root:hunter2@db/fish"
	_, err := storeopen.Open(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "database") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v", err)
	}
}

func TestPostgresUnreachableDoesNotLeakPassword(t *testing.T) {
	cfg := config.Default()
	// A port nothing listens on (connection refused is immediate).
	cfg.Database = "postgres://fish:hunter2@127.0.0.1:1/fish?sslmode=disable&connect_timeout=2"
	_, err := storeopen.Open(context.Background(), cfg)
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the password: %v", err)
	}
}
