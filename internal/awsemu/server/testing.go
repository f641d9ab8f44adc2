package server

import (
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
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

// SDKConfig returns an aws.Config that points every client built from it
// (ec2/sts/kms/servicequotas NewFromConfig) at endpoint, with static dummy
// credentials and no SDK retries, so each injected fault or throttle reaches
// the caller exactly once and tests stay deterministic.
//
//	cfg := server.SDKConfig(endpoint, "us-west-2")
//	client := ec2.NewFromConfig(cfg)
func SDKConfig(endpoint, region string) aws.Config {
	return aws.Config{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEMULATOR0000000", "emulator-secret-not-checked", ""),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
		// Accept the emulator's answers without checksum validation warnings.
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
}
