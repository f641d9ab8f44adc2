package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/awsemu/server"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

// seedIAM is the seed's IAM list plus the documented extras
// (sts:GetCallerIdentity; ec2:CreateKeyPair/DeleteKeyPair for instance_key: generate).
var seedIAM = map[string]bool{
	"AllocateHosts": true, "CopyImage": true, "CreateImage": true, "CreateSnapshots": true,
	"CreateTags": true, "DeleteSnapshot": true, "DeregisterImage": true, "DescribeHosts": true,
	"DescribeImages": true, "DescribeInstanceAttribute": true, "DescribeInstanceTypes": true,
	"DescribeInstances": true, "DescribeSecurityGroups": true, "DescribeSnapshots": true,
	"DescribeSubnets": true, "DescribeVolumes": true, "DescribeVpcs": true, "ReleaseHosts": true,
	"RunInstances": true, "StopInstances": true, "TerminateInstances": true,
	"ListAliases": true, "ListServiceQuotas": true, "ListAWSDefaultServiceQuotas": true,
	// documented extras
	"GetCallerIdentity": true, "CreateKeyPair": true, "DeleteKeyPair": true,
}

// suiteCalls accumulates the AWS actions the driver called across the suite.
var suiteCalls = struct {
	sync.Mutex
	m map[string]int
}{m: map[string]int{}}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		suiteCalls.Lock()
		var bad []string
		for a := range suiteCalls.m {
			if !seedIAM[a] {
				bad = append(bad, a)
			}
		}
		sort.Strings(bad)
		n := len(suiteCalls.m)
		suiteCalls.Unlock()
		if len(bad) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: the driver called AWS actions outside the seed IAM list (+documented extras): %v\n", bad)
			code = 1
		} else if n > 0 {
			fmt.Fprintf(os.Stderr, "IAM subset: the suite called %d distinct AWS actions, all in the seed IAM list (+extras)\n", n)
		}
	}
	os.Exit(code)
}

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// env is one driver talking to an emulator world over HTTP with the real SDK.
type env struct {
	t     testing.TB
	clk   *clock.Virtual
	world *awsemu.World
	d     *Driver
	ctx   context.Context
	// calls the test itself made to the world (excluded from IAM accounting)
	mu        sync.Mutex
	testCalls map[string]int
	sdkCfg    awssdk.Config
}

type envOpt struct {
	spec     *awsemu.Spec
	inMemory bool // pass the world directly instead of HTTP
	opts     []Option
}

func newEnv(t testing.TB, cfg string, eo ...envOpt) *env {
	t.Helper()
	var o envOpt
	if len(eo) > 0 {
		o = eo[0]
	}
	clk := clock.NewVirtual(t0)
	w, err := awsemu.New(clk, o.spec)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clk: clk, world: w, ctx: context.Background(), testCalls: map[string]int{}}
	var clients Clients
	if o.inMemory {
		clients = Clients{EC2: w, KMS: w, Quotas: w, STS: w}
	} else {
		endpoint := server.NewTestServer(t, w)
		e.sdkCfg = server.SDKConfig(endpoint, "us-west-2")
		clients = Clients{EC2: ec2.NewFromConfig(e.sdkCfg), KMS: kms.NewFromConfig(e.sdkCfg),
			Quotas: servicequotas.NewFromConfig(e.sdkCfg), STS: sts.NewFromConfig(e.sdkCfg)}
	}
	opts := append([]Option{
		WithClock(clk), WithClients(clients), WithoutBackgroundRunners(),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		WithSleeper(func(ctx context.Context, d time.Duration) error { clk.Advance(d); return ctx.Err() }),
		WithPollInterval(5 * time.Second), WithRetry(4, time.Second),
	}, o.opts...)
	e.d = New("aws", opts...)
	if cfg == "" {
		cfg = `{"region":"us-west-2"}`
	}
	if err := e.d.Prepare(e.ctx, []byte(cfg)); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Cleanup(e.recordSuiteCalls)
	return e
}

// recordSuiteCalls adds the driver's calls (world calls minus the test's own
// inspection calls) to the suite-wide IAM accounting.
func (e *env) recordSuiteCalls() {
	calls := e.world.Calls()
	suiteCalls.Lock()
	defer suiteCalls.Unlock()
	for a, st := range calls {
		if n := int(st.Calls) - e.testCalls[a]; n > 0 {
			suiteCalls.m[a] += n
		}
	}
}

// inspect runs fn (which may call the world directly) without counting its
// calls as driver calls.
func (e *env) inspect(fn func()) {
	before := e.world.Calls()
	fn()
	after := e.world.Calls()
	e.mu.Lock()
	defer e.mu.Unlock()
	for a, st := range after {
		e.testCalls[a] += int(st.Calls) - int(before[a].Calls)
	}
}

func (e *env) def(opts string, res core.Resources) core.Definition {
	return core.Definition{Driver: "aws", Options: json.RawMessage(opts), Resources: res}
}

var appSeq int

func (e *env) allocate(def core.Definition, md map[string]any) (*core.Resource, error) {
	appSeq++
	return e.d.Allocate(e.ctx, driver.AllocateRequest{ApplicationUID: fmt.Sprintf("app-%04d", appSeq),
		LabelUID: "label-1", LabelName: "ci", Definition: def, Metadata: md})
}

func (e *env) mustAllocate(def core.Definition, md map[string]any) *core.Resource {
	e.t.Helper()
	res, err := e.allocate(def, md)
	if err != nil {
		e.t.Fatalf("Allocate: %v", err)
	}
	return res
}

// instance returns the world's view of an instance (no API call).
func (e *env) instance(id string) ec2types.Instance {
	e.t.Helper()
	for _, i := range e.world.State().Instances {
		if awssdk.ToString(i.InstanceId) == id {
			return i
		}
	}
	e.t.Fatalf("instance %s not in the world", id)
	return ec2types.Instance{}
}

// liveInstances counts instances that are not terminated/shutting-down.
func (e *env) liveInstances() []ec2types.Instance {
	var out []ec2types.Instance
	for _, i := range e.world.State().Instances {
		if !instanceGone(i) {
			out = append(out, i)
		}
	}
	return out
}

func (e *env) volumesOf(id string) map[string]ec2types.Volume {
	out := map[string]ec2types.Volume{}
	for _, v := range e.world.State().Volumes {
		for _, a := range v.Attachments {
			if awssdk.ToString(a.InstanceId) == id {
				out[awssdk.ToString(a.Device)] = v
			}
		}
	}
	return out
}

func tagMap(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
	}
	return m
}

func allocReq(prefix string, i int, def core.Definition) driver.AllocateRequest {
	return driver.AllocateRequest{ApplicationUID: fmt.Sprintf("%s-%04d", prefix, i), Definition: def}
}
