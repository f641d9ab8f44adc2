package sim

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// Reference modelling defaults (SPEC §6).
const (
	DefaultInstanceType      = "mac2.metal"
	DefaultMaxHosts          = 500
	DefaultScrubbingDelay    = 5 * time.Minute
	DefaultScrubbingDuration = 90 * time.Minute
	DefaultBootTime          = 7 * time.Minute
	DefaultZone              = "us-west-2a"
	DefaultPoolName          = "sim"
	DefaultAllocationRetry   = 3
	DefaultRetryBackoff      = time.Minute
	DefaultStallLimit        = 7 * 24 * time.Hour
)

// Prices are documented on-demand dedicated-host prices per host-hour in
// us-east-1 (USD), used when no price is given.
var Prices = map[string]float64{
	"mac1.metal":         1.083,
	"mac2.metal":         0.65,
	"mac2-m2.metal":      0.878,
	"mac2-m2pro.metal":   1.56,
	"mac2-m1ultra.metal": 1.56,
}

// Params are the knobs of one simulation run. Zero values mean the
// reference defaults (see normalize).
type Params struct {
	// Pool parameters (dedicated_pool keys).
	InstanceType            string
	MaxHosts                int
	Zones                   []string
	ScrubbingDelay          *time.Duration // nil = 5m (reference); 0 disables scrubbing
	ReleaseDelay            *time.Duration // nil = driver default (24h for mac types)
	PendingToAvailableDelay time.Duration

	// World parameters.
	ScrubbingDuration time.Duration // 0 = 1h30m
	BootTime          time.Duration // instance initialization, 0 = 7m
	AvailableLag      time.Duration // host reports available this long before it can take an instance
	HostCapacity      int           // AWS host capacity per zone, 0 = unlimited
	FailureRate       float64       // probability that a RunInstances/AllocateHosts call fails (0..1)
	Seed              int64         // fault injection seed

	// PricePerHour is the host price per hour; 0 = the known price of InstanceType.
	PricePerHour float64

	// Image is the label's image option; "" = the world's macOS image for the type's architecture.
	Image string
	// PoolName is the dedicated pool name.
	PoolName string

	// DriverConfig, when set, is the AWS driver config (JSON) used instead of
	// the pool flags; it must define the pool named PoolName.
	DriverConfig json.RawMessage
	// Definition, when set, is the label definition used instead of the flags.
	Definition *core.Definition

	// Until ends the simulation: jobs still queued then, or arriving later,
	// are reported unserved. Zero = run until every job is done.
	Until time.Time
	// AllocationRetry is how many extra attempts a job gets after a
	// non-capacity allocation error (the node's allocation_retry).
	AllocationRetry int
	// RetryBackoff is the delay before retrying after an error.
	RetryBackoff time.Duration
	// StallLimit: with nothing running or arriving, a queue that has not
	// moved for this long is reported unserved.
	StallLimit time.Duration
	// SampleEvery is the period of the time series (hosts, instances, queue)
	// kept for the HTML report; 0 = 1h.
	SampleEvery time.Duration

	// Progress, when set, is called now and then with the input bytes consumed.
	Progress func(bytes int64)
	// Logger receives debug events; nil = discard.
	Logger *slog.Logger
}

// ScrubbingDelayValue returns the effective scrubbing delay.
func (p Params) ScrubbingDelayValue() time.Duration {
	if p.ScrubbingDelay == nil {
		return DefaultScrubbingDelay
	}
	return *p.ScrubbingDelay
}

// Price returns the effective price per host-hour (0 when unknown).
func (p Params) Price() float64 {
	if p.PricePerHour > 0 {
		return p.PricePerHour
	}
	return Prices[p.InstanceType]
}

func (p Params) normalize() (Params, error) {
	if p.InstanceType == "" {
		p.InstanceType = DefaultInstanceType
	}
	if p.MaxHosts == 0 {
		p.MaxHosts = DefaultMaxHosts
	}
	if p.MaxHosts < 0 {
		return p, fmt.Errorf("max-hosts: must be > 0, got %d", p.MaxHosts)
	}
	if len(p.Zones) == 0 {
		p.Zones = []string{DefaultZone}
	}
	for i, z := range p.Zones {
		if strings.TrimSpace(z) == "" {
			return p, fmt.Errorf("zones[%d]: empty zone name", i)
		}
	}
	if p.ScrubbingDelay != nil && *p.ScrubbingDelay < 0 {
		return p, fmt.Errorf("scrubbing-delay: must not be negative, got %s", *p.ScrubbingDelay)
	}
	if p.ReleaseDelay != nil && *p.ReleaseDelay < 0 {
		return p, fmt.Errorf("release-delay: must not be negative, got %s", *p.ReleaseDelay)
	}
	if p.PendingToAvailableDelay < 0 {
		return p, fmt.Errorf("pending-to-available-delay: must not be negative, got %s", p.PendingToAvailableDelay)
	}
	if p.ScrubbingDuration == 0 {
		p.ScrubbingDuration = DefaultScrubbingDuration
	}
	if p.ScrubbingDuration < 0 {
		return p, fmt.Errorf("scrubbing-duration: must be > 0, got %s", p.ScrubbingDuration)
	}
	if p.BootTime == 0 {
		p.BootTime = DefaultBootTime
	}
	if p.BootTime < 0 {
		return p, fmt.Errorf("boot-time: must be > 0, got %s", p.BootTime)
	}
	if p.AvailableLag < 0 {
		return p, fmt.Errorf("available-lag: must not be negative, got %s", p.AvailableLag)
	}
	if p.HostCapacity < 0 {
		return p, fmt.Errorf("host-capacity: must not be negative, got %d", p.HostCapacity)
	}
	if math.IsNaN(p.FailureRate) || p.FailureRate < 0 || p.FailureRate >= 1 {
		return p, fmt.Errorf("failure-rate: must be in [0, 1), got %v", p.FailureRate)
	}
	if p.PricePerHour < 0 {
		return p, fmt.Errorf("price: must not be negative, got %v", p.PricePerHour)
	}
	if p.PoolName == "" {
		p.PoolName = DefaultPoolName
	}
	if p.AllocationRetry == 0 {
		p.AllocationRetry = DefaultAllocationRetry
	}
	if p.AllocationRetry < 0 {
		return p, fmt.Errorf("allocation-retry: must not be negative, got %d", p.AllocationRetry)
	}
	if p.RetryBackoff <= 0 {
		p.RetryBackoff = DefaultRetryBackoff
	}
	if p.StallLimit <= 0 {
		p.StallLimit = DefaultStallLimit
	}
	if p.SampleEvery <= 0 {
		p.SampleEvery = time.Hour
	}
	return p, nil
}
