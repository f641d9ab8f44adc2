package pool

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// hostState is the pool's view of a host's AWS allocation state.
type hostState uint8

const (
	hostPending   hostState = iota // allocated or scrubbing: not yet available
	hostAvailable                  // AWS reports available
	hostFailed                     // under-assessment or permanent-failure
)

func (s hostState) String() string {
	switch s {
	case hostPending:
		return "pending"
	case hostAvailable:
		return "available"
	default:
		return "failed"
	}
}

// slotKind says who holds a slot on a host.
type slotKind uint8

const (
	slotPromised slotKind = iota // host allocated for this token, not usable yet
	slotReserved                 // Place returned the host; RunInstances in flight
	slotBound                    // the driver's instance runs on it
	slotAdopted                  // an instance found on the host, owner unknown
	slotScrub                    // our own scrubbing instance
)

// slot is one used slot of a host.
type slot struct {
	kind       slotKind
	token      string
	instanceID string
	since      time.Time
	host       *host
}

// host is the pool's view of one dedicated host.
// scrubPlace is a host's scrub launch Placement with the strings it points
// to, part of the host: no allocation of its own (the host is never
// copied, so the pointers stay its own).
type scrubPlace struct {
	pl       types.Placement
	id, zone string
}

type host struct {
	id           string
	zone         string
	allocatedAt  time.Time
	state        hostState
	permanent    bool // permanent-failure (release as soon as AWS allows)
	scrubbed     bool // pending because we (or an instance end) triggered scrubbing
	pendingKnown bool // pendingSince is exact (our own action), so it can teach the estimate

	pendingSince time.Time // when it went pending
	expectAvail  time.Time // when we next expect it available (refresh then)
	usableAt     time.Time // available + pending_to_available_delay
	suspectUntil time.Time // not placeable until then (a placement failed on it)
	idleSince    time.Time // last time it became empty and usable
	emptiedAt    time.Time // last time its last instance left
	retryAt      time.Time // backoff for scrub/release after a failure

	slots   int
	used    []*slot
	usedBuf [1]*slot // used's first backing array

	// scrubPlacement is the Placement of its scrub launches, built on the
	// first (recMu: only launchScrub reads and writes it)
	scrubPlacement scrubPlace
	// scrubSlot is the slot of its scrub instance (in used while scrubbing):
	// a host scrubs only when idle, so one slot per host is reused instead
	// of allocating one per scrub.
	scrubSlot  slot
	pollQueued bool // in m.pollQ
	tracked    bool // in m.hosts (m.hosts[h.id] == h), set and cleared with it
	// pollOnly: the host's due is its expectAvail and nothing else is due
	// then (set by touch); such a host only needs a poll at its due, which
	// the describe gap may hold back (see dueWake).
	pollOnly bool
	// pollDeferred: nextWake did not report this host's expectAvail because
	// its poll had to wait for the describe gap anyway (see nextPoll).
	pollDeferred bool

	cat hostCat // category counted in m.hostCount (catNone when not counted)

	// listedGen is the m.refreshGen of the last full refresh that listed
	// the host (refresh untracks the hosts it did not list)
	listedGen uint64

	releasing bool // ReleaseHosts in flight
	scrubbing bool // scrub RunInstances/TerminateInstances in flight
	seq       uint64

	zv          *zoneView // the zone's view (cached m.zones[zone])
	countedFree int       // free slots currently counted in zoneFree
	freeIdx     int       // index in the zone's free heap, -1 if absent
	waitIdx     int       // index in the waiting heap, -1 if absent
	dueIdx      int       // index in the due heap, -1 if absent
	due         time.Time
	dueRest     time.Time // due without the pending poll (zero = none); meaningful when pollOnly

	relMemo            releaseMemo // see releaseDue
	scrubFrom, scrubAt time.Time   // scrubAt = scrubFrom + scrubbing_delay, scrubFrom the idleSince it was computed for
}

func newHost(id, zone string, slots int) *host {
	h := &host{id: id, zone: zone, slots: slots, freeIdx: -1, waitIdx: -1, dueIdx: -1}
	h.used = h.usedBuf[:0] // a mac host's only slot needs no slice of its own
	return h
}

func (h *host) free() int { return h.slots - len(h.used) }

// placeableAt is when a host in state available may take an instance.
func (h *host) placeableAt() time.Time {
	if h.suspectUntil.After(h.usableAt) {
		return h.suspectUntil
	}
	return h.usableAt
}

// busyWithAction reports an in-flight release or scrub.
func (h *host) busyWithAction() bool { return h.releasing || h.scrubbing }

func (h *host) removeSlot(s *slot) bool {
	for i, u := range h.used {
		if u == s {
			last := len(h.used) - 1
			h.used[i] = h.used[last]
			h.used[last] = nil
			h.used = h.used[:last]
			return true
		}
	}
	return false
}

// The three heaps below are binary min-heaps of hosts, each host knowing
// its index in each. They are written out per heap (instead of going
// through container/heap) so that the comparisons and swaps are direct,
// inlinable calls: touch runs several times per Reconcile pass and per
// placement. The algorithms are container/heap's (same sift order), so
// hosts that compare equal come out in the same order as before.

// freeHeap orders placeable hosts of one zone: the host whose release is
// furthest away (the youngest) first, then by id for determinism.
type freeHeap []*host

func (f freeHeap) less(i, j int) bool { return f.lessHost(f[i], f[j]) }
func (f freeHeap) swap(i, j int) {
	f[i], f[j] = f[j], f[i]
	f[i].freeIdx = i
	f[j].freeIdx = j
}

func (f *freeHeap) push(h *host) {
	h.freeIdx = len(*f)
	*f = append(*f, h)
	f.up(len(*f) - 1)
}

func (f *freeHeap) remove(i int) {
	n := len(*f) - 1
	if n != i {
		f.swap(i, n)
		if !f.down(i, n) {
			f.up(i)
		}
	}
	old := *f
	old[n].freeIdx = -1
	old[n] = nil
	*f = old[:n]
}

func (f freeHeap) fix(i int) {
	if !f.down(i, len(f)) {
		f.up(i)
	}
}

func (f freeHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2 // parent
		if !f.less(j, i) {
			break
		}
		f.swap(i, j)
		j = i
	}
}

func (f freeHeap) down(i0, n int) bool {
	i := i0
	for {
		j := 2*i + 1
		if j >= n || j < 0 { // j < 0 after int overflow
			break
		}
		if j2 := j + 1; j2 < n && f.less(j2, j) {
			j = j2 // right child
		}
		if !f.less(j, i) {
			break
		}
		f.swap(i, j)
		i = j
	}
	return i > i0
}

// waitHeap orders available hosts that are not placeable yet by placeableAt.
type waitHeap []*host

func (w waitHeap) less(i, j int) bool { return w[i].placeableAt().Before(w[j].placeableAt()) }
func (w waitHeap) swap(i, j int) {
	w[i], w[j] = w[j], w[i]
	w[i].waitIdx = i
	w[j].waitIdx = j
}

func (w *waitHeap) push(h *host) {
	h.waitIdx = len(*w)
	*w = append(*w, h)
	w.up(len(*w) - 1)
}

func (w *waitHeap) remove(i int) {
	n := len(*w) - 1
	if n != i {
		w.swap(i, n)
		if !w.down(i, n) {
			w.up(i)
		}
	}
	old := *w
	old[n].waitIdx = -1
	old[n] = nil
	*w = old[:n]
}

func (w waitHeap) fix(i int) {
	if !w.down(i, len(w)) {
		w.up(i)
	}
}

func (w waitHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !w.less(j, i) {
			break
		}
		w.swap(i, j)
		j = i
	}
}

func (w waitHeap) down(i0, n int) bool {
	i := i0
	for {
		j := 2*i + 1
		if j >= n || j < 0 {
			break
		}
		if j2 := j + 1; j2 < n && w.less(j2, j) {
			j = j2
		}
		if !w.less(j, i) {
			break
		}
		w.swap(i, j)
		i = j
	}
	return i > i0
}

// dueHeap orders hosts by the next time Reconcile has something to decide.
// Each entry carries a copy of its host's due time (kept equal to h.due by
// touch, the only writer), so the comparisons of a sift read the heap's
// own contiguous array instead of one host struct per comparison; only
// swaps touch the hosts (their dueIdx). It is the hottest heap: every
// Reconcile pass pops its hosts and touch pushes them back.
//
// The key is the due time as Unix nanoseconds: comparing two int64s is a
// fraction of time.Time.Before's cost (which first checks both values for
// monotonic clock readings), and the entries are half the size. The order
// is the same as Before's for every time the simulator and the tests use
// (no monotonic readings); with monotonic readings (clock.Real in
// production) it follows the wall clock, which differs from Before only
// for times on either side of a wall-clock step.
type dueHeap []dueEntry

type dueEntry struct {
	at int64 // h.due.UnixNano()
	h  *host
}

func (d dueHeap) swap(i, j int) {
	d[i], d[j] = d[j], d[i]
	d[i].h.dueIdx = i
	d[j].h.dueIdx = j
}

func (d *dueHeap) push(h *host) {
	h.dueIdx = len(*d)
	*d = append(*d, dueEntry{at: h.due.UnixNano(), h: h})
	d.up(len(*d) - 1)
}

// pop removes and returns the host due first: the last entry takes the
// root's place and sifts down (remove(0) without its swap).
func (d *dueHeap) pop() *host {
	old := *d
	h := old[0].h
	h.dueIdx = -1
	n := len(old) - 1
	e := old[n]
	old[n] = dueEntry{}
	*d = old[:n]
	if n > 0 {
		old[0] = e
		e.h.dueIdx = 0
		d.down(0, n)
	}
	return h
}

func (d *dueHeap) remove(i int) {
	n := len(*d) - 1
	if n != i {
		d.swap(i, n)
		if !d.down(i, n) {
			d.up(i)
		}
	}
	old := *d
	old[n].h.dueIdx = -1
	old[n] = dueEntry{}
	*d = old[:n]
}

// fix restores the order after h.due changed (h is at index i).
func (d dueHeap) fix(i int) {
	d[i].at = d[i].h.due.UnixNano()
	if !d.down(i, len(d)) {
		d.up(i)
	}
}

// up and down move the entry along a "hole" instead of swapping at each
// level (half the writes); the entries end where the swapping sift of
// container/heap puts them, with the same comparisons.
func (d dueHeap) up(j int) {
	e := d[j]
	for j > 0 {
		i := (j - 1) / 2 // parent
		if e.at >= d[i].at {
			break
		}
		d[j] = d[i]
		d[j].h.dueIdx = j
		j = i
	}
	d[j] = e
	e.h.dueIdx = j
}

func (d dueHeap) down(i0, n int) bool {
	e := d[i0]
	i := i0
	for {
		j := 2*i + 1
		if j >= n || j < 0 { // j < 0 after int overflow
			break
		}
		if j2 := j + 1; j2 < n && d[j2].at < d[j].at {
			j = j2 // right child
		}
		if d[j].at >= e.at {
			break
		}
		d[i] = d[j]
		d[i].h.dueIdx = i
		i = j
	}
	if i > i0 {
		d[i] = e
		e.h.dueIdx = i
	}
	return i > i0
}

// zoneView holds the placeable hosts of one zone.
type zoneView struct {
	free      freeHeap
	freeSlots int
}

// hostCat is how Stats and the hosts gauge count a host.
type hostCat uint8

const (
	catNone hostCat = iota // not counted (untracked)
	catPending
	catFailed
	catBusy
	catIdle
	numHostCats
)

// category is the host's hostCat by its current fields.
func (h *host) category() hostCat {
	switch {
	case h.state == hostPending:
		return catPending
	case h.state == hostFailed:
		return catFailed
	case len(h.used) > 0 || h.busyWithAction():
		return catBusy
	default:
		return catIdle
	}
}

// touch recomputes a host's membership in the free/waiting/due heaps and the
// zone's free-slot count after any change. Caller holds m.mu.
func (m *Manager) touch(h *host, now time.Time) {
	m.seq++
	h.seq = m.seq
	// host counts by category, kept up to date here (every change of a
	// host's state, slots or actions is followed by a touch) so that
	// Stats and the hosts gauge need no scan of every host
	if h.tracked {
		if c := h.category(); c != h.cat {
			m.hostCount[h.cat]--
			m.hostCount[c]++
			h.cat = c
		}
	}
	if h.zv == nil {
		h.zv = m.zone(h.zone)
	}
	z := h.zv
	placeable := h.state == hostAvailable && !h.busyWithAction() && h.free() > 0
	ready := placeable && !h.placeableAt().After(now)

	// free heap and zone counter
	if ready {
		if h.freeIdx < 0 {
			z.free.push(h)
		} else {
			z.free.fix(h.freeIdx)
		}
	} else if h.freeIdx >= 0 {
		z.free.remove(h.freeIdx)
	}
	counted := 0
	if ready {
		counted = h.free()
	}
	z.freeSlots += counted - h.countedFree
	h.countedFree = counted

	// waiting heap
	if placeable && !ready {
		if h.waitIdx < 0 {
			m.waiting.push(h)
		} else {
			m.waiting.fix(h.waitIdx)
		}
	} else if h.waitIdx >= 0 {
		m.waiting.remove(h.waitIdx)
	}

	// due heap
	h.due, h.dueRest = m.computeDue(h)
	// (then h.due is h.expectAvail)
	h.pollOnly = h.state == hostPending && !h.expectAvail.IsZero() &&
		(h.dueRest.IsZero() || h.expectAvail.Before(h.dueRest))
	h.pollDeferred = h.pollDeferred && h.pollOnly // (nextWake reports it again otherwise)
	if h.due.IsZero() {
		if h.dueIdx >= 0 {
			m.dueQ.remove(h.dueIdx)
		}
	} else if h.dueIdx < 0 {
		m.dueQ.push(h)
	} else if m.dueQ[h.dueIdx].at != h.due.UnixNano() {
		// (an identical key needs no fix: it would not move. The common
		// case when a refresh or a poll merges a host that did not change.)
		m.dueQ.fix(h.dueIdx)
	}
}

// untrack removes a host from every index (it was released or vanished).
func (m *Manager) untrack(h *host) {
	z := h.zv
	if z == nil {
		z = m.zone(h.zone)
	}
	if h.freeIdx >= 0 {
		z.free.remove(h.freeIdx)
	}
	z.freeSlots -= h.countedFree
	h.countedFree = 0
	if h.waitIdx >= 0 {
		m.waiting.remove(h.waitIdx)
	}
	if h.dueIdx >= 0 {
		m.dueQ.remove(h.dueIdx)
	}
	for _, s := range h.used {
		m.forgetSlot(s)
	}
	h.used = nil
	delete(m.hosts, h.id)
	h.tracked = false
	m.hostCount[h.cat]--
	h.cat = catNone
	m.seq++
}

// forgetSlot removes s from the maps by token and by instance (where they
// name s).
func (m *Manager) forgetSlot(s *slot) {
	m.forgetToken(s)
	if s.instanceID != "" && m.byInstance[s.instanceID] == s {
		delete(m.byInstance, s.instanceID)
	}
}

// forgetToken is forgetSlot's part for the map by token.
func (m *Manager) forgetToken(s *slot) {
	if s.token != "" && m.byToken[s.token] == s {
		delete(m.byToken, s.token)
	}
}

// promote makes hosts whose placeableAt has come placeable. Caller holds m.mu.
func (m *Manager) promote(now time.Time) {
	for len(m.waiting) > 0 && !m.waiting[0].placeableAt().After(now) {
		m.touch(m.waiting[0], now)
	}
}

// idle reports a host with no instance, reservation or action in flight.
func (h *host) idle() bool { return len(h.used) == 0 && !h.busyWithAction() }

// releaseDue is when an idle host may be released.
//
// It runs several times per touch and per pass (~2.5 M times in the
// simulated year) while its inputs rarely change, and time.Time.Add is
// not cheap: the result is memoized in the host together with the inputs
// it was computed from (compared as values, so no writer of those fields
// has to remember to invalidate it).
func (m *Manager) releaseDue(h *host) time.Time {
	c := &h.relMemo
	if c.ok && c.alloc == h.allocatedAt && c.emptied == h.emptiedAt && c.permanent == h.permanent {
		return c.due
	}
	due := h.allocatedAt.Add(m.releaseAge)
	if h.permanent {
		due = h.allocatedAt.Add(m.cfg.minReleaseAge())
	}
	// AWS counts a host as occupied until its instance has finished
	// shutting down: give a just-emptied host a moment
	if settled := h.emptiedAt.Add(releaseSettle); settled.After(due) {
		due = settled
	}
	*c = releaseMemo{ok: true, alloc: h.allocatedAt, emptied: h.emptiedAt, permanent: h.permanent, due: due}
	return due
}

// releaseMemo is the last releaseDue of a host and its inputs.
type releaseMemo struct {
	ok             bool
	permanent      bool
	alloc, emptied time.Time
	due            time.Time
}

// scrubDueBefore is when an idle available mac host whose releaseDue is
// rd should be scrubbed (zero when scrubbing does not apply). Callers pass
// the releaseDue they already have: time.Time.Add is not free and this
// runs on every touch.
func (m *Manager) scrubDueBefore(h *host, rd time.Time) time.Time {
	if !m.scrubEnabled || h.state != hostAvailable || h.permanent {
		return time.Time{}
	}
	if h.scrubFrom != h.idleSince || h.scrubAt.IsZero() { // (memoized like releaseDue)
		h.scrubFrom, h.scrubAt = h.idleSince, h.idleSince.Add(m.cfg.ScrubbingDelay.D())
	}
	t := h.scrubAt
	if !t.Before(rd) {
		return time.Time{} // old enough to be released instead
	}
	return t
}

// computeDue is the next time Reconcile must look at a host (zero = never
// on its own; a refresh or a driver call will change it), and the same
// without the poll of a pending host (rest).
func (m *Manager) computeDue(h *host) (due, rest time.Time) {
	if h.busyWithAction() {
		return time.Time{}, time.Time{}
	}
	earliest := func(t time.Time) {
		if !t.IsZero() && (due.IsZero() || t.Before(due)) {
			due = t
		}
	}
	later := func(a, b time.Time) time.Time {
		if a.After(b) {
			return a
		}
		return b
	}
	if h.idle() {
		rd := m.releaseDue(h)
		earliest(later(rd, h.retryAt))
		if sd := m.scrubDueBefore(h, rd); !sd.IsZero() {
			earliest(later(sd, h.retryAt))
		}
	}
	for _, s := range h.used {
		if s.kind == slotPromised && h.state == hostAvailable {
			earliest(later(s.since, h.placeableAt()).Add(promiseGrace))
		}
		if s.kind == slotScrub && s.instanceID != "" {
			earliest(h.retryAt) // terminate the scrub instance again
		}
	}
	rest = due
	if h.state == hostPending {
		earliest(h.expectAvail)
	}
	return due, rest
}
