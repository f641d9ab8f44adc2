package sim

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Formats accepted by Write.
const (
	FormatText = "text"
	FormatJSON = "json"
	FormatCSV  = "csv"
)

// Write renders a result as text (the seed's table plus totals), json or csv.
func Write(w io.Writer, r *Result, format string) error {
	switch format {
	case "", FormatText:
		return writeText(w, r)
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatCSV:
		return writeCSV(w, r)
	default:
		return fmt.Errorf("format: unknown %q (want text, json or csv)", format)
	}
}

func writeText(w io.Writer, r *Result) error {
	var b strings.Builder
	fmt.Fprintln(&b, "Simulator statistics:")
	fmt.Fprintf(&b, "Max: Instances: %d Hosts: %d Queue: %d wait (minutes): %.2f\n\n",
		r.MaxInstances, r.MaxHosts, r.MaxQueue, r.MaxWaitMinutes)
	b.WriteString(strings.Repeat(" ", 22))
	for _, m := range r.Months {
		fmt.Fprintf(&b, "%11s", m.Label)
	}
	b.WriteByte('\n')
	row := func(label string, v func(Month) float64) {
		b.WriteString(label)
		for _, m := range r.Months {
			fmt.Fprintf(&b, "%11.2f", v(m))
		}
		b.WriteByte('\n')
	}
	row("Instances       h/mon:", func(m Month) float64 { return m.InstanceHours })
	row("Hosts           h/mon:", func(m Month) float64 { return m.HostHours })
	row("Queue           h/mon:", func(m Month) float64 { return m.QueueHours })
	row("Queue Mean wait s/mon:", func(m Month) float64 { return m.MeanWaitSeconds })
	b.WriteByte('\n')

	p := r.Params
	fmt.Fprintf(&b, "Period:          %s .. %s\n", r.Start.Format("2006-01-02 15:04"), r.End.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Pool:            %s max %d zones %s, scrubbing delay %s, release delay %s, pending->available %s\n",
		p.InstanceType, p.MaxHosts, strings.Join(p.Zones, ","), p.ScrubbingDelay, p.ReleaseDelay, p.PendingToAvailableDelay)
	fmt.Fprintf(&b, "World:           scrubbing %s, boot %s, available lag %s, zone host capacity %s, failure rate %g\n",
		p.ScrubbingDuration, p.BootTime, p.AvailableLag, capString(p.HostCapacity), p.FailureRate)
	fmt.Fprintf(&b, "Jobs:            read %d = served %d + unserved %d\n", r.JobsRead, r.JobsServed, r.JobsUnserved)
	for _, k := range sortedKeys(r.Unserved) {
		fmt.Fprintf(&b, "  unserved:      %d %s\n", r.Unserved[k], k)
	}
	fmt.Fprintf(&b, "Wait:            p50 %.1f s, p95 %.1f s, max %.1f s, mean %.2f s\n", r.WaitP50, r.WaitP95, r.WaitMax, r.WaitMean)
	fmt.Fprintf(&b, "Instance-hours:  %.2f (sum of executionTime of served jobs)\n", r.InstanceHours)
	fmt.Fprintf(&b, "Host-hours:      billed %.2f = busy %.2f + initializing %.2f + idle %.2f (pending excluded)\n",
		r.BilledHostHours, r.BusyHostHours, r.InitHostHours, r.IdleHostHours)
	fmt.Fprintf(&b, "Queue-hours:     %.2f\n", r.QueueHours)
	fmt.Fprintf(&b, "Cost:            $%.2f (%.2f host-hours x $%.3f/host-hour)\n", r.Cost, r.BilledHostHours, r.PricePerHostHour)
	fmt.Fprintf(&b, "Hosts at end:    %d\n", r.HostsAtEnd)
	if len(r.Pool) > 0 {
		b.WriteString("Pool counters:  ")
		for _, k := range sortedKeys(r.Pool) {
			fmt.Fprintf(&b, " %s=%d", k, r.Pool[k])
		}
		b.WriteByte('\n')
	}
	b.WriteString("API calls:      ")
	var total int64
	for _, k := range sortedKeys(r.APICalls) {
		c := r.APICalls[k]
		total += c.Calls
		if c.Errors > 0 {
			fmt.Fprintf(&b, " %s=%d (%d errors)", k, c.Calls, c.Errors)
		} else {
			fmt.Fprintf(&b, " %s=%d", k, c.Calls)
		}
	}
	fmt.Fprintf(&b, " total=%d\n", total)
	l := r.Loop
	if l.AllocationErrors+l.ReconcileErrors+l.DeallocateErrors+l.CapacityErrors+l.LeakedInstances > 0 {
		fmt.Fprintf(&b, "Errors:          allocation %d, reconcile %d, deallocate %d, capacity %d, leaked instances %d\n",
			l.AllocationErrors, l.ReconcileErrors, l.DeallocateErrors, l.CapacityErrors, l.LeakedInstances)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func capString(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

// writeCSV writes one row per month plus a TOTAL row.
func writeCSV(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"month", "instance_hours", "initializing_hours", "host_hours", "queue_hours", "mean_wait_seconds", "arrivals", "cost"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	for _, m := range r.Months {
		_ = cw.Write([]string{m.Start.Format("2006-01"), f(m.InstanceHours), f(m.InitHours), f(m.HostHours), f(m.QueueHours), f(m.MeanWaitSeconds), strconv.FormatInt(m.Arrivals, 10), f(m.Cost)})
	}
	_ = cw.Write([]string{"TOTAL", f(r.InstanceHours), f(r.InitHostHours), f(r.BilledHostHours), f(r.QueueHours), f(r.WaitMean), strconv.FormatInt(r.JobsRead, 10), f(r.Cost)})
	cw.Flush()
	return cw.Error()
}
