package meta

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

type fakeResources struct {
	byIP  map[string]core.Resource
	state map[string]core.Status
}

func (f fakeResources) GetResourceByIP(_ context.Context, ip string) (*core.Resource, error) {
	r, ok := f.byIP[ip]
	if !ok {
		return nil, store.ErrNotFound
	}
	return &r, nil
}

func (f fakeResources) CurrentState(_ context.Context, app string) (*core.ApplicationState, error) {
	return &core.ApplicationState{ApplicationUID: app, Status: f.state[app]}, nil
}

func TestHandler(t *testing.T) {
	st := fakeResources{
		byIP: map[string]core.Resource{
			"10.1.0.5": {ApplicationUID: "a1", IPAddr: "10.1.0.5", Metadata: []byte(`{"test1":"test2","testk":"testv","n":1000000}`), Identifier: "i-secret"},
			"10.1.0.6": {ApplicationUID: "a2", IPAddr: "10.1.0.6", Metadata: []byte(`{"x":"y"}`)},
		},
		state: map[string]core.Status{"a1": core.StatusAllocated, "a2": core.StatusDeallocate},
	}
	h := NewHandler(st, HandlerOptions{EmulatedIPHeader: DefaultEmulatedIPHeader})
	plain := NewHandler(st, HandlerOptions{})
	cases := []struct {
		name     string
		h        http.Handler
		remote   string
		header   string
		query    string
		wantCode int
		wantBody string
	}{
		{"env from the resource", h, "10.1.0.5:4000", "", "?format=env", 200, "n=1000000\ntest1=test2\ntestk=testv\n"},
		{"export with prefix", h, "10.1.0.5:4000", "", "?format=export&prefix=fish", 200, "export fish_n=1000000\nexport fish_test1=test2\nexport fish_testk=testv\n"},
		{"ps1", h, "10.1.0.5:4000", "", "?format=ps1", 200, "$n='1000000'\n$test1='test2'\n$testk='testv'\n"},
		{"json default", h, "10.1.0.5:4000", "", "", 200, `{"n":1000000,"test1":"test2","testk":"testv"}`},
		{"unknown caller", h, "10.9.9.9:4000", "", "", 401, ""},
		{"not allocated", h, "10.1.0.6:4000", "", "", 401, ""},
		{"bad format", h, "10.1.0.5:4000", "", "?format=xml", 400, ""},
		{"emulated header from loopback", h, "127.0.0.1:5555", "10.1.0.5", "?format=env", 200, "n=1000000\ntest1=test2\ntestk=testv\n"},
		{"emulated header from elsewhere", h, "10.1.0.6:5555", "10.1.0.5", "?format=env", 401, ""},
		{"header ignored without emulator", plain, "127.0.0.1:5555", "10.1.0.5", "", 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/meta/v1/data/"+c.query, nil)
			req.RemoteAddr = c.remote
			if c.header != "" {
				req.Header.Set(DefaultEmulatedIPHeader, c.header)
			}
			rec := httptest.NewRecorder()
			c.h.ServeHTTP(rec, req)
			if rec.Code != c.wantCode {
				t.Fatalf("code %d, want %d (%s)", rec.Code, c.wantCode, rec.Body.String())
			}
			if c.wantBody != "" && rec.Body.String() != c.wantBody {
				t.Fatalf("body %q, want %q", rec.Body.String(), c.wantBody)
			}
		})
	}
}
