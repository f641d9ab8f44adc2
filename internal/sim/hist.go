package sim

import "math/bits"

// histogram is a log-linear histogram of non-negative durations in
// milliseconds with constant memory: values below 128 ms are exact, larger
// ones fall in buckets at most 1/64 (1.6%) wide. The maximum is exact.
type histogram struct {
	counts []int64
	n      int64
	sum    float64 // seconds
	max    int64   // ms
}

const histSub = 64 // sub-buckets per power of two

func histIndex(v int64) int {
	if v < 2*histSub {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 7 // v >> e is in [64, 128)
	return (e+1)*histSub + int(v>>uint(e)) - histSub
}

// histLower is the smallest value that falls in bucket i.
func histLower(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	e := i/histSub - 1
	sub := int64(i%histSub + histSub)
	return sub << uint(e)
}

func (h *histogram) add(ms int64) {
	if ms < 0 {
		ms = 0
	}
	i := histIndex(ms)
	if i >= len(h.counts) {
		n := make([]int64, i+1)
		copy(n, h.counts)
		h.counts = n
	}
	h.counts[i]++
	h.n++
	h.sum += float64(ms) / 1000
	if ms > h.max {
		h.max = ms
	}
}

// quantile returns the q-quantile in seconds (bucket midpoint, exact below
// 128 ms; never above the exact maximum).
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n-1)) + 1 // 1-based rank of the nearest-rank-below value
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo := histLower(i)
			hi := histLower(i+1) - 1
			v := lo
			if hi > lo {
				v = (lo + hi) / 2
			}
			if v > h.max {
				v = h.max
			}
			return float64(v) / 1000
		}
	}
	return float64(h.max) / 1000
}

func (h *histogram) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}
