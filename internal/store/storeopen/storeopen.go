// Package storeopen picks the store implementation a node config asks for:
// the embedded SQLite file in the data directory, or PostgreSQL for a
// postgres:// database DSN.
package storeopen

import (
	"context"
	"fmt"

	"github.com/aquarium-fish/aquarium-fish/internal/config"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
	"github.com/aquarium-fish/aquarium-fish/internal/store/postgres"
	"github.com/aquarium-fish/aquarium-fish/internal/store/sqlite"
)

// Open opens the store of cfg: PostgreSQL when cfg.Database is a
// postgres:// DSN, otherwise SQLite at cfg.SQLitePath().
func Open(ctx context.Context, cfg *config.Config, opts ...store.Option) (store.Store, error) {
	if cfg.IsPostgres() {
		s, err := postgres.Open(ctx, cfg.Database, opts...)
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		return s, nil
	}
	if cfg.Database != "" {
		return nil, fmt.Errorf(`open database: database: must be empty (embedded SQLite) or a "postgres://" DSN`)
	}
	s, err := sqlite.Open(ctx, cfg.SQLitePath(), opts...)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return s, nil
}
