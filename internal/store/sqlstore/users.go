package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

const userCols = "name, password_hash, roles, created_at, updated_at"

func rolesOf(roles []string) (string, error) {
	if roles == nil {
		roles = []string{}
	}
	v, err := jsonOf("roles", roles, false)
	return v.String, err
}

// CreateUser inserts u (ErrAlreadyExists when the name is taken), filling
// the times when zero.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	if u.Name == "" {
		return fmt.Errorf("create user: name: must not be empty")
	}
	roles, err := rolesOf(u.Roles)
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Name, err)
	}
	created := u.CreatedAt
	if created.IsZero() {
		created = s.clock.Now()
	}
	updated := u.UpdatedAt
	if updated.IsZero() {
		updated = created
	}
	_, err = s.execW(ctx, "INSERT INTO users ("+userCols+") VALUES (?, ?, ?, ?, ?)",
		u.Name, u.PasswordHash, roles, tsOf(created), tsOf(updated))
	if err != nil {
		return s.classify(err, fmt.Sprintf("create user %q", u.Name))
	}
	u.CreatedAt, u.UpdatedAt = timeOf(tsOf(created)), timeOf(tsOf(updated))
	return nil
}

// UpdateUser replaces the password hash and roles of u.Name (ErrNotFound
// when absent) and stamps UpdatedAt.
func (s *Store) UpdateUser(ctx context.Context, u *store.User) error {
	what := fmt.Sprintf("update user %q", u.Name)
	roles, err := rolesOf(u.Roles)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	now := s.clock.Now()
	n, err := s.execW(ctx, "UPDATE users SET password_hash = ?, roles = ?, updated_at = ? WHERE name = ?",
		u.PasswordHash, roles, tsOf(now), u.Name)
	if err != nil {
		return s.classify(err, what)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	u.UpdatedAt = timeOf(tsOf(now))
	return nil
}

func scanUser(sc interface{ Scan(...any) error }) (*store.User, error) {
	var u store.User
	var roles sql.NullString
	var created, updated int64
	if err := sc.Scan(&u.Name, &u.PasswordHash, &roles, &created, &updated); err != nil {
		return nil, err
	}
	if err := decode("roles", roles, &u.Roles); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = timeOf(created), timeOf(updated)
	return &u, nil
}

// GetUser returns the user name or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, name string) (*store.User, error) {
	u, err := scanUser(s.rd().QueryRowContext(ctx, "SELECT "+userCols+" FROM users WHERE name = ?", name))
	if err != nil {
		return nil, s.classify(err, fmt.Sprintf("get user %q", name))
	}
	return u, nil
}

// ListUsers returns all users ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.rd().QueryContext(ctx, "SELECT "+userCols+" FROM users ORDER BY name")
	if err != nil {
		return nil, s.classify(err, "list users")
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.classify(err, "list users")
		}
		out = append(out, *u)
	}
	return out, s.classify(rows.Err(), "list users")
}

// DeleteUser removes the user name or returns ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.deleteOne(ctx, "DELETE FROM users WHERE name = ?", name, fmt.Sprintf("delete user %q", name))
}

const nodeCols = "name, address, location, maintenance, updated_at"

// UpsertNode inserts or replaces the node n.Name; a zero UpdatedAt (the
// heartbeat) is stamped with the store clock.
func (s *Store) UpsertNode(ctx context.Context, n *store.Node) error {
	if n.Name == "" {
		return fmt.Errorf("upsert node: name: must not be empty")
	}
	updated := n.UpdatedAt
	if updated.IsZero() {
		updated = s.clock.Now()
	}
	maint := 0
	if n.Maintenance {
		maint = 1
	}
	_, err := s.execW(ctx, `INSERT INTO nodes (`+nodeCols+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET address = excluded.address, location = excluded.location,
			maintenance = excluded.maintenance, updated_at = excluded.updated_at`,
		n.Name, n.Address, n.Location, maint, tsOf(updated))
	if err != nil {
		return s.classify(err, fmt.Sprintf("upsert node %q", n.Name))
	}
	n.UpdatedAt = timeOf(tsOf(updated))
	return nil
}

func scanNode(sc interface{ Scan(...any) error }) (*store.Node, error) {
	var n store.Node
	var maint, updated int64
	if err := sc.Scan(&n.Name, &n.Address, &n.Location, &maint, &updated); err != nil {
		return nil, err
	}
	n.Maintenance = maint != 0
	n.UpdatedAt = timeOf(updated)
	return &n, nil
}

// GetNode returns the node name or ErrNotFound.
func (s *Store) GetNode(ctx context.Context, name string) (*store.Node, error) {
	n, err := scanNode(s.rd().QueryRowContext(ctx, "SELECT "+nodeCols+" FROM nodes WHERE name = ?", name))
	if err != nil {
		return nil, s.classify(err, fmt.Sprintf("get node %q", name))
	}
	return n, nil
}

// ListNodes returns all nodes ordered by name.
func (s *Store) ListNodes(ctx context.Context) ([]store.Node, error) {
	rows, err := s.rd().QueryContext(ctx, "SELECT "+nodeCols+" FROM nodes ORDER BY name")
	if err != nil {
		return nil, s.classify(err, "list nodes")
	}
	defer rows.Close()
	var out []store.Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, s.classify(err, "list nodes")
		}
		out = append(out, *n)
	}
	return out, s.classify(rows.Err(), "list nodes")
}
