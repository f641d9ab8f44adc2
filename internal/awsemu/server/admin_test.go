package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
)

// adminCall sends a request to an admin endpoint and decodes its JSON answer.
func adminCall(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v\n%s", method, url, err, b)
		}
	}
	return resp.StatusCode
}

func TestAdminEndpointsAndFaultsOverHTTP(t *testing.T) {
	ctx := context.Background()
	w, err := awsemu.New(clock.NewVirtual(t0), nil)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := NewTestServer(t, w)
	cl := ec2.NewFromConfig(SDKConfig(endpoint, "us-west-2"))
	run := func() error {
		_, err := cl.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(linuxX86Image),
			InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
		return err
	}

	// Inject a capacity error for the next call only.
	var added awsemu.FaultRule
	if st := adminCall(t, http.MethodPost, endpoint+"/_emulator/faults",
		`{"action":"RunInstances","code":"InsufficientInstanceCapacity","message":"We currently do not have sufficient t3.micro capacity.","http_status":500,"count":1}`, &added); st != http.StatusCreated {
		t.Fatalf("POST fault: %d", st)
	}
	var faults []awsemu.FaultRule
	if adminCall(t, http.MethodGet, endpoint+"/_emulator/faults", "", &faults); len(faults) != 1 || faults[0].Code != "InsufficientInstanceCapacity" {
		t.Fatalf("GET faults: %+v", faults)
	}
	err = run()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InsufficientInstanceCapacity" ||
		!strings.Contains(ae.ErrorMessage(), "t3.micro capacity") {
		t.Fatalf("faulted RunInstances: %v", err)
	}
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusInternalServerError {
		t.Fatalf("faulted RunInstances status: %v", err)
	}
	if err := run(); err != nil {
		t.Fatalf("RunInstances after the one-shot fault: %v", err)
	}

	// Throttling answers what the SDK classifies as a throttle.
	adminCall(t, http.MethodPost, endpoint+"/_emulator/faults", `{"action":"DescribeHosts","code":"RequestLimitExceeded","http_status":503,"count":1}`, nil)
	_, err = cl.DescribeHosts(ctx, &ec2.DescribeHostsInput{})
	if errCode(err) != "RequestLimitExceeded" || retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) != aws.TrueTernary {
		t.Fatalf("throttled DescribeHosts: %v", err)
	}

	var calls map[string]awsemu.ActionStats
	adminCall(t, http.MethodGet, endpoint+"/_emulator/calls", "", &calls)
	if calls["RunInstances"].Calls != 2 || calls["RunInstances"].Errors != 1 || calls["DescribeHosts"].Errors != 1 {
		t.Fatalf("GET calls: %+v", calls)
	}
	var state struct {
		AccountID string `json:"account_id"`
		Instances []any  `json:"instances"`
	}
	if st := adminCall(t, http.MethodGet, endpoint+"/_emulator/state", "", &state); st != http.StatusOK || state.AccountID != account || len(state.Instances) != 1 {
		t.Fatalf("GET state: %d %+v", st, state)
	}

	adminCall(t, http.MethodPost, endpoint+"/_emulator/faults", `{"action":"*","code":"InternalError","http_status":500,"probability":1}`, nil)
	if st := adminCall(t, http.MethodDelete, endpoint+"/_emulator/faults", "", nil); st != http.StatusNoContent {
		t.Fatalf("DELETE faults: %d", st)
	}
	if err := run(); err != nil {
		t.Fatalf("RunInstances after clearing faults: %v", err)
	}
	if st := adminCall(t, http.MethodDelete, endpoint+"/_emulator/calls", "", nil); st != http.StatusNoContent {
		t.Fatalf("DELETE calls: %d", st)
	}
	calls = nil
	if adminCall(t, http.MethodGet, endpoint+"/_emulator/calls", "", &calls); len(calls) != 0 {
		t.Fatalf("calls after reset: %+v", calls)
	}

	for name, tc := range map[string]struct {
		method, path, body string
		status             int
	}{
		"bad json":       {http.MethodPost, "/_emulator/faults", `{"action":`, http.StatusBadRequest},
		"unknown field":  {http.MethodPost, "/_emulator/faults", `{"action":"RunInstances","code":"X","colour":1}`, http.StatusBadRequest},
		"invalid rule":   {http.MethodPost, "/_emulator/faults", `{"action":"RunInstances"}`, http.StatusBadRequest},
		"unknown path":   {http.MethodGet, "/_emulator/nope", "", http.StatusNotFound},
		"wrong method":   {http.MethodPut, "/_emulator/state", "", http.StatusMethodNotAllowed},
		"calls with PUT": {http.MethodPut, "/_emulator/calls", "", http.StatusMethodNotAllowed},
	} {
		t.Run(name, func(t *testing.T) {
			var doc map[string]string
			if st := adminCall(t, tc.method, endpoint+tc.path, tc.body, &doc); st != tc.status || doc["error"] == "" {
				t.Fatalf("%s %s: %d %v, want %d with an error message", tc.method, tc.path, st, doc, tc.status)
			}
		})
	}
}

// TestAWSErrorCodesOverHTTP checks world errors reach the SDK with their
// codes and HTTP statuses.
func TestAWSErrorCodesOverHTTP(t *testing.T) {
	ctx := context.Background()
	c := newClients(t, nil)
	_, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	if errCode(err) != "InvalidInstanceID.NotFound" {
		t.Fatalf("unknown instance: %v", err)
	}
	_, err = c.ec2.DescribeHosts(ctx, &ec2.DescribeHostsInput{Filter: []types.Filter{{Name: aws.String("colour"), Values: []string{"x"}}}})
	if errCode(err) != "InvalidParameterValue" {
		t.Fatalf("unknown filter: %v", err)
	}
	_, err = c.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0000000000000dead"),
		InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if errCode(err) != "InvalidAMIID.NotFound" {
		t.Fatalf("unknown image: %v", err)
	}
	_, err = c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{DryRun: aws.Bool(true)})
	if errCode(err) != "DryRunOperation" {
		t.Fatalf("dry run: %v", err)
	}
}
