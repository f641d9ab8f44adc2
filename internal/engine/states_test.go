package engine

import (
	"testing"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

func TestStateDescriptionsRoundTrip(t *testing.T) {
	for _, node := range []string{"node-1", "my node", "a=b"} {
		n, d, ok := parseElected(electedDesc(node, 3))
		if !ok || n != node || d != 3 {
			t.Errorf("parseElected(electedDesc(%q, 3)) = %q, %d, %v", node, n, d, ok)
		}
	}
	for _, bad := range []string{"", "elected by node node-1", "elected by node=x definition=-1", "elected by node=x definition=z"} {
		if _, _, ok := parseElected(bad); ok {
			t.Errorf("parseElected(%q) accepted", bad)
		}
	}
	desc := failedDesc(1, 2, 4, "driver said: next definition=9 is not a thing", 2)
	if n, ok := parseNextDef(desc); !ok || n != 2 {
		t.Errorf("parseNextDef(%q) = %d, %v; want 2", desc, n, ok)
	}
	if _, ok := parseNextDef(""); ok {
		t.Error("parseNextDef of a plain NEW accepted")
	}
	hist := []core.ApplicationState{
		{Status: core.StatusNew},
		{Status: core.StatusElected, Description: electedDesc("n", 0)},
		{Status: core.StatusNew, Description: failedDesc(0, 1, 4, "x", 1)},
		{Status: core.StatusElected, Description: electedDesc("n", 1)},
		{Status: core.StatusNew, Description: "queued: no capacity on definition 1: full; next definition=1"},
		{Status: core.StatusElected, Description: electedDesc("m", 1)},
	}
	if n := countFailures(hist); n != 1 {
		t.Errorf("countFailures = %d, want 1 (capacity queueing is not a failure)", n)
	}
	if node, def, ok := lastElected(hist); !ok || node != "m" || def != 1 {
		t.Errorf("lastElected = %q, %d, %v", node, def, ok)
	}
}
