// Package aws is the AWS EC2 driver: it resolves label definitions (images,
// networks, security groups, snapshots, KMS keys) in trusted accounts,
// launches instances (optionally on dedicated-host pools), runs snapshot and
// image tasks and cleans up everything it created.
//
// All AWS access goes through the narrow EC2API/KMSAPI/QuotasAPI/STSAPI
// interfaces, so the simulator can run this code against the in-memory
// emulator world, and every decision reads time from an injected clock.
package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/aquarium-fish/aquarium-fish/internal/awshttp"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
	"github.com/aquarium-fish/aquarium-fish/internal/driver/aws/pool"
	"github.com/aquarium-fish/aquarium-fish/internal/ec2ops"
	"github.com/aquarium-fish/aquarium-fish/internal/strarena"
)

// Kind is the registry name of the driver.
const Kind = "aws"

func init() {
	driver.Register(Kind, func(name string) driver.Driver { return New(name) })
}

var _ driver.Driver = (*Driver)(nil)

// Cache TTLs of the resolution caches (on the driver clock).
const (
	DefaultCacheTTL     = 5 * time.Minute  // images, security groups, KMS aliases, snapshots, VPCs
	DefaultSubnetTTL    = 1 * time.Minute  // subnets (free IP counts move)
	DefaultCapacityTTL  = 30 * time.Second // quota usage and idle hosts
	DefaultTypeTTL      = time.Hour        // instance type facts are immutable
	DefaultPollInterval = 15 * time.Second // task waits
)

// Driver is the AWS driver. Create it with New; configure it with Prepare.
type Driver struct {
	name     string
	clk      clock.Clock
	log      *slog.Logger
	injected *Clients
	noRun    bool
	sleep    Sleeper
	poll     time.Duration
	retry    retryPolicy
	nodeName string
	metrics  *pool.Metrics

	cacheTTL, subnetTTL, capTTL time.Duration

	// set by Prepare
	mu       sync.RWMutex
	cfg      *Config
	api      Clients
	account  string   // caller account (STS)
	trusted  []string // caller + account_ids, sorted, unique
	pools    map[string]*pool.Manager
	cancelRn context.CancelFunc

	images    *ttlCache[imageInfo]
	subnets   *ttlCache[*subnetSet]
	vpcs      *ttlCache[[]string]
	groups    *ttlCache[[]string]
	aliases   *ttlCache[map[string]string]
	snapshots *ttlCache[string]
	types     *ttlCache[typeInfo]
	quotas    *ttlCache[map[string]float64]
	usage     *ttlCache[map[string]int64]
	idleHosts *ttlCache[map[string]int64]

	defs        defCache // parsed definitions
	nodeNamePtr *string  // nodeName for the AquariumNode tag

	tokMu  sync.Mutex
	tokGen map[tokenKey]int // client token generation per application+definition
	// tokArena makes the launch tokens and names (tokMu)
	tokArena strarena.Arena
}

// Option configures a Driver built with New.
type Option func(*Driver)

// WithClock sets the clock every decision reads (default: real clock).
func WithClock(c clock.Clock) Option { return func(d *Driver) { d.clk = c } }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(d *Driver) { d.log = l } }

// WithClients injects AWS clients; Prepare then builds no SDK clients. The
// simulator passes the in-memory emulator world for all four.
func WithClients(c Clients) Option { return func(d *Driver) { cc := c; d.injected = &cc } }

// WithoutBackgroundRunners disables the pool Run goroutines; the caller
// (simulator, tests) calls Reconcile on the pools itself.
func WithoutBackgroundRunners() Option { return func(d *Driver) { d.noRun = true } }

// WithSleeper sets how the driver waits between polls and retries (default:
// real timers). Tests pass one that advances a virtual clock.
func WithSleeper(s Sleeper) Option { return func(d *Driver) { d.sleep = s } }

// WithPollInterval sets the poll interval of task waits (default 15s).
func WithPollInterval(p time.Duration) Option { return func(d *Driver) { d.poll = p } }

// WithRetry sets the driver-level retry of retryable AWS errors: total
// attempts and first backoff (doubled per attempt).
func WithRetry(attempts int, base time.Duration) Option {
	return func(d *Driver) {
		if attempts < 1 {
			attempts = 1
		}
		d.retry = retryPolicy{Attempts: attempts, Base: base, Max: 32 * base}
	}
}

// WithCacheTTL sets the resolution cache TTL (images, SGs, KMS, snapshots,
// VPCs); subnets use a fifth of it (at least a second).
func WithCacheTTL(ttl time.Duration) Option {
	return func(d *Driver) {
		d.cacheTTL = ttl
		d.subnetTTL = max(ttl/5, time.Second)
	}
}

// WithNodeName sets the node name put in the AquariumNode tag.
func WithNodeName(n string) Option { return func(d *Driver) { d.nodeName = n } }

// WithPoolMetrics makes every dedicated pool of the driver report to m
// (see pool.NewMetrics); one Metrics may be shared by several drivers.
func WithPoolMetrics(m *pool.Metrics) Option { return func(d *Driver) { d.metrics = m } }

// New returns an unprepared driver instance named name ("aws", "aws/prod").
func New(name string, opts ...Option) *Driver {
	d := &Driver{
		name:      name,
		clk:       clock.Real{},
		log:       slog.Default(),
		sleep:     RealSleep,
		poll:      DefaultPollInterval,
		retry:     retryPolicy{Attempts: 4, Base: 500 * time.Millisecond, Max: 10 * time.Second},
		cacheTTL:  DefaultCacheTTL,
		subnetTTL: DefaultSubnetTTL,
		capTTL:    DefaultCapacityTTL,
		tokGen:    map[tokenKey]int{},
	}
	for _, o := range opts {
		o(d)
	}
	d.log = d.log.With("driver", name)
	d.nodeNamePtr = awssdk.String(d.nodeName)
	d.images = newTTLCache[imageInfo](d.clk, d.cacheTTL)
	d.subnets = newTTLCache[*subnetSet](d.clk, d.subnetTTL)
	d.vpcs = newTTLCache[[]string](d.clk, d.cacheTTL)
	d.groups = newTTLCache[[]string](d.clk, d.cacheTTL)
	d.aliases = newTTLCache[map[string]string](d.clk, d.cacheTTL)
	d.snapshots = newTTLCache[string](d.clk, d.cacheTTL)
	d.types = newTTLCache[typeInfo](d.clk, DefaultTypeTTL)
	d.quotas = newTTLCache[map[string]float64](d.clk, d.cacheTTL)
	d.usage = newTTLCache[map[string]int64](d.clk, d.capTTL)
	d.idleHosts = newTTLCache[map[string]int64](d.clk, d.capTTL)
	return d
}

// Name returns the instance name.
func (d *Driver) Name() string { return d.name }

// Prepare parses and validates the config, connects to AWS (or uses the
// injected clients), verifies the account with STS GetCallerIdentity and
// starts the dedicated pools.
func (d *Driver) Prepare(ctx context.Context, raw []byte) error {
	cfg, err := ParseConfig(raw)
	if err != nil {
		return err
	}
	var api Clients
	if d.injected != nil {
		api = *d.injected
		if api.EC2 == nil || api.STS == nil || api.KMS == nil || api.Quotas == nil {
			return errors.New("aws driver: WithClients needs EC2, KMS, Quotas and STS clients")
		}
	} else {
		api, err = buildClients(ctx, cfg)
		if err != nil {
			return err
		}
	}
	// Always from this EC2 client (an injected Clients value may carry the
	// ops of another driver's).
	api.ops = ec2ops.For(api.EC2)
	var ident *sts.GetCallerIdentityOutput
	err = d.call(ctx, "sts GetCallerIdentity", func(ctx context.Context) error {
		var e error
		ident, e = api.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		return e
	})
	if err != nil {
		return fmt.Errorf("aws driver %s: verify credentials: %w", d.name, err)
	}
	account := awssdk.ToString(ident.Account)
	if account == "" {
		return fmt.Errorf("aws driver %s: STS GetCallerIdentity returned no account", d.name)
	}
	trusted := append([]string{account}, cfg.AccountIDs...)
	sort.Strings(trusted)
	trusted = slices.Compact(trusted)

	pools := map[string]*pool.Manager{}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	names := make([]string, 0, len(cfg.DedicatedPool))
	for n := range cfg.DedicatedPool {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m, err := pool.New(*cfg.DedicatedPool[n], api.EC2, pool.Options{
			Clock: d.clk, Logger: d.log.With("pool", n), Tags: cfg.InstanceTags, Metrics: d.metrics,
		})
		if err != nil {
			cancel()
			return fmt.Errorf("aws driver %s: dedicated_pool.%s: %w", d.name, n, err)
		}
		if err := m.Start(ctx); err != nil {
			cancel()
			return fmt.Errorf("aws driver %s: dedicated_pool.%s: start: %w", d.name, n, err)
		}
		pools[n] = m
	}

	d.mu.Lock()
	if d.cancelRn != nil {
		d.cancelRn()
	}
	d.cfg, d.api, d.account, d.trusted, d.pools, d.cancelRn = cfg, api, account, trusted, pools, cancel
	d.mu.Unlock()

	if !d.noRun {
		for _, m := range pools {
			go m.Run(runCtx)
		}
	}
	d.log.Info("aws driver prepared", "config", cfg.String(), "account", account, "trusted", trusted)
	return nil
}

// buildClients creates SDK clients from the config: static keys or the
// default credential chain, and base_url for every service.
func buildClients(ctx context.Context, cfg *Config) (Clients, error) {
	// One attempt per SDK call: retries are decided in one place, the
	// driver's classification (errors.go), with backoff on the driver clock.
	lo := []func(*awsconfig.LoadOptions) error{awsconfig.WithRetryMaxAttempts(1)}
	if cfg.Region != "" {
		lo = append(lo, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.KeyID != "" {
		lo = append(lo, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.KeyID, cfg.SecretKey, "")))
	}
	if cfg.BaseURL != "" {
		lo = append(lo, awsconfig.WithBaseEndpoint(cfg.BaseURL))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return Clients{}, fmt.Errorf("aws config: load AWS SDK config: %w", err)
	}
	if ac.Region == "" {
		return Clients{}, errors.New("aws config: region: required (not set in config nor in the AWS environment)")
	}
	cfg.Region = ac.Region
	// Hide request-body WriteTo from net/http (see awshttp.SafeBodyTransport):
	// harmless against AWS, required against a loopback emulator.
	ac.HTTPClient = awshttp.SafeBodyClient(ac.HTTPClient)
	return Clients{
		EC2:    ec2.NewFromConfig(ac),
		KMS:    kms.NewFromConfig(ac),
		Quotas: servicequotas.NewFromConfig(ac),
		STS:    sts.NewFromConfig(ac),
	}, nil
}

// Close stops the pool runners started by Prepare.
func (d *Driver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancelRn != nil {
		d.cancelRn()
		d.cancelRn = nil
	}
}

// Pools returns the dedicated pool managers by name.
func (d *Driver) Pools() map[string]*pool.Manager {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make(map[string]*pool.Manager, len(d.pools))
	for k, v := range d.pools {
		out[k] = v
	}
	return out
}

// Account returns the caller account found by Prepare.
func (d *Driver) Account() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.account
}

// state returns the prepared config and clients, or an error if Prepare has
// not succeeded yet.
func (d *Driver) state() (*Config, Clients, []string, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.cfg == nil {
		return nil, Clients{}, nil, fmt.Errorf("aws driver %s: not prepared", d.name)
	}
	return d.cfg, d.api, d.trusted, nil
}

// allocState is state plus the pool managers, read under one lock for
// Allocate (its config, definition and pool then agree). Prepare replaces
// the pool map and never changes it, so it may be read after the unlock.
func (d *Driver) allocState() (*Config, Clients, map[string]*pool.Manager, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.cfg == nil {
		return nil, Clients{}, nil, fmt.Errorf("aws driver %s: not prepared", d.name)
	}
	return d.cfg, d.api, d.pools, nil
}

func (d *Driver) poolConfig(name string) *pool.Config {
	if name == "" {
		return nil
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.cfg == nil {
		return nil
	}
	return d.cfg.DedicatedPool[name]
}

func (d *Driver) poolManager(name string) *pool.Manager {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.pools[name]
}

func (d *Driver) poolNames() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []string
	if d.cfg != nil {
		for k := range d.cfg.DedicatedPool {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
