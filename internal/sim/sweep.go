package sim

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// SweepKeys are the parameter names accepted by SetParam and --sweep.
var SweepKeys = []string{
	"instance-type", "max-hosts", "zones", "scrubbing-delay", "release-delay",
	"pending-to-available-delay", "scrubbing-duration", "boot-time", "available-lag",
	"host-capacity", "failure-rate", "price",
}

// SetParam sets one parameter by its flag name. Zones are separated by '+'
// (e.g. us-west-2a+us-west-2b) so that commas can separate sweep values.
func SetParam(p *Params, key, value string) error {
	dur := func() (time.Duration, error) {
		d, err := core.ParseDuration(value)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", key, err)
		}
		if d < 0 {
			return 0, fmt.Errorf("%s: must not be negative, got %s", key, value)
		}
		return d, nil
	}
	integer := func() (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s: want a non-negative integer, got %q", key, value)
		}
		return n, nil
	}
	float := func() (float64, error) {
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("%s: want a non-negative number, got %q", key, value)
		}
		return f, nil
	}
	var err error
	switch key {
	case "instance-type":
		if value == "" {
			return fmt.Errorf("%s: empty", key)
		}
		p.InstanceType = value
	case "max-hosts":
		p.MaxHosts, err = integer()
		if err == nil && p.MaxHosts == 0 {
			err = fmt.Errorf("%s: must be > 0", key)
		}
	case "zones":
		p.Zones = nil
		for z := range strings.SplitSeq(value, "+") {
			if z = strings.TrimSpace(z); z != "" {
				p.Zones = append(p.Zones, z)
			}
		}
		if len(p.Zones) == 0 {
			err = fmt.Errorf("%s: empty", key)
		}
	case "scrubbing-delay":
		var d time.Duration
		d, err = dur()
		p.ScrubbingDelay = &d
	case "release-delay":
		var d time.Duration
		d, err = dur()
		p.ReleaseDelay = &d
	case "pending-to-available-delay":
		p.PendingToAvailableDelay, err = dur()
	case "scrubbing-duration":
		p.ScrubbingDuration, err = dur()
	case "boot-time":
		p.BootTime, err = dur()
	case "available-lag":
		p.AvailableLag, err = dur()
	case "host-capacity":
		p.HostCapacity, err = integer()
	case "failure-rate":
		p.FailureRate, err = float()
		if err == nil && p.FailureRate >= 1 {
			err = fmt.Errorf("%s: must be below 1, got %q", key, value)
		}
	case "price":
		p.PricePerHour, err = float()
	default:
		return fmt.Errorf("unknown parameter %q (known: %s)", key, strings.Join(SweepKeys, ", "))
	}
	return err
}

// SweepAxis is one --sweep key=v1,v2,... dimension.
type SweepAxis struct {
	Key    string
	Values []string
}

// ParseSweep parses "key=v1,v2,...".
func ParseSweep(s string) (SweepAxis, error) {
	key, vals, ok := strings.Cut(s, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" || strings.TrimSpace(vals) == "" {
		return SweepAxis{}, fmt.Errorf("sweep %q: want key=v1,v2 with comma-separated values", s)
	}
	ax := SweepAxis{Key: key}
	for v := range strings.SplitSeq(vals, ",") {
		ax.Values = append(ax.Values, strings.TrimSpace(v))
	}
	var p Params
	for _, v := range ax.Values {
		if err := SetParam(&p, key, v); err != nil {
			return SweepAxis{}, fmt.Errorf("sweep: %w", err)
		}
	}
	return ax, nil
}

// SweepRow is the comparison row of one run of the grid.
type SweepRow struct {
	Values   map[string]string `json:"values"`
	Result   *Result           `json:"-"`
	Err      string            `json:"error,omitempty"`
	Summary  SweepSummary      `json:"summary"`
	axisKeys []string
}

// SweepSummary is what the comparison table shows per run.
type SweepSummary struct {
	BilledHostHours float64 `json:"billed_host_hours"`
	Cost            float64 `json:"cost"`
	MaxHosts        int     `json:"max_hosts"`
	MaxQueue        int     `json:"max_queue"`
	JobsServed      int64   `json:"jobs_served"`
	JobsUnserved    int64   `json:"jobs_unserved"`
	WaitP50         float64 `json:"wait_p50_seconds"`
	WaitP95         float64 `json:"wait_p95_seconds"`
	WaitMax         float64 `json:"wait_max_seconds"`
	IdleHostHours   float64 `json:"idle_host_hours"`
	Scrubs          int64   `json:"scrubs"`
	Seconds         float64 `json:"wall_seconds"`
}

// Sweep runs every combination of the axes on top of base, in parallel
// (GOMAXPROCS runs at a time). open returns a fresh reader of the workload
// for each run. Rows come back in grid order.
func Sweep(ctx context.Context, open func() (io.ReadCloser, error), base Params, axes []SweepAxis) ([]SweepRow, error) {
	grid := []map[string]string{{}}
	for _, ax := range axes {
		var next []map[string]string
		for _, g := range grid {
			for _, v := range ax.Values {
				m := make(map[string]string, len(g)+1)
				for k, x := range g {
					m[k] = x
				}
				m[ax.Key] = v
				next = append(next, m)
			}
		}
		grid = next
	}
	keys := make([]string, len(axes))
	for i, ax := range axes {
		keys[i] = ax.Key
	}
	rows := make([]SweepRow, len(grid))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, vals := range grid {
		rows[i] = SweepRow{Values: vals, axisKeys: keys}
		p := base
		p.Progress = nil
		p.Zones = append([]string(nil), base.Zones...)
		for _, ax := range axes {
			if err := SetParam(&p, ax.Key, vals[ax.Key]); err != nil {
				return nil, err
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rows[i].run(ctx, open, p)
		}()
	}
	wg.Wait()
	return rows, nil
}

func (row *SweepRow) run(ctx context.Context, open func() (io.ReadCloser, error), p Params) {
	rc, err := open()
	if err != nil {
		row.Err = err.Error()
		return
	}
	defer rc.Close()
	r, err := Run(ctx, rc, p)
	if err != nil {
		row.Err = err.Error()
		return
	}
	row.Result = r
	row.Summary = SweepSummary{
		BilledHostHours: r.BilledHostHours, Cost: r.Cost, MaxHosts: r.MaxHosts, MaxQueue: r.MaxQueue,
		JobsServed: r.JobsServed, JobsUnserved: r.JobsUnserved,
		WaitP50: r.WaitP50, WaitP95: r.WaitP95, WaitMax: r.WaitMax,
		IdleHostHours: r.IdleHostHours, Scrubs: r.Pool["scrubs"], Seconds: r.Elapsed.Seconds(),
	}
}

// WriteSweep renders the comparison rows as text, json or csv.
func WriteSweep(w io.Writer, rows []SweepRow, format string) error {
	if len(rows) == 0 {
		return nil
	}
	keys := rows[0].axisKeys
	head := append(append([]string(nil), keys...), "host_hours", "cost", "max_hosts", "max_queue", "served", "unserved", "wait_p50_s", "wait_p95_s", "wait_max_s", "idle_host_hours", "scrubs", "wall_s", "error")
	cells := func(r SweepRow) []string {
		out := make([]string, 0, len(head))
		for _, k := range keys {
			out = append(out, r.Values[k])
		}
		s := r.Summary
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
		return append(out, f(s.BilledHostHours), f(s.Cost), strconv.Itoa(s.MaxHosts), strconv.Itoa(s.MaxQueue),
			strconv.FormatInt(s.JobsServed, 10), strconv.FormatInt(s.JobsUnserved, 10),
			f(s.WaitP50), f(s.WaitP95), f(s.WaitMax), f(s.IdleHostHours), strconv.FormatInt(s.Scrubs, 10), f(s.Seconds), r.Err)
	}
	switch format {
	case "", FormatText:
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(cells(r), "\t")+"\t")
		}
		return tw.Flush()
	case FormatCSV:
		cw := csv.NewWriter(w)
		_ = cw.Write(head)
		for _, r := range rows {
			_ = cw.Write(cells(r))
		}
		cw.Flush()
		return cw.Error()
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	default:
		return fmt.Errorf("format: unknown %q (want text, json or csv)", format)
	}
}
