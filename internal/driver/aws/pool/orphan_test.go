package pool

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
)

// orphanFixture has two pool hosts: one with an application's instance and
// one, idle, on which a node that stopped mid-scrub left its live scrub
// instance. It returns the fixture (whose manager is the stopped node's) and
// the ids of the job instance, the orphan and its host.
func orphanFixture(t *testing.T) (f *fixture, job, orphan, orphanHost string) {
	t.Helper()
	cfg := macConfig(3)
	cfg.ScrubbingDelay = 0 // (the pool's own scrubs would keep the idle host pending)
	f = newFixture(t, cfg, nil)
	_, job = f.placeRun("job")
	p, first := f.placeRun("earlier")
	f.terminate(p.HostID, first)
	f.advance(t0.Add(3 * time.Hour)) // scrubbed and available again
	if h := f.worldHost(p.HostID); h.State != types.AllocationStateAvailable || len(h.Instances) != 0 {
		t.Fatalf("host %s: %s with %d instances, want available and empty", p.HostID, h.State, len(h.Instances))
	}
	// what the stopped node's scrub pass launched before it could terminate it
	in := f.m.scrubTmpl
	in.ImageId = aws.String(f.imageID())
	in.ClientToken = aws.String("orphan")
	in.Placement = &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String(p.HostID)}
	out, err := f.world.RunInstances(context.Background(), &in)
	if err != nil {
		t.Fatal(err)
	}
	return f, job, aws.ToString(out.Instances[0].InstanceId), p.HostID
}

func (f *fixture) instanceState(id string) types.InstanceStateName {
	f.t.Helper()
	out, err := f.world.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		f.t.Fatalf("DescribeInstances(%s): %v", id, err)
	}
	return out.Reservations[0].Instances[0].State.Name
}

// A new manager terminates the scrub instance a stopped node left alive: its
// host scrubs and comes back placeable, instead of staying busy (and billed)
// for good. The applications' instances are not touched.
func TestStartTerminatesOrphanedScrubInstance(t *testing.T) {
	f, job, orphan, host := orphanFixture(t)
	f.m = f.start() // the node comes back
	if got := f.instanceState(orphan); got != types.InstanceStateNameShuttingDown && got != types.InstanceStateNameTerminated {
		t.Fatalf("orphaned scrub instance %s, want terminated", got)
	}
	if got := f.instanceState(job); got != types.InstanceStateNamePending && got != types.InstanceStateNameRunning {
		t.Fatalf("the application's instance is %s, want it left alone", got)
	}
	st := f.m.Stats()
	if st.ScrubOrphans != 1 || st.APICalls["DescribeInstances"] != 1 {
		t.Fatalf("ScrubOrphans %d, DescribeInstances calls %d; want 1 and 1", st.ScrubOrphans, st.APICalls["DescribeInstances"])
	}
	if st.HostsPending != 1 || st.HostsBusy != 1 {
		t.Fatalf("hosts pending %d busy %d, want the orphan's host scrubbing and the job's busy", st.HostsPending, st.HostsBusy)
	}
	checkHostCounts(t, f.m)
	if h := f.worldHost(host); h.State != types.AllocationStatePending {
		t.Fatalf("orphan's host %s, want pending (scrubbing)", h.State)
	}
	// after the scrub the host takes the next application without a new host
	f.advance(f.clk.Now().Add(2 * time.Hour))
	p, _ := f.placeRun("next")
	if p.HostID != host {
		t.Fatalf("next application on %s, want the scrubbed host %s", p.HostID, host)
	}
	if n := len(f.worldHosts()); n != 2 {
		t.Fatalf("%d hosts, want 2 (no allocation)", n)
	}
}

// A start that cannot list the instances still starts; the next full
// refresh reaps the orphan.
func TestOrphanedScrubReapedAfterAFailedSearch(t *testing.T) {
	f, _, orphan, _ := orphanFixture(t)
	if err := f.world.AddFault(awsemu.FaultRule{Action: "DescribeInstances", Code: "RequestLimitExceeded", HTTPStatus: 503, Count: 1}); err != nil {
		t.Fatal(err)
	}
	f.m = f.start()
	if got := f.instanceState(orphan); got != types.InstanceStateNameRunning && got != types.InstanceStateNamePending {
		t.Fatalf("orphan %s after the failed search, want still alive", got)
	}
	f.advance(f.clk.Now().Add(2 * fullRefreshEvery))
	if got := f.instanceState(orphan); got != types.InstanceStateNameShuttingDown && got != types.InstanceStateNameTerminated {
		t.Fatalf("orphan %s after a full refresh, want terminated", got)
	}
	if st := f.m.Stats(); st.ScrubOrphans != 1 || st.APIErrors["DescribeInstances"] != 1 {
		t.Fatalf("ScrubOrphans %d, DescribeInstances errors %d; want 1 and 1", st.ScrubOrphans, st.APIErrors["DescribeInstances"])
	}
	checkHostCounts(t, f.m)
}
