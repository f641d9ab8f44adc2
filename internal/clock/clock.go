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
// and every pool decision), so it is one atomic load of an immutable
// time.Time; Set and Advance publish a new value (writers are serialized).
type Virtual struct {
	mu  sync.Mutex // serializes writers
	now atomic.Pointer[time.Time]
}

// NewVirtual returns a virtual clock stopped at start.
func NewVirtual(start time.Time) *Virtual {
	v := &Virtual{}
	v.now.Store(&start)
	return v
}

// Now returns the virtual time.
func (v *Virtual) Now() time.Time { return *v.now.Load() }

// Advance moves the clock forward by d (negative d is ignored).
func (v *Virtual) Advance(d time.Duration) time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := *v.now.Load()
	if d > 0 {
		now = now.Add(d)
		v.now.Store(&now)
	}
	return now
}

// Set moves the clock to t if t is not before the current time.
func (v *Virtual) Set(t time.Time) time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := *v.now.Load()
	if t.After(now) {
		v.now.Store(&t)
		return t
	}
	return now
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
