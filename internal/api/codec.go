package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
)

// jsonCodec is the protobuf JSON mapping, strict on input (an unknown field
// is an error naming it; snake_case and lowerCamelCase names are both
// accepted) and complete on output (lowerCamelCase, every field present, so
// clients see `"status": false` and empty lists).
type jsonCodec struct{ name string }

var (
	jsonMarshal   = protojson.MarshalOptions{EmitUnpopulated: true}
	jsonUnmarshal = protojson.UnmarshalOptions{}
)

func (c jsonCodec) Name() string { return c.name }

func (c jsonCodec) Marshal(v any) ([]byte, error) {
	if l, ok := v.(*pb.ApplicationServiceListResponse); ok {
		return marshalApplicationList(l)
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("json codec: %T is not a protobuf message", v)
	}
	return jsonMarshal.Marshal(m)
}

func (c jsonCodec) Unmarshal(b []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("json codec: %T is not a protobuf message", v)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}") // an empty body is an empty request, like curl -d ''
	}
	return jsonUnmarshal.Unmarshal(b, m)
}

// maxBodyBytes bounds request bodies (labels with userdata are small).
const maxBodyBytes = 4 << 20

// yamlToJSON lets clients POST `application/yaml` or `text/yaml` bodies: the
// body is converted to JSON and handed to the JSON codec, so validation and
// error messages are the same for both.
func yamlToJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if r.Method != http.MethodPost || (mt != "application/yaml" && mt != "text/yaml" && mt != "application/x-yaml") {
			next.ServeHTTP(w, r)
			return
		}
		raw, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		_ = r.Body.Close()
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_argument", "read body: "+err.Error())
			return
		}
		if len(raw) > maxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, "resource_exhausted", "request body too large")
			return
		}
		js, err := convertYAML(raw)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
			return
		}
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(js))
		r2.ContentLength = int64(len(js))
		r2.Header.Set("Content-Type", "application/json")
		r2.Header.Set("Content-Length", strconv.Itoa(len(js)))
		next.ServeHTTP(w, r2)
	})
}

// convertYAML turns one YAML document into JSON. Mapping keys must be strings.
func convertYAML(raw []byte) ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	v, err := jsonable(doc, "")
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = map[string]any{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	return b, nil
}

func jsonable(v any, path string) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			c, err := jsonable(x, join(path, k))
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
		return t, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("invalid YAML: key %v under %q is not a string", k, path)
			}
			c, err := jsonable(x, join(path, ks))
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		for i, x := range t {
			c, err := jsonable(x, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
		return t, nil
	default:
		return v, nil
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// writeError answers in the Connect unary error shape plus `"status": false`.
func writeError(w http.ResponseWriter, httpStatus int, code, msg string) {
	b, _ := json.Marshal(map[string]any{"status": false, "code": code, "message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(b)
}

// statusOnErrors adds `"status": false` (and keeps code/message) to the
// Connect unary JSON error bodies, so every answer follows the
// {status, message, data} convention.
func statusOnErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ew := &errorBodyWriter{ResponseWriter: w}
		next.ServeHTTP(ew, r)
		ew.finish()
	})
}

type errorBodyWriter struct {
	http.ResponseWriter
	status   int
	buf      bytes.Buffer
	buffered bool
	done     bool
}

func (e *errorBodyWriter) WriteHeader(code int) {
	if e.status != 0 {
		return
	}
	e.status = code
	mt, _, _ := mime.ParseMediaType(e.Header().Get("Content-Type"))
	if code >= 400 && mt == "application/json" {
		e.buffered = true
		return
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *errorBodyWriter) Write(b []byte) (int, error) {
	if e.status == 0 {
		e.WriteHeader(http.StatusOK)
	}
	if e.buffered {
		return e.buf.Write(b)
	}
	return e.ResponseWriter.Write(b)
}

// Flush implements http.Flusher for streaming responses.
func (e *errorBodyWriter) Flush() {
	if e.buffered {
		return
	}
	if f, ok := e.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (e *errorBodyWriter) finish() {
	if !e.buffered || e.done {
		return
	}
	e.done = true
	body := e.buf.Bytes()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err == nil {
		if _, has := m["status"]; !has {
			m["status"] = false
			if nb, err := json.Marshal(m); err == nil {
				body = nb
			}
		}
	}
	e.Header().Set("Content-Length", strconv.Itoa(len(body)))
	e.ResponseWriter.WriteHeader(e.status)
	_, _ = e.ResponseWriter.Write(body)
}

// YAMLToJSON converts a YAML (or JSON) document to JSON, as the API does
// for YAML request bodies. The CLI uses it to read label files.
func YAMLToJSON(raw []byte) ([]byte, error) { return convertYAML(raw) }
