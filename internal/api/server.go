// Package api serves the node's Connect-style API at /grpc/aquarium.v2.*
// (JSON, YAML request bodies, Connect and gRPC), with authentication, RBAC
// and ownership, plus /meta/v1/data, /metrics and /healthz.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2/aquariumv2connect"
	"github.com/aquarium-fish/aquarium-fish/internal/auth"
	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

// Engine is what the API needs from the lifecycle engine
// (*engine.Engine satisfies it).
type Engine interface {
	CreateLabel(ctx context.Context, l *core.Label) error
	RemoveLabel(ctx context.Context, uid string) error
	CreateApplication(ctx context.Context, a *core.Application) error
	Deallocate(ctx context.Context, appUID string) error
	CreateTask(ctx context.Context, t *core.Task) error
	SetMaintenance(on bool)
}

// Options configure the API server.
type Options struct {
	Store  store.Store
	Engine Engine
	Auth   *auth.Authenticator
	Clock  clock.Clock
	Logger *slog.Logger
	// NodeName is this node (NodeService.GetThis, SetMaintenance).
	NodeName string
	// Registry receives the API metrics and is served at /metrics
	// (nil = a fresh registry with the Go and process collectors).
	Registry *prometheus.Registry
	// Meta serves /meta/v1/data/ (nil = not served).
	Meta http.Handler
	// Shutdown is called by NodeService.SetMaintenance{shutdown: true}
	// with the requested delay (nil = shutdown not supported).
	Shutdown func(delay time.Duration)
	// PasswordCost is the bcrypt cost for new passwords (0 = default).
	PasswordCost int
	// IsInvalid classifies engine errors that are the caller's fault
	// (validation), answered as invalid_argument. nil = only store errors
	// are classified and other engine errors on Create* are invalid_argument.
	IsInvalid func(error) bool
	// IsPrecondition classifies engine errors answered as
	// failed_precondition (e.g. deallocating a dead application).
	IsPrecondition func(error) bool
}

// Server is the API.
type Server struct {
	opts    Options
	log     *slog.Logger
	handler http.Handler
	metrics *metrics
	errw    *connect.ErrorWriter
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New builds the API server.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Engine == nil || opts.Auth == nil {
		return nil, errors.New("api: Store, Engine and Auth are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{opts: opts, log: opts.Logger, errw: connect.NewErrorWriter()}
	s.metrics = &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aquarium_api_requests_total", Help: "API requests by procedure and Connect code.",
		}, []string{"procedure", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aquarium_api_request_duration_seconds", Help: "API request latency by procedure.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"procedure"}),
	}
	if err := opts.Registry.Register(s.metrics.requests); err != nil {
		return nil, fmt.Errorf("api: register metrics: %w", err)
	}
	if err := opts.Registry.Register(s.metrics.latency); err != nil {
		return nil, fmt.Errorf("api: register metrics: %w", err)
	}

	hopts := []connect.HandlerOption{
		connect.WithCodec(jsonCodec{name: "json"}),
		connect.WithCodec(jsonCodec{name: "json; charset=utf-8"}),
		connect.WithReadMaxBytes(maxBodyBytes),
		// Compressing small answers costs more CPU than it saves bytes.
		connect.WithCompressMinBytes(64 << 10),
		connect.WithInterceptors(s.interceptor()),
	}
	rpc := http.NewServeMux()
	for _, reg := range []func() (string, http.Handler){
		func() (string, http.Handler) {
			return aquariumv2connect.NewLabelServiceHandler(&labelService{s}, hopts...)
		},
		func() (string, http.Handler) {
			return aquariumv2connect.NewApplicationServiceHandler(&applicationService{s}, hopts...)
		},
		func() (string, http.Handler) {
			return aquariumv2connect.NewNodeServiceHandler(&nodeService{s}, hopts...)
		},
		func() (string, http.Handler) {
			return aquariumv2connect.NewUserServiceHandler(&userService{s}, hopts...)
		},
		func() (string, http.Handler) {
			return aquariumv2connect.NewRoleServiceHandler(&roleService{s}, hopts...)
		},
		func() (string, http.Handler) {
			return aquariumv2connect.NewAuthServiceHandler(&authService{s}, hopts...)
		},
	} {
		path, h := reg()
		rpc.Handle(path, h)
	}

	mux := http.NewServeMux()
	mux.Handle("/grpc/", http.StripPrefix("/grpc", statusOnErrors(s.authenticate(yamlToJSON(rpc)))))
	mux.Handle("/metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := opts.Store.ListNodes(ctx); err != nil {
			http.Error(w, "store: unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if opts.Meta != nil {
		mux.Handle("/meta/v1/data/", opts.Meta)
		mux.Handle("/meta/v1/data", opts.Meta)
	}
	s.handler = mux
	return s, nil
}

// Handler is the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler { return s.handler }

type ctxKey struct{}

// caller is the authenticated user of a request.
type caller struct {
	name  string
	roles []string
	admin bool
}

func callerFrom(ctx context.Context) *caller {
	c, _ := ctx.Value(ctxKey{}).(*caller)
	if c == nil {
		return &caller{}
	}
	return c
}

// public procedures need no credentials (they carry their own).
var public = map[string]bool{
	aquariumv2connect.AuthServiceLoginProcedure:        true,
	aquariumv2connect.AuthServiceRefreshTokenProcedure: true,
}

// authenticate checks credentials and the caller's role for the procedure
// before the request body is even read, so an unauthenticated or forbidden
// caller always gets 401/403 (in the protocol the client speaks).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proc := r.URL.Path
		if public[proc] {
			next.ServeHTTP(w, r)
			return
		}
		service, method := splitProcedure(proc)
		u, err := s.opts.Auth.Authenticate(r.Context(), peerIP(r.RemoteAddr), r.Header.Get("Authorization"))
		if err != nil {
			s.reject(w, r, proc, authError(err))
			return
		}
		if !auth.Allowed(u.Roles, service, method) {
			s.reject(w, r, proc, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("user %q may not call %s.%s", u.Name, service, method)))
			return
		}
		c := &caller{name: u.Name, roles: u.Roles, admin: auth.IsAdmin(u.Roles)}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))
	})
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request, proc string, err *connect.Error) {
	s.metrics.requests.WithLabelValues(proc, err.Code().String()).Inc()
	for k, v := range err.Meta() {
		w.Header()[k] = v
	}
	if !s.errw.IsSupported(r) {
		// e.g. a YAML body: answer in the Connect unary JSON error shape.
		writeError(w, httpStatus(err.Code()), err.Code().String(), err.Message())
		return
	}
	_ = s.errw.Write(w, r, err)
}

// interceptor records metrics (authentication happened before, in authenticate).
func (s *Server) interceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			start := time.Now()
			proc := req.Spec().Procedure
			resp, err := next(ctx, req)
			code := "ok"
			if err != nil {
				code = connect.CodeOf(err).String()
			}
			s.metrics.requests.WithLabelValues(proc, code).Inc()
			s.metrics.latency.WithLabelValues(proc).Observe(time.Since(start).Seconds())
			return resp, err
		}
	}
}

func authError(err error) *connect.Error {
	switch {
	case errors.Is(err, auth.ErrRateLimited):
		return connect.NewError(connect.CodeResourceExhausted, err)
	case errors.Is(err, auth.ErrNoCredentials), errors.Is(err, auth.ErrBadCredentials), errors.Is(err, auth.ErrBadToken):
		ce := connect.NewError(connect.CodeUnauthenticated, err)
		ce.Meta().Set("WWW-Authenticate", `Basic realm="aquarium-fish"`)
		return ce
	default:
		return connect.NewError(connect.CodeInternal, errors.New("authentication backend failed"))
	}
}

// httpStatus is the Connect protocol's HTTP status for the codes the
// authentication step produces.
func httpStatus(c connect.Code) int {
	switch c {
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// splitProcedure turns "/aquarium.v2.LabelService/List" into ("LabelService", "List").
func splitProcedure(proc string) (string, string) {
	proc = strings.TrimPrefix(proc, "/")
	svc, method, _ := strings.Cut(proc, "/")
	if i := strings.LastIndexByte(svc, '.'); i >= 0 {
		svc = svc[i+1:]
	}
	return svc, method
}

func peerIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// storeError maps store errors to Connect codes; what names the object.
func (s *Server) storeError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("%s not found", what))
	case errors.Is(err, store.ErrAlreadyExists):
		return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("%s already exists", what))
	case errors.Is(err, store.ErrConflict):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%s: %w", what, err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeCanceled, err)
	default:
		s.log.Error("api: store failure", "object", what, "err", err)
		return connect.NewError(connect.CodeInternal, fmt.Errorf("%s: internal error", what))
	}
}

// engineError maps an engine error: store sentinels first, then the
// validation classifier; anything else is invalid_argument when fault is
// the caller's by default (Create*), else internal.
func (s *Server) engineError(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyExists) || errors.Is(err, store.ErrConflict) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			code := connect.CodeNotFound
			if errors.Is(err, store.ErrConflict) {
				code = connect.CodeFailedPrecondition
			}
			return connect.NewError(code, fmt.Errorf("%s: %w", what, err))
		}
		return s.storeError(err, what)
	}
	if s.opts.IsPrecondition != nil && s.opts.IsPrecondition(err) {
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%s: %w", what, err))
	}
	if s.opts.IsInvalid == nil || s.opts.IsInvalid(err) {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s: %w", what, err))
	}
	s.log.Error("api: engine failure", "object", what, "err", err)
	return connect.NewError(connect.CodeInternal, fmt.Errorf("%s: %w", what, err))
}

func invalid(format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(format, args...))
}

func notFound(format string, args ...any) error {
	return connect.NewError(connect.CodeNotFound, fmt.Errorf(format, args...))
}

func denied(format string, args ...any) error {
	return connect.NewError(connect.CodePermissionDenied, fmt.Errorf(format, args...))
}
