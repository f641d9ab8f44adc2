package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/awsemu/server"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
)

// emulateReady, when set (by tests), receives the bound address of the
// emulate command once it serves.
var emulateReady func(addr string)

// emulateOptions are the flags of `aquarium-fish emulate`.
type emulateOptions struct {
	Listen    string
	WorldFile string
	TimeScale float64
	PageSize  int
}

func init() {
	opts := emulateOptions{Listen: "127.0.0.1:8002", TimeScale: 1}
	cmd := &cobra.Command{
		Use:   "emulate",
		Short: "Serve an emulated AWS region (EC2, STS, KMS, Service Quotas) over HTTP",
		Long: `Serve the in-memory AWS world over the real AWS wire protocols, so the AWS
SDKs and CLI work against it unchanged: point them at the endpoint with
AWS_ENDPOINT_URL (any credentials are accepted). Admin endpoints:
/_emulator/state, /_emulator/calls, /_emulator/faults.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			return runEmulate(ctx, opts, logger, emulateReady)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Listen, "listen", opts.Listen, "address to serve on (host:port)")
	f.StringVar(&opts.WorldFile, "world", "", "world YAML file (default: the built-in default world)")
	f.Float64Var(&opts.TimeScale, "time-scale", opts.TimeScale, "run the world's clock N times faster than real time (e.g. 60: a 7 min Mac boot takes 7 s)")
	f.IntVar(&opts.PageSize, "page-size", 0, "default page size of Describe* answers (0: the world's default)")
	rootCmd.AddCommand(cmd)
}

// runEmulate builds the world, serves it on opts.Listen until ctx is done and
// then shuts the server down gracefully. ready, when set, receives the bound
// address once the server accepts connections.
func runEmulate(ctx context.Context, opts emulateOptions, logger *slog.Logger, ready func(addr string)) error {
	if opts.TimeScale <= 0 {
		return fmt.Errorf("--time-scale must be > 0, got %v", opts.TimeScale)
	}
	if opts.PageSize < 0 {
		return fmt.Errorf("--page-size must be >= 0, got %d", opts.PageSize)
	}
	spec := awsemu.DefaultSpec()
	if opts.WorldFile != "" {
		s, err := awsemu.LoadSpec(opts.WorldFile)
		if err != nil {
			return fmt.Errorf("--world %s: %w", opts.WorldFile, err)
		}
		spec = s
	}
	if opts.PageSize > 0 {
		spec.DefaultPageSize = opts.PageSize
	}
	var clk clock.Clock = clock.Real{}
	if opts.TimeScale != 1 {
		clk = clock.NewScaled(time.Now().UTC(), opts.TimeScale)
	}
	world, err := awsemu.New(clk, spec)
	if err != nil {
		return fmt.Errorf("build the emulated world: %w", err)
	}

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", opts.Listen, err)
	}
	srv := &http.Server{
		Handler:           server.New(world, server.Options{Logger: logger}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	endpoint := "http://" + ln.Addr().String()
	logger.Info("AWS emulator listening",
		"endpoint", endpoint,
		"region", world.Region(),
		"account", world.AccountID(),
		"time_scale", opts.TimeScale,
		"hint", fmt.Sprintf("AWS_ENDPOINT_URL=%s AWS_REGION=%[2]s AWS_DEFAULT_REGION=%[2]s AWS_ACCESS_KEY_ID=emulator AWS_SECRET_ACCESS_KEY=emulator aws ec2 describe-hosts", endpoint, world.Region()))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", endpoint, err)
	case <-ctx.Done():
	}
	logger.Info("AWS emulator shutting down", "endpoint", endpoint)
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down the emulator: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", endpoint, err)
	}
	return nil
}
