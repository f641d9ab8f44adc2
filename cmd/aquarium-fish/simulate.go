package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aquarium-fish/aquarium-fish/internal/sim"
)

func init() {
	rootCmd.AddCommand(newSimulateCmd())
}

// tuneGC trades memory for speed in the simulate command: the simulator's
// live heap is small and bounded (jobs in flight, the world's folded ledger),
// so a rarer GC saves ~20 % of CPU; a 1 GiB soft limit keeps large sweeps in
// check. GOGC / GOMEMLIMIT in the environment win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}

func newSimulateCmd() *cobra.Command {
	var (
		format, report, configPath, labelPath, poolName, until, progress string
		cpuProfile                                                       string
		sweeps                                                           []string
		zones                                                            string
	)
	vals := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "simulate WORKLOAD.csv",
		Short: "Replay a CI workload through the AWS driver and pool manager on a virtual clock",
		Long: `Replays a workload CSV (header startTime,endTime,executionTime,jobName,stageName;
epoch seconds; sorted by startTime) through the production AWS driver and its
dedicated-host pool manager against the in-memory AWS world on a virtual clock,
and prints host-hours, cost and queue wait per month (UTC).

Pool parameters come from the flags or from a node config (--config, its
aws dedicated_pool) and a label (--label, its first aws definition); flags
given explicitly win over the files. Durations accept Go syntax plus d, w, M, y.`,
		Example: `  aquarium-fish simulate year-2025-mac.csv
  aquarium-fish simulate week.csv --max-hosts 100 --scrubbing-delay 10m --report report.html
  aquarium-fish simulate year.csv --sweep scrubbing-delay=0,5m,30m --sweep max-hosts=200,500`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tuneGC()
			if cpuProfile != "" {
				stopProfile, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stopProfile()
			}
			var p sim.Params
			if configPath != "" {
				if err := sim.LoadNodeConfig(configPath, poolName, &p); err != nil {
					return err
				}
			}
			if labelPath != "" {
				if err := sim.LoadLabel(labelPath, &p); err != nil {
					return err
				}
			}
			if poolName != "" {
				p.PoolName = poolName
			}
			// Explicit flags override the files.
			for _, k := range sim.SweepKeys {
				if k == "zones" {
					continue
				}
				if cmd.Flags().Changed(k) {
					if err := sim.SetParam(&p, k, *vals[k]); err != nil {
						return err
					}
				}
			}
			if cmd.Flags().Changed("zones") {
				if err := sim.SetParam(&p, "zones", strings.ReplaceAll(zones, ",", "+")); err != nil {
					return err
				}
			}
			if until != "" {
				t, err := time.Parse(time.RFC3339, until)
				if err != nil {
					return fmt.Errorf("until: want RFC 3339 time like 2025-07-01T00:00:00Z: %w", err)
				}
				p.Until = t
			}
			switch format {
			case sim.FormatText, sim.FormatJSON, sim.FormatCSV:
			default:
				return fmt.Errorf("format: unknown %q (want text, json or csv)", format)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			path := args[0]
			if len(sweeps) > 0 {
				return runSweep(ctx, cmd, path, p, sweeps, format, report)
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			if st, err := f.Stat(); err == nil && st.Size() > 0 {
				p.Progress = newProgressBar(cmd.ErrOrStderr(), st.Size(), progress)
			}
			r, err := sim.Run(ctx, f, p)
			if p.Progress != nil {
				p.Progress(-1)
			}
			if err != nil {
				return fmt.Errorf("simulate %s: %w", path, err)
			}
			if err := sim.Write(cmd.OutOrStdout(), r, format); err != nil {
				return err
			}
			if report != "" {
				if err := writeReport(report, r); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "report written to %s\n", report)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	str := func(name, def, usage string) {
		v := new(string)
		vals[name] = v
		fl.StringVar(v, name, def, usage)
	}
	str("instance-type", sim.DefaultInstanceType, "dedicated host / instance type")
	str("max-hosts", fmt.Sprint(sim.DefaultMaxHosts), "pool max hosts")
	fl.StringVar(&zones, "zones", sim.DefaultZone, "pool zones, comma separated")
	str("scrubbing-delay", sim.DefaultScrubbingDelay.String(), "idle time before an idle young mac host is scrubbed (0 disables)")
	str("release-delay", "24h", "idle host age before release (default 24h for mac types)")
	str("pending-to-available-delay", "0s", "wait after a host becomes available before placing on it")
	str("scrubbing-duration", sim.DefaultScrubbingDuration.String(), "world: how long a mac host stays pending after its instance ends")
	str("boot-time", sim.DefaultBootTime.String(), "world: instance initialization (boot) time")
	str("available-lag", "0s", "world: host reports available this long before it accepts an instance")
	str("host-capacity", "0", "world: AWS host capacity per zone (0 = unlimited)")
	str("failure-rate", "0", "world: probability that AllocateHosts/RunInstances fails (0..1)")
	str("price", "0", "price per host-hour in USD (0 = known on-demand price of the type)")
	fl.StringVar(&configPath, "config", "", "node config (YAML) whose aws dedicated_pool gives the pool parameters")
	fl.StringVar(&labelPath, "label", "", "label (YAML) whose first aws definition is used for every job")
	fl.StringVar(&poolName, "pool", "", "pool name in --config (when it has several)")
	fl.StringVar(&format, "format", sim.FormatText, "output format: text, json or csv")
	fl.StringVar(&report, "report", "", "write a self-contained HTML report (charts) to this file")
	fl.StringArrayVar(&sweeps, "sweep", nil, "run a grid: key=v1,v2,... (repeatable; keys: "+strings.Join(sim.SweepKeys, ", ")+"; zones joined with +)")
	fl.StringVar(&until, "until", "", "stop at this time (RFC 3339); jobs queued or arriving later are reported unserved")
	fl.StringVar(&progress, "progress", "auto", "progress bar on stderr: auto (terminal, runs > 2s), always, never")
	fl.StringVar(&cpuProfile, "cpuprofile", "", "write a Go CPU profile of the run to this file (for performance work)")
	_ = fl.MarkHidden("cpuprofile")
	return cmd
}

// startCPUProfile starts a CPU profile written to path; the returned func
// stops it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func writeReport(path string, r *sim.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := sim.WriteHTML(f, r); err != nil {
		f.Close()
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return nil
}

func runSweep(ctx context.Context, cmd *cobra.Command, path string, base sim.Params, sweeps []string, format, report string) error {
	var axes []sim.SweepAxis
	for _, s := range sweeps {
		ax, err := sim.ParseSweep(s)
		if err != nil {
			return err
		}
		axes = append(axes, ax)
	}
	open := func() (io.ReadCloser, error) { return os.Open(path) }
	rows, err := sim.Sweep(ctx, open, base, axes)
	if err != nil {
		return err
	}
	if err := sim.WriteSweep(cmd.OutOrStdout(), rows, format); err != nil {
		return err
	}
	if report != "" {
		// One report per run: report.html -> report-1.html, report-2.html, ...
		stem := strings.TrimSuffix(report, ".html")
		for i, r := range rows {
			if r.Result == nil {
				continue
			}
			name := fmt.Sprintf("%s-%d.html", stem, i+1)
			if err := writeReport(name, r.Result); err != nil {
				return err
			}
		}
	}
	var failed []string
	for _, r := range rows {
		if r.Err != "" {
			failed = append(failed, r.Err)
		}
	}
	if len(failed) > 0 {
		return errors.New("sweep: " + strings.Join(failed, "; "))
	}
	return nil
}

// newProgressBar returns a progress callback drawing a bar on w once the
// run has taken more than two seconds (mode auto: only on a terminal).
// It is called with the bytes consumed, and with -1 at the end.
func newProgressBar(w io.Writer, total int64, mode string) func(int64) {
	if mode == "never" {
		return nil
	}
	if mode != "always" {
		f, ok := w.(*os.File)
		if !ok {
			return nil
		}
		st, err := f.Stat()
		if err != nil || st.Mode()&os.ModeCharDevice == 0 {
			return nil
		}
	}
	start := time.Now() // wall clock: display only
	drawn := false
	return func(done int64) {
		if done < 0 {
			if drawn {
				fmt.Fprintf(w, "\r%s\r", strings.Repeat(" ", 60))
			}
			return
		}
		el := time.Since(start)
		if el < 2*time.Second {
			return
		}
		drawn = true
		frac := min(float64(done)/float64(total), 1)
		n := int(frac * 30)
		fmt.Fprintf(w, "\r[%s%s] %3.0f%% %5.1fs", strings.Repeat("=", n), strings.Repeat(" ", 30-n), frac*100, el.Seconds())
	}
}
