// Package auth authenticates API callers: HTTP Basic with a verified-credential
// cache, signed bearer tokens (Login / RefreshToken), failed-login rate
// limiting per client address, roles and the admin bootstrap.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/singleflight"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// Errors returned by the Authenticator. Callers map them to 401 / 429.
var (
	ErrNoCredentials  = errors.New("authentication required: use HTTP Basic or a Bearer token")
	ErrBadCredentials = errors.New("invalid credentials")
	ErrBadToken       = errors.New("invalid or expired token")
	ErrRateLimited    = errors.New("too many failed logins from this address, retry later")
)

// UserStore is the part of the store the authenticator needs.
type UserStore interface {
	GetUser(ctx context.Context, name string) (*store.User, error)
}

// Options configure an Authenticator. Zero durations take the defaults.
type Options struct {
	Users UserStore
	Clock clock.Clock
	// Secret signs bearer tokens (at least 32 bytes; see LoadOrCreateSecret).
	Secret        []byte
	TokenTTL      time.Duration // default 1h
	RefreshTTL    time.Duration // default 24h
	BasicCacheTTL time.Duration // default 5m: how long a verified Basic credential is trusted
	UserCacheTTL  time.Duration // default 2s: how long a user record is reused between requests
	FailEvery     time.Duration // default 6s: one more failed login allowed per FailEvery...
	FailBurst     int           // default 10: ...after FailBurst failures from one address
}

// Authenticator checks credentials. It is safe for concurrent use.
type Authenticator struct {
	users  UserStore
	clk    clock.Clock
	secret []byte
	// cacheKey keys the verified-credential cache; it is random per process,
	// so cache keys reveal nothing about passwords and never leave memory.
	cacheKey []byte
	opts     Options

	mu         sync.Mutex
	basicCache map[[32]byte]basicEntry
	userCache  map[string]userEntry
	tokenCache map[string]tokenPayload // verified tokens (signature already checked)

	fails *failLimiter
	// verifying collapses concurrent full checks of the same credential
	// (16 clients starting at once cost one hash, not 16).
	verifying singleflight.Group
}

type basicEntry struct {
	name    string
	hash    string // the password hash that verified the credential
	expires time.Time
}

type userEntry struct {
	user    store.User
	fetched time.Time
}

const maxCacheEntries = 10000

// dummyHash is compared against when a user does not exist, so an unknown
// user costs the same as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("aquarium-fish-dummy"), bcrypt.MinCost)

// New returns an Authenticator.
func New(opts Options) (*Authenticator, error) {
	if opts.Users == nil {
		return nil, errors.New("auth: Users is required")
	}
	if len(opts.Secret) < 32 {
		return nil, errors.New("auth: Secret must be at least 32 bytes")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.TokenTTL, time.Hour)
	def(&opts.RefreshTTL, 24*time.Hour)
	def(&opts.BasicCacheTTL, 5*time.Minute)
	def(&opts.UserCacheTTL, 2*time.Second)
	def(&opts.FailEvery, 6*time.Second)
	if opts.FailBurst <= 0 {
		opts.FailBurst = 10
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("auth: cache key: %w", err)
	}
	return &Authenticator{
		users: opts.Users, clk: opts.Clock, secret: opts.Secret, cacheKey: key, opts: opts,
		basicCache: map[[32]byte]basicEntry{}, userCache: map[string]userEntry{}, tokenCache: map[string]tokenPayload{},
		fails: newFailLimiter(opts.FailEvery, opts.FailBurst),
	}, nil
}

// HashPassword hashes a password with bcrypt at cost (0 = bcrypt.DefaultCost).
func HashPassword(password string, cost int) (string, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// Authenticate checks an Authorization header value ("Basic ..." or
// "Bearer ...") from client address addr (an IP) and returns the user.
func (a *Authenticator) Authenticate(ctx context.Context, addr, header string) (*store.User, error) {
	scheme, value, _ := strings.Cut(strings.TrimSpace(header), " ")
	value = strings.TrimSpace(value)
	switch {
	case header == "":
		return nil, ErrNoCredentials
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return nil, fmt.Errorf("%w: malformed Basic header", ErrBadCredentials)
		}
		name, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, fmt.Errorf("%w: malformed Basic header", ErrBadCredentials)
		}
		return a.Basic(ctx, addr, name, pass)
	case strings.EqualFold(scheme, "Bearer"):
		return a.Bearer(ctx, value)
	default:
		return nil, fmt.Errorf("%w: unsupported authorization scheme %q", ErrBadCredentials, scheme)
	}
}

// Basic verifies a user name and password. A credential verified recently
// is answered from a cache keyed by an HMAC of the pair (never the
// plaintext), and only while the user's password hash is unchanged.
func (a *Authenticator) Basic(ctx context.Context, addr, name, password string) (*store.User, error) {
	now := a.clk.Now()
	if a.fails.blocked(addr, now) {
		return nil, ErrRateLimited
	}
	key := a.credKey(name, password)
	a.mu.Lock()
	e, hit := a.basicCache[key]
	a.mu.Unlock()
	if hit && now.Before(e.expires) {
		u, err := a.user(ctx, name)
		if err == nil && u.PasswordHash == e.hash {
			return u, nil
		}
	}
	v, err, _ := a.verifying.Do(string(key[:]), func() (any, error) {
		u, err := a.verify(ctx, name, password)
		if err != nil {
			return nil, err
		}
		a.mu.Lock()
		if len(a.basicCache) >= maxCacheEntries {
			clear(a.basicCache)
		}
		a.basicCache[key] = basicEntry{name: name, hash: u.PasswordHash, expires: a.clk.Now().Add(a.opts.BasicCacheTTL)}
		a.mu.Unlock()
		return u, nil
	})
	if err != nil {
		a.fails.fail(addr, now)
		return nil, err
	}
	u := *v.(*store.User)
	return &u, nil
}

// verify does the full password check.
func (a *Authenticator) verify(ctx context.Context, name, password string) (*store.User, error) {
	u, err := a.users.GetUser(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
			return nil, ErrBadCredentials
		}
		return nil, fmt.Errorf("auth: get user: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return nil, ErrBadCredentials
	}
	a.remember(u)
	return u, nil
}

func (a *Authenticator) credKey(name, password string) [32]byte {
	m := hmac.New(sha256.New, a.cacheKey)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// user returns the user record, reused for UserCacheTTL.
func (a *Authenticator) user(ctx context.Context, name string) (*store.User, error) {
	now := a.clk.Now()
	a.mu.Lock()
	e, ok := a.userCache[name]
	a.mu.Unlock()
	if ok && now.Sub(e.fetched) < a.opts.UserCacheTTL {
		u := e.user
		return &u, nil
	}
	u, err := a.users.GetUser(ctx, name)
	if err != nil {
		return nil, err
	}
	a.remember(u)
	return u, nil
}

func (a *Authenticator) remember(u *store.User) {
	a.mu.Lock()
	if len(a.userCache) >= maxCacheEntries {
		clear(a.userCache)
	}
	a.userCache[u.Name] = userEntry{user: *u, fetched: a.clk.Now()}
	a.mu.Unlock()
}

// Forget drops everything cached about a user (after an update or removal).
func (a *Authenticator) Forget(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.userCache, name)
	for k, e := range a.basicCache {
		if e.name == name {
			delete(a.basicCache, k)
		}
	}
}

// Tokens is a bearer token pair.
type Tokens struct {
	Token            string
	ExpiresAt        time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
}

// Login checks the password (rate-limited per address) and issues tokens.
func (a *Authenticator) Login(ctx context.Context, addr, name, password string) (Tokens, *store.User, error) {
	now := a.clk.Now()
	if a.fails.blocked(addr, now) {
		return Tokens{}, nil, ErrRateLimited
	}
	u, err := a.verify(ctx, name, password)
	if err != nil {
		a.fails.fail(addr, now)
		return Tokens{}, nil, err
	}
	return a.issue(u), u, nil
}

// Refresh exchanges a valid refresh token for a new token pair.
func (a *Authenticator) Refresh(ctx context.Context, refresh string) (Tokens, *store.User, error) {
	u, err := a.checkToken(ctx, refresh, kindRefresh)
	if err != nil {
		return Tokens{}, nil, err
	}
	return a.issue(u), u, nil
}

// Bearer verifies an access token.
func (a *Authenticator) Bearer(ctx context.Context, token string) (*store.User, error) {
	return a.checkToken(ctx, token, kindAccess)
}

const (
	kindAccess  = "a"
	kindRefresh = "r"
	tokenPrefix = "af1."
)

type tokenPayload struct {
	User    string `json:"u"`
	Kind    string `json:"k"`
	Expires int64  `json:"e"`
	// Fingerprint of the password hash: changing the password revokes tokens.
	Fingerprint string `json:"f"`
	Nonce       string `json:"n"`
}

func fingerprint(hash string) string {
	s := sha256.Sum256([]byte(hash))
	return hex.EncodeToString(s[:8])
}

func (a *Authenticator) issue(u *store.User) Tokens {
	now := a.clk.Now()
	t := Tokens{ExpiresAt: now.Add(a.opts.TokenTTL), RefreshExpiresAt: now.Add(a.opts.RefreshTTL)}
	t.Token = a.sign(tokenPayload{User: u.Name, Kind: kindAccess, Expires: t.ExpiresAt.Unix(), Fingerprint: fingerprint(u.PasswordHash)})
	t.RefreshToken = a.sign(tokenPayload{User: u.Name, Kind: kindRefresh, Expires: t.RefreshExpiresAt.Unix(), Fingerprint: fingerprint(u.PasswordHash)})
	return t
}

func (a *Authenticator) sign(p tokenPayload) string {
	n := make([]byte, 8)
	_, _ = rand.Read(n)
	p.Nonce = hex.EncodeToString(n)
	body, _ := json.Marshal(p)
	head := tokenPrefix + base64.RawURLEncoding.EncodeToString(body)
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte(head))
	return head + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *Authenticator) checkToken(ctx context.Context, token, kind string) (*store.User, error) {
	a.mu.Lock()
	p, hit := a.tokenCache[token]
	a.mu.Unlock()
	if !hit {
		var err error
		if p, err = a.parseToken(token); err != nil {
			return nil, err
		}
		a.mu.Lock()
		if len(a.tokenCache) >= maxCacheEntries {
			clear(a.tokenCache)
		}
		a.tokenCache[token] = p
		a.mu.Unlock()
	}
	if p.Kind != kind || a.clk.Now().Unix() >= p.Expires {
		return nil, ErrBadToken
	}
	u, err := a.user(ctx, p.User)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrBadToken
		}
		return nil, fmt.Errorf("auth: get user: %w", err)
	}
	if fingerprint(u.PasswordHash) != p.Fingerprint {
		return nil, ErrBadToken
	}
	return u, nil
}

// parseToken checks the signature and decodes the payload.
func (a *Authenticator) parseToken(token string) (tokenPayload, error) {
	var p tokenPayload
	if !strings.HasPrefix(token, tokenPrefix) {
		return p, ErrBadToken
	}
	i := strings.LastIndexByte(token, '.')
	if i <= len(tokenPrefix) {
		return p, ErrBadToken
	}
	head, sig := token[:i], token[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return p, ErrBadToken
	}
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte(head))
	if subtle.ConstantTimeCompare(got, m.Sum(nil)) != 1 {
		return p, ErrBadToken
	}
	body, err := base64.RawURLEncoding.DecodeString(head[len(tokenPrefix):])
	if err != nil {
		return p, ErrBadToken
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return p, ErrBadToken
	}
	return p, nil
}
