package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/aquarium-fish/aquarium-fish/internal/awshttp"
)

// NewTestServer serves w on a loopback httptest server for the duration of
// the test and returns its endpoint (http://127.0.0.1:PORT), ready for
// SDKConfig or an SDK client's BaseEndpoint.
func NewTestServer(t testing.TB, w World) (endpoint string) {
	t.Helper()
	srv := httptest.NewServer(New(w, Options{}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// sdkTransport is shared by the configs SDKConfig returns.
var sdkTransport = awshttp.SafeBodyTransport(http.DefaultTransport.(*http.Transport).Clone())

// SDKConfig returns an aws.Config that points every client built from it
// (ec2/sts/kms/servicequotas NewFromConfig) at endpoint, with static dummy
// credentials, no SDK retries (so each injected fault or throttle reaches the
// caller exactly once and tests stay deterministic) and an HTTP client using
// awshttp.SafeBodyTransport.
//
//	cfg := server.SDKConfig(endpoint, "us-west-2")
//	client := ec2.NewFromConfig(cfg)
func SDKConfig(endpoint, region string) aws.Config {
	return aws.Config{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEMULATOR0000000", "emulator-secret-not-checked", ""),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient:   &http.Client{Transport: sdkTransport},
	}
}
