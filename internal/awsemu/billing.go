package awsemu

import (
	"sort"
	"time"
)

type window struct{ from, to time.Time }

// zoneKind keys the live counters: kind is "" (any), a type or a family.
type zoneKind struct{ zone, kind string }

// hostLedger is the billing record of one host: billed from allocation to
// release (or now) minus the pending (scrubbing) windows.
type hostLedger struct {
	id, typ, family, zone string
	alloc, release        time.Time // release zero while allocated
	pending               []window
}

// instLedger is the billing record of one instance: launch to stop/terminate.
type instLedger struct {
	id, typ string
	start   time.Time
	end     time.Time // zero while running
}

// ledger accumulates billing intervals; it outlives purged objects.
type ledger struct {
	hosts     []*hostLedger
	instances []instLedger // by value: one entry per instance, no pointer per entry

	// Entries are appended in start order (the world clock never goes back).
	// Billing queries skip entries that cannot overlap the period: those
	// before the first still-open entry that started more than the longest
	// closed duration before the period.
	hostMaxDur, instMaxDur     time.Duration
	hostOpenFrom, instOpenFrom int

	liveHosts     map[string]int   // family -> live (not released) hosts
	liveHostsZone map[zoneKind]int // (zone, kind: "", type or family) -> live hosts
	liveInst      map[zoneKind]int // (zone, kind) -> live (not stopped/terminated) instances
}

func (l *ledger) init() {
	l.liveHosts = map[string]int{}
	l.liveHostsZone = map[zoneKind]int{}
	l.liveInst = map[zoneKind]int{}
}

func (l *ledger) addHost(h *host) *hostLedger {
	e := &hostLedger{id: h.id, typ: h.typeName(), family: h.family, zone: h.zone, alloc: h.allocatedAt}
	l.hosts = append(l.hosts, e)
	l.liveHosts[h.family]++
	l.liveHostsZone[zoneKind{h.zone, ""}]++
	l.liveHostsZone[zoneKind{h.zone, h.family}]++
	if h.itype != nil {
		l.liveHostsZone[zoneKind{h.zone, h.itype.name}]++
	}
	return e
}

func (l *ledger) closeHost(e *hostLedger, at time.Time) {
	e.release = at
	l.hostMaxDur = max(l.hostMaxDur, at.Sub(e.alloc))
}

func (l *ledger) closeInstance(i int, at time.Time) {
	e := &l.instances[i]
	e.end = at
	l.instMaxDur = max(l.instMaxDur, at.Sub(e.start))
}

func (l *ledger) hostGone(h *host) {
	l.liveHosts[h.family]--
	l.liveHostsZone[zoneKind{h.zone, ""}]--
	l.liveHostsZone[zoneKind{h.zone, h.family}]--
	if h.itype != nil {
		l.liveHostsZone[zoneKind{h.zone, h.itype.name}]--
	}
}

func (l *ledger) instUp(zone string, t *instanceType) {
	l.liveInst[zoneKind{zone, ""}]++
	l.liveInst[zoneKind{zone, t.family}]++
	l.liveInst[zoneKind{zone, t.name}]++
}

func (l *ledger) instDown(zone string, t *instanceType) {
	l.liveInst[zoneKind{zone, ""}]--
	l.liveInst[zoneKind{zone, t.family}]--
	l.liveInst[zoneKind{zone, t.name}]--
}

// Billing is the billed usage in [From, To): host-seconds per host (pending
// time excluded) and instance-seconds per instance, plus totals per type.
type Billing struct {
	From                  time.Time          `json:"from"`
	To                    time.Time          `json:"to"`
	HostSeconds           map[string]float64 `json:"host_seconds"`
	InstanceSeconds       map[string]float64 `json:"instance_seconds"`
	HostSecondsByType     map[string]float64 `json:"host_seconds_by_type"`
	InstanceSecondsByType map[string]float64 `json:"instance_seconds_by_type"`
	TotalHostSeconds      float64            `json:"total_host_seconds"`
	TotalInstanceSeconds  float64            `json:"total_instance_seconds"`
}

// HostHours is TotalHostSeconds in hours.
func (b Billing) HostHours() float64 { return b.TotalHostSeconds / 3600 }

// InstanceHours is TotalInstanceSeconds in hours.
func (b Billing) InstanceHours() float64 { return b.TotalInstanceSeconds / 3600 }

func overlap(a1, a2, b1, b2 time.Time) time.Duration {
	s, e := a1, a2
	if b1.After(s) {
		s = b1
	}
	if b2.Before(e) {
		e = b2
	}
	if e.After(s) {
		return e.Sub(s)
	}
	return 0
}

// Billing sums the billed seconds in [from, to); open intervals end at the
// world's current time. Its cost is linear in the number of hosts and
// instances ever created, never in the length of the period.
func (w *World) Billing(from, to time.Time) Billing {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = maxTime(w.now, w.clk.Now())
	return w.billing(from, to, true)
}

// BillingTotals is Billing without the per-host and per-instance maps
// (HostSeconds and InstanceSeconds stay nil): the cheap form for callers that
// only need totals, such as the simulator's periodic reports.
func (w *World) BillingTotals(from, to time.Time) Billing {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = maxTime(w.now, w.clk.Now())
	return w.billing(from, to, false)
}

// BillingMonth is Billing for one calendar month in UTC.
func (w *World) BillingMonth(year int, month time.Month) Billing {
	from := time.Date(year, month, 1, 0, 0, 0, 0, time.UTC)
	return w.Billing(from, from.AddDate(0, 1, 0))
}

func (w *World) billing(from, to time.Time, perID bool) Billing {
	b := Billing{From: from, To: to, HostSecondsByType: map[string]float64{}, InstanceSecondsByType: map[string]float64{}}
	if perID {
		b.HostSeconds, b.InstanceSeconds = map[string]float64{}, map[string]float64{}
	}
	now := w.now
	l := &w.ledger
	for l.hostOpenFrom < len(l.hosts) && !l.hosts[l.hostOpenFrom].release.IsZero() {
		l.hostOpenFrom++
	}
	for l.instOpenFrom < len(l.instances) && !l.instances[l.instOpenFrom].end.IsZero() {
		l.instOpenFrom++
	}
	hlo := min(l.hostOpenFrom, sort.Search(len(l.hosts), func(i int) bool { return !l.hosts[i].alloc.Before(from.Add(-l.hostMaxDur)) }))
	hhi := sort.Search(len(l.hosts), func(i int) bool { return !l.hosts[i].alloc.Before(to) })
	ilo := min(l.instOpenFrom, sort.Search(len(l.instances), func(i int) bool { return !l.instances[i].start.Before(from.Add(-l.instMaxDur)) }))
	ihi := sort.Search(len(l.instances), func(i int) bool { return !l.instances[i].start.Before(to) })
	for _, h := range l.hosts[hlo:max(hlo, hhi)] {
		end := h.release
		if end.IsZero() {
			end = now
		}
		d := overlap(h.alloc, end, from, to)
		if d <= 0 {
			continue
		}
		for _, p := range h.pending {
			pe := p.to
			if pe.After(end) {
				pe = end
			}
			d -= overlap(p.from, pe, from, to)
		}
		if d <= 0 {
			continue
		}
		s := d.Seconds()
		if perID {
			b.HostSeconds[h.id] = s
		}
		k := h.typ
		if k == "" {
			k = h.family
		}
		b.HostSecondsByType[k] += s
		b.TotalHostSeconds += s
	}
	for k := ilo; k < ihi; k++ {
		in := &l.instances[k]
		end := in.end
		if end.IsZero() {
			end = now
		}
		d := overlap(in.start, end, from, to)
		if d <= 0 {
			continue
		}
		s := d.Seconds()
		if perID {
			b.InstanceSeconds[in.id] = s
		}
		b.InstanceSecondsByType[in.typ] += s
		b.TotalInstanceSeconds += s
	}
	return b
}
