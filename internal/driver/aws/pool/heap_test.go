package pool

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// refDue is the due heap as it was written on container/heap: the typed
// heaps must pop hosts in exactly its order (ties included), since the
// order of a pass's decisions is part of the pool's behaviour.
type refDue []*host

func (r refDue) Len() int           { return len(r) }
func (r refDue) Less(i, j int) bool { return r[i].due.Before(r[j].due) }
func (r refDue) Swap(i, j int) {
	r[i], r[j] = r[j], r[i]
	r[i].waitIdx = i // the reference keeps its index in waitIdx
	r[j].waitIdx = j
}
func (r *refDue) Push(x any) { h := x.(*host); h.waitIdx = len(*r); *r = append(*r, h) }
func (r *refDue) Pop() any {
	old := *r
	h := old[len(old)-1]
	*r = old[:len(old)-1]
	h.waitIdx = -1
	return h
}

func TestDueHeapMatchesContainerHeap(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { testDueHeap(t, seed, 1+int(seed)*9) })
	}
}

func testDueHeap(t *testing.T, seed uint64, n int) {
	rng := rand.New(rand.NewPCG(seed, 2))
	// two hosts per id: one in the typed heap, one in the reference
	mine, ref := make([]*host, n), make([]*host, n)
	for i := range n {
		mine[i] = newHost(fmt.Sprintf("h-%02d", i), "z", 1)
		ref[i] = newHost(fmt.Sprintf("h-%02d", i), "z", 1)
	}
	var d dueHeap
	var r refDue
	// few distinct times, so ties are frequent
	due := func() time.Time { return t0.Add(time.Duration(rng.IntN(8)) * time.Minute) }
	for step := range 20000 {
		i := rng.IntN(n)
		switch op := rng.IntN(4); {
		case op == 0 && len(d) > 0: // pop
			a, b := d.pop(), heap.Pop(&r).(*host)
			if a.id != b.id {
				t.Fatalf("step %d: pop %s, container/heap pops %s", step, a.id, b.id)
			}
		case mine[i].dueIdx < 0: // push
			mine[i].due = due()
			ref[i].due = mine[i].due
			d.push(mine[i])
			heap.Push(&r, ref[i])
		case op == 1: // remove
			d.remove(mine[i].dueIdx)
			heap.Remove(&r, ref[i].waitIdx)
		default: // fix with a new (maybe equal) time
			mine[i].due = due()
			ref[i].due = mine[i].due
			if d[mine[i].dueIdx].at != mine[i].due.UnixNano() { // as touch does
				d.fix(mine[i].dueIdx)
			}
			heap.Fix(&r, ref[i].waitIdx)
		}
		for k := range d {
			if d[k].h.id != r[k].id || d[k].h.dueIdx != k || d[k].at != d[k].h.due.UnixNano() {
				t.Fatalf("step %d: heaps differ at %d: %s/%d vs %s", step, k, d[k].h.id, d[k].h.dueIdx, r[k].id)
			}
		}
	}
}
