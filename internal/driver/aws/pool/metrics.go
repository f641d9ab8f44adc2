package pool

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are the pool's counters and current host counts, for metrics and
// the simulator.
type Stats struct {
	Hosts                    int // hosts in the view (any state)
	HostsBusy                int // available hosts with at least one used slot
	HostsIdle                int // available hosts with no used slot
	HostsPending             int // allocated or scrubbing, not available yet
	HostsFailed              int // under-assessment or permanent-failure
	FreeSlots                int // placeable free slots now
	MaxHosts                 int // most hosts ever held at once
	Allocating               int // AllocateHosts calls in flight
	ScrubEstimate            string
	Placements               int64 // successful Place calls (reservations made)
	PlacementCapacityErrors  int64 // Place calls answered with driver.ErrCapacity
	PlacementErrors          int64 // Place calls failed otherwise
	Allocations              int64 // hosts allocated
	AllocationCapacityErrors int64 // AllocateHosts capacity errors (zone fallbacks)
	Scrubs                   int64 // scrubs triggered (instance launched and terminated)
	ScrubFailures            int64
	ScrubOrphans             int64            // live scrub instances of a stopped node, terminated at start
	Releases                 int64            // hosts released
	RefusedReleases          int64            // ReleaseHosts items AWS refused (should stay 0)
	Refreshes                int64            // full DescribeHosts refreshes (tag filter)
	Polls                    int64            // DescribeHosts of pending hosts by id
	APICalls                 map[string]int64 // EC2 calls by action (Stats fills it)
	APIErrors                map[string]int64 // failed EC2 calls by action (Stats fills it)
}

// apiAction is an EC2 call the pool makes. Calls are counted in arrays
// indexed by action (no string-keyed map update per call); Stats turns
// them into the maps of Stats.APICalls/APIErrors.
type apiAction uint8

const (
	callAllocateHosts apiAction = iota
	callDescribeHosts
	callReleaseHosts
	callRunInstances
	callTerminateInstances
	callDescribeImages
	callDescribeInstanceTypes
	callDescribeSubnets
	callDescribeVpcs
	callDescribeInstances
	numAPIActions
)

var apiActionNames = [numAPIActions]string{
	callAllocateHosts:         "AllocateHosts",
	callDescribeHosts:         "DescribeHosts",
	callReleaseHosts:          "ReleaseHosts",
	callRunInstances:          "RunInstances",
	callTerminateInstances:    "TerminateInstances",
	callDescribeImages:        "DescribeImages",
	callDescribeInstanceTypes: "DescribeInstanceTypes",
	callDescribeSubnets:       "DescribeSubnets",
	callDescribeVpcs:          "DescribeVpcs",
	callDescribeInstances:     "DescribeInstances",
}

func (a apiAction) String() string { return apiActionNames[a] }

// callCounts are the EC2 call counters (guarded by m.mu).
type callCounts struct {
	calls, errors [numAPIActions]int64
}

// Stats returns a snapshot of the counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.APICalls = map[string]int64{}
	s.APIErrors = map[string]int64{}
	for a, n := range m.calls.calls {
		if n > 0 {
			s.APICalls[apiActionNames[a]] = n
		}
	}
	for a, n := range m.calls.errors {
		if n > 0 {
			s.APIErrors[apiActionNames[a]] = n
		}
	}
	s.Allocating = m.allocating
	s.ScrubEstimate = m.scrubEst.String()
	hc := m.hostCounts()
	s.Hosts, s.HostsBusy, s.HostsIdle, s.HostsPending, s.HostsFailed = hc.Hosts, hc.Busy, hc.Idle, hc.Pending, hc.Failed
	for _, z := range m.zones {
		s.FreeSlots += z.freeSlots
	}
	return s
}

// HostCounts are the host counts of Stats.
type HostCounts struct {
	Hosts   int // hosts in the view (any state)
	Busy    int // available hosts with at least one used slot
	Idle    int // available hosts with no used slot
	Pending int // allocated or scrubbing, not available yet
	Failed  int // under-assessment or permanent-failure
	Max     int // most hosts ever held at once
}

// HostCounts returns the host counts alone: Stats builds two maps and a
// string on every call, too much for a caller that samples the counts
// often (the simulator's host samples).
func (m *Manager) HostCounts() HostCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hostCounts()
}

// hostCounts are the counts kept by touch. Caller holds m.mu.
func (m *Manager) hostCounts() HostCounts {
	return HostCounts{
		Hosts: len(m.hosts), Busy: m.hostCount[catBusy], Idle: m.hostCount[catIdle],
		Pending: m.hostCount[catPending], Failed: m.hostCount[catFailed], Max: m.stats.MaxHosts,
	}
}

// recordCall counts one EC2 call. Safe without m.mu held (it takes it).
func (m *Manager) recordCall(a apiAction, err error) {
	m.mu.Lock()
	m.countCall(a, err)
	m.mu.Unlock()
	m.metricCall(a, err)
}

// countCall counts one EC2 call in the stats. Caller holds m.mu; the hot
// paths count their call in the locked section that follows it anyway
// (and call metricCall outside the lock).
func (m *Manager) countCall(a apiAction, err error) {
	m.calls.calls[a]++
	if err != nil {
		m.calls.errors[a]++
	}
}

// metricCall counts one EC2 call in the prometheus metrics (if any).
func (m *Manager) metricCall(a apiAction, err error) {
	if m.metrics != nil {
		result := "ok"
		if err != nil {
			result = "error"
		}
		m.metrics.APICalls.WithLabelValues(m.cfg.Name, a.String(), result).Inc()
	}
}

// Metrics are optional prometheus collectors shared by all pools (labelled
// by pool name).
type Metrics struct {
	Hosts           *prometheus.GaugeVec   // pool, state
	Placements      *prometheus.CounterVec // pool, result (ok|capacity|error)
	Scrubs          *prometheus.CounterVec // pool
	Releases        *prometheus.CounterVec // pool
	RefusedReleases *prometheus.CounterVec // pool
	APICalls        *prometheus.CounterVec // pool, action, result (ok|error)
}

// NewMetrics creates the collectors and registers them with reg (nil = not registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Hosts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "aquarium", Subsystem: "pool",
			Name: "hosts", Help: "Dedicated hosts of the pool by state (busy, idle, pending, failed)."}, []string{"pool", "state"}),
		Placements: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aquarium", Subsystem: "pool",
			Name: "placements_total", Help: "Place calls by result."}, []string{"pool", "result"}),
		Scrubs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aquarium", Subsystem: "pool",
			Name: "scrubs_total", Help: "Mac host scrubs triggered."}, []string{"pool"}),
		Releases: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aquarium", Subsystem: "pool",
			Name: "releases_total", Help: "Dedicated hosts released."}, []string{"pool"}),
		RefusedReleases: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aquarium", Subsystem: "pool",
			Name: "refused_releases_total", Help: "Host releases AWS refused (should stay 0)."}, []string{"pool"}),
		APICalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aquarium", Subsystem: "pool",
			Name: "api_calls_total", Help: "EC2 calls made by the pool manager."}, []string{"pool", "action", "result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Hosts, m.Placements, m.Scrubs, m.Releases, m.RefusedReleases, m.APICalls} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register pool metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (mt *Metrics) scrubs() *prometheus.CounterVec {
	if mt == nil {
		return nil
	}
	return mt.Scrubs
}

func (mt *Metrics) releases() *prometheus.CounterVec {
	if mt == nil {
		return nil
	}
	return mt.Releases
}

func (mt *Metrics) refused() *prometheus.CounterVec {
	if mt == nil {
		return nil
	}
	return mt.RefusedReleases
}

func (m *Manager) metricInc(c *prometheus.CounterVec) {
	if c != nil {
		c.WithLabelValues(m.cfg.Name).Inc()
	}
}

func (m *Manager) countPlacement(result string) {
	if m.metrics != nil {
		m.metrics.Placements.WithLabelValues(m.cfg.Name, result).Inc()
	}
}

// updateHostMetrics sets the hosts gauge. Caller holds m.mu.
func (m *Manager) updateHostMetrics() {
	if m.metrics == nil {
		return
	}
	for c := catPending; c < numHostCats; c++ {
		m.metrics.Hosts.WithLabelValues(m.cfg.Name, hostCatLabels[c]).Set(float64(m.hostCount[c]))
	}
}

// hostCatLabels are the state labels of the hosts gauge.
var hostCatLabels = [numHostCats]string{catPending: "pending", catFailed: "failed", catBusy: "busy", catIdle: "idle"}
