package tlsutil

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

func TestEnsureServeAndTrust(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	f, err := Ensure(dir, []string{"node.example"}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir + "/" + CAKey, f.Key} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v %v", p, st.Mode(), err)
		}
	}
	before, _ := os.ReadFile(f.Cert)
	// Second start reuses everything.
	if _, err := Ensure(dir, []string{"node.example"}, now); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(f.Cert)
	if string(before) != string(after) {
		t.Fatal("certificate re-issued without reason")
	}
	// A new host name re-issues the node certificate from the same CA.
	caBefore, _ := os.ReadFile(f.CA)
	if _, err := Ensure(dir, []string{"other.example"}, now); err != nil {
		t.Fatal(err)
	}
	caAfter, _ := os.ReadFile(f.CA)
	again, _ := os.ReadFile(f.Cert)
	if string(again) == string(before) || string(caBefore) != string(caAfter) {
		t.Fatal("expected a new node cert from the same CA")
	}

	srvCfg, err := ServerConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	srv.TLS = srvCfg
	srv.StartTLS()
	defer srv.Close()

	cliCfg, err := ClientConfig(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cliCfg}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("client trusting the node CA: %v", err)
	}
	_ = resp.Body.Close()

	// Without the CA the certificate is rejected.
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
	if resp, err := plain.Get(srv.URL); err == nil {
		_ = resp.Body.Close()
		t.Fatal("untrusted CA accepted")
	}
}
