package awsemu

import (
	"time"
)

type window struct{ from, to time.Time }

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
	instances []*instLedger

	liveHosts     map[string]int // family -> live (not released) hosts
	liveHostsZone map[string]int // zone/kind (kind: "", type, family) -> live hosts
	liveInst      map[string]int // zone/kind -> live (not stopped/terminated) instances
}

func (l *ledger) init() {
	l.liveHosts = map[string]int{}
	l.liveHostsZone = map[string]int{}
	l.liveInst = map[string]int{}
}

func (l *ledger) addHost(h *host) *hostLedger {
	e := &hostLedger{id: h.id, typ: h.typeName(), family: h.family, zone: h.zone, alloc: h.allocatedAt}
	l.hosts = append(l.hosts, e)
	l.liveHosts[h.family]++
	l.liveHostsZone[h.zone+"/"]++
	l.liveHostsZone[h.zone+"/"+h.family]++
	if h.itype != nil {
		l.liveHostsZone[h.zone+"/"+h.itype.name]++
	}
	return e
}

func (l *ledger) hostGone(h *host) {
	l.liveHosts[h.family]--
	l.liveHostsZone[h.zone+"/"]--
	l.liveHostsZone[h.zone+"/"+h.family]--
	if h.itype != nil {
		l.liveHostsZone[h.zone+"/"+h.itype.name]--
	}
}

func (l *ledger) instUp(zone string, t *instanceType) {
	l.liveInst[zone+"/"]++
	l.liveInst[zone+"/"+t.family]++
	l.liveInst[zone+"/"+t.name]++
}

func (l *ledger) instDown(zone string, t *instanceType) {
	l.liveInst[zone+"/"]--
	l.liveInst[zone+"/"+t.family]--
	l.liveInst[zone+"/"+t.name]--
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
	return w.billing(from, to)
}

// BillingMonth is Billing for one calendar month in UTC.
func (w *World) BillingMonth(year int, month time.Month) Billing {
	from := time.Date(year, month, 1, 0, 0, 0, 0, time.UTC)
	return w.Billing(from, from.AddDate(0, 1, 0))
}

func (w *World) billing(from, to time.Time) Billing {
	b := Billing{From: from, To: to,
		HostSeconds: map[string]float64{}, InstanceSeconds: map[string]float64{},
		HostSecondsByType: map[string]float64{}, InstanceSecondsByType: map[string]float64{}}
	now := w.now
	for _, h := range w.ledger.hosts {
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
		b.HostSeconds[h.id] = s
		k := h.typ
		if k == "" {
			k = h.family
		}
		b.HostSecondsByType[k] += s
		b.TotalHostSeconds += s
	}
	for _, in := range w.ledger.instances {
		end := in.end
		if end.IsZero() {
			end = now
		}
		d := overlap(in.start, end, from, to)
		if d <= 0 {
			continue
		}
		s := d.Seconds()
		b.InstanceSeconds[in.id] = s
		b.InstanceSecondsByType[in.typ] += s
		b.TotalInstanceSeconds += s
	}
	return b
}
