package pool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/aquarium-fish/aquarium-fish/internal/ec2ops"
	"github.com/aquarium-fish/aquarium-fish/internal/strarena"
)

// Reconcile does one pass of decisions: releases idle hosts older than
// release_delay (and permanent-failure hosts), scrubs idle young mac hosts
// after scrubbing_delay, refreshes the view when due, and returns the
// earliest time it has something to do again.
//
// Speed notes (it runs ~2 times per scrub): the pass allocates nothing for
// its own bookkeeping (scratch slices and request structs are kept in
// recScratch between passes), and m.mu is taken once per phase rather than
// once per step: the decisions, each scrub launch, the scrub terminations,
// the poll/refresh choice, and the merge of a poll with the next wake-up;
// phases with no EC2 call between them share one locked section.
func (m *Manager) Reconcile(ctx context.Context) (time.Time, error) {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	m.mu.Lock()
	if !m.started {
		m.mu.Unlock()
		return time.Time{}, fmt.Errorf("pool %s: not started", m.cfg.Name)
	}
	now := m.clk.Now()
	m.promote(now)
	// scratch owned by Reconcile (recMu), emptied again on return
	sc := &m.recScratch
	defer sc.reset()
	nowNs := now.UnixNano() // (the due heap's keys, see dueHeap)
	for len(m.dueQ) > 0 && m.dueQ[0].at <= nowNs {
		sc.popped = append(sc.popped, m.dueQ.pop())
	}
	for _, h := range sc.popped {
		m.expirePromises(h, now)
		if h.state == hostPending && !h.expectAvail.After(now) {
			m.queuePoll(h)
			h.expectAvail = nextPoll(h, now)
		}
		if s := scrubInstance(h); s != nil {
			if !h.retryAt.After(now) && !h.busyWithAction() {
				h.scrubbing = true
				sc.addTerminate(s)
			}
		} else if h.idle() && !h.retryAt.After(now) {
			if rd := m.releaseDue(h); !now.Before(rd) {
				h.releasing = true
				sc.releases = append(sc.releases, h)
			} else if sd := m.scrubDueBefore(h, rd); !sd.IsZero() && !now.Before(sd) {
				if h.placeableAt().After(now) {
					h.retryAt = h.placeableAt()
				} else {
					h.scrubbing = true
					// h is idle, so its scrub slot is not in use
					h.scrubSlot = slot{kind: slotScrub, since: now, host: h}
					h.used = append(h.used, &h.scrubSlot)
					sc.scrubs = append(sc.scrubs, h)
				}
			}
		}
		m.touch(h, now)
		if !h.due.IsZero() && !h.due.After(now) {
			// never spin: whatever is left waits for the action backoff
			h.retryAt = now.Add(actionRetry)
			m.touch(h, now)
		}
	}

	var errs []error
	if len(sc.releases) > 0 || len(sc.scrubs) > 0 || len(sc.terminates) > 0 {
		// (a pass without actions, e.g. one that only polls, keeps the
		// lock for the next phase instead of a round trip)
		m.mu.Unlock()
		if len(sc.releases) > 0 {
			if err := m.release(ctx, sc.releases); err != nil {
				errs = append(errs, err)
			}
		}
		if len(sc.scrubs) > 0 || len(sc.terminates) > 0 {
			if err := m.scrub(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		m.mu.Lock()
		now = m.clk.Now()
	}
	gapOK := !now.Before(m.describeGate)
	fullNow := (m.wantRefresh && gapOK) || !now.Before(m.fullDue)
	var pollSeq uint64
	if !fullNow && gapOK && len(m.pollQ) > 0 {
		for i, h := range m.pollQ {
			h.pollQueued = false
			m.pollQ[i] = nil
			if h.tracked || m.hosts[h.id] != nil { // (tracked: no map lookup)
				sc.poll = append(sc.poll, h.id)
				sc.pollHost = h
			}
		}
		m.pollQ = m.pollQ[:0]
		if len(sc.poll) > 1 { // (usually one host)
			slices.Sort(sc.poll)
			sc.poll = slices.Compact(sc.poll) // the queue is a set of ids
		}
		if len(sc.poll) != 1 {
			sc.pollHost = nil
		}
		if len(sc.poll) > 0 {
			pollSeq = m.seq
			m.described(now, false)
		}
	}
	if !fullNow && len(sc.poll) == 0 {
		// nothing to read from AWS: the wake-up comes from this locked
		// section (no third round trip)
		next := m.nextWake(now)
		m.updateHostMetrics()
		m.mu.Unlock()
		return next, errors.Join(errs...)
	}
	m.mu.Unlock()
	var pollErr error
	if fullNow {
		if err := m.refresh(ctx); err != nil {
			errs = append(errs, fmt.Errorf("pool %s: refresh: %w", m.cfg.Name, err))
		} else if m.reapScrubs {
			if err := m.reapScrubOrphans(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	} else if len(sc.poll) > 0 {
		// poll the pending hosts by id (merged below, in the last locked section)
		sc.pollIn.HostIds = sc.poll
		sc.polled, _, pollErr = m.ops.DescribeHostStates(ctx, &sc.pollIn, sc.polled[:0])
		sc.pollIn.HostIds = nil
		m.metricCall(callDescribeHosts, pollErr)
	}
	m.mu.Lock()
	now = m.clk.Now()
	if len(sc.poll) > 0 && !fullNow {
		if err := m.mergePoll(sc.polled, pollErr, sc.pollHost, pollSeq, now); err != nil {
			errs = append(errs, fmt.Errorf("pool %s: poll pending hosts: %w", m.cfg.Name, err))
		}
		sc.polled = ec2ops.Reset(sc.polled) // (no strings of the answer kept alive)
	}
	next := m.nextWake(now)
	m.updateHostMetrics()
	m.mu.Unlock()
	return next, errors.Join(errs...)
}

// reconcileScratch holds Reconcile's working slices and request structs
// between passes so a pass allocates nothing for its bookkeeping. Guarded
// by recMu. Reusing request structs is safe because EC2 clients (the SDK,
// the world) do not keep a request after the call returns.
type reconcileScratch struct {
	popped, releases, scrubs []*host
	terminates               []*slot  // scrub instances to terminate
	ids                      []string // their instance ids (same order)
	poll                     []string
	relIDs                   []string // hosts to release

	// pollHost is the host behind sc.poll when it names one host (most
	// polls): mergePoll then finds it without the m.gone and m.hosts
	// lookups, see mergePoll.
	pollHost *host

	scrubToken string         // ClientToken of the scrub launch in flight
	tokens     strarena.Arena // makes scrubToken
	// scrubSubnet's request
	subnetIn      ec2.DescribeSubnetsInput
	subnetFilters [2]types.Filter
	subnetVals    [2][1]string
	runIn         ec2.RunInstancesInput
	pollIn        ec2.DescribeHostsInput
	relIn         ec2.ReleaseHostsInput

	// answers of the ec2ops calls, kept for their backing arrays and
	// emptied (no strings kept alive) right after use
	launched []ec2ops.Instance // the scrub launch's
	polled   []ec2ops.Host     // the pending-host poll's
}

// addTerminate queues a scrub instance for termination. Caller holds m.mu.
func (sc *reconcileScratch) addTerminate(s *slot) {
	sc.terminates = append(sc.terminates, s)
	sc.ids = append(sc.ids, s.instanceID)
}

// reset empties the slices, keeping their capacity but no pointers. Most
// passes use one or two of them: the empty ones are skipped.
func (sc *reconcileScratch) reset() {
	sc.popped = emptied(sc.popped)
	sc.releases = emptied(sc.releases)
	sc.relIDs = emptied(sc.relIDs)
	sc.scrubs = emptied(sc.scrubs)
	sc.terminates = emptied(sc.terminates)
	sc.ids = emptied(sc.ids)
	sc.poll = emptied(sc.poll)
	sc.pollHost = nil
	sc.scrubToken = ""
}

// emptied returns s with length 0, its used elements zeroed (so the
// backing array keeps no pointers alive).
func emptied[T any](s []T) []T {
	if len(s) == 0 {
		return s
	}
	clear(s)
	return s[:0]
}

// described records a DescribeHosts of pending hosts, or a full refresh,
// started at now. Caller holds m.mu.
func (m *Manager) described(now time.Time, full bool) {
	m.lastDescribe = now
	m.describeGate = now.Add(minDescribeGap)
	if full {
		m.lastFull = now
		m.fullDue = now.Add(m.fullEvery)
	}
}

// queuePoll asks for a DescribeHosts of a pending host by id. Caller holds m.mu.
func (m *Manager) queuePoll(h *host) {
	if !h.pollQueued {
		h.pollQueued = true
		m.pollQ = append(m.pollQ, h)
	}
}

// clearPolls empties the poll queue (a full refresh reads every host).
// Caller holds m.mu.
func (m *Manager) clearPolls() {
	for i, h := range m.pollQ {
		h.pollQueued = false
		m.pollQ[i] = nil
	}
	m.pollQ = m.pollQ[:0]
}

// NextWake is the earliest time Reconcile has something to do. Place,
// Unreserve and InstanceGone can move it earlier: a caller that drives
// Reconcile itself (the simulator, tests) asks again after calling them
// (Run is woken through a channel instead). No network call.
func (m *Manager) NextWake() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	m.promote(now)
	return m.nextWake(now)
}

// nextWake is the earliest time anything is due. Caller holds m.mu.
//
// A pending host whose only business at its due (expectAvail) is to be
// queued for a poll does not count at that time when the describe gap
// holds the poll back anyway: the pass would only queue it, and the poll
// would wait for a second pass at lastDescribe+minDescribeGap. It counts at
// that gate instead (or at its next other business, if earlier), and the
// pass that pops it late queues it as the skipped pass would have (see
// nextPoll): same polls at the same times, one pass fewer. See dueWake.
func (m *Manager) nextWake(now time.Time) time.Time {
	next := m.fullDue
	if m.wantRefresh || len(m.pollQ) > 0 {
		t := m.describeGate
		if t.Before(now) {
			t = now
		}
		if t.Before(next) {
			next = t
		}
	}
	if len(m.dueQ) > 0 {
		if top := m.dueQ[0].h; top.due.Before(next) {
			if gate := m.describeGate; top.pollOnly && top.due.Before(gate) {
				next = m.dueWake(0, gate, next)
			} else {
				next = top.due // (the usual case, without dueWake's call)
			}
		}
	}
	if len(m.waiting) > 0 && m.waiting[0].placeableAt().Before(next) {
		next = m.waiting[0].placeableAt()
	}
	return next
}

// dueWake is the earliest wake-up the due heap's subtree at i asks for, if
// before best (else best). A poll-only pending host due before gate (the
// end of the describe gap) asks for min(gate, its other business) instead
// of its due, and is marked pollDeferred; the search then looks at its
// children, which may be due earlier than that. Any other entry asks for
// its due, and its children (due no earlier) need no look. The search
// only visits entries due before best, so it stops at the first entry
// that is not poll-only (the heap top in most calls), or at most visits
// the hosts due within the gap. Caller holds m.mu.
func (m *Manager) dueWake(i int, gate, best time.Time) time.Time {
	if i >= len(m.dueQ) {
		return best
	}
	// (compared as times: best and gate may be far from the keys' range
	// before Start)
	h := m.dueQ[i].h
	if !h.due.Before(best) {
		return best
	}
	if !h.pollOnly || !h.due.Before(gate) {
		return h.due
	}
	h.pollDeferred = true
	t := gate
	if !h.dueRest.IsZero() && h.dueRest.Before(t) {
		t = h.dueRest
	}
	if t.Before(best) {
		best = t
	}
	best = m.dueWake(2*i+1, gate, best)
	return m.dueWake(2*i+2, gate, best)
}

// nextPoll is a pending host's next expectAvail once its expectAvail has
// come (it is queued for a poll now): a pendingPoll later. Counted from
// the pass time, unless nextWake skipped the wake-up at expectAvail (the
// describe gap held the poll back): then from expectAvail, the time of the
// skipped pass, so that the host is polled on the same times as if that
// pass had run. Caller holds m.mu.
func nextPoll(h *host, now time.Time) time.Time {
	next := now.Add(pendingPoll)
	if h.pollDeferred {
		h.pollDeferred = false
		if t := h.expectAvail.Add(pendingPoll); t.After(now) {
			next = t
		}
	}
	return next
}

func scrubInstance(h *host) *slot {
	for _, s := range h.used {
		if s.kind == slotScrub && s.instanceID != "" {
			return s
		}
	}
	return nil
}

// expirePromises frees slots promised to tokens that did not come back
// within promiseGrace after the host became usable. Caller holds m.mu.
func (m *Manager) expirePromises(h *host, now time.Time) {
	if h.state != hostAvailable {
		return
	}
	for i := 0; i < len(h.used); {
		s := h.used[i]
		start := s.since
		if p := h.placeableAt(); p.After(start) {
			start = p
		}
		if s.kind == slotPromised && !now.Before(start.Add(promiseGrace)) {
			h.removeSlot(s)
			m.forgetSlot(s)
			m.becameEmpty(h, now)
			m.log.Debug("promised slot expired", "host", h.id, "token", s.token)
			continue
		}
		i++
	}
}

// release calls ReleaseHosts once for hosts marked releasing.
// Runs inside Reconcile (recMu: uses recScratch).
func (m *Manager) release(ctx context.Context, hosts []*host) error {
	sc := &m.recScratch
	ids := sc.relIDs[:0]
	for _, h := range hosts {
		ids = append(ids, h.id)
	}
	sc.relIDs = ids
	sc.relIn.HostIds = ids
	out, err := m.api.ReleaseHosts(ctx, &sc.relIn)
	sc.relIn.HostIds = nil
	m.metricCall(callReleaseHosts, err)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.countCall(callReleaseHosts, err)
	now := m.clk.Now()
	if err != nil {
		for _, h := range hosts {
			h.releasing = false
			h.retryAt = now.Add(pendingPoll) // an API error, not a refusal: retry soon
			m.touch(h, now)
		}
		m.wantRefresh = true
		return fmt.Errorf("pool %s: release hosts %v: %w", m.cfg.Name, ids, err)
	}
	for _, id := range out.Successful {
		if h := m.hosts[id]; h != nil {
			h.releasing = false
			m.untrack(h)
		}
		m.gone[id] = m.seq
		m.stats.Releases++
		m.metricInc(m.metrics.releases())
		if m.log.Enabled(ctx, slog.LevelInfo) {
			m.log.Info("released dedicated host", "host", id)
		}
	}
	var refused []error
	for _, u := range out.Unsuccessful {
		id := aws.ToString(u.ResourceId)
		code, msg := "", ""
		if u.Error != nil {
			code, msg = aws.ToString(u.Error.Code), aws.ToString(u.Error.Message)
		}
		m.stats.RefusedReleases++
		m.metricInc(m.metrics.refused())
		m.wantRefresh = true
		m.log.Warn("AWS refused to release a dedicated host", "host", id, "code", code, "message", msg)
		refused = append(refused, fmt.Errorf("host %s: %s: %s", id, code, msg))
		if h := m.hosts[id]; h != nil {
			h.releasing = false
			if code == "Client.InvalidHostID.NotFound" || code == "InvalidHostID.NotFound" {
				m.untrack(h)
				m.gone[id] = m.seq
				continue
			}
			h.retryAt = now.Add(actionRetry)
			m.touch(h, now)
		}
	}
	for _, h := range hosts { // not mentioned in the answer
		if h.releasing {
			h.releasing = false
			h.retryAt = now.Add(actionRetry)
			m.touch(h, now)
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("pool %s: release refused: %w", m.cfg.Name, errors.Join(refused...))
	}
	return nil
}

// scrub launches an instance on each host of recScratch.scrubs and
// terminates it at once (no wait for running: AWS scrubs a mac host after
// any instance stop/terminate, and terminating early keeps the host busy
// for the shortest time). recScratch.terminates already holds the scrub
// instances whose earlier TerminateInstances failed. Runs inside Reconcile.
func (m *Manager) scrub(ctx context.Context) error {
	sc := &m.recScratch
	var errs []error
	for _, h := range sc.scrubs {
		if err := m.launchScrub(ctx, h); err != nil {
			errs = append(errs, err)
		}
	}
	if len(sc.terminates) == 0 {
		return errors.Join(errs...)
	}
	err := m.ops.TerminateInstanceIDs(ctx, sc.ids)
	m.metricCall(callTerminateInstances, err)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.countCall(callTerminateInstances, err)
	now := m.clk.Now()
	for _, s := range sc.terminates {
		h := s.host
		h.scrubbing = false
		if err != nil {
			// the instance stays: refreshes and polls must know it is ours.
			// A scrub instance is registered only here: between its launch
			// and its termination (one Reconcile pass, recMu) no refresh or
			// poll runs, and the driver cannot name it in Bind or
			// InstanceGone, so a successful scrub skips a map insert and
			// delete.
			m.byInstance[s.instanceID] = s
			h.retryAt = now.Add(pendingPoll)
			m.touch(h, now)
			continue
		}
		h.removeSlot(s)
		m.forgetSlot(s)
		if h.tracked && h.state == hostAvailable { // (tracked: m.hosts[h.id] == h)
			m.setPending(h, now, true)
		}
		m.becameEmpty(h, now)
		m.touch(h, now)
		m.stats.Scrubs++
		m.metricInc(m.metrics.scrubs())
	}
	if err != nil {
		m.stats.ScrubFailures++
		errs = append(errs, fmt.Errorf("pool %s: terminate scrub instances %v: %w", m.cfg.Name, sc.ids, err))
	}
	return errors.Join(errs...)
}

// launchScrub runs the scrub instance on h and queues it for termination.
// On failure the scrub slot is dropped and the host waits actionRetry
// before the next try. Runs inside Reconcile (recMu: uses recScratch).
func (m *Manager) launchScrub(ctx context.Context, h *host) error {
	sc := &m.recScratch
	m.mu.Lock()
	now := m.clk.Now()
	arch := m.arch
	// one token per idle period of the host: a retry after a timeout finds
	// the instance it may have launched instead of launching another
	sc.scrubToken = arenaToken(&sc.tokens, "s", h.id, int(h.idleSince.Unix()))
	sp := &h.scrubPlacement
	if sp.id == "" || sp.zone != h.zone {
		sp.id, sp.zone = h.id, h.zone
		sp.pl = types.Placement{Tenancy: types.TenancyHost, HostId: &sp.id, AvailabilityZone: &sp.zone}
	}
	pl := &sp.pl
	zone := h.zone
	m.mu.Unlock()
	image, subnet := m.cachedScrubTargets(zone, now)
	var err error
	if image == nil {
		if image, err = m.scrubImage(ctx, arch, now); err != nil {
			return m.scrubFailed(h, err)
		}
	}
	if subnet == nil {
		if subnet, err = m.scrubSubnet(ctx, zone, now); err != nil {
			return m.scrubFailed(h, err)
		}
	}
	// the shared parts (counts, tags, cached image/subnet/placement pointers)
	// are never written by the SDK or the world: only the token is new. The
	// input struct is reused and only its varying fields are set: copying
	// the whole (large) struct per call costs more than the call's
	// bookkeeping when the GC's write barriers are on.
	in := &sc.runIn
	if in.ClientToken == nil {
		t := &m.scrubTmpl
		in.InstanceType, in.MinCount, in.MaxCount = t.InstanceType, t.MinCount, t.MaxCount
		in.TagSpecifications = t.TagSpecifications
		in.ClientToken = &sc.scrubToken
	}
	in.ImageId, in.Placement, in.SubnetId = image, pl, subnet
	launched, err := m.ops.LaunchInstances(ctx, in, sc.launched[:0])
	in.ImageId, in.Placement, in.SubnetId = nil, nil, nil
	id := ""
	if len(launched) > 0 {
		id = launched[0].ID
	}
	sc.launched = emptied(launched)
	m.metricCall(callRunInstances, err)
	if err != nil || len(launched) == 0 {
		m.mu.Lock()
		m.countCall(callRunInstances, err)
		m.mu.Unlock()
		if err == nil {
			err = errors.New("RunInstances returned no instance")
		}
		return m.scrubFailed(h, err)
	}
	m.mu.Lock()
	m.countCall(callRunInstances, nil)
	for _, s := range h.used {
		if s.kind == slotScrub && s.instanceID == "" {
			// (registered in byInstance only if its termination fails,
			// see scrub: nothing else can look this id up before that)
			s.instanceID = id
			break
		}
	}
	if s := scrubInstance(h); s != nil {
		sc.addTerminate(s)
	}
	m.mu.Unlock()
	if m.log.Enabled(ctx, slog.LevelInfo) {
		m.log.Info("scrubbing dedicated host", "host", h.id, "instance", id)
	}
	return nil
}

// scrubName is the Name tag of the pool's scrub instances.
func scrubName(pool string) string { return "aquarium-scrub-" + pool }

// reapScrubOrphans terminates the pool's scrub instances that are alive when
// the manager starts. A scrub instance lives within one Reconcile pass (it
// is terminated right after its launch), so a live one was left by a node
// that stopped between the two calls; nothing else would ever terminate it,
// and it would keep its host busy, and billed, for good. Terminating it
// starts the host's scrub, as the pass would have. Runs under recMu right
// after a refresh (which adopted the instances as slots); on an error it is
// tried again after the next full refresh.
func (m *Manager) reapScrubOrphans(ctx context.Context) error {
	in := &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + TagPoolName), Values: []string{m.cfg.Name}},
		{Name: aws.String("tag:Name"), Values: []string{scrubName(m.cfg.Name)}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}}
	var ids []string
	for {
		out, err := m.api.DescribeInstances(ctx, in)
		m.recordCall(callDescribeInstances, err)
		if err != nil {
			return fmt.Errorf("pool %s: find orphaned scrub instances: %w", m.cfg.Name, err)
		}
		for _, r := range out.Reservations {
			for _, inst := range r.Instances {
				ids = append(ids, aws.ToString(inst.InstanceId))
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	if len(ids) > 0 {
		err := m.ops.TerminateInstanceIDs(ctx, ids)
		m.recordCall(callTerminateInstances, err)
		if err != nil {
			return fmt.Errorf("pool %s: terminate orphaned scrub instances %v: %w", m.cfg.Name, ids, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reapScrubs = false
	if len(ids) == 0 {
		return nil
	}
	now := m.clk.Now()
	for _, id := range ids {
		s := m.byInstance[id]
		if s == nil {
			continue // not on a host of the view: nothing to free here
		}
		h := s.host
		h.removeSlot(s)
		m.forgetSlot(s)
		if h.tracked && h.state == hostAvailable {
			m.setPending(h, now, true)
		}
		m.becameEmpty(h, now)
		m.touch(h, now)
	}
	m.stats.ScrubOrphans += int64(len(ids))
	m.log.Warn("terminated orphaned scrub instances (a node stopped between a scrub's launch and its termination)", "pool", m.cfg.Name, "instances", ids)
	return nil
}

// scrubFailed drops h's pending scrub slot after a failed launch and backs
// the host off for actionRetry.
func (m *Manager) scrubFailed(h *host, err error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range h.used {
		if s.kind == slotScrub && s.instanceID == "" {
			h.removeSlot(s)
			break
		}
	}
	h.scrubbing = false
	h.retryAt = m.clk.Now().Add(actionRetry)
	if code := errorCode(err); code == "InsufficientCapacityOnHost" || code == "InvalidHostID.NotFound" || code == "IncorrectHostState" {
		h.suspectUntil = m.clk.Now().Add(suspectBackoff)
		m.wantRefresh = true
	}
	m.becameEmpty(h, m.clk.Now())
	m.touch(h, m.clk.Now())
	m.stats.ScrubFailures++
	return fmt.Errorf("pool %s: scrub host %s: %w", m.cfg.Name, h.id, err)
}

// cachedScrubTargets returns the cached scrub image and subnet of zone
// that are still fresh (nil for either when it is missing or expired):
// one cacheMu round trip for the usual case of both cached.
func (m *Manager) cachedScrubTargets(zone string, now time.Time) (image, subnet *string) {
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	if c := m.image; c.value != "" && now.Before(c.expires) {
		image = c.ptr
	}
	if c, ok := m.subnets[zone]; ok && now.Before(c.expires) {
		subnet = c.ptr
	}
	return image, subnet
}

// scrubImage is a recent Amazon public image of the host architecture (cached).
func (m *Manager) scrubImage(ctx context.Context, arch string, now time.Time) (*string, error) {
	m.cacheMu.Lock()
	c := m.image
	m.cacheMu.Unlock()
	if c.value != "" && now.Before(c.expires) {
		return c.ptr, nil
	}
	if arch == "" {
		return nil, fmt.Errorf("architecture of %s unknown", m.cfg.Type)
	}
	in := &ec2.DescribeImagesInput{
		Owners: []string{"amazon"},
		Filters: []types.Filter{
			{Name: aws.String("architecture"), Values: []string{arch}},
			{Name: aws.String("state"), Values: []string{"available"}},
		},
	}
	best, bestDate := "", ""
	for {
		out, err := m.api.DescribeImages(ctx, in)
		m.recordCall(callDescribeImages, err)
		if err != nil {
			return nil, fmt.Errorf("find an Amazon %s image: %w", arch, err)
		}
		for _, img := range out.Images {
			d := aws.ToString(img.CreationDate)
			if best == "" || d > bestDate || (d == bestDate && aws.ToString(img.ImageId) > best) {
				best, bestDate = aws.ToString(img.ImageId), d
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	if best == "" {
		return nil, fmt.Errorf("no available Amazon public image with architecture %s", arch)
	}
	m.cacheMu.Lock()
	m.image = newCached(best, now.Add(imageTTL))
	m.cacheMu.Unlock()
	return m.image.ptr, nil
}

// scrubSubnet is the default VPC's subnet in zone, or else the subnet of zone
// with the most free addresses (cached).
// The fixed parts of scrubSubnet's requests (read-only: neither the SDK
// nor the world writes a request).
var (
	defaultVPCIn = &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}}
	filterZone   = aws.String("availability-zone")
	filterVPC    = aws.String("vpc-id")
)

func (m *Manager) scrubSubnet(ctx context.Context, zone string, now time.Time) (*string, error) {
	m.cacheMu.Lock()
	c, ok := m.subnets[zone]
	m.cacheMu.Unlock()
	if ok && now.Before(c.expires) {
		return c.ptr, nil
	}
	vpcs, err := m.api.DescribeVpcs(ctx, defaultVPCIn)
	m.recordCall(callDescribeVpcs, err)
	if err != nil {
		return nil, fmt.Errorf("find the default VPC: %w", err)
	}
	// the request is reused (recMu): only its values are new
	sc := &m.recScratch
	sc.subnetVals = [2][1]string{{zone}}
	sc.subnetFilters = [2]types.Filter{{Name: filterZone, Values: sc.subnetVals[0][:]}}
	filters := sc.subnetFilters[:1]
	if len(vpcs.Vpcs) > 0 {
		sc.subnetVals[1][0] = aws.ToString(vpcs.Vpcs[0].VpcId)
		sc.subnetFilters[1] = types.Filter{Name: filterVPC, Values: sc.subnetVals[1][:]}
		filters = sc.subnetFilters[:2]
	}
	pick := ""
	var pickFree int32 = -1
	pickDefault := false
	in := &sc.subnetIn
	*in = ec2.DescribeSubnetsInput{Filters: filters}
	defer func() { // (keeps no strings alive)
		*in = ec2.DescribeSubnetsInput{}
		sc.subnetFilters, sc.subnetVals = [2]types.Filter{}, [2][1]string{}
	}()
	for {
		out, err := m.api.DescribeSubnets(ctx, in)
		m.recordCall(callDescribeSubnets, err)
		if err != nil {
			return nil, fmt.Errorf("find a subnet in %s: %w", zone, err)
		}
		for _, sn := range out.Subnets {
			def := aws.ToBool(sn.DefaultForAz)
			free := aws.ToInt32(sn.AvailableIpAddressCount)
			id := aws.ToString(sn.SubnetId)
			if free == 0 {
				continue
			}
			better := pick == "" || (def && !pickDefault) || (def == pickDefault && (free > pickFree || (free == pickFree && id < pick)))
			if better {
				pick, pickFree, pickDefault = id, free, def
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	if pick == "" {
		return nil, fmt.Errorf("no subnet with free addresses in zone %s (no default VPC subnet either)", zone)
	}
	c = newCached(pick, now.Add(subnetTTL))
	m.cacheMu.Lock()
	m.subnets[zone] = c
	m.cacheMu.Unlock()
	return c.ptr, nil
}

// refresh reads every host tagged for the pool and merges it into the view.
// Caller holds recMu (Start, Reconcile).
func (m *Manager) refresh(ctx context.Context) error {
	m.mu.Lock()
	startSeq := m.seq
	now := m.clk.Now()
	m.described(now, true)
	m.wantRefresh = false
	m.clearPolls()
	m.mu.Unlock()
	// the request (fixed filters) and the answer slice are reused: both
	// are refresh's alone (recMu)
	in := &m.refreshIn
	all := m.refreshHosts[:0]
	defer func() {
		in.NextToken = nil
		m.refreshHosts = ec2ops.Reset(all) // (no strings of the answer kept alive)
	}()
	for {
		var next *string
		var err error
		all, next, err = m.ops.DescribeHostStates(ctx, in, all)
		m.recordCall(callDescribeHosts, err)
		if err != nil {
			m.mu.Lock()
			m.wantRefresh = true
			m.mu.Unlock()
			return err
		}
		if aws.ToString(next) == "" {
			break
		}
		in.NextToken = next
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now = m.clk.Now()
	m.stats.Refreshes++
	before := m.surprises
	defer func() {
		if m.surprises == before {
			m.fullEvery = min(2*m.fullEvery, maxFullRefreshEvery)
		} else {
			m.fullEvery = fullRefreshEvery
		}
		m.fullDue = m.lastFull.Add(m.fullEvery)
	}()
	// the hosts of the view the answer lists are stamped with this
	// refresh's generation (no set of ids to build, look up and clear)
	m.refreshGen++
	gen := m.refreshGen
	for i := range all {
		if h := m.mergeHost(&all[i], now, startSeq); h != nil {
			h.listedGen = gen
		}
	}
	for id, h := range m.hosts {
		if h.listedGen != gen && h.seq <= startSeq && !h.busyWithAction() {
			m.log.Warn("pool host vanished (released outside the pool?)", "host", id)
			m.untrack(h)
			m.surprises++
		}
	}
	for id, seq := range m.gone {
		if seq < startSeq {
			delete(m.gone, id)
		}
	}
	m.noteMaxHosts()
	return nil
}

// mergePoll merges the answer of a DescribeHosts of pending hosts by id
// (made by Reconcile) into the view. known is the polled host when the
// poll named one (else nil). Caller holds m.mu.
func (m *Manager) mergePoll(hosts []ec2ops.Host, err error, known *host, startSeq uint64, now time.Time) error {
	m.countCall(callDescribeHosts, err)
	if err != nil {
		m.wantRefresh = true // e.g. a host vanished: the full refresh sorts it out
		return err
	}
	m.stats.Polls++
	for i := range hosts {
		th := &hosts[i]
		// A still tracked polled host needs no lookup by id (two string
		// hashes per poll): tracked means m.hosts[id] == known, and a
		// tracked id is never in m.gone (an id enters m.gone only once
		// it left m.hosts, and neither adoption path re-adds an id of
		// m.gone), so mergeHost would find known and go on exactly as
		// mergeTracked does (a released answer takes the general path).
		if known != nil && known.tracked && th.ID == known.id && !isReleasedState(th.State) {
			m.mergeTracked(known, th, now, startSeq)
			continue
		}
		m.mergeHost(th, now, startSeq)
	}
	return nil
}

// mergeHost applies one host of a refresh. Hosts we changed after the
// refresh began keep our (newer) view. It returns the host of the view
// with th's id after the merge (nil when there is none). Caller holds m.mu.
func (m *Manager) mergeHost(th *ec2ops.Host, now time.Time, startSeq uint64) *host {
	id := th.ID
	if _, released := m.gone[id]; released {
		return m.hosts[id] // (nil: a released id has left the view)
	}
	h := m.hosts[id]
	if isReleasedState(th.State) {
		if h != nil && h.seq <= startSeq && !h.busyWithAction() {
			m.untrack(h)
			m.surprises++
			return nil
		}
		return h
	}
	if h == nil {
		if m.allocating > 0 {
			return nil // may be the host being allocated right now: adopt it next time
		}
		if th.InstanceType != "" && th.InstanceType != m.cfg.Type {
			m.log.Warn("pool-tagged host has another instance type; ignored", "host", id, "type", th.InstanceType)
			return nil
		}
		h = newHost(id, th.Zone, m.slotsPer)
		h.allocatedAt = now
		m.setPending(h, now, m.mac)          // so that applyAWS treats "available" as a transition
		h.expectAvail = now.Add(pendingPoll) // we do not know when it went pending
		h.pendingKnown = false
		m.hosts[id] = h
		h.tracked = true
		_ = m.applyAWS(h, th, now, true) // (touched below anyway)
		if m.started {
			m.surprises++
		}
		m.log.Info("adopted dedicated host", "host", id, "zone", h.zone, "state", h.state.String(), "instances", len(h.used))
		m.touch(h, now)
		return h
	}
	m.mergeTracked(h, th, now, startSeq)
	return h
}

// mergeTracked is mergeHost for a host of the view that AWS still lists
// (m.hosts[id] == h, id not in m.gone, th not in a released state).
func (m *Manager) mergeTracked(h *host, th *ec2ops.Host, now time.Time, startSeq uint64) {
	if h.seq > startSeq || h.busyWithAction() {
		return
	}
	if !m.applyAWS(h, th, now, false) && h.zv != nil && (h.waitIdx < 0 || h.placeableAt().After(now)) {
		// nothing the indexes depend on changed (most polls of a pending
		// host, most hosts of a full refresh): touch would recompute the
		// same indexes. Its only input besides the host's fields is now,
		// and only for a host waiting to become placeable (a host in the
		// free heap stays ready, time does not go back), so unless that
		// time has come only the change sequence moves, as touch moves it.
		m.seq++
		h.seq = m.seq
		return
	}
	m.touch(h, now)
}

// applyAWS updates a host from its DescribeHosts record and reports
// whether anything the indexes depend on changed (then the caller must
// touch the host). Caller holds m.mu.
func (m *Manager) applyAWS(h *host, th *ec2ops.Host, now time.Time, adopt bool) (changed bool) {
	if t := th.AllocatedAt; !t.IsZero() { // (zero: AWS did not say)
		changed = changed || !h.allocatedAt.Equal(t)
		h.allocatedAt = t
	}
	if h.zone == "" {
		h.zone = th.Zone
		changed = true
	}
	for _, c := range th.Capacity { // (the last entry of the type wins)
		if c.InstanceType == m.cfg.Type && c.Total > 0 {
			n := int(c.Total)
			changed = changed || h.slots != n
			h.slots = n
			m.slotsPer = h.slots
		}
	}
	// instances
	var onHostMap map[string]bool // only for hosts with many instances
	if len(th.Instances) > 8 {
		onHostMap = make(map[string]bool, len(th.Instances))
		for _, iid := range th.Instances {
			onHostMap[iid] = true
		}
	}
	onHost := func(id string) bool {
		if onHostMap != nil {
			return onHostMap[id]
		}
		return slices.Contains(th.Instances, id)
	}
	removed := false
	for i := 0; i < len(h.used); {
		s := h.used[i]
		if s.instanceID != "" && !onHost(s.instanceID) && s.kind != slotReserved && s.kind != slotPromised {
			h.removeSlot(s)
			m.forgetSlot(s)
			removed = true
			m.surprises++
			continue
		}
		i++
	}
	for _, iid := range th.Instances {
		if iid == "" {
			continue
		}
		if prev := m.byInstance[iid]; prev != nil {
			if prev.host == h {
				continue
			}
			prev.host.removeSlot(prev)
			m.forgetSlot(prev)
			m.touch(prev.host, now)
		}
		s := &slot{kind: slotAdopted, instanceID: iid, since: now, host: h}
		h.used = append(h.used, s)
		m.byInstance[iid] = s
		changed = true
		if !adopt {
			m.surprises++
		}
	}
	// state
	switch th.State {
	case types.AllocationStateAvailable:
		if h.state != hostAvailable || h.permanent {
			changed = true
			if h.state == hostPending && h.pendingKnown && !adopt {
				m.learn(h, now)
			}
			h.state = hostAvailable
			h.permanent = false
			h.usableAt = now.Add(m.cfg.PendingToAvailableDelay.D())
			h.idleSince = h.usableAt
		}
	case types.AllocationStatePermanentFailure:
		if !h.permanent {
			m.surprises++
		}
		changed = changed || h.state != hostFailed || !h.permanent
		h.state = hostFailed
		h.permanent = true
	case types.AllocationStateUnderAssessment:
		if h.state != hostFailed {
			m.surprises++
			changed = true
		}
		h.state = hostFailed
	default: // pending, configuring, unknown: not usable yet
		if h.state != hostPending {
			m.setPending(h, now, m.mac)
			h.pendingKnown = false // it went pending some time before this refresh
			m.surprises++
			changed = true
		}
	}
	if removed {
		m.becameEmpty(h, now)
		changed = true
	}
	return changed
}

// learn updates the expected pending duration from an observed transition.
func (m *Manager) learn(h *host, now time.Time) {
	obs := now.Sub(h.pendingSince)
	if obs <= 0 {
		return
	}
	if h.scrubbed {
		if !m.scrubLearned || obs < m.scrubEst {
			m.scrubEst, m.scrubLearned = obs, true
		}
		return
	}
	if !m.allocLearned || obs < m.allocEst {
		m.allocEst, m.allocLearned = obs, true
	}
}

// Run reconciles in a loop on real timers until ctx ends, woken early by
// Place, Unreserve and InstanceGone. Production only: tests and the
// simulator call Reconcile themselves.
func (m *Manager) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next, err := m.Reconcile(ctx)
		if err != nil && ctx.Err() == nil {
			m.log.Warn("dedicated pool reconcile", "err", err)
		}
		if m.afterRunPass != nil {
			m.afterRunPass()
		}
		wait := time.Minute
		if !next.IsZero() {
			wait = next.Sub(m.clk.Now())
			if f, ok := m.clk.(interface{ Factor() float64 }); ok && f.Factor() > 0 {
				wait = time.Duration(float64(wait) / f.Factor())
			}
		}
		wait = min(max(wait, 100*time.Millisecond), time.Minute)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.wake:
		}
	}
}

// clientToken derives an idempotency token (≤ 64 ASCII chars) from a key and
// an attempt number.
func clientToken(kind, key string, attempt int) string {
	var buf [96]byte
	return string(appendClientToken(buf[:0], kind, key, attempt))
}

// appendClientToken appends clientToken(kind, key, attempt) to b.
func appendClientToken(b []byte, kind, key string, attempt int) []byte {
	var num [20]byte
	n := strconv.AppendInt(num[:0], int64(attempt), 10)
	if len(key)+len(kind)+len(n)+2 <= 64 {
		b = append(b, key...)
	} else {
		sum := sha256.Sum256([]byte(key))
		b = hex.AppendEncode(b, sum[:20])
	}
	b = append(b, '-')
	b = append(b, kind...)
	b = append(b, '-')
	return append(b, n...)
}

// arenaToken is clientToken(kind, key, attempt) carved from a (a year of
// simulation makes ~400 k tokens, one per scrub: see strarena).
func arenaToken(a *strarena.Arena, kind, key string, attempt int) string {
	var buf [96]byte
	return a.String(appendClientToken(buf[:0], kind, key, attempt))
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isHostCapacityErr(err error) bool {
	switch errorCode(err) {
	case "InsufficientHostCapacity", "HostLimitExceeded":
		return true
	}
	return false
}

func isReleasedState(s types.AllocationState) bool {
	return s == types.AllocationStateReleased || s == types.AllocationStateReleasedPermanentFailure
}
