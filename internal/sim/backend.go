package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver/aws"
	"github.com/aquarium-fish/aquarium-fish/internal/driver/aws/pool"
)

// simCacheTTL is the driver's resolution cache TTL in a simulation.
const simCacheTTL = 6 * time.Hour

// imageAgeYears is how far back the world's images are dated.
const imageAgeYears = 30

// worldSpec builds the in-memory AWS world for a run: the default world
// with the run's timings, capacity limits, failure rates and host quotas.
func worldSpec(p Params) *awsemu.Spec {
	spec := awsemu.DefaultSpec()
	spec.Seed = p.Seed
	if spec.Seed == 0 {
		spec.Seed = 1
	}
	spec.Timings.ScrubbingDuration = core.Duration(p.ScrubbingDuration)
	spec.Timings.AvailableLag = core.Duration(p.AvailableLag)
	spec.Timings.MacBootTime = core.Duration(p.BootTime)
	spec.Timings.BootTimes = map[string]core.Duration{p.InstanceType: core.Duration(p.BootTime)}
	if p.HostCapacity > 0 {
		for _, z := range p.Zones {
			spec.Limits.HostCapacity = append(spec.Limits.HostCapacity, awsemu.CapacityLimit{Zone: z, Max: p.HostCapacity})
		}
	}
	if p.FailureRate > 0 {
		// The world's natural capacity errors (InsufficientInstanceCapacity,
		// InsufficientHostCapacity, HTTP 500) at random.
		spec.Limits.FailureRates = map[string]float64{"RunInstances": p.FailureRate, "AllocateHosts": p.FailureRate}
	}
	// Workloads may start before the default images were created: move
	// every image back in time, keeping their order.
	for i := range spec.Images {
		img := &spec.Images[i]
		if t, err := time.Parse(time.RFC3339, img.CreationDate); err == nil {
			img.CreationDate = t.AddDate(-imageAgeYears, 0, 0).Format(time.RFC3339)
		}
	}
	// The account's dedicated host quotas must not be what limits a pool
	// larger than the default 500 hosts.
	for i := range spec.Quotas {
		q := &spec.Quotas[i]
		if strings.HasPrefix(q.Name, "Running Dedicated ") && q.Value < float64(p.MaxHosts) {
			q.Value = float64(p.MaxHosts)
		}
	}
	return spec
}

// defaultImage picks an image of the world matching the type's architecture.
func defaultImage(instanceType string) string {
	switch {
	case strings.HasPrefix(instanceType, "mac1."):
		return "ami-0a1b2c3d400000006" // Amazon macOS x86_64_mac (public; ids need no trusted owner)
	case pool.IsMacType(instanceType):
		return "macos-14" // the account's arm64_mac image
	default:
		return "ubuntu-22.04"
	}
}

// driverConfig is the AWS driver config of a run: one dedicated pool.
func driverConfig(p Params) ([]byte, error) {
	pc := map[string]any{
		"type":                       p.InstanceType,
		"zones":                      p.Zones,
		"max":                        p.MaxHosts,
		"scrubbing_delay":            p.ScrubbingDelayValue().String(),
		"pending_to_available_delay": p.PendingToAvailableDelay.String(),
	}
	if p.ReleaseDelay != nil {
		pc["release_delay"] = p.ReleaseDelay.String()
	}
	return json.Marshal(map[string]any{
		"region":         "us-west-2",
		"dedicated_pool": map[string]any{p.PoolName: pc},
	})
}

// newBackend builds the world, the production AWS driver on it (with the
// pool runners disabled: the event loop calls Reconcile) and the job
// definition.
func newBackend(ctx context.Context, clk *clock.Virtual, p Params) (*backend, error) {
	world, err := awsemu.New(clk, worldSpec(p))
	if err != nil {
		return nil, fmt.Errorf("simulated AWS world: %w", err)
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := aws.New("aws", aws.WithClock(clk), aws.WithLogger(log),
		aws.WithClients(aws.Clients{EC2: world, KMS: world, Quotas: world, STS: world}),
		aws.WithoutBackgroundRunners(),
		// Nothing but the driver changes the simulated world's images, VPCs
		// and subnets, and a pool's capacity does not depend on subnet free
		// addresses: long resolution caches change no result, only spare
		// the per-minute refresh calls (API call counts say so).
		aws.WithCacheTTL(simCacheTTL),
		// Errors are retried by the event loop on virtual time, never by
		// sleeping inside the driver.
		aws.WithRetry(1, time.Second),
		aws.WithSleeper(func(ctx context.Context, _ time.Duration) error { return ctx.Err() }),
	)
	cfg, err := driverConfig(p)
	if err != nil {
		return nil, err
	}
	if err := d.Prepare(ctx, cfg); err != nil {
		return nil, fmt.Errorf("prepare aws driver: %w", err)
	}
	m := d.Pools()[p.PoolName]
	if m == nil {
		d.Close()
		return nil, fmt.Errorf("pool %q: not defined in the driver config", p.PoolName)
	}
	def := core.Definition{Driver: "aws"}
	if p.Definition != nil {
		def = *p.Definition
	} else {
		img := p.Image
		if img == "" {
			img = defaultImage(p.InstanceType)
		}
		opts, err := json.Marshal(map[string]string{"image": img, "instance_type": p.InstanceType, "pool": p.PoolName})
		if err != nil {
			d.Close()
			return nil, err
		}
		def.Options = opts
	}
	if err := d.ValidateDefinition(def); err != nil {
		d.Close()
		return nil, fmt.Errorf("job definition: %w", err)
	}
	return &backend{
		drv:       d,
		def:       def,
		reconcile: m.Reconcile,
		nextWake:  m.NextWake,
		hosts: func() hostCounts {
			c := m.HostCounts() // (Stats builds maps: too much for every sample)
			return hostCounts{Total: c.Hosts, Busy: c.Busy, Idle: c.Idle, Pending: c.Pending, Other: c.Failed, Max: c.Max}
		},
		billed: func(from, to time.Time) time.Duration {
			return time.Duration(world.BillingTotals(from, to).TotalHostSeconds * float64(time.Second))
		},
		calls: func() map[string]CallStats {
			out := map[string]CallStats{}
			for k, v := range world.Calls() {
				out[k] = CallStats{Calls: v.Calls, Errors: v.Errors}
			}
			return out
		},
		poolStats: func() map[string]int64 {
			s := m.Stats()
			out := map[string]int64{
				"placements": s.Placements, "placement_capacity_errors": s.PlacementCapacityErrors,
				"placement_errors": s.PlacementErrors, "host_allocations": s.Allocations,
				"allocation_capacity_errors": s.AllocationCapacityErrors, "scrubs": s.Scrubs,
				"scrub_failures": s.ScrubFailures, "releases": s.Releases,
				"refused_releases": s.RefusedReleases, "refreshes": s.Refreshes,
			}
			return out
		},
		boot:  p.BootTime,
		close: d.Close,
	}, nil
}
