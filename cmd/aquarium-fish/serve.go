package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aquarium-fish/aquarium-fish/internal/api"
	"github.com/aquarium-fish/aquarium-fish/internal/auth"
	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	emuserver "github.com/aquarium-fish/aquarium-fish/internal/awsemu/server"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/config"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
	awsdrv "github.com/aquarium-fish/aquarium-fish/internal/driver/aws"
	"github.com/aquarium-fish/aquarium-fish/internal/driver/aws/pool"
	_ "github.com/aquarium-fish/aquarium-fish/internal/driver/testdriver" // the "test" driver kind
	"github.com/aquarium-fish/aquarium-fish/internal/engine"
	"github.com/aquarium-fish/aquarium-fish/internal/meta"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
	"github.com/aquarium-fish/aquarium-fish/internal/store/postgres"
	"github.com/aquarium-fish/aquarium-fish/internal/store/sqlite"
	"github.com/aquarium-fish/aquarium-fish/internal/tlsutil"
)

// serveOptions are the flags of `aquarium-fish serve` (also accepted with
// no subcommand).
type serveOptions struct {
	ConfigFile     string
	API            string
	Dir            string
	InsecureHTTP   bool
	TimeScale      float64
	EmulatorListen string
	LogLevel       string
}

func addServeFlags(f *pflag.FlagSet, o *serveOptions) {
	f.StringVarP(&o.ConfigFile, "cfg", "c", "", "node config YAML (none: embedded SQLite + an embedded emulated AWS region)")
	f.StringVar(&o.API, "api", "", "API listen address HOST:PORT (overrides api_address; default 127.0.0.1:8001)")
	f.StringVar(&o.Dir, "dir", "", "data directory (overrides directory; default aquarium-fish-data)")
	f.BoolVar(&o.InsecureHTTP, "insecure-http", false, "serve plain HTTP instead of TLS (local use only; same as tls: {disabled: true})")
	f.Float64Var(&o.TimeScale, "time-scale", 60, "embedded emulator only: its clock runs N times faster (60: a 7 min Mac boot takes 7 s)")
	f.StringVar(&o.EmulatorListen, "emulator-listen", "127.0.0.1:0", "embedded emulator only: where its AWS endpoint listens")
	f.StringVar(&o.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
}

func init() {
	var o serveOptions
	run := func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runServe(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr(), nil)
	}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the node (the default command)",
		Long: `Run the Aquarium Fish node: the API (TLS by default, with a CA generated in the
data directory), the lifecycle engine and the configured drivers.

With no --cfg the node uses an embedded SQLite database and an embedded
emulated AWS region (EC2/STS/KMS/Service Quotas over HTTP on a loopback port,
with a dedicated pool "mac" of mac2.metal and images ubuntu-22.04 and
macos-14), so the whole flow works without a cloud account. With a config
whose drivers section names aws with real credentials it talks to real AWS.`,
		Args: cobra.NoArgs,
		RunE: run,
	}
	addServeFlags(cmd.Flags(), &o)
	addServeFlags(rootCmd.Flags(), &o)
	rootCmd.Args = cobra.NoArgs
	rootCmd.RunE = run
	rootCmd.AddCommand(cmd)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level: %w", err)
	}
	return l, nil
}

// runServe runs the node until ctx is done. ready, when set, gets the API URL
// once it accepts connections.
func runServe(ctx context.Context, o serveOptions, stdout, stderr io.Writer, ready func(url string)) error {
	level, err := parseLevel(o.LogLevel)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := config.Default()
	if o.ConfigFile != "" {
		if cfg, err = config.Load(o.ConfigFile); err != nil {
			return err
		}
	}
	if o.API != "" {
		cfg.APIAddress = o.API
	}
	if o.Dir != "" {
		cfg.Directory = o.Dir
	}
	if o.InsecureHTTP {
		cfg.TLS.Disabled = true
	}
	if err := os.MkdirAll(cfg.Directory, 0o700); err != nil {
		return fmt.Errorf("directory %s: %w", cfg.Directory, err)
	}
	embedded := o.ConfigFile == "" || len(cfg.Drivers) == 0

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Store.
	var st store.Store
	if cfg.IsPostgres() {
		st, err = postgres.Open(ctx, cfg.Database)
	} else {
		st, err = sqlite.Open(ctx, cfg.SQLitePath())
	}
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer st.Close()

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	poolMetrics, err := pool.NewMetrics(registry)
	if err != nil {
		return err
	}

	// Drivers.
	drivers := map[string]driver.Driver{}
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	if embedded {
		drv, stopEmu, err := startEmbeddedAWS(ctx, o, cfg, log, stderr, awsdrv.WithPoolMetrics(poolMetrics))
		if err != nil {
			return err
		}
		closers = append(closers, stopEmu)
		drivers[drv.Name()] = drv
	} else {
		for _, dc := range cfg.Drivers {
			var d driver.Driver
			if dc.Kind() == awsdrv.Kind {
				d = awsdrv.New(dc.Name, awsdrv.WithLogger(log), awsdrv.WithNodeName(cfg.NodeName), awsdrv.WithPoolMetrics(poolMetrics))
			} else if d, err = driver.New(dc.Name); err != nil {
				return fmt.Errorf("drivers: %w", err)
			}
			if err := d.Prepare(ctx, dc.Cfg); err != nil {
				return fmt.Errorf("drivers: %s: %w", dc.Name, err)
			}
			if c, ok := d.(interface{ Close() }); ok {
				closers = append(closers, c.Close)
			}
			drivers[dc.Name] = d
			log.Info("driver ready", "driver", dc.Name)
		}
	}

	// Engine.
	transitions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aquarium_application_transitions_total", Help: "Application states recorded by this node's engine.",
	}, []string{"status"})
	registry.MustRegister(transitions)
	eng, err := engine.New(engine.Options{
		OnState: func(_ string, st core.Status) { transitions.WithLabelValues(string(st)).Inc() },
		Store:   st, Drivers: drivers, Clock: clock.Real{}, NodeName: cfg.NodeName, Logger: log,
		DefaultLifetime: cfg.DefaultResourceLifetime, AllocationRetry: cfg.AllocationRetry,
		CleanupInterval: cfg.DBCleanupInterval, LabelRemoveAtMin: cfg.LabelRemoveAtMin, LabelRemoveAtMax: cfg.LabelRemoveAtMax,
		NodeIdentifiers: cfg.NodeIdentifiers, SlotsLimit: cfg.NodeSlotsLimit,
	})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	engCtx, stopEngine := context.WithCancel(ctx)
	// On any return: stop the background goroutines, then wait for them
	// (before the drivers and the store close in earlier defers).
	defer func() {
		stopEngine()
		cancel()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := eng.Run(engCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("engine stopped", "err", err)
			cancel()
		}
	}()

	// Auth.
	secret, err := auth.LoadOrCreateSecret(cfg.Directory)
	if err != nil {
		return err
	}
	authn, err := auth.New(auth.Options{Users: st, Secret: secret})
	if err != nil {
		return err
	}
	pw, err := auth.EnsureAdmin(ctx, st, clock.Real{}, cfg.Directory, 0)
	if err != nil {
		return err
	}
	if pw != "" {
		fmt.Fprintf(stdout, "\n  First start: created user %q with password %s\n  (shown once; also saved in %s, mode 0600)\n\n",
			auth.AdminUser, pw, filepath.Join(cfg.Directory, auth.AdminPasswordFile))
	}

	// Node record and heartbeat.
	node := &store.Node{Name: cfg.NodeName, Address: firstNonEmpty(cfg.NodeAddress, cfg.APIAddress), Location: cfg.NodeLocation}
	if err := heartbeat(ctx, st, node); err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := heartbeat(ctx, st, node); err != nil && ctx.Err() == nil {
					log.Warn("node heartbeat failed", "err", err)
				}
			}
		}
	}()

	metaOpts := meta.HandlerOptions{Logger: log}
	if embedded {
		metaOpts.EmulatedIPHeader = meta.DefaultEmulatedIPHeader
	}
	var shutdownOnce sync.Once
	srv, err := api.New(api.Options{
		Store: st, Engine: eng, Auth: authn, Logger: log, NodeName: cfg.NodeName, Registry: registry,
		Meta:           meta.NewHandler(st, metaOpts),
		IsInvalid:      func(err error) bool { return errors.Is(err, engine.ErrInvalidArgument) },
		IsPrecondition: func(err error) bool { return errors.Is(err, engine.ErrFailedPrecondition) },
		Shutdown: func(d time.Duration) {
			shutdownOnce.Do(func() {
				log.Warn("node shutting down on API request", "delay", d.String())
				time.AfterFunc(d, cancel)
			})
		},
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.APIAddress)
	if err != nil {
		return fmt.Errorf("api_address %s: %w", cfg.APIAddress, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "https"
	if cfg.TLS.Disabled {
		scheme = "http"
		log.Warn("TLS disabled: the API is served over plain HTTP (local use only)")
		if ip := net.ParseIP(hostOf(ln.Addr().String())); ip == nil || !ip.IsLoopback() {
			log.Warn("plain HTTP on a non-loopback address: passwords and tokens cross the network in clear", "addr", ln.Addr().String())
		}
	} else {
		var files tlsutil.Files
		if cfg.TLS.Cert != "" {
			files = tlsutil.Files{Cert: cfg.TLS.Cert, Key: cfg.TLS.Key, CA: cfg.TLS.CA}
		} else if files, err = tlsutil.Ensure(cfg.Directory, certHosts(cfg), time.Now()); err != nil {
			return err
		}
		if hs.TLSConfig, err = tlsutil.ServerConfig(files); err != nil {
			return err
		}
		ln = tlsListener(ln, hs)
		log.Info("TLS enabled", "ca", files.CA, "cert", files.Cert)
	}
	url := scheme + "://" + ln.Addr().String()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("node API listening", "url", url, "node", cfg.NodeName, "data_dir", cfg.Directory,
		"grpc", url+"/grpc/aquarium.v2.<Service>/<Method>", "meta", url+"/meta/v1/data/", "metrics", url+"/metrics")
	if ready != nil {
		ready(url)
	}

	select {
	case err := <-errc:
		cancel()
		return fmt.Errorf("serve %s: %w", url, err)
	case <-ctx.Done():
	}
	log.Info("node shutting down")
	shutCtx, c2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer c2()
	if err := hs.Shutdown(shutCtx); err != nil {
		log.Warn("API shutdown", "err", err)
	}
	stopEngine()
	return nil
}

func heartbeat(ctx context.Context, st store.Store, n *store.Node) error {
	cur, err := st.GetNode(ctx, n.Name)
	if err == nil {
		n.Maintenance = cur.Maintenance
	}
	n.UpdatedAt = time.Now().UTC()
	if err := st.UpsertNode(ctx, n); err != nil {
		return fmt.Errorf("node record: %w", err)
	}
	return nil
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// certHosts are the names the node certificate covers.
func certHosts(cfg *config.Config) []string {
	var hosts []string
	for _, a := range []string{cfg.APIAddress, cfg.NodeAddress} {
		if a == "" {
			continue
		}
		h, _, err := net.SplitHostPort(a)
		if err != nil {
			h = a
		}
		if h != "" && h != "0.0.0.0" && h != "::" {
			hosts = append(hosts, h)
		}
	}
	if hn, err := os.Hostname(); err == nil && hn != "" {
		hosts = append(hosts, hn)
	}
	return hosts
}

func tlsListener(ln net.Listener, hs *http.Server) net.Listener {
	hs.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
	return tls.NewListener(ln, hs.TLSConfig)
}

// startEmbeddedAWS starts the emulated AWS region on a loopback port and an
// AWS driver talking to it through the real SDK (base_url).
func startEmbeddedAWS(ctx context.Context, o serveOptions, cfg *config.Config, log *slog.Logger, stderr io.Writer, extra ...awsdrv.Option) (*awsdrv.Driver, func(), error) {
	if o.TimeScale <= 0 {
		return nil, nil, fmt.Errorf("--time-scale: must be > 0, got %v", o.TimeScale)
	}
	clk := clock.NewScaled(time.Now().UTC(), o.TimeScale)
	world, err := awsemu.New(clk, awsemu.DefaultSpec())
	if err != nil {
		return nil, nil, fmt.Errorf("embedded AWS emulator: %w", err)
	}
	ln, err := net.Listen("tcp", o.EmulatorListen)
	if err != nil {
		return nil, nil, fmt.Errorf("--emulator-listen %s: %w", o.EmulatorListen, err)
	}
	hs := &http.Server{Handler: emuserver.New(world, emuserver.Options{Logger: log.With("component", "awsemu")}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	endpoint := "http://" + ln.Addr().String()
	_ = os.WriteFile(filepath.Join(cfg.Directory, "emulator.url"), []byte(endpoint+"\n"), 0o600)

	drvCfg := map[string]any{
		"region": world.Region(), "key_id": "emulator", "secret_key": "emulator", "base_url": endpoint,
		"instance_tags": map[string]string{"AquariumNode": cfg.NodeName},
		"dedicated_pool": map[string]any{
			"mac": map[string]any{"type": "mac2.metal", "zones": []string{world.Spec().Zones[0]}, "max": 4, "scrubbing_delay": "5m"},
		},
	}
	raw, _ := json.Marshal(drvCfg)
	poll := time.Duration(float64(awsdrv.DefaultPollInterval) / o.TimeScale)
	opts := append([]awsdrv.Option{awsdrv.WithClock(clk), awsdrv.WithLogger(log), awsdrv.WithNodeName(cfg.NodeName),
		awsdrv.WithPollInterval(max(poll, 50*time.Millisecond))}, extra...)
	drv := awsdrv.New("aws", opts...)
	if err := drv.Prepare(ctx, raw); err != nil {
		_ = hs.Close()
		return nil, nil, fmt.Errorf("embedded AWS driver: %w", err)
	}
	banner := strings.Join([]string{
		"",
		"  ************************************************************************",
		"  *  NO CONFIG GIVEN: this node uses an EMULATED AWS region, not real AWS.",
		"  *  Region " + world.Region() + ", account " + world.AccountID() + ", endpoint " + endpoint,
		fmt.Sprintf("  *  Time runs %gx faster there (Mac boot and scrubbing take seconds).", o.TimeScale),
		"  *  Dedicated pool \"mac\" (mac2.metal); images ubuntu-22.04 and macos-14.",
		"  *  Emulator state: " + endpoint + "/_emulator/state",
		"  *  For real AWS: aquarium-fish --cfg examples/node-aws.yaml",
		"  ************************************************************************",
		"", "",
	}, "\n")
	_, _ = io.WriteString(stderr, banner)
	log.Warn("using the embedded AWS emulator", "endpoint", endpoint, "time_scale", o.TimeScale)
	return drv, func() {
		drv.Close()
		_ = hs.Close()
	}, nil
}
