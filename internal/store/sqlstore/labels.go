package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

const labelCols = "uid, name, version, owner_name, definitions, metadata, visible_for, remove_at, created_at"

type labelRow struct {
	defs, meta, visible sql.NullString
	removeAt            sql.NullInt64
}

func (s *Store) labelArgs(l *core.Label) ([]any, error) {
	defs, err := jsonOf("definitions", l.Definitions, false)
	if err != nil {
		return nil, err
	}
	if l.Definitions == nil {
		defs = sql.NullString{String: "[]", Valid: true}
	}
	meta, err := rawJSON("metadata", l.Metadata)
	if err != nil {
		return nil, err
	}
	vis, err := jsonOf("visible_for", l.VisibleFor, len(l.VisibleFor) == 0)
	if err != nil {
		return nil, err
	}
	return []any{l.Name, l.Version, l.OwnerName, defs, meta, vis, nullTS(l.RemoveAt)}, nil
}

// CreateLabel inserts l, filling UID and CreatedAt when empty.
// (name, version) is unique: a duplicate is ErrAlreadyExists.
func (s *Store) CreateLabel(ctx context.Context, l *core.Label) error {
	if l.Name == "" {
		return fmt.Errorf("create label: name: must not be empty")
	}
	if l.Version < 0 {
		return fmt.Errorf("create label %q: version: must not be negative", l.Name)
	}
	args, err := s.labelArgs(l)
	if err != nil {
		return fmt.Errorf("create label %q: %w", l.Name, err)
	}
	uid := l.UID
	if uid == "" {
		uid = uuid.NewString()
	}
	created := l.CreatedAt
	if created.IsZero() {
		created = s.clock.Now()
	}
	args = append([]any{uid}, append(args, tsOf(created))...)
	_, err = s.execW(ctx, "INSERT INTO labels ("+labelCols+") VALUES ("+placeholders(9)+")", args...)
	if err != nil {
		return s.classify(err, fmt.Sprintf("create label %q version %d", l.Name, l.Version))
	}
	l.UID, l.CreatedAt = uid, timeOf(tsOf(created))
	return nil
}

// UpdateLabel replaces an editable (version 0) label; any other version is
// immutable and gives ErrConflict.
func (s *Store) UpdateLabel(ctx context.Context, l *core.Label) error {
	if l.Name == "" {
		return fmt.Errorf("update label %s: name: must not be empty", l.UID)
	}
	if l.Version != 0 {
		return fmt.Errorf("update label %s: version %d is immutable: %w", l.UID, l.Version, store.ErrConflict)
	}
	args, err := s.labelArgs(l)
	if err != nil {
		return fmt.Errorf("update label %s: %w", l.UID, err)
	}
	what := "update label " + l.UID
	args = append(args, l.UID)
	n, err := s.execW(ctx, `UPDATE labels SET name = ?, version = ?, owner_name = ?, definitions = ?,
		metadata = ?, visible_for = ?, remove_at = ? WHERE uid = ? AND version = 0`, args...)
	if err != nil {
		return s.classify(err, what)
	}
	if n == 1 {
		return nil
	}
	var version int
	if err := s.rd().QueryRowContext(ctx, "SELECT version FROM labels WHERE uid = ?", l.UID).Scan(&version); err != nil {
		return s.classify(err, what)
	}
	return fmt.Errorf("%s: stored version %d is immutable: %w", what, version, store.ErrConflict)
}

func (s *Store) scanLabel(sc interface{ Scan(...any) error }) (*core.Label, error) {
	var l core.Label
	var r labelRow
	var created int64
	if err := sc.Scan(&l.UID, &l.Name, &l.Version, &l.OwnerName, &r.defs, &r.meta, &r.visible, &r.removeAt, &created); err != nil {
		return nil, err
	}
	if err := decode("definitions", r.defs, &l.Definitions); err != nil {
		return nil, err
	}
	if err := decode("visible_for", r.visible, &l.VisibleFor); err != nil {
		return nil, err
	}
	l.Metadata = rawOf(r.meta)
	l.RemoveAt = timePtr(r.removeAt)
	l.CreatedAt = timeOf(created)
	return &l, nil
}

// GetLabel returns the label uid or ErrNotFound.
func (s *Store) GetLabel(ctx context.Context, uid string) (*core.Label, error) {
	l, err := s.scanLabel(s.rd().QueryRowContext(ctx, "SELECT "+labelCols+" FROM labels WHERE uid = ?", uid))
	if err != nil {
		return nil, s.classify(err, "get label "+uid)
	}
	return l, nil
}

// ListLabels returns the labels matching f ordered by name then version.
func (s *Store) ListLabels(ctx context.Context, f store.LabelFilter) ([]core.Label, error) {
	query := "SELECT " + labelCols + " FROM labels l WHERE 1 = 1"
	var args []any
	if f.Name != "" {
		query += " AND name = ?"
		args = append(args, f.Name)
	}
	if f.Latest {
		query += " AND version = (SELECT MAX(version) FROM labels m WHERE m.name = l.name)"
	} else if f.Version != 0 {
		query += " AND version = ?"
		args = append(args, f.Version)
	}
	query += " ORDER BY name, version"
	rows, err := s.rd().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.classify(err, "list labels")
	}
	defer rows.Close()
	var out []core.Label
	for rows.Next() {
		l, err := s.scanLabel(rows)
		if err != nil {
			return nil, s.classify(err, "list labels")
		}
		out = append(out, *l)
	}
	return out, s.classify(rows.Err(), "list labels")
}

// DeleteLabel removes the label uid or returns ErrNotFound.
func (s *Store) DeleteLabel(ctx context.Context, uid string) error {
	return s.deleteOne(ctx, "DELETE FROM labels WHERE uid = ?", uid, "delete label "+uid)
}

// deleteOne runs a DELETE that must remove exactly one row.
func (s *Store) deleteOne(ctx context.Context, query, key, what string) error {
	n, err := s.execW(ctx, query, key)
	if err != nil {
		return s.classify(err, what)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}
