package engine

import (
	"container/heap"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// State descriptions the engine writes. Some carry facts the engine reads
// back after a restart (which node elected an application and for which
// definition; where the next attempt starts), so the history stays the
// single source of truth and nothing lives only in memory.
const (
	electedFmt   = "elected by node=%s definition=%d"
	failedPrefix = "allocation failed"
	nextDefKey   = "next definition="
)

func electedDesc(node string, def int) string { return fmt.Sprintf(electedFmt, node, def) }

// parseElected reads an ELECTED description written by electedDesc.
func parseElected(desc string) (node string, def int, ok bool) {
	rest, found := strings.CutPrefix(desc, "elected by node=")
	if !found {
		return "", 0, false
	}
	node, defStr, found := strings.Cut(rest, " definition=")
	if !found {
		return "", 0, false
	}
	def, err := strconv.Atoi(strings.TrimSpace(defStr))
	if err != nil || def < 0 {
		return "", 0, false
	}
	return node, def, true
}

func failedDesc(def, attempt, attempts int, cause string, next int) string {
	return fmt.Sprintf("%s on definition %d (attempt %d of %d): %s; %s%d",
		failedPrefix, def, attempt, attempts, cause, nextDefKey, next)
}

// parseNextDef reads where the next attempt starts from a NEW description.
func parseNextDef(desc string) (int, bool) {
	i := strings.LastIndex(desc, nextDefKey)
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(desc[i+len(nextDefKey):]))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// countFailures counts the failed allocation attempts in a history.
func countFailures(states []core.ApplicationState) int {
	n := 0
	for _, s := range states {
		if s.Status == core.StatusNew && strings.HasPrefix(s.Description, failedPrefix) {
			n++
		}
	}
	return n
}

// lastElected returns the node and definition of the latest ELECTED state.
func lastElected(states []core.ApplicationState) (node string, def int, ok bool) {
	for i := len(states) - 1; i >= 0; i-- {
		if states[i].Status == core.StatusElected {
			return parseElected(states[i].Description)
		}
	}
	return "", 0, false
}

func isDead(s core.Status) bool { return s == core.StatusDeallocated || s == core.StatusError }

// deadline is a resource lifetime end.
type deadline struct {
	at  time.Time
	app string
}

// deadlineHeap is a min-heap of deadlines (container/heap).
type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// armDeadline remembers a resource timeout (nil = none).
func (e *Engine) armDeadline(app string, at *time.Time) {
	if at == nil {
		return
	}
	e.mu.Lock()
	heap.Push(&e.deadlines, deadline{at: *at, app: app})
	e.mu.Unlock()
}

// dueDeadlines pops the deadlines at or before now.
func (e *Engine) dueDeadlines(now time.Time) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for e.deadlines.Len() > 0 && !e.deadlines[0].at.After(now) {
		out = append(out, heap.Pop(&e.deadlines).(deadline).app)
	}
	return out
}
