package aws

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
)

// pickSubnet books one IP per pick in the cached set (in place), so picks
// spread over the subnets with the most free IPs; a refreshed set starts
// from AWS's numbers again; concurrent picks book every IP exactly once.
func TestPickSubnetBooksInTheCachedSet(t *testing.T) {
	clk := clock.NewVirtual(t0)
	d := New("aws", WithClock(clk))
	ctx := context.Background()
	fresh := func() *subnetSet {
		return &subnetSet{list: []subnetInfo{
			{ID: "subnet-a", VPC: "vpc-1", Zone: "us-west-2a", FreeIPs: 5},
			{ID: "subnet-b", VPC: "vpc-1", Zone: "us-west-2b", FreeIPs: 4},
			{ID: "subnet-c", VPC: "vpc-1", Zone: "us-west-2c", FreeIPs: 9},
		}}
	}
	load := func(context.Context) (*subnetSet, error) { return fresh(), nil }
	set, err := d.subnets.get(ctx, "vpc-1", load)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 4 {
		s, err := d.pickSubnet("vpc-1", set, []string{"us-west-2a", "us-west-2b"})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s.ID)
	}
	// a 5 -> a 4 (tie with b: the first wins) -> b 4 -> a 3.
	if want := []string{"subnet-a", "subnet-a", "subnet-b", "subnet-a"}; !slices.Equal(got, want) {
		t.Fatalf("picks = %v, want %v", got, want)
	}
	again, _ := d.subnets.get(ctx, "vpc-1", load)
	if again != set || again.freeIPs() != 5+4+9-4 {
		t.Fatalf("cached set: same %v, free IPs %d; want the booked set with %d", again == set, again.freeIPs(), 5+4+9-4)
	}
	if _, err := d.pickSubnet("vpc-1", set, []string{"us-west-2d"}); err == nil {
		t.Fatal("a pick outside the candidates' zones succeeded")
	}

	// After the TTL the set is loaded again, with AWS's numbers.
	clk.Advance(DefaultSubnetTTL)
	refreshed, _ := d.subnets.get(ctx, "vpc-1", load)
	if refreshed == set || refreshed.freeIPs() != 18 {
		t.Fatalf("refreshed set: same %v, free IPs %d; want a new set with 18", refreshed == set, refreshed.freeIPs())
	}

	// Concurrent picks: each books one IP; none is lost, none goes below 0.
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := d.pickSubnet("vpc-1", refreshed, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := refreshed.freeIPs(); n != 0 {
		t.Fatalf("free IPs after 30 concurrent picks of 18 = %d, want 0 (never below zero)", n)
	}
}
