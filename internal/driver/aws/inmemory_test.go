package aws

import (
	"sync"
	"testing"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// The simulator runs the driver directly on the in-memory world (no HTTP):
// the world satisfies all four client interfaces.
func TestInMemoryWorldAndConcurrentAllocations(t *testing.T) {
	e := newEnv(t, `{"region":"us-west-2","instance_key":"generate"}`, envOpt{inMemory: true})
	def := e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro","security_group":"aquarium-ssh"}`, core.Resources{Network: vpcAquarium})
	const n = 16
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := e.d.Allocate(e.ctx, allocReq("conc", i, def))
			errs[i] = err
			if err == nil {
				ids[i] = res.Identifier
			}
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[ids[i]] {
			t.Fatalf("instance %s returned twice", ids[i])
		}
		seen[ids[i]] = true
	}
	if got := len(e.liveInstances()); got != n {
		t.Fatalf("live instances = %d, want %d", got, n)
	}
	// Concurrent lookups of one label were collapsed: one DescribeImages.
	if c := e.world.Calls()["DescribeImages"]; c.Calls != 1 {
		t.Fatalf("DescribeImages calls = %d, want 1 (singleflight cache)", c.Calls)
	}
}
