package aws

import (
	"log/slog"
	"strconv"
	"testing"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

// BenchmarkAllocateDeallocateInMemory: the simulator's path, one label
// (resolution caches warm), Allocate then Deallocate per op against the
// in-memory world (the world's own cost included).
func BenchmarkAllocateDeallocateInMemory(b *testing.B) {
	// Logs discarded as the simulator does (slog.DiscardHandler).
	e := newEnv(b, `{"region":"us-west-2","instance_tags":{"team":"ci"}}`, envOpt{inMemory: true,
		opts: []Option{WithLogger(slog.New(slog.DiscardHandler))}})
	def := e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro","security_group":"aquarium-ssh","encrypt_key":"alias/aquarium","tags":{"a":"b"}}`,
		core.Resources{Network: vpcAquarium, Lifetime: "2h"})
	uids := make([]string, b.N+1)
	for i := range uids {
		uids[i] = "0b4e7c1a-3c2f-4b55-9a0e-" + strconv.Itoa(100000000000+i)
	}
	alloc := func(i int) {
		res, err := e.d.Allocate(e.ctx, driver.AllocateRequest{ApplicationUID: uids[i], LabelUID: "label-1", LabelName: "ci", Definition: def})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.d.Deallocate(e.ctx, *res); err != nil {
			b.Fatal(err)
		}
	}
	alloc(b.N) // warm the caches
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		alloc(i)
	}
}
