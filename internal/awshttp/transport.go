// Package awshttp holds HTTP plumbing for AWS SDK clients.
package awshttp

import (
	"io"
	"net/http"
)

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

// Doer is the HTTP client shape the AWS SDK uses (aws.HTTPClient).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// SafeBodyClient wraps an SDK HTTP client (for example the SDK's own
// BuildableClient, which honours AWS_CA_BUNDLE) the way SafeBodyTransport
// wraps a transport.
func SafeBodyClient(inner Doer) Doer { return safeBodyClient{inner: inner} }

type safeBodyClient struct{ inner Doer }

// Do implements Doer.
func (c safeBodyClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.inner.Do(r)
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.Body = plainBody{r.Body}
	return c.inner.Do(r2)
}
