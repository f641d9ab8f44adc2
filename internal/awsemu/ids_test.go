package awsemu

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TerminateInstances checks the format of ids the table lacks only; the
// errors stay those of checking every id first: a malformed id anywhere
// wins over missing ones, and nothing is terminated.
func TestTerminateIDErrorsOrder(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	id := aws.ToString(runLinux(t, w, nil).Instances[0].InstanceId)
	const missing = "i-0123456789abcdef0"
	for _, c := range []struct {
		ids  []string
		code string
	}{
		{[]string{missing, "i-bad"}, "InvalidInstanceID.Malformed"},
		{[]string{id, "i-BAD0123456789abc"}, "InvalidInstanceID.Malformed"},
		{[]string{id, id, "x-0123456789abcdef0"}, "InvalidInstanceID.Malformed"},
		{[]string{id, missing}, "InvalidInstanceID.NotFound"},
	} {
		_, err := w.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: c.ids})
		if apiCode(err) != c.code {
			t.Fatalf("%v: %v, want %s", c.ids, err, c.code)
		}
		if err := w.TerminateInstanceIDs(bg, c.ids); apiCode(err) != c.code {
			t.Fatalf("native %v: %v, want %s", c.ids, err, c.code)
		}
	}
	out, err := w.DescribeInstances(bg, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || out.Reservations[0].Instances[0].State.Name == types.InstanceStateNameShuttingDown {
		t.Fatalf("instance terminated by a failed call: %v", err)
	}
}

// DescribeHosts by id checks the format of the ids its table lacks only:
// the first malformed id is still the one reported, before missing ones.
func TestDescribeHostsIDErrorsOrder(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	hid := allocHost(t, w, "mac2.metal", "us-west-2a", false)
	for _, c := range []struct {
		ids  []string
		code string
		msg  string
	}{
		{[]string{hid, "h-0123456789abcdef0", "host-1", "host-2"}, "InvalidHostID.Malformed", `Invalid id: "host-1"`},
		{[]string{"host-2", hid, "host-1"}, "InvalidHostID.Malformed", `Invalid id: "host-2"`},
		{[]string{hid, "h-0123456789abcdef0"}, "InvalidHostID.NotFound", ""},
		{[]string{"h-0123456789abcdef0", "h-0123456789abcdef0", "h-0123456789abcdef1"}, "InvalidHostID.NotFound", "'h-0123456789abcdef0, h-0123456789abcdef1'"},
	} {
		_, err := w.DescribeHosts(bg, &ec2.DescribeHostsInput{HostIds: c.ids})
		if apiCode(err) != c.code || (c.msg != "" && !strings.Contains(err.Error(), c.msg)) {
			t.Fatalf("%v: %v, want %s %s", c.ids, err, c.code, c.msg)
		}
		_, _, err = w.DescribeHostStates(bg, &ec2.DescribeHostsInput{HostIds: c.ids}, nil)
		if apiCode(err) != c.code || (c.msg != "" && !strings.Contains(err.Error(), c.msg)) {
			t.Fatalf("native %v: %v, want %s %s", c.ids, err, c.code, c.msg)
		}
	}
	// found ids: deduplicated, in creation order
	hid2 := allocHost(t, w, "mac2.metal", "us-west-2a", false)
	hs, _, err := w.DescribeHostStates(bg, &ec2.DescribeHostsInput{HostIds: []string{hid2, hid, hid2}}, nil)
	if err != nil || len(hs) != 2 || hs[0].ID != hid || hs[1].ID != hid2 {
		t.Fatalf("%v %v, want %s then %s", hs, err, hid, hid2)
	}
}

// hostQuota matches the whole quota name "Running Dedicated <family> Hosts".
func TestHostQuotaName(t *testing.T) {
	w, _ := newTestWorld(t, nil)
	n := 0
	for _, q := range w.quotas {
		fam, okPre := strings.CutPrefix(q.name, "Running Dedicated ")
		fam, okSuf := strings.CutSuffix(fam, " Hosts")
		if !okPre || !okSuf {
			continue
		}
		if got, ok := w.hostQuota(fam); !ok || got != q {
			t.Fatalf("hostQuota(%q) = %v %v, want %q", fam, got, ok, q.name)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no host quota in the default spec")
	}
	for _, fam := range []string{"", "mac", "mac2 ", "Running Dedicated mac2 Hosts", "mac2 Hosts"} {
		if q, ok := w.hostQuota(fam); ok {
			t.Fatalf("hostQuota(%q) = %q", fam, q.name)
		}
	}
}
