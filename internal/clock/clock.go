// Package clock is the only place decision code reads time from.
//
// Production passes Real; tests and the simulator pass a *Virtual clock and
// advance it explicitly, so nothing that decides ever sleeps or calls
// time.Now directly.
package clock

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock tells the current time.
type Clock interface {
	Now() time.Time
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Virtual is a manually driven clock, safe for concurrent use.
//
// Now is read millions of times per simulated year (every emulated AWS call
// and every pool decision) and the simulator sets it about a million times,
// so the time is kept as Unix nanoseconds plus the location it was given in:
// Now is two atomic loads and Set allocates nothing. Virtual times carry no
// monotonic clock reading and must lie within the years 1678-2262.
type Virtual struct {
	mu  sync.Mutex // serializes writers
	ns  atomic.Int64
	loc atomic.Pointer[time.Location]
}

// NewVirtual returns a virtual clock stopped at start.
func NewVirtual(start time.Time) *Virtual {
	v := &Virtual{}
	v.store(start)
	return v
}

// store publishes t. Caller holds mu (or owns v).
func (v *Virtual) store(t time.Time) {
	v.loc.Store(t.Location())
	v.ns.Store(t.UnixNano())
}

// Now returns the virtual time.
func (v *Virtual) Now() time.Time { return time.Unix(0, v.ns.Load()).In(v.loc.Load()) }

// Advance moves the clock forward by d (negative d is ignored).
func (v *Virtual) Advance(d time.Duration) time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.Now()
	if d > 0 {
		now = now.Add(d)
		v.store(now)
	}
	return now
}

// Set moves the clock to t if t is not before the current time.
func (v *Virtual) Set(t time.Time) time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	if t.UnixNano() > v.ns.Load() {
		v.store(t)
		return t.Round(0)
	}
	return v.Now()
}

// Scaled runs Factor times faster than the wall clock, starting at Start.
// It lets a demo compress hours of AWS behaviour (Mac boot, scrubbing) into seconds.
type Scaled struct {
	origin time.Time // wall time at creation
	start  time.Time // reported time at creation
	factor float64
	wall   func() time.Time
}

// NewScaled returns a clock that reports start at creation and then runs
// factor times faster than real time. factor <= 0 is treated as 1.
func NewScaled(start time.Time, factor float64) *Scaled {
	if factor <= 0 {
		factor = 1
	}
	now := time.Now()
	return &Scaled{origin: now, start: start, factor: factor, wall: time.Now}
}

// Now returns the scaled time.
func (s *Scaled) Now() time.Time {
	elapsed := s.wall().Sub(s.origin)
	return s.start.Add(time.Duration(float64(elapsed) * s.factor))
}

// Factor is the speed-up relative to wall time.
func (s *Scaled) Factor() float64 { return s.factor }
