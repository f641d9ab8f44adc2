package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

const resourceCols = `r.uid, r.application_uid, r.node_name, r.label_uid, r.definition_index, r.identifier,
	r.ip_addr, r.hw_addr, r.metadata, r.timeout, r.authentication, r.driver_data, r.created_at`

// SaveResource inserts the resource of r.ApplicationUID or updates it (an
// application has at most one). The application must exist (ErrNotFound).
// On update the stored UID and CreatedAt are kept and written back to r.
func (s *Store) SaveResource(ctx context.Context, r *core.Resource) error {
	what := "save resource of application " + r.ApplicationUID
	if r.ApplicationUID == "" {
		return fmt.Errorf("save resource: application_uid: must not be empty")
	}
	meta, err := rawJSON("metadata", r.Metadata)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	dd, err := rawJSON("driver_data", r.DriverData)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	auth, err := jsonOf("authentication", r.Authentication, r.Authentication == nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	uid := r.UID
	if uid == "" {
		uid = uuid.NewString()
	}
	created := r.CreatedAt
	if created.IsZero() {
		created = s.clock.Now()
	}
	var gotUID string
	var gotCreated int64
	err = s.writeRow(ctx, func(ctx context.Context, run runner) error {
		return run.QueryRowContext(ctx, `INSERT INTO resources (uid, application_uid, node_name, label_uid,
		definition_index, identifier, ip_addr, hw_addr, metadata, timeout, authentication, driver_data, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (application_uid) DO UPDATE SET node_name = excluded.node_name,
			label_uid = excluded.label_uid, definition_index = excluded.definition_index,
			identifier = excluded.identifier, ip_addr = excluded.ip_addr, hw_addr = excluded.hw_addr,
			metadata = excluded.metadata, timeout = excluded.timeout,
			authentication = excluded.authentication, driver_data = excluded.driver_data
		RETURNING uid, created_at`,
			uid, r.ApplicationUID, r.NodeName, r.LabelUID, r.DefinitionIndex, r.Identifier, r.IPAddr, r.HwAddr,
			meta, nullTS(r.Timeout), auth, dd, tsOf(created)).Scan(&gotUID, &gotCreated)
	})
	if err != nil {
		return s.classify(err, what)
	}
	r.UID, r.CreatedAt = gotUID, timeOf(gotCreated)
	return nil
}

func scanResource(sc interface{ Scan(...any) error }) (*core.Resource, error) {
	var r core.Resource
	var meta, auth, dd sql.NullString
	var timeout sql.NullInt64
	var created int64
	if err := sc.Scan(&r.UID, &r.ApplicationUID, &r.NodeName, &r.LabelUID, &r.DefinitionIndex, &r.Identifier,
		&r.IPAddr, &r.HwAddr, &meta, &timeout, &auth, &dd, &created); err != nil {
		return nil, err
	}
	if auth.Valid {
		r.Authentication = &core.Authentication{}
		if err := decode("authentication", auth, r.Authentication); err != nil {
			return nil, err
		}
	}
	r.Metadata = rawOf(meta)
	r.DriverData = rawOf(dd)
	r.Timeout = timePtr(timeout)
	r.CreatedAt = timeOf(created)
	return &r, nil
}

// GetResource returns the resource of the application or ErrNotFound.
func (s *Store) GetResource(ctx context.Context, appUID string) (*core.Resource, error) {
	r, err := scanResource(s.rd().QueryRowContext(ctx, "SELECT "+resourceCols+
		" FROM resources r WHERE r.application_uid = ?", appUID))
	if err != nil {
		return nil, s.classify(err, "get resource of application "+appUID)
	}
	return r, nil
}

// GetResourceByIP returns the resource with address ip, preferring one whose
// application is ALLOCATED, then the newest; ErrNotFound when none.
func (s *Store) GetResourceByIP(ctx context.Context, ip string) (*core.Resource, error) {
	if ip == "" {
		return nil, fmt.Errorf("get resource by ip: ip: must not be empty")
	}
	r, err := scanResource(s.rd().QueryRowContext(ctx, "SELECT "+resourceCols+
		` FROM resources r JOIN applications a ON a.uid = r.application_uid WHERE r.ip_addr = ?
		ORDER BY CASE WHEN a.current_status = ? THEN 0 ELSE 1 END, r.seq DESC LIMIT 1`,
		ip, string(core.StatusAllocated)))
	if err != nil {
		return nil, s.classify(err, "get resource by ip "+ip)
	}
	return r, nil
}

// ListResources returns the resources of node ("" = all), oldest first.
func (s *Store) ListResources(ctx context.Context, node string) ([]core.Resource, error) {
	query := "SELECT " + resourceCols + " FROM resources r"
	var args []any
	if node != "" {
		query += " WHERE r.node_name = ?"
		args = append(args, node)
	}
	query += " ORDER BY r.seq"
	what := "list resources"
	rows, err := s.rd().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.classify(err, what)
	}
	defer rows.Close()
	var out []core.Resource
	for rows.Next() {
		r, err := scanResource(rows)
		if err != nil {
			return nil, s.classify(err, what)
		}
		out = append(out, *r)
	}
	return out, s.classify(rows.Err(), what)
}

// DeleteResource removes the resource of the application or returns ErrNotFound.
func (s *Store) DeleteResource(ctx context.Context, appUID string) error {
	return s.deleteOne(ctx, "DELETE FROM resources WHERE application_uid = ?", appUID,
		"delete resource of application "+appUID)
}
