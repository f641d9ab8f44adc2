package clock

import (
	"testing"
	"time"
)

func TestVirtual(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	v := NewVirtual(start)
	if !v.Now().Equal(start) {
		t.Fatalf("Now = %v, want %v", v.Now(), start)
	}
	v.Advance(time.Hour)
	v.Advance(-time.Minute)
	if got := v.Now().Sub(start); got != time.Hour {
		t.Fatalf("after Advance: %v", got)
	}
	v.Set(start) // never goes back
	if got := v.Now().Sub(start); got != time.Hour {
		t.Fatalf("Set moved back: %v", got)
	}
	v.Set(start.Add(2 * time.Hour))
	if got := v.Now().Sub(start); got != 2*time.Hour {
		t.Fatalf("Set: %v", got)
	}
}

func TestScaled(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	wall := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Scaled{origin: wall, start: start, factor: 60, wall: func() time.Time { return wall.Add(time.Second) }}
	if got := s.Now().Sub(start); got != time.Minute {
		t.Fatalf("scaled 1s x60 = %v, want 1m", got)
	}
}
