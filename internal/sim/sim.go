// Package sim replays a CI workload (CSV) through the production AWS driver,
// its dedicated-host pool manager and the in-memory AWS world on a virtual
// clock, and reports host-hours, cost and queue wait.
//
// The package owns only the workload reader, the FIFO job queue, the
// discrete-event loop and the statistics; every pool and driver decision is
// made by internal/driver/aws and internal/driver/aws/pool.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
	"github.com/aquarium-fish/aquarium-fish/internal/strarena"
)

// flight is a job between its arrival and its end.
type flight struct {
	job      Job
	uid      string
	placed   int64 // Unix ns when the driver allocated its instance
	ready    int64 // Unix ns when the instance finished booting
	attempts int   // failed allocation attempts (not counting capacity shortages)
	deallocs int   // failed deallocation attempts
	res      *core.Resource
}

// hostCounts is the pool's view of its hosts at one moment.
type hostCounts struct {
	Total, Busy, Idle, Pending, Other int
	Max                               int // most hosts held at once so far
}

// backend is what the loop drives: the production driver and pool manager,
// and the read-only views of the in-memory world. backend.go builds it.
type backend struct {
	drv       driver.Driver
	def       core.Definition
	reconcile func(ctx context.Context) (time.Time, error)
	nextWake  func() time.Time // the pool's next wake-up, no network call
	hosts     func() hostCounts
	billed    func(from, to time.Time) time.Duration // billed host time (pending excluded)
	calls     func() map[string]CallStats
	poolStats func() map[string]int64
	boot      time.Duration
	close     func() // releases the driver's resources
}

// Unserved reasons.
const (
	ReasonQueuedAtHorizon = "still queued when the horizon ended"
	ReasonAfterHorizon    = "arrived after the horizon"
	ReasonStalled         = "no capacity: queue stalled with nothing running"
	ReasonAllocFailed     = "allocation failed after retries"
)

// run is the state of one simulation.
type run struct {
	ctx context.Context
	p   Params
	b   *backend
	clk *clock.Virtual
	log *slog.Logger

	rd      *Reader
	next    Job
	hasNext bool

	ev    eventHeap
	queue fifo
	free  []*flight
	uids  strarena.Arena // makes the flights' application uids

	now          int64
	recSeq       uint64 // seq of the live reconcile event (0 = none)
	recAt        int64
	retrySeq     uint64
	retryAt      int64
	horizon      int64 // 0 = none
	pastHorizon  bool
	blocked      bool // the last allocation found no capacity
	lastProgress int64

	running      int // instances executing a job
	initializing int // instances booting for a job
	st           collector
}

// Run simulates the workload read from r with the given parameters.
func Run(ctx context.Context, r io.Reader, p Params) (*Result, error) {
	p, err := p.normalize()
	if err != nil {
		return nil, err
	}
	rd, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	first, err := rd.Next()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("workload: no jobs after the header")
	}
	if err != nil {
		return nil, err
	}
	wall := time.Now() // wall-clock time of the run itself, reported only
	start := time.Unix(first.Start, 0).UTC()
	clk := clock.NewVirtual(start)
	b, err := newBackend(ctx, clk, p)
	if err != nil {
		return nil, err
	}
	defer b.close()
	s := &run{ctx: ctx, p: p, b: b, clk: clk, rd: rd, next: first, hasNext: true, log: p.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if !p.Until.IsZero() {
		s.horizon = p.Until.UnixNano()
	}
	s.st.init(start.UnixNano(), p.SampleEvery)
	s.now = start.UnixNano()
	s.lastProgress = s.now
	s.kick()
	if err := s.loop(); err != nil {
		return nil, err
	}
	res := s.result()
	res.Elapsed = time.Since(wall)
	return res, nil
}

// loop runs events in time order until every job is done.
func (s *run) loop() error {
	for iter := 0; ; iter++ {
		if iter&1023 == 0 {
			if err := s.ctx.Err(); err != nil {
				return fmt.Errorf("simulation interrupted: %w", err)
			}
		}
		t, ok := s.nextTime()
		if !ok {
			break
		}
		if s.horizon != 0 && t > s.horizon && !s.pastHorizon {
			s.advance(s.horizon)
			s.cutHorizon()
			if err := s.drainArrivals(); err != nil {
				return err
			}
			continue
		}
		if s.done() {
			break
		}
		if s.stalled(t) {
			s.advance(max(s.now, s.lastProgress+s.p.StallLimit.Nanoseconds()))
			for s.queue.Len() > 0 {
				s.unserve(s.queue.pop(), ReasonStalled)
			}
			continue
		}
		s.advance(t)
		for s.ev.Len() > 0 && s.ev.peek().at == t {
			e := s.ev.pop()
			s.handle(e)
		}
		for s.hasNext && s.next.Start*1e9 == t {
			s.arrive(s.next)
			if err := s.readNext(); err != nil {
				return err
			}
		}
		s.serve()
	}
	return nil
}

// nextTime is the time of the earliest pending event or arrival.
func (s *run) nextTime() (int64, bool) {
	var t int64
	ok := false
	if s.hasNext {
		t, ok = s.next.Start*1e9, true
	}
	if s.ev.Len() > 0 {
		if at := s.ev.peek().at; !ok || at < t {
			t, ok = at, true
		}
	}
	return t, ok
}

// done reports that no job is queued, running or still to arrive; pending
// reconcile wake-ups alone do not keep the simulation going.
func (s *run) done() bool {
	return !s.hasNext && s.queue.Len() == 0 && s.running == 0 && s.initializing == 0 && s.pendingDeallocs() == 0
}

func (s *run) pendingDeallocs() int { return s.st.deallocPending }

// stalled reports a queue that cannot move: nothing runs, nothing arrives and
// no capacity appeared for StallLimit.
func (s *run) stalled(t int64) bool {
	return !s.hasNext && s.queue.Len() > 0 && s.running == 0 && s.initializing == 0 &&
		s.pendingDeallocs() == 0 && t-s.lastProgress > s.p.StallLimit.Nanoseconds()
}

// advance moves the virtual clock to t and integrates the time-weighted stats.
func (s *run) advance(t int64) {
	if t < s.now {
		return
	}
	s.st.sampleUntil(t, s)
	s.st.queueSpan(s.now, t, s.queue.Len())
	s.now = t
	s.clk.Set(time.Unix(0, t))
}

func (s *run) readNext() error {
	j, err := s.rd.Next()
	if errors.Is(err, io.EOF) {
		s.hasNext = false
		return nil
	}
	if err != nil {
		return err
	}
	s.next = j
	if s.p.Progress != nil && s.rd.Rows()&511 == 0 {
		s.p.Progress(s.rd.Bytes())
	}
	return nil
}

func (s *run) newFlight(j Job) *flight {
	var f *flight
	if n := len(s.free); n > 0 {
		f = s.free[n-1]
		s.free = s.free[:n-1]
		*f = flight{}
	} else {
		f = new(flight)
	}
	f.job = j
	f.uid = uid(&s.uids, j.Line)
	return f
}

// uid returns "sim-<line>", carved from a (one allocation per chunk of
// uids instead of one per job: see strarena).
func uid(a *strarena.Arena, line int) string {
	var buf [32]byte
	return a.String(strconv.AppendInt(append(buf[:0], "sim-"...), int64(line), 10))
}

func (s *run) release(f *flight) {
	f.res = nil
	s.free = append(s.free, f)
}

func (s *run) arrive(j Job) {
	s.st.read++
	if s.pastHorizon {
		s.st.unserved[ReasonAfterHorizon]++
		return
	}
	s.st.arrival(j.Start * 1e9)
	s.queue.push(s.newFlight(j))
	s.st.queueLen(s.queue.Len())
}

// drainArrivals counts the rows after the horizon as unserved.
func (s *run) drainArrivals() error {
	for s.hasNext {
		s.arrive(s.next)
		if err := s.readNext(); err != nil {
			return err
		}
	}
	return nil
}

func (s *run) cutHorizon() {
	s.pastHorizon = true
	for s.queue.Len() > 0 {
		s.unserve(s.queue.pop(), ReasonQueuedAtHorizon)
	}
}

func (s *run) unserve(f *flight, reason string) {
	s.st.unserved[reason]++
	s.release(f)
}

// kick asks for a pool reconcile now.
func (s *run) kick() { s.scheduleReconcile(s.now) }

// wake re-reads the pool's next wake-up after Place or InstanceGone (the
// production runner is woken through a channel instead) and schedules a
// reconcile then.
func (s *run) wake() {
	if t := s.b.nextWake(); !t.IsZero() {
		s.scheduleReconcile(t.UnixNano())
	}
}

func (s *run) scheduleReconcile(at int64) {
	if at < s.now {
		at = s.now
	}
	if s.recSeq != 0 && s.recAt <= at {
		return
	}
	s.ev.push(at, evReconcile, nil)
	s.recSeq, s.recAt = s.ev.seq, at
}

func (s *run) scheduleRetry(at int64) {
	if s.retrySeq != 0 && s.retryAt <= at {
		return
	}
	s.ev.push(at, evRetry, nil)
	s.retrySeq, s.retryAt = s.ev.seq, at
}

func (s *run) handle(e event) {
	switch e.kind {
	case evReady:
		f := e.f
		if e.at < f.job.Start*1e9 || f.placed < f.job.Start*1e9 {
			s.st.earlyStarts++
		}
		s.initializing--
		s.running++
		s.st.instancesChanged(s.running + s.initializing)
		s.ev.push(e.at+f.job.Exec*1e9, evEnd, f)
	case evEnd:
		s.running--
		s.st.instancesChanged(s.running + s.initializing)
		s.lastProgress = e.at
		s.deallocate(e.f)
	case evDealloc:
		s.st.deallocPending--
		s.deallocate(e.f)
	case evRetry:
		if e.seq == s.retrySeq {
			s.retrySeq = 0
		}
	case evReconcile:
		if e.seq != s.recSeq {
			return // superseded by an earlier wake-up
		}
		s.recSeq = 0
		next, err := s.b.reconcile(s.ctx)
		s.st.reconciles++
		if err != nil {
			s.st.reconcileErrors++
			s.log.Debug("pool reconcile failed", "err", err)
			next = time.Unix(0, s.now).Add(s.p.RetryBackoff)
		}
		if !next.IsZero() {
			n := next.UnixNano()
			if n <= s.now {
				// The pool wants to run again at once; let time move on a little
				// so a pool that keeps asking cannot freeze the loop.
				n = s.now + int64(time.Second)
			}
			s.scheduleReconcile(n)
		}
	}
}

func (s *run) deallocate(f *flight) {
	err := s.b.drv.Deallocate(s.ctx, *f.res)
	s.wake()
	if err != nil {
		f.deallocs++
		s.st.deallocErrors++
		if f.deallocs <= s.p.AllocationRetry {
			s.st.deallocPending++
			s.ev.push(s.now+s.p.RetryBackoff.Nanoseconds(), evDealloc, f)
			return
		}
		s.st.leaked++
		s.log.Warn("deallocation failed, instance left behind", "job_line", f.job.Line, "err", err)
	}
	s.release(f)
}

// serve places queued jobs in FIFO order while the driver has capacity.
//
// Allocation is optimistic: while the last attempt succeeded the next job
// goes straight to Allocate. After a capacity shortage the queue is gated by
// AvailableCapacity (no network call for a pool) until the pool reports
// capacity again; if Allocate still answers ErrCapacity right after a
// positive AvailableCapacity (e.g. a host in its available lag, injected
// capacity errors), the queue backs off for RetryBackoff.
func (s *run) serve() {
	for s.queue.Len() > 0 && !s.pastHorizon {
		if s.retrySeq != 0 && s.retryAt > s.now {
			return // backing off after an allocation error
		}
		verified := false
		if s.blocked {
			n, err := s.b.drv.AvailableCapacity(s.ctx, s.b.def)
			if err != nil {
				s.st.capacityErrors++
				s.scheduleRetry(s.now + s.p.RetryBackoff.Nanoseconds())
				return
			}
			if n <= 0 {
				return // the pool or a deallocation will wake the queue
			}
			s.blocked, verified = false, true
		}
		f := s.queue.front()
		res, err := s.b.drv.Allocate(s.ctx, driver.AllocateRequest{ApplicationUID: f.uid, Definition: s.b.def})
		s.wake()
		if err != nil {
			if errors.Is(err, driver.ErrCapacity) {
				s.st.capacityMisses++
				s.blocked = true
				if !verified {
					continue // ask AvailableCapacity before trying again
				}
			} else {
				f.attempts++
				s.st.allocErrors++
				s.log.Debug("allocation failed", "job_line", f.job.Line, "attempt", f.attempts, "err", err)
				if f.attempts > s.p.AllocationRetry {
					s.queue.pop()
					s.st.queueLen(s.queue.Len())
					s.unserve(f, ReasonAllocFailed)
					continue
				}
			}
			s.scheduleRetry(s.now + s.p.RetryBackoff.Nanoseconds())
			return
		}
		s.queue.pop()
		s.st.queueLen(s.queue.Len())
		f.res = res
		f.placed = s.now
		f.ready = s.now + s.b.boot.Nanoseconds()
		s.lastProgress = s.now
		s.st.served(f)
		s.initializing++
		s.st.instancesChanged(s.running + s.initializing)
		s.ev.push(f.ready, evReady, f)
	}
}
