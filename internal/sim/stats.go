package sim

import (
	"maps"
	"sort"
	"time"
)

// CallStats counts the AWS API calls of one action.
type CallStats struct {
	Calls  int64 `json:"calls"`
	Errors int64 `json:"errors"`
}

// Sample is the state of the simulation at one moment (for charts).
type Sample struct {
	T            time.Time `json:"t"`
	HostsBusy    int       `json:"hosts_busy"`
	HostsIdle    int       `json:"hosts_idle"`
	HostsPending int       `json:"hosts_pending"`
	HostsOther   int       `json:"hosts_other"`
	Instances    int       `json:"instances"`
	Queue        int       `json:"queue"`
}

// collector accumulates the statistics during the loop.
type collector struct {
	ms    months
	waits histogram

	read, servedN int64
	unserved      map[string]int64
	execSec       float64 // Σ executionTime of served jobs
	initSec       float64 // Σ instance initialization of served jobs

	maxInstances, maxQueue int
	curQueue               int

	reconciles, reconcileErrors   int64
	allocErrors, capacityMisses   int64
	capacityErrors, deallocErrors int64
	deallocPending                int
	leaked                        int64
	earlyStarts                   int64

	sampleEvery int64
	nextSample  int64
	samples     []Sample
}

func (c *collector) init(start int64, every time.Duration) {
	c.unserved = map[string]int64{}
	c.sampleEvery = every.Nanoseconds()
	c.nextSample = start
	c.ms.index(start)
}

func (c *collector) arrival(t int64) {
	c.ms.m[c.ms.index(t)].arrivals++
}

func (c *collector) queueLen(n int) {
	c.curQueue = n
	if n > c.maxQueue {
		c.maxQueue = n
	}
}

// queueSpan integrates the queue length n over [from, to).
func (c *collector) queueSpan(from, to int64, n int) {
	if n > 0 {
		c.ms.spread(from, to, float64(n), addQueue)
	}
}

func (c *collector) instancesChanged(n int) {
	if n > c.maxInstances {
		c.maxInstances = n
	}
}

// served records a job placed at f.placed whose instance is ready at f.ready.
func (c *collector) served(f *flight) {
	c.servedN++
	start := f.job.Start * 1e9
	wait := f.placed - start
	c.waits.add(wait / 1e6)
	m := &c.ms.m[c.ms.index(start)]
	m.waitSum += float64(wait) / 1e9
	m.waitN++
	c.execSec += float64(f.job.Exec)
	c.initSec += float64(f.ready-f.placed) / 1e9
	c.ms.spread(f.placed, f.ready, 1, addInit)
	c.ms.spread(f.ready, f.ready+f.job.Exec*1e9, 1, addInst)
}

// sampleUntil records samples for every sample time up to t (the state is
// constant between events).
func (c *collector) sampleUntil(t int64, s *run) {
	if c.nextSample > t {
		return
	}
	h := s.b.hosts()
	for c.nextSample <= t {
		c.samples = append(c.samples, Sample{
			T:         time.Unix(0, c.nextSample).UTC(),
			HostsBusy: h.Busy, HostsIdle: h.Idle, HostsPending: h.Pending, HostsOther: h.Other,
			Instances: s.running + s.initializing,
			Queue:     c.curQueue,
		})
		c.nextSample += c.sampleEvery
	}
}

// Month is one calendar month (UTC) of the statistics table.
type Month struct {
	Label           string    `json:"label"`
	Start           time.Time `json:"start"`
	InstanceHours   float64   `json:"instance_hours"`
	InitHours       float64   `json:"init_hours"`
	HostHours       float64   `json:"host_hours"`
	QueueHours      float64   `json:"queue_hours"`
	MeanWaitSeconds float64   `json:"mean_wait_seconds"`
	Arrivals        int64     `json:"arrivals"`
	Cost            float64   `json:"cost"`
}

// Result is the outcome of one simulation run.
type Result struct {
	Params ParamsSummary `json:"params"`
	Start  time.Time     `json:"start"`
	End    time.Time     `json:"end"`
	Months []Month       `json:"months"`

	MaxInstances   int     `json:"max_instances"`
	MaxHosts       int     `json:"max_hosts"`
	MaxQueue       int     `json:"max_queue"`
	MaxWaitMinutes float64 `json:"max_wait_minutes"`

	JobsRead     int64            `json:"jobs_read"`
	JobsServed   int64            `json:"jobs_served"`
	JobsUnserved int64            `json:"jobs_unserved"`
	Unserved     map[string]int64 `json:"unserved_reasons,omitempty"`

	WaitP50  float64 `json:"wait_p50_seconds"`
	WaitP95  float64 `json:"wait_p95_seconds"`
	WaitMax  float64 `json:"wait_max_seconds"`
	WaitMean float64 `json:"wait_mean_seconds"`

	InstanceHours    float64 `json:"instance_hours"` // Σ executionTime of served jobs
	BilledHostHours  float64 `json:"billed_host_hours"`
	BusyHostHours    float64 `json:"busy_host_hours"`
	InitHostHours    float64 `json:"initializing_host_hours"`
	IdleHostHours    float64 `json:"idle_host_hours"`
	QueueHours       float64 `json:"queue_hours"`
	PricePerHostHour float64 `json:"price_per_host_hour"`
	Cost             float64 `json:"cost"`
	HostsAtEnd       int     `json:"hosts_at_end"`

	APICalls map[string]CallStats `json:"api_calls"`
	Pool     map[string]int64     `json:"pool,omitempty"`
	Loop     LoopStats            `json:"loop"`

	Samples []Sample      `json:"-"`
	Elapsed time.Duration `json:"-"`
}

// LoopStats are counters of the event loop itself.
type LoopStats struct {
	Reconciles        int64 `json:"reconciles"`
	ReconcileErrors   int64 `json:"reconcile_errors"`
	AllocationErrors  int64 `json:"allocation_errors"`
	CapacityMisses    int64 `json:"capacity_misses"`
	CapacityErrors    int64 `json:"capacity_errors"`
	DeallocateErrors  int64 `json:"deallocate_errors"`
	LeakedInstances   int64 `json:"leaked_instances"`
	EarlyStarts       int64 `json:"early_starts"` // jobs whose instance was ready before their startTime (must be 0)
	ElapsedWallMillis int64 `json:"-"`
}

// ParamsSummary is the effective configuration of a run, as reported.
type ParamsSummary struct {
	InstanceType            string   `json:"instance_type"`
	MaxHosts                int      `json:"max_hosts"`
	Zones                   []string `json:"zones"`
	ScrubbingDelay          string   `json:"scrubbing_delay"`
	ReleaseDelay            string   `json:"release_delay"`
	PendingToAvailableDelay string   `json:"pending_to_available_delay"`
	ScrubbingDuration       string   `json:"scrubbing_duration"`
	BootTime                string   `json:"boot_time"`
	AvailableLag            string   `json:"available_lag"`
	HostCapacity            int      `json:"host_capacity"`
	FailureRate             float64  `json:"failure_rate"`
}

func (s *run) summary() ParamsSummary {
	p := s.p
	rel := "default (24h for mac types)"
	if p.ReleaseDelay != nil {
		rel = p.ReleaseDelay.String()
	}
	return ParamsSummary{
		InstanceType: p.InstanceType, MaxHosts: p.MaxHosts, Zones: p.Zones,
		ScrubbingDelay: p.ScrubbingDelayValue().String(), ReleaseDelay: rel,
		PendingToAvailableDelay: p.PendingToAvailableDelay.String(),
		ScrubbingDuration:       p.ScrubbingDuration.String(), BootTime: p.BootTime.String(),
		AvailableLag: p.AvailableLag.String(), HostCapacity: p.HostCapacity, FailureRate: p.FailureRate,
	}
}

// result builds the final statistics from the collector and the world ledger.
func (s *run) result() *Result {
	c := &s.st
	end := s.now
	c.ms.index(end)
	// The last month ends at the end of the simulation, not at the calendar end.
	price := s.p.Price()
	hosts := s.b.hosts()
	r := &Result{
		Params:           s.summary(),
		Start:            time.Unix(0, c.ms.m[0].start).UTC(),
		End:              time.Unix(0, end).UTC(),
		MaxInstances:     c.maxInstances,
		MaxHosts:         hosts.Max,
		MaxQueue:         c.maxQueue,
		MaxWaitMinutes:   float64(c.waits.max) / 60000,
		JobsRead:         c.read,
		JobsServed:       c.servedN,
		Unserved:         maps.Clone(c.unserved),
		WaitP50:          c.waits.quantile(0.50),
		WaitP95:          c.waits.quantile(0.95),
		WaitMax:          float64(c.waits.max) / 1000,
		WaitMean:         c.waits.mean(),
		InstanceHours:    c.execSec / 3600,
		BusyHostHours:    c.execSec / 3600,
		InitHostHours:    c.initSec / 3600,
		PricePerHostHour: price,
		HostsAtEnd:       hosts.Total,
		APICalls:         s.b.calls(),
		Pool:             s.b.poolStats(),
		Loop: LoopStats{
			Reconciles: c.reconciles, ReconcileErrors: c.reconcileErrors,
			AllocationErrors: c.allocErrors, CapacityMisses: c.capacityMisses,
			CapacityErrors: c.capacityErrors, DeallocateErrors: c.deallocErrors,
			LeakedInstances: c.leaked, EarlyStarts: c.earlyStarts,
		},
		Samples: c.samples,
	}
	for _, n := range c.unserved {
		r.JobsUnserved += n
	}
	// Months of the first year are labelled like the seed (Jan..Dec); months
	// of later years (e.g. jobs finishing after New Year) carry the year: Jan26.
	firstYear := time.Unix(0, c.ms.m[0].start).UTC().Year()
	for _, m := range c.ms.m {
		st := time.Unix(0, m.start).UTC()
		to := min(m.end, end)
		var billed time.Duration
		if to > m.start {
			billed = s.b.billed(st, time.Unix(0, to))
		}
		label := st.Format("Jan")
		if st.Year() != firstYear {
			label = st.Format("Jan06")
		}
		mo := Month{
			Label: label, Start: st,
			InstanceHours: m.instSec / 3600, InitHours: m.initSec / 3600,
			HostHours: billed.Hours(), QueueHours: m.queueSec / 3600,
			Arrivals: m.arrivals,
		}
		if m.waitN > 0 {
			mo.MeanWaitSeconds = m.waitSum / float64(m.waitN)
		}
		mo.Cost = mo.HostHours * price
		r.Months = append(r.Months, mo)
		r.BilledHostHours += mo.HostHours
		r.QueueHours += mo.QueueHours
	}
	r.Cost = r.BilledHostHours * price
	r.IdleHostHours = r.BilledHostHours - r.BusyHostHours - r.InitHostHours
	return r
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
