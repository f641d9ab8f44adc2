package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// memUsers is a minimal user table counting lookups.
type memUsers struct {
	mu    sync.Mutex
	users map[string]store.User
	gets  int
}

func (m *memUsers) GetUser(_ context.Context, name string) (*store.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	u, ok := m.users[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return &u, nil
}

func (m *memUsers) CreateUser(_ context.Context, u *store.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u.Name]; ok {
		return store.ErrAlreadyExists
	}
	m.users[u.Name] = *u
	return nil
}

func (m *memUsers) setPassword(t *testing.T, name, pw string) {
	t.Helper()
	h, err := HashPassword(pw, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[name]
	u.Name, u.PasswordHash = name, h
	if u.Roles == nil {
		u.Roles = []string{RoleUser}
	}
	m.users[name] = u
}

func newAuth(t *testing.T) (*Authenticator, *memUsers, *clock.Virtual) {
	t.Helper()
	users := &memUsers{users: map[string]store.User{}}
	users.setPassword(t, "alice", "secret-a")
	clk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a, err := New(Options{Users: users, Clock: clk, Secret: make([]byte, 32), UserCacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return a, users, clk
}

func basicHeader(u, p string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
}

func TestBasicAndCache(t *testing.T) {
	a, users, _ := newAuth(t)
	ctx := context.Background()
	u, err := a.Authenticate(ctx, "10.0.0.1", basicHeader("alice", "secret-a"))
	if err != nil || u.Name != "alice" {
		t.Fatalf("basic: %v %v", u, err)
	}
	before := users.gets
	for range 5 {
		if _, err := a.Authenticate(ctx, "10.0.0.1", basicHeader("alice", "secret-a")); err != nil {
			t.Fatal(err)
		}
	}
	if users.gets != before {
		t.Fatalf("cached credential hit the store %d times", users.gets-before)
	}
	// A wrong password is never answered from the cache.
	if _, err := a.Authenticate(ctx, "10.0.0.1", basicHeader("alice", "wrong")); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	// Changing the password invalidates the cached credential.
	users.setPassword(t, "alice", "secret-b")
	a.Forget("alice")
	if _, err := a.Authenticate(ctx, "10.0.0.1", basicHeader("alice", "secret-a")); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old password after change: %v", err)
	}
	if _, err := a.Authenticate(ctx, "10.0.0.1", basicHeader("alice", "secret-b")); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if _, err := a.Authenticate(ctx, "10.0.0.1", basicHeader("nobody", "x")); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestAuthenticateHeaders(t *testing.T) {
	a, _, _ := newAuth(t)
	ctx := context.Background()
	for _, h := range []string{"", "Basic !!!", "Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")), "Digest abc", "Bearer nope", "Bearer af1.x.y"} {
		if _, err := a.Authenticate(ctx, "10.0.0.9", h); err == nil {
			t.Errorf("header %q accepted", h)
		}
	}
	if _, err := a.Authenticate(ctx, "10.0.0.9", ""); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("empty header: %v", err)
	}
}

func TestTokens(t *testing.T) {
	a, users, clk := newAuth(t)
	ctx := context.Background()
	tok, _, err := a.Login(ctx, "10.0.0.2", "alice", "secret-a")
	if err != nil {
		t.Fatal(err)
	}
	if u, err := a.Authenticate(ctx, "10.0.0.2", "Bearer "+tok.Token); err != nil || u.Name != "alice" {
		t.Fatalf("bearer: %v %v", u, err)
	}
	// A refresh token is not an access token and vice versa.
	if _, err := a.Bearer(ctx, tok.RefreshToken); !errors.Is(err, ErrBadToken) {
		t.Fatalf("refresh used as access: %v", err)
	}
	if _, _, err := a.Refresh(ctx, tok.Token); !errors.Is(err, ErrBadToken) {
		t.Fatalf("access used as refresh: %v", err)
	}
	// Tampering breaks the signature.
	bad := tok.Token[:len(tok.Token)-2] + "AA"
	if _, err := a.Bearer(ctx, bad); !errors.Is(err, ErrBadToken) {
		t.Fatalf("tampered: %v", err)
	}
	// Expiry, on the virtual clock.
	clk.Advance(time.Hour + time.Second)
	if _, err := a.Bearer(ctx, tok.Token); !errors.Is(err, ErrBadToken) {
		t.Fatalf("expired token accepted: %v", err)
	}
	tok2, _, err := a.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := a.Bearer(ctx, tok2.Token); err != nil {
		t.Fatalf("refreshed token: %v", err)
	}
	// A password change revokes every token.
	users.setPassword(t, "alice", "new")
	a.Forget("alice")
	if _, err := a.Bearer(ctx, tok2.Token); !errors.Is(err, ErrBadToken) {
		t.Fatalf("token after password change: %v", err)
	}
}

func TestFailedLoginRateLimit(t *testing.T) {
	a, _, clk := newAuth(t)
	ctx := context.Background()
	for i := range 10 {
		if _, _, err := a.Login(ctx, "10.0.0.3", "alice", "wrong"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// Blocked now, even with the right password, and for Basic too.
	if _, _, err := a.Login(ctx, "10.0.0.3", "alice", "secret-a"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("11th attempt: %v", err)
	}
	if _, err := a.Basic(ctx, "10.0.0.3", "alice", "secret-a"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("basic while blocked: %v", err)
	}
	// Another address is not affected.
	if _, _, err := a.Login(ctx, "10.0.0.4", "alice", "secret-a"); err != nil {
		t.Fatalf("other address: %v", err)
	}
	clk.Advance(6 * time.Second)
	if _, _, err := a.Login(ctx, "10.0.0.3", "alice", "secret-a"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestEnsureAdminAndSecret(t *testing.T) {
	dir := t.TempDir()
	users := &memUsers{users: map[string]store.User{}}
	clk := clock.NewVirtual(time.Unix(0, 0))
	pw, err := EnsureAdmin(context.Background(), users, clk, dir, bcrypt.MinCost)
	if err != nil || pw == "" {
		t.Fatalf("first start: %q %v", pw, err)
	}
	st, err := os.Stat(filepath.Join(dir, AdminPasswordFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v %v", st, err)
	}
	u := users.users[AdminUser]
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pw)) != nil || !IsAdmin(u.Roles) {
		t.Fatalf("admin user wrong: %+v", u)
	}
	again, err := EnsureAdmin(context.Background(), users, clk, dir, bcrypt.MinCost)
	if err != nil || again != "" {
		t.Fatalf("second start must not recreate: %q %v", again, err)
	}
	s1, err := LoadOrCreateSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := LoadOrCreateSecret(dir)
	if string(s1) != string(s2) || len(s1) != 32 {
		t.Fatal("secret not persisted")
	}
}

func TestRoles(t *testing.T) {
	cases := []struct {
		roles           []string
		service, method string
		want            bool
	}{
		{[]string{RoleAdministrator}, "UserService", "Create", true},
		{[]string{RoleUser}, "UserService", "Create", false},
		{[]string{RoleUser}, "UserService", "GetMe", true},
		{[]string{RoleUser}, "ApplicationService", "CreateTask", false},
		{[]string{RolePower}, "ApplicationService", "CreateTask", true},
		{[]string{RolePower}, "NodeService", "SetMaintenance", false},
		{nil, "LabelService", "List", false},
	}
	for _, c := range cases {
		if got := Allowed(c.roles, c.service, c.method); got != c.want {
			t.Errorf("Allowed(%v, %s/%s) = %v", c.roles, c.service, c.method, got)
		}
	}
}

func benchAuth(b *testing.B, cost int) (*Authenticator, *memUsers) {
	b.Helper()
	users := &memUsers{users: map[string]store.User{}}
	h, err := HashPassword("secret-a", cost)
	if err != nil {
		b.Fatal(err)
	}
	users.users["alice"] = store.User{Name: "alice", PasswordHash: h, Roles: []string{RoleUser}}
	a, err := New(Options{Users: users, Secret: make([]byte, 32), FailBurst: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	return a, users
}

// BenchmarkBasicCached: HTTP Basic once the credential is verified (the
// verified-credential cache hit path).
func BenchmarkBasicCached(b *testing.B) {
	a, _ := benchAuth(b, bcrypt.DefaultCost)
	h := basicHeader("alice", "secret-a")
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "10.0.0.1", h); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, "10.0.0.1", h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBasicFullHash: what every Basic request would cost without the
// cache (a bcrypt check at the default cost).
func BenchmarkBasicFullHash(b *testing.B) {
	a, _ := benchAuth(b, bcrypt.DefaultCost)
	ctx := context.Background()
	for b.Loop() {
		if _, err := a.verify(ctx, "alice", "secret-a"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBearer: verifying a signed access token.
func BenchmarkBearer(b *testing.B) {
	a, _ := benchAuth(b, bcrypt.MinCost)
	ctx := context.Background()
	tok, _, err := a.Login(ctx, "10.0.0.1", "alice", "secret-a")
	if err != nil {
		b.Fatal(err)
	}
	h := "Bearer " + tok.Token
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, "10.0.0.1", h); err != nil {
			b.Fatal(err)
		}
	}
}
