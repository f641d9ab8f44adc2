package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Times are stored as Unix nanoseconds, UTC.

func tsOf(t time.Time) int64 { return t.UTC().UnixNano() }

func timeOf(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullTS(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: tsOf(*t), Valid: true}
}

func timePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := timeOf(n.Int64)
	return &t
}

// rawJSON validates an optional JSON document for column field; empty is NULL.
func rawJSON(field string, b json.RawMessage) (sql.NullString, error) {
	if len(b) == 0 {
		return sql.NullString{}, nil
	}
	if !json.Valid(b) {
		return sql.NullString{}, fmt.Errorf("%s: invalid JSON", field)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

// jsonOf marshals v for column field; a nil/empty value is NULL.
func jsonOf(field string, v any, empty bool) (sql.NullString, error) {
	if empty {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return sql.NullString{}, fmt.Errorf("%s: %w", field, err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

func rawOf(s sql.NullString) json.RawMessage {
	if !s.Valid || s.String == "" {
		return nil
	}
	return json.RawMessage(s.String)
}

// decode unmarshals an optional JSON column into v.
func decode(field string, s sql.NullString, v any) error {
	if !s.Valid || s.String == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(s.String), v); err != nil {
		return fmt.Errorf("stored %s: %w", field, err)
	}
	return nil
}
