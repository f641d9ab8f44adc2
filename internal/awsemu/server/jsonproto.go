package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	smithytime "github.com/aws/smithy-go/time"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
)

// jsonService is a JSON 1.1 service selected by its X-Amz-Target prefix.
type jsonService struct {
	name string // short name for logs
	pkg  string // SDK package path of its input types
}

var jsonServices = map[string]jsonService{
	"TrentService":           {name: "kms", pkg: reflect.TypeFor[kms.ListAliasesInput]().PkgPath()},
	"ServiceQuotasV20190624": {name: "servicequotas", pkg: reflect.TypeFor[servicequotas.ListServiceQuotasInput]().PkgPath()},
}

// jsonContentType is the JSON 1.1 media type.
const jsonContentType = "application/x-amz-json-1.1"

// serveJSON answers one JSON 1.1 request for operation op of js.
func (s *Server) serveJSON(ctx context.Context, rw http.ResponseWriter, r *http.Request, js jsonService, op, reqID string) {
	if r.Method != http.MethodPost {
		writeJSONError(rw, reqID, awsemu.Errorf("UnknownOperationException", "JSON requests must be POST"))
		return
	}
	m, ok := s.lookup(op, js.pkg)
	if !ok {
		err := awsemu.Errorf("UnknownOperationException", "unknown operation %s", recordName(op))
		s.world.RecordCall(recordName(op), err)
		writeJSONError(rw, reqID, err)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		e := awsemu.Errorf("SerializationException", "cannot read the request body: %v", err)
		s.world.RecordCall(op, e)
		writeJSONError(rw, reqID, e)
		return
	}
	in, apiErr := decodeJSONInput(body, m.input.Elem())
	if apiErr != nil {
		s.world.RecordCall(op, apiErr)
		writeJSONError(rw, reqID, apiErr)
		return
	}
	out, err := m.call(ctx, in)
	if err != nil {
		ae := s.apiError(op, err)
		if ae.Code == "InternalError" {
			ae = &awsemu.APIError{Code: "InternalFailure", Message: ae.Message, HTTPStatus: ae.Status()}
		}
		writeJSONError(rw, reqID, ae)
		return
	}
	doc := map[string]any{}
	if !out.IsNil() {
		doc = jsonStruct(out.Elem())
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("marshal %s output: %v", op, err)) // recovered into InternalFailure
	}
	rw.Header().Set("Content-Type", jsonContentType)
	rw.Header().Set("x-amzn-RequestId", reqID)
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(b)
}

// writeJSONError writes the JSON 1.1 error document.
func writeJSONError(rw http.ResponseWriter, reqID string, err *awsemu.APIError) {
	b, _ := json.Marshal(map[string]string{"__type": err.Code, "message": err.Message})
	rw.Header().Set("Content-Type", jsonContentType)
	rw.Header().Set("x-amzn-RequestId", reqID)
	rw.Header().Set("X-Amzn-ErrorType", err.Code)
	rw.WriteHeader(err.Status())
	_, _ = rw.Write(b)
}

// decodeJSONInput decodes a JSON 1.1 request body into a new *t. Member
// names are matched exactly; an unknown member or a wrong type is a
// SerializationException naming the member.
func decodeJSONInput(body []byte, t reflect.Type) (reflect.Value, *awsemu.APIError) {
	v := reflect.New(t)
	if len(bytes.TrimSpace(body)) == 0 {
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return reflect.Value{}, awsemu.Errorf("SerializationException", "the request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return reflect.Value{}, awsemu.Errorf("SerializationException", "the request body has trailing data after the JSON document")
	}
	if err := jsonAssign(v.Elem(), doc, ""); err != nil {
		var ae *awsemu.APIError
		if errors.As(err, &ae) {
			return reflect.Value{}, ae
		}
		return reflect.Value{}, awsemu.Errorf("SerializationException", "%v", err)
	}
	return v, nil
}

func jsonPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func serializationErr(path, want string) error {
	return awsemu.Errorf("SerializationException", "member %s: expected %s", path, want)
}

// jsonAssign stores the decoded JSON value doc into v.
func jsonAssign(v reflect.Value, doc any, path string) error {
	if doc == nil {
		return nil // null leaves the member unset
	}
	t := v.Type()
	if t == timeType {
		n, ok := doc.(json.Number)
		if !ok {
			return serializationErr(path, "an epoch-seconds number")
		}
		f, err := n.Float64()
		if err != nil {
			return serializationErr(path, "an epoch-seconds number")
		}
		v.Set(reflect.ValueOf(smithytime.ParseEpochSeconds(f)))
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		e := reflect.New(t.Elem())
		if err := jsonAssign(e.Elem(), doc, path); err != nil {
			return err
		}
		v.Set(e)
		return nil
	case reflect.Struct:
		obj, ok := doc.(map[string]any)
		if !ok {
			return serializationErr(path, "an object")
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := t.FieldByName(k)
			if !ok || !f.IsExported() || f.Name == "ResultMetadata" || len(f.Index) != 1 {
				return awsemu.Errorf("SerializationException", "unknown member %s", jsonPath(path, k))
			}
			if err := jsonAssign(v.FieldByIndex(f.Index), obj[k], jsonPath(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			s, ok := doc.(string)
			if !ok {
				return serializationErr(path, "base64 data")
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return serializationErr(path, "base64 data")
			}
			v.SetBytes(b)
			return nil
		}
		arr, ok := doc.([]any)
		if !ok {
			return serializationErr(path, "a list")
		}
		out := reflect.MakeSlice(t, len(arr), len(arr))
		for i, e := range arr {
			if err := jsonAssign(out.Index(i), e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		v.Set(out)
		return nil
	case reflect.Map:
		obj, ok := doc.(map[string]any)
		if !ok || t.Key().Kind() != reflect.String {
			return serializationErr(path, "an object")
		}
		out := reflect.MakeMapWithSize(t, len(obj))
		for k, e := range obj {
			ev := reflect.New(t.Elem()).Elem()
			if err := jsonAssign(ev, e, jsonPath(path, k)); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
		}
		v.Set(out)
		return nil
	case reflect.String:
		s, ok := doc.(string)
		if !ok {
			return serializationErr(path, "a string")
		}
		return setScalar(v, s, path)
	case reflect.Bool:
		b, ok := doc.(bool)
		if !ok {
			return serializationErr(path, "a boolean")
		}
		v.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Float32, reflect.Float64:
		n, ok := doc.(json.Number)
		if !ok {
			return serializationErr(path, "a number")
		}
		return setScalar(v, n.String(), path)
	}
	return awsemu.Errorf("SerializationException", "member %s has an unsupported type", path)
}

// jsonStruct renders an SDK output struct as its JSON 1.1 document: member
// names as in the API, unset members omitted, timestamps as epoch seconds.
func jsonStruct(v reflect.Value) map[string]any {
	t := v.Type()
	out := make(map[string]any, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Name == "ResultMetadata" {
			continue
		}
		if j, ok := jsonValue(v.Field(i)); ok {
			out[f.Name] = j
		}
	}
	return out
}

func jsonValue(v reflect.Value) (any, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() || v.Kind() == reflect.Interface {
			return nil, false
		}
		return jsonValue(v.Elem())
	case reflect.String:
		if v.Len() == 0 && v.Type().PkgPath() != "" {
			return nil, false
		}
		return v.String(), true
	case reflect.Bool:
		return v.Bool(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), true
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		return f, true
	case reflect.Slice:
		if v.IsNil() {
			return nil, false
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return base64.StdEncoding.EncodeToString(v.Bytes()), true
		}
		arr := make([]any, 0, v.Len())
		for i := 0; i < v.Len(); i++ {
			if e, ok := jsonValue(v.Index(i)); ok {
				arr = append(arr, e)
			}
		}
		return arr, true
	case reflect.Map:
		if v.IsNil() {
			return nil, false
		}
		m := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			if e, ok := jsonValue(it.Value()); ok {
				m[it.Key().String()] = e
			}
		}
		return m, true
	case reflect.Struct:
		if v.Type() == timeType {
			tm := v.Interface().(time.Time)
			if tm.IsZero() {
				return nil, false
			}
			return json.Number(strconv.FormatFloat(float64(tm.UnixMilli())/1000, 'f', -1, 64)), true
		}
		return jsonStruct(v), true
	}
	return nil, false
}
