package meta

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// ResourceStore is what the meta API reads.
type ResourceStore interface {
	GetResourceByIP(ctx context.Context, ip string) (*core.Resource, error)
	CurrentState(ctx context.Context, appUID string) (*core.ApplicationState, error)
}

// HandlerOptions configure the meta API handler.
type HandlerOptions struct {
	Logger *slog.Logger
	// EmulatedIPHeader, when not empty, names a request header whose value
	// is used as the caller's address, but only for requests from a loopback
	// address. It exists for nodes running the embedded AWS emulator, whose
	// resources have private IPs no local process can own; a node talking to
	// real AWS must leave it empty.
	EmulatedIPHeader string
}

// DefaultEmulatedIPHeader is the header the node honours when it runs the
// embedded emulator.
const DefaultEmulatedIPHeader = "X-Aquarium-Emulated-Resource-IP"

// NewHandler serves GET /meta/v1/data/?format=json|env|export|ps1&prefix=P:
// the merged metadata of the ALLOCATED resource whose IP is the caller's
// address. Anything else gets 401, and no other resource field is exposed.
func NewHandler(st ResourceStore, opts HandlerOptions) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()
		format := q.Get("format")
		if format == "" {
			format = "json"
		}
		if !ValidFormat(format) {
			http.Error(w, "format: must be one of json, env, export, ps1", http.StatusBadRequest)
			return
		}
		ip := callerIP(r, opts.EmulatedIPHeader)
		res, err := st.GetResourceByIP(r.Context(), ip)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				log.Error("meta: resource lookup failed", "err", err)
			}
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		state, err := st.CurrentState(r.Context(), res.ApplicationUID)
		if err != nil || state.Status != core.StatusAllocated {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		data, err := Merge(res.Metadata, nil)
		if err != nil {
			log.Error("meta: stored metadata unreadable", "application", res.ApplicationUID, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		out, err := Serialize(data, format, q.Get("prefix"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if format == "json" {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		_, _ = w.Write(out)
	})
}

func callerIP(r *http.Request, header string) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if header != "" {
		if v := r.Header.Get(header); v != "" {
			if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() && net.ParseIP(v) != nil {
				return v
			}
		}
	}
	return host
}
