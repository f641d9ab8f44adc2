package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// Bench runs the store benchmarks (create, transition, claim) against the
// stores open returns; each sub-benchmark gets a fresh store.
func Bench(b *testing.B, open func(b *testing.B) store.Store) {
	b.Run("CreateApplication", func(b *testing.B) { benchCreate(b, open(b)) })
	b.Run("Transition", func(b *testing.B) { benchTransition(b, open(b)) })
	b.Run("TransitionParallel", func(b *testing.B) { benchTransitionParallel(b, open(b)) })
	b.Run("ClaimNew1", func(b *testing.B) { benchClaim(b, open(b), 1, 1) })
	b.Run("ClaimNew10", func(b *testing.B) { benchClaim(b, open(b), 10, 1) })
	b.Run("ClaimNew1x4Nodes", func(b *testing.B) { benchClaim(b, open(b), 1, 4) })
}

func benchLabel(b *testing.B, s store.Store) string {
	b.Helper()
	l := sampleLabel("bench", 1)
	if err := s.CreateLabel(context.Background(), l); err != nil {
		b.Fatal(err)
	}
	return l.UID
}

func benchApps(b *testing.B, s store.Store, label string, n int) []string {
	b.Helper()
	out := make([]string, n)
	for i := range out {
		a := &core.Application{LabelUID: label, OwnerName: "bench"}
		if err := s.CreateApplication(context.Background(), a); err != nil {
			b.Fatal(err)
		}
		out[i] = a.UID
	}
	return out
}

func benchCreate(b *testing.B, s store.Store) {
	label := benchLabel(b, s)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if err := s.CreateApplication(ctx, &core.Application{LabelUID: label, OwnerName: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchTransition flips one application NEW <-> ELECTED: one compare-and-set
// transaction per operation.
func benchTransition(b *testing.B, s store.Store) {
	app := benchApps(b, s, benchLabel(b, s), 1)[0]
	ctx := context.Background()
	from, to := core.StatusNew, core.StatusElected
	b.ResetTimer()
	for b.Loop() {
		if err := s.Transition(ctx, app, from, to, ""); err != nil {
			b.Fatal(err)
		}
		from, to = to, from
	}
}

// benchTransitionParallel: GOMAXPROCS*32 goroutines, each flipping its own
// application.
func benchTransitionParallel(b *testing.B, s store.Store) {
	label := benchLabel(b, s)
	ctx := context.Background()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		a := &core.Application{LabelUID: label}
		if err := s.CreateApplication(ctx, a); err != nil {
			b.Error(err)
			return
		}
		from, to := core.StatusNew, core.StatusElected
		for pb.Next() {
			if err := s.Transition(ctx, a.UID, from, to, ""); err != nil {
				b.Error(err)
				return
			}
			from, to = to, from
		}
	})
}

// benchClaim pre-creates b.N NEW applications and measures claiming them
// all with `nodes` concurrent claimers taking `batch` at a time; ns/op is
// per claimed application.
func benchClaim(b *testing.B, s store.Store, batch, nodes int) {
	apps := benchApps(b, s, benchLabel(b, s), b.N)
	ctx := context.Background()
	var claimed atomic.Int64
	b.ResetTimer()
	errs := make(chan error, nodes)
	for n := range nodes {
		go func() {
			node := fmt.Sprint("node-", n)
			for {
				got, err := s.ClaimNew(ctx, node, batch)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					errs <- nil
					return
				}
				claimed.Add(int64(len(got)))
			}
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if int(claimed.Load()) != len(apps) {
		b.Fatalf("claimed %d of %d applications", claimed.Load(), len(apps))
	}
}
