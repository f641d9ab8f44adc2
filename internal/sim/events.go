package sim

// Event kinds of the discrete-event loop.
const (
	evReady     uint8 = iota + 1 // the job's instance finished booting: the job starts
	evEnd                        // the job finished: deallocate its instance
	evDealloc                    // retry of a failed deallocation
	evRetry                      // retry serving the queue (after an allocation error)
	evReconcile                  // the pool asked to be reconciled at this time
)

// event is one entry of the event queue. at is virtual time in Unix
// nanoseconds; seq keeps events with the same time in insertion order.
type event struct {
	at   int64
	seq  uint64
	kind uint8
	f    *flight
}

// eventHeap is a binary min-heap on (at, seq), written out by hand to avoid
// the interface calls of container/heap on the hot path.
type eventHeap struct {
	items []event
	seq   uint64
}

func (h *eventHeap) Len() int { return len(h.items) }

func less(a, b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (h *eventHeap) push(at int64, kind uint8, f *flight) {
	h.seq++
	h.items = append(h.items, event{at: at, seq: h.seq, kind: kind, f: f})
	i := len(h.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(&h.items[i], &h.items[p]) {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

// peek returns the earliest event; the heap must not be empty.
func (h *eventHeap) peek() *event { return &h.items[0] }

func (h *eventHeap) pop() event {
	top := h.items[0]
	n := len(h.items) - 1
	h.items[0] = h.items[n]
	h.items[n] = event{}
	h.items = h.items[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && less(&h.items[r], &h.items[l]) {
			m = r
		}
		if !less(&h.items[m], &h.items[i]) {
			break
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
	return top
}

// fifo is a ring-buffer queue of waiting jobs.
type fifo struct {
	buf        []*flight
	head, size int
}

func (q *fifo) Len() int { return q.size }

func (q *fifo) push(f *flight) {
	if q.size == len(q.buf) {
		n := make([]*flight, max(16, 2*len(q.buf)))
		for i := 0; i < q.size; i++ {
			n[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf = n
		q.head = 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = f
	q.size++
}

func (q *fifo) front() *flight { return q.buf[q.head] }

func (q *fifo) pop() *flight {
	f := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return f
}
