package sim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func benchRun(b *testing.B, open func() (io.ReadCloser, error)) {
	b.ReportAllocs()
	for b.Loop() {
		f, err := open()
		if err != nil {
			b.Fatal(err)
		}
		r, err := Run(context.Background(), f, Params{})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		if r.JobsServed+r.JobsUnserved != r.JobsRead {
			b.Fatalf("conservation: %d + %d != %d", r.JobsServed, r.JobsUnserved, r.JobsRead)
		}
		b.ReportMetric(float64(r.JobsRead), "jobs/op")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(r.JobsRead)/float64(b.N), "ns/job")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapSys)/(1<<20), "heap-sys-MB")
	}
}

func benchFile(b *testing.B, name string) {
	path := filepath.Join(workloadDir(), name)
	if _, err := os.Stat(path); err != nil {
		b.Skip(err)
	}
	benchRun(b, func() (io.ReadCloser, error) { return os.Open(path) })
}

func BenchmarkSimulateWeek(b *testing.B) { benchFile(b, "week-2025-03.csv") }
func BenchmarkSimulateYear(b *testing.B) { benchFile(b, "year-2025-mac.csv") }

// BenchmarkSimulateYear10x streams the year file ten times over ten
// consecutive years (1.75M jobs), generated on the fly.
func BenchmarkSimulateYear10x(b *testing.B) {
	path := filepath.Join(workloadDir(), "year-2025-mac.csv")
	if _, err := os.Stat(path); err != nil {
		b.Skip(err)
	}
	benchRun(b, func() (io.ReadCloser, error) { return repeatYears(path, 10), nil })
}

// repeatYears returns the workload at path repeated n times, copy k shifted
// by k×365 days.
func repeatYears(path string, n int) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<16)
		var err error
		for k := 0; k < n && err == nil; k++ {
			err = shiftCopy(bw, path, int64(k)*365*86400, k == 0)
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

func shiftCopy(w *bufio.Writer, path string, off int64, header bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first {
			first = false
			if header {
				fmt.Fprintln(w, line)
			}
			continue
		}
		parts := strings.SplitN(line, ",", 3)
		s, _ := strconv.ParseInt(parts[0], 10, 64)
		e, _ := strconv.ParseInt(parts[1], 10, 64)
		fmt.Fprintf(w, "%d,%d,%s\n", s+off, e+off, parts[2])
	}
	return sc.Err()
}
