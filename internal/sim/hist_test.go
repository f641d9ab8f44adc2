package sim

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for range 90 {
		h.add(0)
	}
	for i := range 10 {
		h.add(int64(60_000 * (i + 1))) // 1..10 minutes
	}
	if got := h.quantile(0.5); got != 0 {
		t.Fatalf("p50 = %v, want 0", got)
	}
	if h.max != 600_000 {
		t.Fatalf("max = %d", h.max)
	}
	// p95 is the 95th of 100 values = 5 minutes, within the 1/64 bucket width.
	if got := h.quantile(0.95); got < 300*(1-1.0/64) || got > 300*(1+1.0/64) {
		t.Fatalf("p95 = %v, want ≈300", got)
	}
	if got := h.mean(); got != 33 {
		t.Fatalf("mean = %v, want 33", got)
	}
}

func TestHistogramRelativeError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	var vals []int64
	for range 20000 {
		v := int64(rng.ExpFloat64() * float64(10*time.Minute/time.Millisecond))
		vals = append(vals, v)
		h.add(v)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99} {
		exact := float64(vals[int(q*float64(len(vals)-1))]) / 1000
		got := h.quantile(q)
		if d := (got - exact) / exact; d > 0.02 || d < -0.02 {
			t.Fatalf("q%.2f: got %v, exact %v (%.3f off)", q, got, exact, d)
		}
	}
	for i := 0; i < 5000; i++ {
		if histLower(histIndex(int64(i))) > int64(i) || histLower(histIndex(int64(i))+1) <= int64(i) {
			t.Fatalf("value %d not within its bucket %d", i, histIndex(int64(i)))
		}
	}
}

func TestEventHeapOrder(t *testing.T) {
	var h eventHeap
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 1000 {
		h.push(int64(rng.IntN(50)), uint8(i%5), nil)
	}
	var last event
	for i := 0; h.Len() > 0; i++ {
		e := h.pop()
		if i > 0 && less(&e, &last) {
			t.Fatalf("out of order: %+v after %+v", e, last)
		}
		last = e
	}
}

func TestFIFO(t *testing.T) {
	var q fifo
	fs := make([]*flight, 100)
	for i := range fs {
		fs[i] = &flight{job: Job{Line: i}}
	}
	// Interleave pushes and pops so the ring wraps and grows.
	next := 0
	for i, f := range fs {
		q.push(f)
		if i%3 == 2 {
			if got := q.pop(); got != fs[next] {
				t.Fatalf("pop %d: got line %d", next, got.job.Line)
			}
			next++
		}
	}
	for q.Len() > 0 {
		if got := q.pop(); got != fs[next] {
			t.Fatalf("pop %d: got line %d", next, got.job.Line)
		}
		next++
	}
	if next != len(fs) {
		t.Fatalf("popped %d", next)
	}
}

func TestMonthsSpread(t *testing.T) {
	var ms months
	jan31 := time.Date(2025, 1, 31, 23, 0, 0, 0, time.UTC).UnixNano()
	feb1 := time.Date(2025, 2, 1, 1, 0, 0, 0, time.UTC).UnixNano()
	ms.index(jan31)
	ms.spread(jan31, feb1, 2, addInst)
	if len(ms.m) != 2 || ms.m[0].instSec != 7200 || ms.m[1].instSec != 7200 {
		t.Fatalf("months %+v", ms.m)
	}
	if i := ms.index(time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC).UnixNano()); i != 2 {
		t.Fatalf("March index %d", i)
	}
	if i := ms.index(jan31); i != 0 {
		t.Fatalf("Jan index %d", i)
	}
}
