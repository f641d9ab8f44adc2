package aws

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

func (e *env) fault(r awsemu.FaultRule) {
	e.t.Helper()
	if err := e.world.AddFault(r); err != nil {
		e.t.Fatal(err)
	}
}

func TestThrottlingIsRetried(t *testing.T) {
	e := newEnv(t, `{"region":"us-west-2","instance_key":"generate"}`)
	for _, a := range []string{"RunInstances", "DescribeImages", "CreateKeyPair", "DescribeSubnets"} {
		e.fault(awsemu.FaultRule{Action: a, Code: "RequestLimitExceeded", HTTPStatus: http.StatusServiceUnavailable, Count: 2})
	}
	res, err := e.allocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{}), nil)
	if err != nil {
		t.Fatalf("throttled calls must be retried: %v", err)
	}
	if n := len(e.liveInstances()); n != 1 {
		t.Fatalf("live instances = %d, want 1", n)
	}
	if c := e.world.Calls()["RunInstances"]; c.Calls != 3 || c.Errors != 2 {
		t.Fatalf("RunInstances calls %+v, want 3 calls with 2 throttled", c)
	}
	if err := e.d.Deallocate(e.ctx, *res); err != nil {
		t.Fatal(err)
	}
}

func TestPersistentThrottlingFailsCleanly(t *testing.T) {
	e := newEnv(t, `{"region":"us-west-2","instance_key":"generate"}`)
	e.fault(awsemu.FaultRule{Action: "RunInstances", Code: "RequestLimitExceeded", HTTPStatus: http.StatusServiceUnavailable, Probability: 1})
	_, err := e.allocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{}), nil)
	if err == nil || !strings.Contains(err.Error(), "RequestLimitExceeded") {
		t.Fatalf("err = %v", err)
	}
	assertNothingLeft(t, e)
}

func TestCapacityErrorFailsCleanly(t *testing.T) {
	for _, code := range []string{"InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientCapacityOnHost", "HostLimitExceeded"} {
		t.Run(code, func(t *testing.T) {
			e := newEnv(t, `{"region":"us-west-2","instance_key":"generate"}`)
			e.fault(awsemu.FaultRule{Action: "RunInstances", Code: code, HTTPStatus: http.StatusInternalServerError, Count: 1})
			_, err := e.allocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{}), nil)
			if !errors.Is(err, driver.ErrCapacity) {
				t.Fatalf("err = %v, want driver.ErrCapacity", err)
			}
			if c := e.world.Calls()["RunInstances"]; c.Calls != 1 {
				t.Fatalf("capacity errors must not be retried in place: %+v", c)
			}
			assertNothingLeft(t, e)
		})
	}
}

// A failure after RunInstances (tagging a disk) terminates the instance and
// deletes the generated key pair.
func TestFailureAfterLaunchRollsBack(t *testing.T) {
	e := newEnv(t, `{"region":"us-west-2","instance_key":"generate"}`)
	e.fault(awsemu.FaultRule{Action: "CreateTags", Code: "InvalidParameterValue", Count: 1})
	_, err := e.allocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`,
		core.Resources{Disks: map[string]core.Disk{"/dev/sdf": {Size: 1, Label: "A:b"}}}), nil)
	if err == nil {
		t.Fatal("allocation must fail")
	}
	if len(e.world.State().Instances) == 0 {
		t.Fatal("the test expects an instance to have been launched")
	}
	assertNothingLeft(t, e)
}

func assertNothingLeft(t *testing.T, e *env) {
	t.Helper()
	if live := e.liveInstances(); len(live) != 0 {
		t.Errorf("instances left: %s", awssdk.ToString(live[0].InstanceId))
	}
	if kp := e.world.State().KeyPairs; len(kp) != 0 {
		t.Errorf("key pairs left: %s", awssdk.ToString(kp[0].KeyName))
	}
}

func TestCapacityQuotaAndFreeIPs(t *testing.T) {
	spec := awsemu.DefaultSpec()
	for i := range spec.Quotas {
		if spec.Quotas[i].Code == awsemu.QuotaStandard {
			spec.Quotas[i].Value = 8 // vCPUs
		}
	}
	e := newEnv(t, "", envOpt{spec: spec})
	def := e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{})
	capNow := func() int64 {
		t.Helper()
		n, err := e.d.AvailableCapacity(e.ctx, def)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := capNow(); got != 4 {
		t.Fatalf("capacity = %d, want 8 vCPU / 2 = 4", got)
	}
	for i := 0; i < 3; i++ {
		e.mustAllocate(def, nil)
	}
	if got := capNow(); got != 1 {
		t.Fatalf("capacity after 3 allocations = %d, want 1 (cache updated locally)", got)
	}
	// Free IPs bound it: the /25 subnet has 123 usable addresses.
	gdef := e.def(`{"image":"ubuntu-22.04","instance_type":"g4dn.xlarge"}`, core.Resources{Network: subnetAqC})
	if n, err := e.d.AvailableCapacity(e.ctx, gdef); err != nil || n != 16 {
		t.Fatalf("g4dn.xlarge capacity = %d, %v; want 64/4 = 16", n, err)
	}
	spec2 := awsemu.DefaultSpec()
	for i := range spec2.Quotas {
		if spec2.Quotas[i].Code == awsemu.QuotaStandard {
			spec2.Quotas[i].Value = 100000
		}
	}
	e2 := newEnv(t, "", envOpt{spec: spec2})
	if n, err := e2.d.AvailableCapacity(e2.ctx, e2.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{Network: subnetAqC})); err != nil || n != 123 {
		t.Fatalf("capacity limited by free IPs = %d, %v; want 123", n, err)
	}
}

// A mac type without a pool uses host tenancy with auto-placement; capacity
// counts idle auto-placement hosts.
func TestMacWithoutPool(t *testing.T) {
	e := newEnv(t, "")
	// The aquarium VPC spans three zones; the idle host is in us-west-2c,
	// whose subnet has the fewest free IPs: placement must follow the host.
	def := e.def(`{"image":"macos-14","instance_type":"mac2.metal"}`, core.Resources{Network: vpcAquarium})
	if n, err := e.d.AvailableCapacity(e.ctx, def); err != nil || n != 0 {
		t.Fatalf("capacity without hosts = %d, %v", n, err)
	}
	var hostID string
	e.inspect(func() {
		out, err := e.world.AllocateHosts(e.ctx, &ec2.AllocateHostsInput{AvailabilityZone: awssdk.String("us-west-2c"),
			InstanceType: awssdk.String("mac2.metal"), Quantity: awssdk.Int32(1), AutoPlacement: ec2types.AutoPlacementOn})
		if err != nil {
			t.Fatal(err)
		}
		hostID = out.HostIds[0]
	})
	e.d.idleHosts.invalidate("mac2.metal")
	if n, err := e.d.AvailableCapacity(e.ctx, def); err != nil || n != 1 {
		t.Fatalf("capacity with one idle host = %d, %v", n, err)
	}
	res := e.mustAllocate(def, nil)
	inst := e.instance(res.Identifier)
	if inst.Placement == nil || inst.Placement.Tenancy != ec2types.TenancyHost || awssdk.ToString(inst.Placement.HostId) != hostID {
		t.Fatalf("placement = %+v, want host tenancy on %s", inst.Placement, hostID)
	}
	if n, _ := e.d.AvailableCapacity(e.ctx, def); n != 0 {
		t.Fatalf("capacity after allocation = %d, want 0", n)
	}
	if err := e.d.Deallocate(e.ctx, *res); err != nil {
		t.Fatal(err)
	}
}

// Prepare builds real SDK clients from key_id/secret_key/base_url when no
// clients are injected, and verifies the account with STS.
func TestPrepareBuildsClientsFromConfig(t *testing.T) {
	e := newEnv(t, "")
	endpoint := awssdk.ToString(e.sdkCfg.BaseEndpoint)
	d := New("aws/prod", WithClock(e.clk), WithoutBackgroundRunners(), WithLogger(e.d.log))
	err := d.Prepare(e.ctx, []byte(`{"region":"us-west-2","key_id":"AKIDTEST","secret_key":"not-a-real-secret","base_url":"`+endpoint+`"}`))
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if d.Account() != "123456789012" {
		t.Fatalf("account = %q", d.Account())
	}
	res, err := d.Allocate(e.ctx, driver.AllocateRequest{ApplicationUID: "app-prod", Definition: e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{})})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.liveInstances()) != 1 || e.instance(res.Identifier).InstanceType != "t3.micro" {
		t.Fatal("instance not launched through the configured endpoint")
	}
	if err := d.Deallocate(e.ctx, *res); err != nil {
		t.Fatal(err)
	}
	// Bad config is rejected before any network call.
	if err := New("aws").Prepare(e.ctx, []byte(`{"region":"us-west-2","dedicated_pools":{}}`)); err == nil || !strings.Contains(err.Error(), `unknown key "dedicated_pools"`) {
		t.Fatalf("err = %v", err)
	}
	// Failing STS verification is a Prepare error.
	e.fault(awsemu.FaultRule{Action: "GetCallerIdentity", Code: "InvalidClientTokenId", HTTPStatus: 403, Count: 1})
	if err := New("aws", WithClients(d.api)).Prepare(e.ctx, []byte(`{"region":"us-west-2"}`)); err == nil || !strings.Contains(err.Error(), "verify credentials") {
		t.Fatalf("err = %v", err)
	}
}

// lossyEC2 performs RunInstances but loses the answer (like a dropped
// connection) for the first `lose` calls.
type lossyEC2 struct {
	EC2API
	lose int
}

type lostAnswer struct{}

func (lostAnswer) Error() string   { return "read tcp: connection reset by peer" }
func (lostAnswer) Timeout() bool   { return false }
func (lostAnswer) Temporary() bool { return true }

func (l *lossyEC2) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, o ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	out, err := l.EC2API.RunInstances(ctx, in, o...)
	if err == nil && l.lose > 0 {
		l.lose--
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: lostAnswer{}}
	}
	return out, err
}

func newLossyEnv(t *testing.T, lose int) *env {
	t.Helper()
	e := newEnv(t, "")
	lossy := &lossyEC2{EC2API: e.d.api.EC2, lose: lose}
	d := New("aws", WithClock(e.clk), WithClients(Clients{EC2: lossy, KMS: e.d.api.KMS, Quotas: e.d.api.Quotas, STS: e.d.api.STS}),
		WithoutBackgroundRunners(), WithLogger(e.d.log), WithSleeper(e.d.sleep), WithRetry(3, time.Second))
	if err := d.Prepare(e.ctx, []byte(`{"region":"us-west-2","instance_key":"generate"}`)); err != nil {
		t.Fatal(err)
	}
	e.d = d
	return e
}

// A lost RunInstances answer is retried with the same ClientToken: one instance.
func TestLostAnswerIsRetriedIdempotently(t *testing.T) {
	e := newLossyEnv(t, 1)
	res := e.mustAllocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{}), nil)
	if live := e.liveInstances(); len(live) != 1 || awssdk.ToString(live[0].InstanceId) != res.Identifier {
		t.Fatalf("live instances = %d, want exactly the resource's", len(live))
	}
}

// When every answer is lost, the allocation fails and the rollback finds the
// launched instance by its ClientToken and terminates it.
func TestLostAnswersRollBackByToken(t *testing.T) {
	e := newLossyEnv(t, 100)
	_, err := e.allocate(e.def(`{"image":"ubuntu-22.04","instance_type":"t3.micro"}`, core.Resources{}), nil)
	if err == nil {
		t.Fatal("allocation must fail")
	}
	if len(e.world.State().Instances) != 1 {
		t.Fatalf("the test expects one launched instance, world has %d", len(e.world.State().Instances))
	}
	assertNothingLeft(t, e)
}
