package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu/server"
)

// startEmulate runs the emulate command's run function on a free port and
// returns its endpoint; the server is shut down when the test ends.
func startEmulate(t *testing.T, opts emulateOptions) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- runEmulate(ctx, opts, logger, func(a string) { addrc <- a }) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatalf("emulate stopped before serving: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("emulate shutdown: %v", err)
		}
	})
	return "http://" + addr
}

func TestEmulateServesSTSAndEC2(t *testing.T) {
	endpoint := startEmulate(t, emulateOptions{Listen: "127.0.0.1:0", TimeScale: 60, PageSize: 2})
	cfg := server.SDKConfig(endpoint, "us-west-2")
	ctx := context.Background()

	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity through emulate: %v", err)
	}
	if len(aws.ToString(id.Account)) != 12 {
		t.Fatalf("account %q is not a 12-digit AWS account id", aws.ToString(id.Account))
	}
	// --page-size reaches the world: a page never holds more than 2 images.
	out, err := ec2.NewFromConfig(cfg).DescribeImages(ctx, &ec2.DescribeImagesInput{})
	if err != nil {
		t.Fatalf("DescribeImages: %v", err)
	}
	if len(out.Images) > 2 {
		t.Fatalf("page of %d images with --page-size 2", len(out.Images))
	}
}

func TestEmulateRejectsBadFlagsAndWorld(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "world.yaml")
	if err := os.WriteFile(bad, []byte("region: [not a string\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		opts emulateOptions
		want string
	}{
		"time scale":  {emulateOptions{Listen: "127.0.0.1:0", TimeScale: 0}, "--time-scale"},
		"page size":   {emulateOptions{Listen: "127.0.0.1:0", TimeScale: 1, PageSize: -1}, "--page-size"},
		"world file":  {emulateOptions{Listen: "127.0.0.1:0", TimeScale: 1, WorldFile: bad}, "--world"},
		"no world":    {emulateOptions{Listen: "127.0.0.1:0", TimeScale: 1, WorldFile: bad + ".missing"}, "--world"},
		"bad address": {emulateOptions{Listen: "127.0.0.1:notaport", TimeScale: 1}, "--listen"},
	} {
		t.Run(name, func(t *testing.T) {
			err := runEmulate(context.Background(), tc.opts, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// TestEmulateFlagsThroughCobra checks the flags reach runEmulate through the
// real command line parsing.
func TestEmulateFlagsThroughCobra(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		// Flag values persist between executions of the global rootCmd, so
		// every case sets each flag.
		{[]string{"emulate", "--listen", "127.0.0.1:0", "--world", "", "--page-size", "0", "--time-scale", "-2"}, "--time-scale must be > 0, got -2"},
		{[]string{"emulate", "--listen", "127.0.0.1:0", "--world", "", "--time-scale", "1", "--page-size", "-1"}, "--page-size must be >= 0, got -1"},
		{[]string{"emulate", "--listen", "127.0.0.1:0", "--time-scale", "1", "--page-size", "0", "--world", "/nonexistent/world.yaml"}, "--world /nonexistent/world.yaml"},
		{[]string{"emulate", "extra-arg"}, "unknown command"},
	} {
		rootCmd.SetArgs(tc.args)
		rootCmd.SetOut(io.Discard)
		rootCmd.SetErr(io.Discard)
		err := rootCmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	rootCmd.SetArgs(nil)
}

// TestEmulateStopsOnSIGINT runs the real command and interrupts it with
// SIGINT: it shuts down cleanly and returns no error.
func TestEmulateStopsOnSIGINT(t *testing.T) {
	addrc := make(chan string, 1)
	emulateReady = func(a string) { addrc <- a }
	defer func() { emulateReady = nil }()
	rootCmd.SetArgs([]string{"emulate", "--listen", "127.0.0.1:0", "--world", "", "--page-size", "0", "--time-scale", "1"})
	rootCmd.SetOut(io.Discard)
	rootCmd.SetErr(io.Discard)
	defer rootCmd.SetArgs(nil)
	done := make(chan error, 1)
	go func() { done <- rootCmd.Execute() }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("emulate stopped before serving: %v", err)
	}
	// The SIGINT handler is installed before the server starts, so the
	// signal cannot kill the test process.
	if _, err := sts.NewFromConfig(server.SDKConfig("http://"+addr, "us-west-2")).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("emulate after SIGINT: %v", err)
	}
}
