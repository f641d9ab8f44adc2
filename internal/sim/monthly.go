package sim

import (
	"sort"
	"time"
)

// monthAcc accumulates one calendar month (UTC) of the run.
type monthAcc struct {
	start, end int64   // Unix ns, [start, end)
	instSec    float64 // job execution seconds (instances busy)
	initSec    float64 // instance initialization (boot) seconds of job instances
	queueSec   float64 // integral of the queue length over time (job-seconds)
	waitSum    float64 // seconds, over jobs that arrived this month and were served
	waitN      int64
	arrivals   int64
}

// months is a growing list of consecutive calendar months.
type months struct {
	m []monthAcc
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// index returns the month holding t (Unix ns), adding months as needed.
func (ms *months) index(t int64) int {
	if len(ms.m) == 0 {
		s := monthStart(time.Unix(0, t))
		ms.m = append(ms.m, monthAcc{start: s.UnixNano(), end: s.AddDate(0, 1, 0).UnixNano()})
	}
	if t < ms.m[0].start {
		// Prepend months (only happens if something reports a time before the first arrival).
		for t < ms.m[0].start {
			s := time.Unix(0, ms.m[0].start).UTC().AddDate(0, -1, 0)
			ms.m = append([]monthAcc{{start: s.UnixNano(), end: ms.m[0].start}}, ms.m...)
		}
		return 0
	}
	for t >= ms.m[len(ms.m)-1].end {
		last := ms.m[len(ms.m)-1]
		e := time.Unix(0, last.end).UTC().AddDate(0, 1, 0)
		ms.m = append(ms.m, monthAcc{start: last.end, end: e.UnixNano()})
	}
	n := len(ms.m)
	if t >= ms.m[n-1].start {
		return n - 1
	}
	return sort.Search(n, func(i int) bool { return ms.m[i].end > t })
}

// spread adds weight × (seconds of [from, to) in each month) through add.
func (ms *months) spread(from, to int64, weight float64, add func(m *monthAcc, sec float64)) {
	if to <= from || weight == 0 {
		return
	}
	i := ms.index(from)
	ms.index(to - 1)
	for from < to {
		m := &ms.m[i]
		end := min(to, m.end)
		add(m, weight*float64(end-from)/1e9)
		from = end
		i++
	}
}

func addInst(m *monthAcc, s float64)  { m.instSec += s }
func addInit(m *monthAcc, s float64)  { m.initSec += s }
func addQueue(m *monthAcc, s float64) { m.queueSec += s }
