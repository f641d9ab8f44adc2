package awsemu

import (
	"math"
	"sort"
	"time"
)

// window is a pending (scrubbing) period in Unix nanoseconds: without
// pointers (a time.Time holds its Location), the GC does not scan the many
// windows the ledger keeps.
type window struct{ from, to int64 }

func (p window) fromT() time.Time { return time.Unix(0, p.from) }
func (p window) toT() time.Time   { return time.Unix(0, p.to) }

// zoneKind keys the live counters: kind is "" (any), a type or a family.
type zoneKind struct{ zone, kind string }

// hostLedger is the billing record of one host: billed from allocation to
// release (or now) minus the pending (scrubbing) windows.
type hostLedger struct {
	id, typ, family, zone string
	alloc, release        time.Time // release zero while allocated
	pending               []window  // starts on pendBuf
	// pendBuf backs the first windows: a mac host is scrubbed after every
	// instance, so its windows would otherwise grow by append (1, 2, 4, 8,
	// 16: five allocations for the 12-15 windows of the usual short-lived
	// pool host). Last in the struct, pointer-free: the collector's scan of
	// a ledger entry stops before it.
	pendBuf [16]window
}

// instLedger is the billing record of one instance: launch to stop/terminate.
// It holds no pointers (the garbage collector does not scan the ledger):
// times are Unix nanoseconds, the id is kept as the number its hex digits
// spell and the type as an index into ledger.typeNames.
type instLedger struct {
	id    uint64 // "i-0" + 16 hex digits; see ledger.instID
	odd   int32  // 1 + index in ledger.oddIDs for an id of another form, else 0
	typ   int32  // index in ledger.typeNames
	start int64
	end   int64 // openEnd while running
}

const openEnd = math.MinInt64

func (e *instLedger) startT() time.Time { return time.Unix(0, e.start) }

// endAt is the end of the entry, or now while it is open.
func (e *instLedger) endAt(now time.Time) time.Time {
	if e.end == openEnd {
		return now
	}
	return time.Unix(0, e.end)
}

// ledger accumulates billing intervals; it outlives purged objects.
type ledger struct {
	hosts       []*hostLedger
	instances   []instLedger // by value: one entry per instance, no pointer per entry
	typeNames   []string
	typeIdx     map[string]int32
	lastType    string // type of the last addInstance and its index (a cache of typeIdx)
	lastTypeIdx int32
	oddIDs      []string

	// Entries are appended in start order (the world clock never goes back).
	// Billing queries skip entries that cannot overlap the period: those
	// before the first still-open entry that started more than the longest
	// closed duration before the period.
	hostMaxDur, instMaxDur     time.Duration
	hostOpenFrom, instOpenFrom int

	// Folding bounds memory: at each new UTC month, every billed second
	// before horizon (the start of the previous month) moves from the
	// entries above into per-month totals (folded); closed entries that end
	// before horizon are dropped, open ones start again at horizon.
	horizon   time.Time
	nextFold  time.Time // when horizon moves next (start of the next month)
	folded    []foldMonth
	noFold    bool // tests: keep every entry (reference ledger)
	hostsEver int
	instsEver int

	liveHosts     map[string]int             // family -> live (not released) hosts
	liveHostsZone map[zoneKind]int           // (zone, kind: "", type or family) -> live hosts
	liveInst      map[zoneKind]*int          // (zone, kind) -> live (not stopped/terminated) instances
	instCtrs      map[zoneKind]*instCounters // (zone, type name) -> the three counters an instance moves
	lastCtrKey    zoneKind                   // key of lastCtrs (most launches repeat the previous zone and type)
	lastCtrs      *instCounters
}

// instCounters are the live-instance counters of (zone, ""), (zone, family)
// and (zone, type), resolved once per zone and type.
type instCounters [3]*int

func (l *ledger) init() {
	l.liveHosts = map[string]int{}
	l.liveHostsZone = map[zoneKind]int{}
	l.liveInst = map[zoneKind]*int{}
	l.instCtrs = map[zoneKind]*instCounters{}
}

func (l *ledger) addHost(h *host) *hostLedger {
	e := &hostLedger{id: h.id, typ: h.typeName(), family: h.family, zone: h.zone, alloc: h.allocatedAt}
	e.pending = e.pendBuf[:0]
	l.hosts = append(l.hosts, e)
	l.hostsEver++
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
	e.end = at.UnixNano()
	l.instMaxDur = max(l.instMaxDur, time.Duration(e.end-e.start))
}

// instID is the instance id of an entry.
func (l *ledger) instID(e *instLedger) string {
	if e.odd > 0 {
		return l.oddIDs[e.odd-1]
	}
	const hexd = "0123456789abcdef"
	var b [19]byte
	copy(b[:], "i-0")
	v := e.id
	for i := len(b) - 1; i >= 3; i-- {
		b[i] = hexd[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

func (l *ledger) hostGone(h *host) {
	l.liveHosts[h.family]--
	l.liveHostsZone[zoneKind{h.zone, ""}]--
	l.liveHostsZone[zoneKind{h.zone, h.family}]--
	if h.itype != nil {
		l.liveHostsZone[zoneKind{h.zone, h.itype.name}]--
	}
}

func (l *ledger) liveCounter(k zoneKind) *int {
	c := l.liveInst[k]
	if c == nil {
		c = new(int)
		l.liveInst[k] = c
	}
	return c
}

// liveInstances is the number of live instances in zone of kind ("" = any,
// a family or a type).
func (l *ledger) liveInstances(zone, kind string) int {
	if c := l.liveInst[zoneKind{zone, kind}]; c != nil {
		return *c
	}
	return 0
}

// instUp counts a new live instance and returns its counters for instDown.
func (l *ledger) instUp(zone string, t *instanceType) *instCounters {
	k := zoneKind{zone, t.name}
	cs := l.lastCtrs
	if cs == nil || l.lastCtrKey != k {
		cs = l.instCtrs[k]
		l.lastCtrKey, l.lastCtrs = k, cs
	}
	if cs == nil {
		cs = &instCounters{l.liveCounter(zoneKind{zone, ""}), l.liveCounter(zoneKind{zone, t.family}), l.liveCounter(k)}
		l.instCtrs[k] = cs
		l.lastCtrs = cs
	}
	for _, c := range cs {
		*c++
	}
	return cs
}

func (l *ledger) instDown(cs *instCounters) {
	for _, c := range cs {
		*c--
	}
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
// world's current time. Seconds billed before the start of the previous UTC
// month are kept only as per-month totals (per host id, per type): a month
// covered whole answers exactly as before, InstanceSeconds has no entries
// for such months, and a window that cuts one counts it pro rata. Its cost
// is linear in the entries of the last two months plus the months folded.
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
	w.maybeFold()
	now := w.now
	l := &w.ledger
	// Folded months (before the horizon): a month inside [from, to) counts
	// whole; a month cut by from or to counts in proportion to the part
	// inside (its seconds are no longer known by the minute). Windows whose
	// bounds are month starts or lie after the horizon are exact.
	for i := range l.folded {
		m := &l.folded[i]
		if !m.start.Before(to) || !m.end.After(from) {
			continue
		}
		f := 1.0
		if m.start.Before(from) || m.end.After(to) {
			f = overlap(m.start, m.end, from, to).Seconds() / m.end.Sub(m.start).Seconds()
		}
		if perID {
			for id, s := range m.hostByID {
				b.HostSeconds[id] += s * f
			}
		}
		for k, s := range m.hostByType {
			b.HostSecondsByType[k] += s * f
		}
		for k, s := range m.instByType {
			b.InstanceSecondsByType[k] += s * f
		}
		b.TotalHostSeconds += m.hostTotal * f
		b.TotalInstanceSeconds += m.instTotal * f
	}
	for l.hostOpenFrom < len(l.hosts) && !l.hosts[l.hostOpenFrom].release.IsZero() {
		l.hostOpenFrom++
	}
	for l.instOpenFrom < len(l.instances) && l.instances[l.instOpenFrom].end != openEnd {
		l.instOpenFrom++
	}
	hlo := min(l.hostOpenFrom, sort.Search(len(l.hosts), func(i int) bool { return !l.hosts[i].alloc.Before(from.Add(-l.hostMaxDur)) }))
	hhi := sort.Search(len(l.hosts), func(i int) bool { return !l.hosts[i].alloc.Before(to) })
	ilo := min(l.instOpenFrom, sort.Search(len(l.instances), func(i int) bool { return !l.instances[i].startT().Before(from.Add(-l.instMaxDur)) }))
	ihi := sort.Search(len(l.instances), func(i int) bool { return !l.instances[i].startT().Before(to) })
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
			pe := p.toT()
			if pe.After(end) {
				pe = end
			}
			d -= overlap(p.fromT(), pe, from, to)
		}
		if d <= 0 {
			continue
		}
		s := d.Seconds()
		if perID {
			b.HostSeconds[h.id] += s
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
		d := overlap(in.startT(), in.endAt(now), from, to)
		if d <= 0 {
			continue
		}
		s := d.Seconds()
		if perID {
			b.InstanceSeconds[l.instID(in)] = s
		}
		b.InstanceSecondsByType[l.typeNames[in.typ]] += s
		b.TotalInstanceSeconds += s
	}
	return b
}

// parseInstID reads the number of an id of the form "i-0" + 16 hex digits
// (what strconv.ParseUint(id[3:], 16, 64) accepts there, without its cost).
func parseInstID(id string) (uint64, bool) {
	if len(id) != 19 || id[:3] != "i-0" {
		return 0, false
	}
	var v uint64
	for i := 3; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// addInstance opens the ledger entry of instance id; num is the number its
// id spells when known (launch has it: no parsing), else 0.
func (l *ledger) addInstance(id string, num uint64, typ string, start time.Time) int {
	e := instLedger{start: start.UnixNano(), end: openEnd}
	if num != 0 {
		e.id = num
	} else if v, ok := parseInstID(id); ok {
		e.id = v
	} else {
		l.oddIDs = append(l.oddIDs, id)
		e.odd = int32(len(l.oddIDs))
	}
	t, ok := l.lastTypeIdx, l.lastType == typ && l.typeIdx != nil // (launches mostly repeat the type)
	if !ok {
		t, ok = l.typeIdx[typ]
	}
	if !ok {
		if l.typeIdx == nil {
			l.typeIdx = map[string]int32{}
		}
		t = int32(len(l.typeNames))
		l.typeNames = append(l.typeNames, typ)
		l.typeIdx[typ] = t
	}
	e.typ = t
	l.lastType, l.lastTypeIdx = typ, t
	l.instances = append(l.instances, e)
	l.instsEver++
	return len(l.instances) - 1
}

// foldMonth holds the billed seconds of one UTC calendar month that were
// folded out of the ledger entries.
type foldMonth struct {
	start, end           time.Time
	hostTotal, instTotal float64
	hostByID             map[string]float64 // host id -> seconds (per-host totals stay exact)
	hostByType           map[string]float64 // type (or family) -> seconds
	instByType           map[string]float64 // instance type -> seconds
}

func monthStart(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

// maybeFold moves the horizon to the start of the previous UTC month of now
// when a new month has begun, folding everything billed before it. The
// current and the previous month stay in full detail.
func (w *World) maybeFold() {
	l := &w.ledger
	if l.noFold || w.now.Before(l.nextFold) {
		return
	}
	cur := monthStart(w.now)
	l.nextFold = cur.AddDate(0, 1, 0)
	if h := cur.AddDate(0, -1, 0); h.After(l.horizon) {
		l.fold(h, func(id string, led int) {
			if in, ok := w.instances.get(id); ok {
				in.led = led
			}
		})
	}
}

// month returns the fold record of the month starting at ms, creating it
// (months are created in increasing order).
func (l *ledger) month(ms time.Time) *foldMonth {
	for i := len(l.folded) - 1; i >= 0 && !l.folded[i].start.Before(ms); i-- {
		if l.folded[i].start.Equal(ms) {
			return &l.folded[i]
		}
	}
	l.folded = append(l.folded, foldMonth{start: ms, end: ms.AddDate(0, 1, 0),
		hostByID: map[string]float64{}, hostByType: map[string]float64{}, instByType: map[string]float64{}})
	return &l.folded[len(l.folded)-1]
}

// fold moves the billed seconds before h (a month start) into per-month
// totals. Each month below h receives all its contributions in this one
// pass, in entry order, so a whole-month query adds the same float64 values
// in the same order as the detailed computation did. relink is told the new
// index of each instance entry that stays.
func (l *ledger) fold(h time.Time, relink func(id string, led int)) {
	var months []*foldMonth // months from the oldest start to h
	first := h
	if len(l.hosts) > 0 && l.hosts[0].alloc.Before(first) {
		first = l.hosts[0].alloc
	}
	if len(l.instances) > 0 && l.instances[0].startT().Before(first) {
		first = l.instances[0].startT()
	}
	for ms := monthStart(first); ms.Before(h); ms = ms.AddDate(0, 1, 0) {
		months = append(months, l.month(ms))
	}
	keepH := l.hosts[:0]
	for _, e := range l.hosts {
		if !e.alloc.Before(h) {
			keepH = append(keepH, e)
			continue
		}
		end := e.release
		if end.IsZero() || end.After(h) {
			end = h
		}
		for _, m := range months {
			d := overlap(e.alloc, end, m.start, m.end)
			if d <= 0 {
				continue
			}
			for _, p := range e.pending {
				d -= overlap(p.fromT(), minTime(p.toT(), end), m.start, m.end)
			}
			if d <= 0 {
				continue
			}
			s := d.Seconds()
			m.hostByID[e.id] += s
			k := e.typ
			if k == "" {
				k = e.family
			}
			m.hostByType[k] += s
			m.hostTotal += s
		}
		if !e.release.IsZero() && !e.release.After(h) {
			continue // closed before h: dropped
		}
		e.alloc = h
		ps := e.pending[:0]
		hn := h.UnixNano()
		for _, p := range e.pending {
			if p.to > hn {
				p.from = max(p.from, hn)
				ps = append(ps, p)
			}
		}
		clear(e.pending[len(ps):])
		e.pending = ps
		keepH = append(keepH, e)
	}
	clear(l.hosts[len(keepH):])
	l.hosts = keepH

	keepI := l.instances[:0]
	for i := range l.instances {
		e := l.instances[i]
		if e.startT().Before(h) {
			end := e.endAt(h)
			if end.After(h) {
				end = h
			}
			for _, m := range months {
				if d := overlap(e.startT(), end, m.start, m.end); d > 0 {
					s := d.Seconds()
					m.instByType[l.typeNames[e.typ]] += s
					m.instTotal += s
				}
			}
			if e.end != openEnd && !time.Unix(0, e.end).After(h) {
				continue
			}
			e.start = h.UnixNano()
		}
		if e.end != openEnd {
			keepI = append(keepI, e)
			continue
		}
		relink(l.instID(&e), len(keepI))
		keepI = append(keepI, e)
	}
	clear(l.instances[len(keepI):])
	l.instances = keepI
	l.hostOpenFrom, l.instOpenFrom = 0, 0
	l.horizon = h
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
