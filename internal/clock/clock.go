// Package clock is the only place decision code reads time from.
//
// Production passes Real; tests and the simulator pass a *Virtual clock and
// advance it explicitly, so nothing that decides ever sleeps or calls
// time.Now directly.
package clock

import (
	"sync"
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
type Virtual struct {
	mu  sync.RWMutex
	now time.Time
}

// NewVirtual returns a virtual clock stopped at start.
func NewVirtual(start time.Time) *Virtual { return &Virtual{now: start} }

// Now returns the virtual time.
func (v *Virtual) Now() time.Time {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.now
}

// Advance moves the clock forward by d (negative d is ignored).
func (v *Virtual) Advance(d time.Duration) time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	if d > 0 {
		v.now = v.now.Add(d)
	}
	return v.now
}

// Set moves the clock to t if t is not before the current time.
func (v *Virtual) Set(t time.Time) time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	if t.After(v.now) {
		v.now = t
	}
	return v.now
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
