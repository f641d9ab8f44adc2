// Package awsemu is an in-memory AWS world: dedicated hosts, instances,
// images, snapshots, volumes, VPCs, subnets, security groups, key pairs, KMS
// keys, service quotas and the caller identity of one account in one region.
//
// Every emulated action is a method of *World with the exact aws-sdk-go-v2
// signature, so the world satisfies the same narrow interfaces as the real
// SDK clients (the simulator and unit tests use it directly, the HTTP server
// in awsemu/server exposes it on the wire). All state transitions (boot,
// scrubbing, snapshot completion...) are computed lazily from timestamps read
// from the injected clock: the world runs no goroutines and no timers.
package awsemu

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"sort"
	"sync"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
)

// World is the in-memory AWS account. It is safe for concurrent use; one
// mutex serializes all actions.
type World struct {
	mu   sync.Mutex
	clk  clock.Clock
	spec *Spec
	now  time.Time // time of the action being served (set by enter)
	fbuf []string  // scratch for filter values (used under mu only)
	ubuf []byte    // scratch for decoding user data (used under mu only)
	plan runPlan   // scratch for RunInstances (used under mu only)

	tagCache tagCache // recently parsed launch tags (used under mu only)

	// slabs of the usual one-item outputs (used under mu only, see slab)
	runOuts  slab[runOutput1]
	termOuts slab[terminateOutput1]
	hostOuts slab[describeHostsOutput1]
	// DescribeHosts outputs of several hosts
	hostListOuts slab[ec2.DescribeHostsOutput]
	hostSDKs     slab[types.Host]
	hostParts    slab[hostParts]
	instSlab     slab[instance]

	lastImage  *image        // image of the last launch (a lookup cache, checked with live)
	lastSubnet *subnet       // explicit subnet of the last launch (same)
	lastType   *instanceType // instance type of the last launch (the catalog never changes)

	idRng    *rand.Rand
	faultRng *rand.Rand
	seq      uint64
	idBase   uint64

	catalog map[string]*instanceType
	zoneIDs map[string]string

	hosts     table[*host]
	instances table[*instance]
	images    table[*image]
	snapshots table[*snapshot]
	volumes   table[*volume]
	vpcs      table[*vpc]
	subnets   table[*subnet]
	groups    table[*securityGroup]
	keyPairs  table[*keyPair]
	keyNames  map[string]*keyPair
	kmsKeys   table[*kmsKey]
	aliases   table[*kmsAlias]
	quotas    []*quota

	hostTokens map[string]*hostToken
	copyTokens map[string]string
	runTokens  map[string]*runToken

	// purge queues, in clock order (the clock never goes back)
	termQueue []purgeItem[*instance]
	relQueue  []purgeItem[*host]

	// usage counters for vCPU quotas: quota code -> vCPUs of live on-demand instances
	vcpuUsage map[string]int

	faults    []*faultState
	calls     map[string]*ActionStats
	callCache [8]callSlot // recently served actions (see callStats)
	callNext  int
	buckets   map[string]*bucket

	ledger ledger
}

// ActionStats counts the calls of one action and how many answered an error.
type ActionStats struct{ Calls, Errors int64 }

type callSlot struct {
	name string
	st   *ActionStats
}

// callStats returns the counters of action, creating them. A few recent
// actions are cached by name: callers pass constant names, so comparing
// mostly sees the very same string data (a pointer check) and costs less
// than hashing the name for the map.
func (w *World) callStats(action string) *ActionStats {
	for i := range w.callCache {
		if c := &w.callCache[i]; c.st != nil && c.name == action {
			return c.st
		}
	}
	st := w.calls[action]
	if st == nil {
		st = &ActionStats{}
		w.calls[action] = st
	}
	w.callCache[w.callNext] = callSlot{action, st}
	w.callNext = (w.callNext + 1) % len(w.callCache)
	return st
}

// slab hands out fresh zeroed values of T carved from arrays of about
// slabBytes. Each value is handed out once and never reused, so a caller
// owns its output exactly as if it had its own allocation; the price is
// retention: an array stays in memory while any of its values is reachable
// (at most slabBytes per output a caller keeps). Why: the one-item outputs
// of the simulator's hottest calls are 0.2-2.4 KB each, and their size
// classes hold only a few objects per span, so most such allocations had to
// refill the allocator's span cache; one ~32 KB array per dozens of outputs
// spends that cost once. Not safe for concurrent use (the world lock).
type slab[T any] struct{ free []T }

const slabBytes = 32 << 10

func (s *slab[T]) next() *T {
	if len(s.free) == 0 {
		var zero T
		s.free = make([]T, max(1, slabBytes/int(unsafe.Sizeof(zero))))
	}
	v := &s.free[0]
	s.free = s.free[1:]
	return v
}

// take hands out n consecutive fresh values as a slice capped at n (an
// append by the caller reallocates instead of reaching the next values).
// A request larger than a quarter of a slab gets its own allocation.
func (s *slab[T]) take(n int) []T {
	var zero T
	per := max(1, slabBytes/int(unsafe.Sizeof(zero)))
	if n > per/4 {
		return make([]T, n)
	}
	if len(s.free) < n {
		s.free = make([]T, per)
	}
	v := s.free[:n:n]
	s.free = s.free[n:]
	return v
}

// purgeItem is an object to purge at a time (the object itself rather than
// its id: no table lookup to find it). The time is in Unix nanoseconds, as
// in the ledger: purge runs on every call, and an int64 comparison against
// the head of the queue is cheaper than time.Time.Before (the world's clock
// stays within the years 1678-2262 that UnixNano covers).
type purgeItem[T object] struct {
	at  int64
	obj T
}

// New builds a world from spec (nil means DefaultSpec()) on the given clock.
func New(clk clock.Clock, spec *Spec) (*World, error) {
	if clk == nil {
		return nil, fmt.Errorf("awsemu: clock is required")
	}
	if spec == nil {
		spec = DefaultSpec()
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	w := &World{
		clk:        clk,
		spec:       spec,
		idRng:      rand.New(rand.NewPCG(uint64(spec.Seed), 0x5eed1d)),
		faultRng:   rand.New(rand.NewPCG(uint64(spec.Seed), 0xfa017)),
		hostTokens: map[string]*hostToken{},
		keyNames:   map[string]*keyPair{},
		runTokens:  map[string]*runToken{},
		vcpuUsage:  map[string]int{},
		calls:      map[string]*ActionStats{},
		buckets:    map[string]*bucket{},
	}
	// A random base keeps ids realistic while a counter keeps them unique.
	w.idBase = w.idRng.Uint64() & 0x0fff_ffff_ffff_0000
	w.hosts.init()
	w.instances.init()
	w.images.init()
	w.snapshots.init()
	w.volumes.init()
	w.vpcs.init()
	w.subnets.init()
	w.groups.init()
	w.keyPairs.init()
	w.kmsKeys.init()
	w.aliases.init()
	w.now = clk.Now()
	w.catalog = buildCatalog(spec.InstanceTypes)
	for _, it := range w.catalog {
		it.boot, it.scrub = w.specBootTime(it), w.specScrubbing(it.name, it.family)
	}
	w.zoneIDs = map[string]string{}
	for _, z := range spec.Zones {
		w.zoneIDs[z] = computeZoneID(spec.Region, z)
	}
	for _, f := range append(spec.Limits.failureFaults(), spec.Faults...) {
		if err := w.addFault(f); err != nil {
			return nil, fmt.Errorf("faults: %w", err)
		}
	}
	if err := w.populate(); err != nil {
		return nil, err
	}
	return w, nil
}

// Clock is the clock the world reads time from.
func (w *World) Clock() clock.Clock { return w.clk }

// Spec returns the spec the world was built from (do not modify it).
func (w *World) Spec() *Spec { return w.spec }

// AccountID is the emulated account id.
func (w *World) AccountID() string { return w.spec.AccountID }

// Region is the emulated region.
func (w *World) Region() string { return w.spec.Region }

func (w *World) nextSeq() uint64 {
	w.seq++
	return w.seq
}

// newID returns a fresh AWS-looking id such as "i-0123456789abcdef0".
func (w *World) newID(prefix string) string {
	var buf [40]byte
	return string(w.appendID(buf[:0], prefix))
}

// appendID appends a fresh id (see newID) to b.
func (w *World) appendID(b []byte, prefix string) []byte {
	b, _ = w.appendIDNum(b, prefix)
	return b
}

// appendIDNum appends a fresh id (see newID) to b and returns the number
// its 17 hex digits spell.
func (w *World) appendIDNum(b []byte, prefix string) ([]byte, uint64) {
	num := w.nextIDNum()
	return appendIDOf(b, prefix, num), num
}

// nextIDNum draws the number of a fresh id (see newID).
func (w *World) nextIDNum() uint64 {
	w.seq++
	return w.idBase + w.seq*0x9e3 + uint64(w.idRng.IntN(0x9e3))
}

// appendIDOf appends the id of number v (drawn by nextIDNum) to b.
func appendIDOf(b []byte, prefix string, v uint64) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, prefix...)
	b = append(b, '-')
	n := len(b)
	b = append(b, "00000000000000000"...)
	for i := len(b) - 1; i >= n; i-- {
		b[i] = hexd[v&0xf]
		v >>= 4
	}
	return b
}

// enter starts serving action: it records the call, refreshes lazily
// computed state, then applies throttling and fault rules. The caller holds
// w.mu.
func (w *World) enter(ctx context.Context, action string) error {
	st := w.callStats(action)
	st.Calls++
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			st.Errors++
			return err
		}
	}
	now := w.clk.Now()
	if now.After(w.now) {
		w.now = now
	}
	w.purge()
	w.maybeFold()
	if err := w.throttle(action); err != nil {
		st.Errors++
		return err
	}
	if err := w.applyFaults(action); err != nil {
		st.Errors++
		return err
	}
	return nil
}

// leave records err (if any) for action and returns it.
func (w *World) leave(action string, err error) error {
	if err != nil {
		w.callStats(action).Errors++
	}
	return err
}

// do runs one action under the world lock with call recording, faults
// and throttling (fn does the action's work).
func (w *World) do(ctx context.Context, action string, fn func() error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.enter(ctx, action); err != nil {
		return err
	}
	return w.leave(action, fn())
}

// serve is do for an SDK-shaped method. A nil input is treated as an
// empty one.
func serve[I, O any](ctx context.Context, w *World, action string, in *I, fn func(*I) (*O, error)) (*O, error) {
	var out *O
	err := w.do(ctx, action, func() error {
		if in == nil {
			in = new(I)
		}
		var err error
		out, err = fn(in)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecordCall records a call the world did not serve itself (for example an
// unknown action or malformed parameters rejected by the HTTP server).
func (w *World) RecordCall(action string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.callStats(action)
	st.Calls++
	if err != nil {
		st.Errors++
	}
}

// Calls returns a copy of the per-action call counters.
func (w *World) Calls() map[string]ActionStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]ActionStats, len(w.calls))
	for k, v := range w.calls {
		out[k] = *v
	}
	return out
}

// ResetCalls clears the call counters.
func (w *World) ResetCalls() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = map[string]*ActionStats{}
	clear(w.callCache[:])
}

// purge drops terminated instances and released hosts whose visibility
// window has passed. Work is amortized: each object is purged once.
func (w *World) purge() {
	now := w.now.UnixNano()
	n := 0
	for n < len(w.termQueue) && w.termQueue[n].at <= now {
		if in := w.termQueue[n].obj; live(in) {
			switch {
			case in.token.ids != nil:
				// the instance holds the token of its one-instance launch:
				// it is the map's entry until now (no lookup needed)
				delete(w.runTokens, in.clientToken)
			case in.clientToken != "":
				if rt := w.runTokens[in.clientToken]; rt != nil && rt.remove(in.id) {
					delete(w.runTokens, in.clientToken)
				}
			}
			w.instances.removeObj(in)
		}
		n++
	}
	if n > 0 {
		w.termQueue = compactQueue(w.termQueue, n)
	}
	n = 0
	for n < len(w.relQueue) && w.relQueue[n].at <= now {
		if h := w.relQueue[n].obj; live(h) {
			if h.clientToken != "" {
				if ht := w.hostTokens[h.clientToken]; ht != nil && ht.remove(h.id) {
					delete(w.hostTokens, h.clientToken)
				}
			}
			w.hosts.removeObj(h)
		}
		n++
	}
	if n > 0 {
		w.relQueue = compactQueue(w.relQueue, n)
	}
}

func compactQueue[T object](q []purgeItem[T], n int) []purgeItem[T] {
	if n >= len(q) {
		clear(q) // (do not keep purged objects alive)
		return q[:0]
	}
	// Shift only when the consumed prefix dominates, so the cost stays amortized O(1).
	if n*2 >= len(q) || n > 4096 {
		m := copy(q, q[n:])
		clear(q[m:])
		return q[:m]
	}
	clear(q[:n])
	return q[n:]
}

// ---- throttling ----

type bucket struct {
	tokens, capacity, rate float64
	last                   time.Time
}

func (w *World) throttle(action string) error {
	th := &w.spec.Throttling
	if !th.Enabled {
		return nil
	}
	key, bs, ok := th.bucketFor(action)
	if !ok {
		return nil
	}
	b := w.buckets[key]
	if b == nil {
		b = &bucket{tokens: bs.Capacity, capacity: bs.Capacity, rate: bs.RefillPerSecond, last: w.now}
		w.buckets[key] = b
	}
	if el := w.now.Sub(b.last).Seconds(); el > 0 {
		b.tokens += el * b.rate
		if b.tokens > b.capacity {
			b.tokens = b.capacity
		}
		b.last = w.now
	}
	if b.tokens < 1 {
		return &APIError{Code: "RequestLimitExceeded", Message: "Request limit exceeded.", HTTPStatus: http.StatusServiceUnavailable}
	}
	b.tokens--
	return nil
}

// ---- fault injection ----

// FaultRule makes an action fail with a given error, either for the next
// Count calls or, when Count is 0, with the given Probability per call.
type FaultRule struct {
	Action      string  `json:"action" yaml:"action"` // e.g. "RunInstances"; "*" = any action
	Code        string  `json:"code" yaml:"code"`
	Message     string  `json:"message,omitempty" yaml:"message"`
	HTTPStatus  int     `json:"http_status,omitempty" yaml:"http_status"`
	Probability float64 `json:"probability,omitempty" yaml:"probability"` // used when Count == 0
	Count       int     `json:"count,omitempty" yaml:"count"`             // fail the next Count calls
}

type faultState struct {
	rule      FaultRule
	remaining int
}

// Validate checks the rule and names the offending field.
func (r FaultRule) Validate() error {
	switch {
	case r.Action == "":
		return fmt.Errorf("fault rule: action is required")
	case r.Action != "*" && !actionSet()[r.Action]:
		return fmt.Errorf("fault rule: unknown action %q (want an emulated action such as RunInstances, or \"*\")", r.Action)
	case r.Code == "":
		return fmt.Errorf("fault rule %s: code is required", r.Action)
	case r.Count < 0:
		return fmt.Errorf("fault rule %s: count must be >= 0, got %d", r.Action, r.Count)
	case r.Probability < 0 || r.Probability > 1:
		return fmt.Errorf("fault rule %s: probability must be within [0,1], got %v", r.Action, r.Probability)
	case r.Count == 0 && r.Probability == 0:
		return fmt.Errorf("fault rule %s: set count > 0 or probability > 0", r.Action)
	case r.HTTPStatus != 0 && (r.HTTPStatus < 400 || r.HTTPStatus > 599):
		return fmt.Errorf("fault rule %s: http_status must be 4xx or 5xx, got %d", r.Action, r.HTTPStatus)
	}
	return nil
}

var (
	actionsOnce sync.Once
	actionNames []string
	actionIndex map[string]bool
)

// Actions lists the emulated AWS actions: the methods of *World with the
// SDK client signature (ctx, *XxxInput, ...func(*Options)).
func Actions() []string {
	actionSet()
	return append([]string(nil), actionNames...)
}

func actionSet() map[string]bool {
	actionsOnce.Do(func() {
		ctxType := reflect.TypeFor[context.Context]()
		errType := reflect.TypeFor[error]()
		t := reflect.TypeFor[*World]()
		actionIndex = map[string]bool{}
		for i := range t.NumMethod() {
			m := t.Method(i).Type // receiver is In(0)
			if m.NumIn() == 4 && m.IsVariadic() && m.In(1) == ctxType && m.In(2).Kind() == reflect.Pointer &&
				m.NumOut() == 2 && m.Out(1) == errType {
				name := t.Method(i).Name
				actionNames = append(actionNames, name)
				actionIndex[name] = true
			}
		}
	})
	return actionIndex
}

// AddFault adds a fault rule after validating it.
func (w *World) AddFault(r FaultRule) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.addFault(r)
}

func (w *World) addFault(r FaultRule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	w.faults = append(w.faults, &faultState{rule: r, remaining: r.Count})
	return nil
}

// ClearFaults removes every fault rule.
func (w *World) ClearFaults() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.faults = nil
}

// Faults lists the active rules; Count is the number of failures left.
func (w *World) Faults() []FaultRule {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]FaultRule, 0, len(w.faults))
	for _, f := range w.faults {
		r := f.rule
		r.Count = f.remaining
		out = append(out, r)
	}
	return out
}

func (w *World) applyFaults(action string) error {
	for i, f := range w.faults {
		if f.rule.Action != "*" && f.rule.Action != action {
			continue
		}
		fire := false
		if f.rule.Count > 0 {
			fire = true
			f.remaining--
			if f.remaining <= 0 {
				w.faults = append(w.faults[:i:i], w.faults[i+1:]...)
			}
		} else {
			fire = w.faultRng.Float64() < f.rule.Probability
		}
		if !fire {
			continue
		}
		msg := f.rule.Message
		if msg == "" {
			msg = fmt.Sprintf("Injected fault %s for %s.", f.rule.Code, action)
		}
		st := f.rule.HTTPStatus
		if st == 0 {
			st = http.StatusBadRequest
		}
		return &APIError{Code: f.rule.Code, Message: msg, HTTPStatus: st}
	}
	return nil
}

// ---- ordered tables ----

type objBase struct {
	seq     uint64
	id      string
	removed bool // no longer in its table (tables test this instead of a map lookup)
	// unindexed: in its table's order but not yet in its map (see addFresh)
	unindexed bool
}

func (b *objBase) base() *objBase { return b }

type object interface{ base() *objBase }

// table keeps objects by id and in creation order (for stable listings and
// resumable paging); removal is O(1) with periodic compaction.
//
// Objects added by addFresh enter the map only when the table is next read
// (index): a launch's boot volume is mostly removed (terminate) before
// anything looks a volume up, so its map insert and delete are never made.
type table[T object] struct {
	byID  map[string]T
	order []T
	dead  int
	// unindexed counts the live objects of order not yet in byID; they are
	// at or after order[unindexedFrom].
	unindexed, unindexedFrom int
}

func (t *table[T]) init() { t.byID = map[string]T{} }

// addFresh is add for an object whose id is in no table (a fresh id drawn
// by the world): it goes into order now, into the map when the table is
// next read.
func (t *table[T]) addFresh(v T) {
	b := v.base()
	b.removed, b.unindexed = false, true
	if t.unindexed == 0 {
		t.unindexedFrom = len(t.order)
	}
	t.unindexed++
	t.order = append(t.order, v)
}

// index puts the unindexed objects into the map, in order (as add would
// have). Every reader of the table calls it first.
func (t *table[T]) index() {
	if t.unindexed == 0 {
		return
	}
	for _, v := range t.order[t.unindexedFrom:] {
		b := v.base()
		if !b.unindexed {
			continue
		}
		b.unindexed = false
		n := len(t.byID)
		t.byID[b.id] = v
		if len(t.byID) == n {
			// (not for fresh ids: add's rare case, see replaced)
			t.replacedBy(v)
		}
	}
	t.unindexed, t.unindexedFrom = 0, 0
}

// replacedBy is replaced for v indexed after its place in order: the
// replaced object is the one live indexed object of v's id other than v.
func (t *table[T]) replacedBy(v T) {
	b := v.base()
	for i := len(t.order) - 1; i >= 0; i-- {
		old := t.order[i]
		if ob := old.base(); any(old) != any(v) && ob.id == b.id && !ob.removed && !ob.unindexed {
			ob.removed = true
			t.dead++
			return
		}
	}
}

func (t *table[T]) add(v T) {
	t.index()
	b := v.base()
	// One map operation instead of a lookup then an assignment: the map only
	// keeps its length when the id was there already, which world-made ids
	// never are. That rare case finds the replaced object in order instead.
	n := len(t.byID)
	t.byID[b.id] = v
	if len(t.byID) == n {
		t.replaced(v)
	}
	b.removed = false
	t.order = append(t.order, v)
}

// replaced marks the live object that v replaced under its id as removed
// (v itself may be that object: adding an object twice keeps it live).
func (t *table[T]) replaced(v T) {
	b := v.base()
	for i := len(t.order) - 1; i >= 0; i-- {
		old := t.order[i]
		if ob := old.base(); ob.id == b.id && !ob.removed {
			if any(old) != any(v) {
				ob.removed = true
				t.dead++
			}
			return
		}
	}
}

// live tells whether v is (still) the object of its id in the table.
func live[T object](v T) bool { return !v.base().removed }

func (t *table[T]) get(id string) (T, bool) {
	t.index()
	v, ok := t.byID[id]
	return v, ok
}

// getVia is t.get trying *last first: launches mostly repeat the image and
// subnet of the previous one. A hit in the table becomes the new *last.
func getVia[T interface {
	object
	comparable
}](t *table[T], last *T, id string) (T, bool) {
	var none T
	if v := *last; v != none && v.base().id == id && live(v) {
		return v, true
	}
	v, ok := t.get(id)
	if ok {
		*last = v
	}
	return v, ok
}

func (t *table[T]) len() int { return len(t.byID) + t.unindexed }

func (t *table[T]) remove(id string) {
	if v, ok := t.get(id); ok {
		t.removeObj(v)
	}
}

// removeObj removes v (a no-op when it was removed already).
func (t *table[T]) removeObj(v T) {
	b := v.base()
	if b.removed {
		return
	}
	b.removed = true
	if b.unindexed {
		b.unindexed = false
		t.unindexed-- // (never in the map)
	} else {
		delete(t.byID, b.id)
	}
	t.dead++
	if t.dead > 64 && t.dead*2 > len(t.order) {
		live := t.order[:0]
		from := -1 // the new place of the first unindexed object
		for _, v := range t.order {
			if b := v.base(); !b.removed {
				if b.unindexed && from < 0 {
					from = len(live)
				}
				live = append(live, v)
			}
		}
		t.unindexedFrom = max(from, 0)
		var zero T
		for i := len(live); i < len(t.order); i++ {
			t.order[i] = zero
		}
		t.order = live
		t.dead = 0
	}
}

// each calls fn for live objects in creation order starting after seq
// `after` until fn returns false.
func (t *table[T]) each(after uint64, fn func(T) bool) {
	t.index() // (an index may retire objects, see replacedBy)
	start := 0
	if after > 0 {
		start = sort.Search(len(t.order), func(i int) bool { return t.order[i].base().seq > after })
	}
	for _, v := range t.order[start:] {
		if v.base().removed {
			continue
		}
		if !fn(v) {
			return
		}
	}
}
