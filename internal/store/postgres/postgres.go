// Package postgres is the store for several nodes sharing one database:
// PostgreSQL through pgx/v5 (database/sql adapter). ClaimNew locks its
// candidates with FOR UPDATE SKIP LOCKED, so nodes claim disjoint sets.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/aquarium-fish/aquarium-fish/internal/store"
	"github.com/aquarium-fish/aquarium-fish/internal/store/migrations"
	"github.com/aquarium-fish/aquarium-fish/internal/store/sqlstore"
)

// Store is the PostgreSQL store.
type Store struct {
	*sqlstore.Store
}

// maxConns bounds the connections one node opens.
const maxConns = 10

// Open connects to dsn (a postgres:// URL or key=value string; a
// search_path parameter selects the schema) and applies the migrations.
func Open(ctx context.Context, dsn string, opts ...store.Option) (*Store, error) {
	if dsn == "" {
		return nil, errors.New("postgres: dsn: must not be empty")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included: do not wrap it.
		return nil, errors.New("postgres: dsn: cannot be parsed")
	}
	o := store.ApplyOptions(opts...)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: connect to %s:%d/%s: %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	if err := migrations.Up(ctx, db, migrations.Postgres); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &Store{Store: sqlstore.New(db, db, Dialect(), o)}, nil
}

// Dialect is the PostgreSQL dialect of the shared implementation.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:                  "postgres",
		Numbered:              true,
		LockForClaim:          " FOR UPDATE SKIP LOCKED",
		SingleStatementWrites: true,
		IsUnique:              codeIs("23505"),
		IsForeignKey:          codeIs("23503"),
	}
}

func codeIs(code string) func(error) bool {
	return func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == code
	}
}
