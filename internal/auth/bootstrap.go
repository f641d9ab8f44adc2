package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// AdminUser is the name of the bootstrap administrator.
const AdminUser = "admin"

// AdminPasswordFile is the file in the data directory holding the bootstrap
// admin password (mode 0600).
const AdminPasswordFile = "admin.password"

// SecretFile holds the token signing key in the data directory (mode 0600).
const SecretFile = "auth.key"

// UserCreator is the part of the store the bootstrap needs.
type UserCreator interface {
	GetUser(ctx context.Context, name string) (*store.User, error)
	CreateUser(ctx context.Context, u *store.User) error
}

// RandomPassword returns a random URL-safe password of 24 characters.
func RandomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// EnsureAdmin creates the admin user on first start. It returns the new
// password (only when it created the user; "" otherwise), after saving it
// in dir/admin.password with mode 0600.
func EnsureAdmin(ctx context.Context, users UserCreator, clk clock.Clock, dir string, cost int) (string, error) {
	if _, err := users.GetUser(ctx, AdminUser); err == nil {
		return "", nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("bootstrap admin: %w", err)
	}
	pw, err := RandomPassword()
	if err != nil {
		return "", err
	}
	hash, err := HashPassword(pw, cost)
	if err != nil {
		return "", err
	}
	now := clk.Now()
	if err := users.CreateUser(ctx, &store.User{Name: AdminUser, PasswordHash: hash, Roles: []string{RoleAdministrator}, CreatedAt: now, UpdatedAt: now}); err != nil {
		return "", fmt.Errorf("bootstrap admin: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, AdminPasswordFile), []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("bootstrap admin: save password: %w", err)
	}
	return pw, nil
}

// LoadOrCreateSecret returns the token signing key stored in dir, creating
// it (32 random bytes, mode 0600) on first start.
func LoadOrCreateSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, SecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("token key %s: too short (%d bytes)", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("token key: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return b, nil
}
