package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// failLimiter limits failed login attempts per client address: each address
// may fail Burst times, then one more attempt every Every. While an address
// is over its budget its attempts are refused before any password check.
type failLimiter struct {
	mu      sync.Mutex
	every   time.Duration
	burst   int
	byAddr  map[string]*rate.Limiter
	maxSize int
}

func newFailLimiter(every time.Duration, burst int) *failLimiter {
	return &failLimiter{every: every, burst: burst, byAddr: map[string]*rate.Limiter{}, maxSize: 100000}
}

// blocked reports whether addr has no failed attempts left at now.
func (f *failLimiter) blocked(addr string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.byAddr[addr]
	return ok && l.TokensAt(now) < 1
}

// fail records a failed attempt from addr at now.
func (f *failLimiter) fail(addr string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.byAddr[addr]
	if !ok {
		if len(f.byAddr) >= f.maxSize {
			f.prune(now)
		}
		l = rate.NewLimiter(rate.Every(f.every), f.burst)
		f.byAddr[addr] = l
	}
	l.AllowN(now, 1)
}

// prune drops addresses whose budget is full again (they carry no state).
func (f *failLimiter) prune(now time.Time) {
	for a, l := range f.byAddr {
		if l.TokensAt(now) >= float64(f.burst) {
			delete(f.byAddr, a)
		}
	}
}
