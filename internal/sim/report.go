package sim

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// maxPoints bounds the points per chart line so the page stays small.
const maxPoints = 1500

// WriteHTML writes a self-contained HTML report (inline SVG charts, no
// network access needed): hosts by state over time, instances, queue length,
// monthly cost, and the statistics table.
func WriteHTML(w io.Writer, r *Result) error {
	var table bytes.Buffer
	if err := writeText(&table, r); err != nil {
		return err
	}
	pts := downsample(r.Samples, maxPoints)
	data := struct {
		Title                          string
		Table                          string
		Hosts, Instances, Queue, Costs template.HTML
		Generated                      string
	}{
		Title:     fmt.Sprintf("Aquarium Fish simulation: %s, max %d hosts", r.Params.InstanceType, r.Params.MaxHosts),
		Table:     table.String(),
		Hosts:     template.HTML(stackedChart(pts)),
		Instances: template.HTML(lineChart(pts, "Instances (booting or running a job)", "#2b6cb0", func(s Sample) float64 { return float64(s.Instances) })),
		Queue:     template.HTML(lineChart(pts, "Jobs waiting in the queue", "#c05621", func(s Sample) float64 { return float64(s.Queue) })),
		Costs:     template.HTML(costBars(r)),
		Generated: fmt.Sprintf("%s .. %s, %d samples", r.Start.Format(time.DateOnly), r.End.Format(time.DateOnly), len(r.Samples)),
	}
	return reportTmpl.Execute(w, data)
}

var reportTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1a202c;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
pre{background:#f7fafc;border:1px solid #e2e8f0;padding:12px;overflow-x:auto;font-size:12px}
svg{background:#fff;border:1px solid #e2e8f0}
.legend span{display:inline-block;margin-right:14px;font-size:13px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
</style></head><body>
<h1>{{.Title}}</h1>
<p>{{.Generated}}</p>
<h2>Hosts by state</h2>
<div class="legend"><span><i style="background:#2f855a"></i>busy</span><span><i style="background:#9ae6b4"></i>idle (billed)</span><span><i style="background:#cbd5e0"></i>pending / scrubbing (not billed)</span><span><i style="background:#e53e3e"></i>other</span></div>
{{.Hosts}}
<h2>Instances</h2>
{{.Instances}}
<h2>Queue length</h2>
{{.Queue}}
<h2>Monthly cost</h2>
{{.Costs}}
<h2>Statistics</h2>
<pre>{{.Table}}</pre>
</body></html>
`))

// downsample reduces samples to at most n points: busy/idle/pending are
// averaged over each window, instances and queue keep the window maximum.
func downsample(in []Sample, n int) []Sample {
	if len(in) <= n {
		return in
	}
	per := (len(in) + n - 1) / n
	out := make([]Sample, 0, n)
	for i := 0; i < len(in); i += per {
		j := min(i+per, len(in))
		var busy, idle, pend, other float64
		s := Sample{T: in[i].T}
		for _, x := range in[i:j] {
			busy += float64(x.HostsBusy)
			idle += float64(x.HostsIdle)
			pend += float64(x.HostsPending)
			other += float64(x.HostsOther)
			s.Instances = max(s.Instances, x.Instances)
			s.Queue = max(s.Queue, x.Queue)
		}
		k := float64(j - i)
		s.HostsBusy = int(math.Round(busy / k))
		s.HostsIdle = int(math.Round(idle / k))
		s.HostsPending = int(math.Round(pend / k))
		s.HostsOther = int(math.Round(other / k))
		out = append(out, s)
	}
	return out
}

const (
	chartW, chartH = 1000, 260
	padL, padR     = 56, 12
	padT, padB     = 26, 30
)

type frame struct {
	t0, t1 int64
	ymax   float64
}

func (f frame) x(t time.Time) float64 {
	if f.t1 == f.t0 {
		return padL
	}
	return padL + float64(t.UnixNano()-f.t0)/float64(f.t1-f.t0)*(chartW-padL-padR)
}

func (f frame) y(v float64) float64 {
	return chartH - padB - v/f.ymax*(chartH-padT-padB)
}

func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// axes draws the frame, y grid lines and month ticks.
func axes(b *strings.Builder, f frame, pts []Sample) {
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#4a5568"/>`, padL, chartH-padB, chartW-padR, chartH-padB)
	for i := 0; i <= 4; i++ {
		v := f.ymax * float64(i) / 4
		y := f.y(v)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#edf2f7"/>`, padL, y, chartW-padR, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#4a5568">%s</text>`, padL-6, y+4, trimNum(v))
	}
	if len(pts) == 0 {
		return
	}
	start := monthStart(pts[0].T)
	end := pts[len(pts)-1].T
	step := 1
	if months := int(end.Sub(start).Hours()/24/30) + 1; months > 14 {
		step = (months + 13) / 14
	}
	for m := start; !m.After(end); m = m.AddDate(0, step, 0) {
		if m.Before(pts[0].T) {
			continue
		}
		x := f.x(m)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#a0aec0"/>`, x, chartH-padB, x, chartH-padB+4)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="11" fill="#4a5568">%s</text>`, x+2, chartH-padB+16, m.Format("Jan 06"))
	}
	if end.Sub(pts[0].T) < 40*24*time.Hour { // short runs: day ticks
		for d := pts[0].T.Truncate(24 * time.Hour).Add(24 * time.Hour); !d.After(end); d = d.Add(24 * time.Hour) {
			x := f.x(d)
			fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="10" fill="#718096">%s</text>`, x+2, chartH-4, d.Format("02"))
		}
	}
}

func trimNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func newFrame(pts []Sample, ymax float64) frame {
	f := frame{ymax: niceMax(ymax)}
	if len(pts) > 0 {
		f.t0 = pts[0].T.UnixNano()
		f.t1 = pts[len(pts)-1].T.UnixNano()
	}
	return f
}

func svgOpen(b *strings.Builder, label string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="100%%" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, chartH, html.EscapeString(label))
}

func lineChart(pts []Sample, label, color string, v func(Sample) float64) string {
	var b strings.Builder
	ymax := 0.0
	for _, p := range pts {
		ymax = max(ymax, v(p))
	}
	f := newFrame(pts, ymax)
	svgOpen(&b, label)
	axes(&b, f, pts)
	if len(pts) > 0 {
		b.WriteString(`<path fill="none" stroke="` + color + `" stroke-width="1.2" d="`)
		for i, p := range pts {
			cmd := 'L'
			if i == 0 {
				cmd = 'M'
			}
			fmt.Fprintf(&b, "%c%.1f %.1f", cmd, f.x(p.T), f.y(v(p)))
		}
		b.WriteString(`"/>`)
	}
	fmt.Fprintf(&b, `<text x="%d" y="12" font-size="12" fill="#2d3748">%s (max %s)</text></svg>`, padL+6, html.EscapeString(label), trimNum(ymax))
	return b.String()
}

// stackedChart draws hosts by state as stacked areas.
func stackedChart(pts []Sample) string {
	var b strings.Builder
	ymax := 0.0
	for _, p := range pts {
		ymax = max(ymax, float64(p.HostsBusy+p.HostsIdle+p.HostsPending+p.HostsOther))
	}
	f := newFrame(pts, ymax)
	svgOpen(&b, "Hosts by state")
	axes(&b, f, pts)
	layers := []struct {
		color string
		v     func(Sample) int
	}{
		{"#2f855a", func(s Sample) int { return s.HostsBusy }},
		{"#9ae6b4", func(s Sample) int { return s.HostsIdle }},
		{"#cbd5e0", func(s Sample) int { return s.HostsPending }},
		{"#e53e3e", func(s Sample) int { return s.HostsOther }},
	}
	if len(pts) > 0 {
		base := make([]float64, len(pts))
		for _, l := range layers {
			top := make([]float64, len(pts))
			for i, p := range pts {
				top[i] = base[i] + float64(l.v(p))
			}
			b.WriteString(`<path stroke="none" fill="` + l.color + `" d="`)
			for i, p := range pts {
				cmd := 'L'
				if i == 0 {
					cmd = 'M'
				}
				fmt.Fprintf(&b, "%c%.1f %.1f", cmd, f.x(p.T), f.y(top[i]))
			}
			for i := len(pts) - 1; i >= 0; i-- {
				fmt.Fprintf(&b, "L%.1f %.1f", f.x(pts[i].T), f.y(base[i]))
			}
			b.WriteString(`Z"/>`)
			base = top
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="12" font-size="12" fill="#2d3748">Hosts (max %s)</text></svg>`, padL+6, trimNum(ymax))
	return b.String()
}

// costBars draws one bar per month with its cost.
func costBars(r *Result) string {
	var b strings.Builder
	ymax := 0.0
	for _, m := range r.Months {
		ymax = max(ymax, m.Cost)
	}
	f := frame{ymax: niceMax(ymax)}
	svgOpen(&b, "Monthly cost")
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#4a5568"/>`, padL, chartH-padB, chartW-padR, chartH-padB)
	for i := 0; i <= 4; i++ {
		v := f.ymax * float64(i) / 4
		y := f.y(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#edf2f7"/>`, padL, y, chartW-padR, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#4a5568">$%s</text>`, padL-6, y+4, trimNum(v))
	}
	n := max(len(r.Months), 1)
	slot := float64(chartW-padL-padR) / float64(n)
	for i, m := range r.Months {
		bw := min(slot*0.7, 90)
		x := float64(padL) + float64(i)*slot + (slot-bw)/2
		y := f.y(m.Cost)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#3182ce"><title>%s: $%.2f (%.1f host-hours)</title></rect>`,
			x, y, bw, float64(chartH-padB)-y, html.EscapeString(m.Label), m.Cost, m.HostHours)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#4a5568">%s</text>`, x+bw/2, chartH-padB+16, html.EscapeString(m.Label))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="#2d3748">$%.0f</text>`, x+bw/2, y-3, m.Cost)
	}
	fmt.Fprintf(&b, `<text x="%d" y="12" font-size="12" fill="#2d3748">Total $%.2f at $%.3f per host-hour</text></svg>`, padL+6, r.Cost, r.PricePerHostHour)
	return b.String()
}
