package sim

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func benchFile(b *testing.B, name string) {
	path := filepath.Join(workloadDir(), name)
	if _, err := os.Stat(path); err != nil {
		b.Skip(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		r, err := Run(context.Background(), f, Params{})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(r.JobsRead), "jobs/op")
	}
}

func BenchmarkSimulateWeek(b *testing.B) { benchFile(b, "week-2025-03.csv") }
func BenchmarkSimulateYear(b *testing.B) { benchFile(b, "year-2025-mac.csv") }
