// Package pool manages a dedicated-host pool of the AWS driver: it places
// instances on hosts it allocates, scrubs idle young Mac hosts (billing pauses
// while a host is pending), releases idle old hosts, and keeps its own view
// of the hosts current from its own actions plus a bounded DescribeHosts
// cadence. Decisions read time only from the injected clock.
//
// # Placement
//
// Place is serialized per pool for allocations (one AllocateHosts at a time)
// and answers from the in-memory view otherwise: it reserves a slot on a
// usable host of the requested zones, choosing the host whose release is
// furthest away (the youngest) so old hosts drain and get released. With no
// free slot it allocates one host (auto-placement off, quantity 1, pool tags,
// ClientToken = application uid + attempt) in the zones in order, skipping a
// zone for two minutes after InsufficientHostCapacity or HostLimitExceeded,
// and never above max. A host is usable once AWS reports it available plus
// pending_to_available_delay; a host allocated for a token that is not usable
// yet is promised to that token (Place answers driver.ErrCapacity and gives
// the same host when the engine retries; the promise lapses ten minutes after
// the host became usable). Slots per host: 1 for mac types, else the metal
// size vCPUs / type vCPUs, corrected from DescribeHosts capacity.
//
// # Idle hosts
//
// An idle (no instance, nothing reserved) available mac host younger than
// release_delay is scrubbed after scrubbing_delay: RunInstances of the host's
// type on the host (newest available Amazon image of the host architecture,
// cached a day; the default VPC's subnet of the zone, else the zone's subnet
// with most free addresses, cached an hour), then TerminateInstances at once,
// without waiting for the instance to run: AWS scrubs a mac host after any
// terminate, and terminating early keeps the host busy for the shortest time.
// An idle host (available or pending) older than release_delay is released;
// a permanent-failure host is released as soon as AWS allows. Mac hosts are
// never released before 24h + 1 minute (AWS refuses earlier; the minute
// absorbs clock skew), nor within a minute of their last instance leaving
// (a shutting-down instance still occupies the host). Refused releases are
// counted (Stats.RefusedReleases) and retried after five minutes.
//
// # View and refresh
//
// The view follows the pool's own actions (allocate, place, bind, scrub,
// release) and the driver's calls (Bind, Unreserve, InstanceGone). Pending
// hosts are polled by id when they are expected available (the scrub duration
// is learned from observed transitions), and every minute while they stay
// pending; a host that comes due less than a minute after the last
// DescribeHosts waits for the end of that minute and is polled together
// with the others (Reconcile does not wake up for it before). A full
// tag-filter DescribeHosts runs every 30 minutes, doubling to 4 hours while
// it finds nothing unexpected, and at once (at most one per minute) when the
// view cannot explain an error. All
// DescribeHosts calls together stay at or below 60 per hour. Start adopts the
// hosts tagged for the pool and the instances on them.
//
// # Driving it
//
// Reconcile does one pass and returns the next time it wants to run; Run is
// the production loop on real timers, woken early by Place, Unreserve and
// InstanceGone. A caller that drives Reconcile itself (simulator, tests) asks
// NextWake after calling those.
package pool
