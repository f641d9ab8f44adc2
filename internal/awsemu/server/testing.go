package server

import (
	"io"
	"net/http"
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

// sdkTransport is shared by the configs SDKConfig returns.
var sdkTransport = SafeBodyTransport(http.DefaultTransport.(*http.Transport).Clone())

// SDKConfig returns an aws.Config that points every client built from it
// (ec2/sts/kms/servicequotas NewFromConfig) at endpoint, with static dummy
// credentials, no SDK retries (so each injected fault or throttle reaches the
// caller exactly once and tests stay deterministic) and an HTTP client using
// SafeBodyTransport.
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

// SafeBodyTransport wraps base so request bodies reach it as plain readers.
//
// Why: smithy-go closes the request body as soon as client.Do returns, and
// its closed body answers WriteTo with io.EOF. When the server answers before
// net/http's write loop has made its final check of the body (which happens
// easily with a fast server on loopback), that io.EOF makes the transport
// close the connection while the response body is still being read, and the
// call fails with "use of closed network connection". Hiding WriteTo turns
// the late check into an ordinary EOF read. Real AWS endpoints are too far
// away to lose that race; any client talking to the emulator should use this.
func SafeBodyTransport(base http.RoundTripper) http.RoundTripper {
	return safeBodyTransport{base: base}
}

type safeBodyTransport struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t safeBodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return t.base.RoundTrip(r)
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.Body = plainBody{r.Body}
	return t.base.RoundTrip(r2)
}

// plainBody exposes only Read and Close of a request body.
type plainBody struct{ rc io.ReadCloser }

func (b plainBody) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b plainBody) Close() error               { return b.rc.Close() }
