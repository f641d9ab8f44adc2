// Package server serves an in-memory AWS world (package awsemu) over the
// real AWS wire protocols, so unmodified aws-sdk-go-v2 clients can talk to
// it through BaseEndpoint:
//
//   - EC2: the EC2 Query protocol (form POST, Action=..., Version=2016-11-15),
//     answers in XML rooted at <ActionResponse>.
//   - STS: the AWS Query protocol (Version=2011-06-15), GetCallerIdentity.
//   - KMS and Service Quotas: JSON 1.1, selected by the X-Amz-Target header
//     (TrentService.<Op>, ServiceQuotasV20190624.<Op>).
//   - Admin: /_emulator/state, /_emulator/calls and /_emulator/faults.
//
// Requests are decoded into the SDK's own input structs and the world's
// method with the action's name is called by reflection, so the server has
// no per-action code. Credentials are accepted without verifying signatures
// and are never logged.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
)

// World is the emulated AWS world the server exposes; *awsemu.World
// implements it. Besides these methods, every AWS action is served by the
// world's exported method of the same name with the aws-sdk-go-v2 client
// signature, found by reflection, e.g.
//
//	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
type World interface {
	// RecordCall counts a call the server rejected before reaching the world.
	RecordCall(action string, err error)
	// Calls reports calls and errors per action.
	Calls() map[string]awsemu.ActionStats
	// ResetCalls zeroes the call recorder.
	ResetCalls()
	// AddFault adds a fault-injection rule.
	AddFault(r awsemu.FaultRule) error
	// Faults lists the fault rules.
	Faults() []awsemu.FaultRule
	// ClearFaults removes every fault rule.
	ClearFaults()
	// State is a JSON-marshalable snapshot of the world.
	State() *awsemu.State
}

var _ World = (*awsemu.World)(nil)

// Options tune the server.
type Options struct {
	// Logger receives one debug record per request and one warning per
	// server-side failure. nil discards logs.
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body (default 8 MiB).
	MaxBodyBytes int64
}

// maxBodyDefault is the default request body bound.
const maxBodyDefault = 8 << 20

// Server is the http.Handler returned by New.
type Server struct {
	world World
	wv    reflect.Value
	log   *slog.Logger
	opts  Options

	mu      sync.RWMutex
	methods map[string]method // action -> world method, resolved lazily
}

// New returns an http.Handler serving w over the AWS wire protocols.
func New(w World, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = maxBodyDefault
	}
	return &Server{
		world:   w,
		wv:      reflect.ValueOf(w),
		log:     opts.Logger,
		opts:    opts,
		methods: map[string]method{},
	}
}

// ServeHTTP routes a request to the protocol it speaks.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := uuid.NewString()
	rec := &statusRecorder{ResponseWriter: rw}
	proto := "ec2"
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("emulator: panic while serving a request",
				"request_id", reqID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.wrote {
				writeInternal(rec, proto, reqID)
			}
		}
		s.log.Debug("emulator request", "request_id", reqID, "protocol", proto,
			"path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
	}()
	r.Body = http.MaxBytesReader(rec, r.Body, s.opts.MaxBodyBytes)

	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		proto = "admin"
		s.serveAdmin(rec, r)
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		svc, op, ok := strings.Cut(target, ".")
		js, known := jsonServices[svc]
		if !ok || !known {
			proto = "json"
			writeJSONError(rec, reqID, awsemu.Errorf("UnknownOperationException",
				"unknown X-Amz-Target %q", target))
			return
		}
		proto = js.name
		s.serveJSON(r.Context(), rec, r, js, op, reqID)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		writeEC2Error(rec, reqID, &awsemu.APIError{Code: "InvalidAction",
			Message: "the emulator accepts Query requests as POST or GET", HTTPStatus: http.StatusBadRequest})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeEC2Error(rec, reqID, awsemu.Errorf("InvalidParameterValue", "cannot parse the request form: %v", err))
		return
	}
	if isSTS(r) {
		proto = "sts"
		s.serveSTS(r.Context(), rec, r, reqID)
		return
	}
	s.serveEC2(r.Context(), rec, r, reqID)
}

// isSTS tells an STS Query request from an EC2 one by its API version or the
// SigV4 credential scope (".../<region>/sts/aws4_request").
func isSTS(r *http.Request) bool {
	if r.Form.Get("Version") == stsVersion {
		return true
	}
	return credentialScopeService(r.Header.Get("Authorization")) == "sts"
}

// credentialScopeService extracts the service from a SigV4 Authorization
// header without touching the key id or signature beyond the scope.
func credentialScopeService(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	scope, _, _ := strings.Cut(rest, ",")
	parts := strings.Split(scope, "/")
	// AKID/date/region/service/aws4_request
	if len(parts) < 5 {
		return ""
	}
	return parts[len(parts)-2]
}

// method is a world method resolved for an action.
type method struct {
	fn     reflect.Value
	input  reflect.Type // *XxxInput
	output reflect.Type // *XxxOutput
}

var (
	ctxType = reflect.TypeFor[context.Context]()
	errType = reflect.TypeFor[error]()
)

// lookup finds the world's method for action whose input type lives in the
// SDK package pkgPath. ok is false when the world does not implement it.
// Only found methods are cached, so arbitrary action names cannot grow the cache.
func (s *Server) lookup(action, pkgPath string) (method, bool) {
	key := pkgPath + "." + action
	s.mu.RLock()
	m, ok := s.methods[key]
	s.mu.RUnlock()
	if ok {
		return m, true
	}
	fn := s.wv.MethodByName(action)
	if !fn.IsValid() {
		return method{}, false
	}
	t := fn.Type()
	if t.NumIn() < 2 || t.In(0) != ctxType || t.In(1).Kind() != reflect.Pointer ||
		t.In(1).Elem().PkgPath() != pkgPath || t.In(1).Elem().Name() != action+"Input" ||
		t.NumOut() != 2 || t.Out(1) != errType || t.Out(0).Kind() != reflect.Pointer {
		return method{}, false
	}
	m = method{fn: fn, input: t.In(1), output: t.Out(0)}
	s.mu.Lock()
	s.methods[key] = m
	s.mu.Unlock()
	return m, true
}

// truncate bounds s to n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// recordName is how a rejected request's action is recorded: the name as
// sent, reduced to letters and digits and at most 64 characters.
func recordName(action string) string {
	n := sanitizeElem(action)
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

// call invokes m with in (a pointer to the SDK input struct).
func (m method) call(ctx context.Context, in reflect.Value) (reflect.Value, error) {
	out := m.fn.Call([]reflect.Value{reflect.ValueOf(ctx), in})
	if err, _ := out[1].Interface().(error); err != nil {
		return reflect.Value{}, err
	}
	return out[0], nil
}

// statusRecorder remembers the status written, for logs and panic recovery.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.status, r.wrote = http.StatusOK, true
	}
	return r.ResponseWriter.Write(b)
}

// writeInternal answers an unexpected failure in the protocol's error shape.
func writeInternal(rw http.ResponseWriter, proto, reqID string) {
	err := &awsemu.APIError{Code: "InternalError", Message: "the emulator failed to serve the request",
		HTTPStatus: http.StatusInternalServerError}
	switch proto {
	case "admin":
		writeAdminError(rw, err.Status(), err.Message)
	case "kms", "servicequotas", "json":
		err.Code = "InternalFailure"
		writeJSONError(rw, reqID, err)
	case "sts":
		writeSTSError(rw, reqID, err)
	default:
		writeEC2Error(rw, reqID, err)
	}
}
