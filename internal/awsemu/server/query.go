package server

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	smithytime "github.com/aws/smithy-go/time"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
)

// queryIgnored are Query parameters that carry protocol or authentication
// data rather than input members; they are accepted and never decoded.
var queryIgnored = map[string]bool{
	"Action": true, "Version": true,
	"AWSAccessKeyId": true, "SignatureMethod": true, "SignatureVersion": true,
	"Signature": true, "Timestamp": true, "Expires": true, "SecurityToken": true,
	"X-Amz-Algorithm": true, "X-Amz-Credential": true, "X-Amz-Date": true,
	"X-Amz-Signature": true, "X-Amz-SignedHeaders": true, "X-Amz-Security-Token": true,
	"X-Amz-Expires": true,
}

// maxListIndex bounds a Query list index; EC2 itself rejects far smaller lists.
const maxListIndex = 10000

// queryNamer returns the Query parameter name of field f of struct type t.
type queryNamer func(t reflect.Type, f reflect.StructField) string

// ec2QueryName names fields as the EC2 SDK serializers do (generated table),
// falling back to the Go field name.
func ec2QueryName(t reflect.Type, f reflect.StructField) string {
	if n, ok := ec2QueryNames[t.String()][f.Name]; ok {
		return n
	}
	return f.Name
}

// queryDecoder turns flattened Query parameters (Name.1.Sub.2=...) into an
// SDK input struct.
type queryDecoder struct {
	form     url.Values
	children map[string]map[string]bool // prefix -> next path segments
	used     map[string]bool
	name     queryNamer
}

// decodeQuery decodes form into a new value of struct type t (returned as a
// pointer). Every parameter must map to a member: an unknown one is an
// UnknownParameter error, a value that does not parse is an
// InvalidParameterValue error naming the parameter.
func decodeQuery(form url.Values, t reflect.Type, name queryNamer) (reflect.Value, error) {
	d := &queryDecoder{form: form, children: map[string]map[string]bool{}, used: map[string]bool{}, name: name}
	for k := range form {
		if queryIgnored[k] {
			continue
		}
		parts := strings.Split(k, ".")
		prefix := ""
		for i, p := range parts {
			if i > 0 {
				prefix += "."
			}
			set := d.children[prefix]
			if set == nil {
				set = map[string]bool{}
				d.children[prefix] = set
			}
			set[p] = true
			prefix += p
		}
	}
	v := reflect.New(t)
	if err := d.decodeStruct(v.Elem(), ""); err != nil {
		return reflect.Value{}, err
	}
	var unknown []string
	for k := range form {
		if !queryIgnored[k] && !d.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return reflect.Value{}, awsemu.Errorf("UnknownParameter", "The parameter %s is not recognized", unknown[0])
	}
	return v, nil
}

// has tells whether any parameter lives at or under path.
func (d *queryDecoder) has(path string) bool {
	if _, ok := d.form[path]; ok {
		return true
	}
	return len(d.children[path+"."]) > 0
}

func (d *queryDecoder) decodeStruct(v reflect.Value, prefix string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Name == "ResultMetadata" {
			continue
		}
		path := prefix + d.name(t, f)
		if !d.has(path) {
			continue
		}
		if err := d.decodeValue(v.Field(i), path); err != nil {
			return err
		}
	}
	return nil
}

func (d *queryDecoder) decodeValue(v reflect.Value, path string) error {
	t := v.Type()
	switch {
	case t == timeType:
		s, err := d.scalar(path)
		if err != nil {
			return err
		}
		tm, err := smithytime.ParseDateTime(s)
		if err != nil {
			return invalidValue(path, s, "an ISO-8601 timestamp")
		}
		v.Set(reflect.ValueOf(tm))
		return nil
	case t.Kind() == reflect.Pointer:
		e := reflect.New(t.Elem())
		if err := d.decodeValue(e.Elem(), path); err != nil {
			return err
		}
		v.Set(e)
		return nil
	case t.Kind() == reflect.Struct:
		if _, ok := d.form[path]; ok {
			return awsemu.Errorf("InvalidParameterValue", "The parameter %s is a structure; set its members as %s.<Member>", path, path)
		}
		return d.decodeStruct(v, path+".")
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		s, err := d.scalar(path)
		if err != nil {
			return err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return invalidValue(path, s, "base64 data")
		}
		v.SetBytes(b)
		return nil
	case t.Kind() == reflect.Slice:
		return d.decodeList(v, path)
	case t.Kind() == reflect.Map || t.Kind() == reflect.Interface:
		// No served EC2 input has a map or document member; leaving the keys
		// unused reports them as unknown parameters.
		return nil
	}
	s, err := d.scalar(path)
	if err != nil {
		return err
	}
	return setScalar(v, s, path)
}

func (d *queryDecoder) decodeList(v reflect.Value, path string) error {
	if _, ok := d.form[path]; ok {
		return awsemu.Errorf("InvalidParameterValue", "The parameter %s is a list; use %s.1, %s.2, ...", path, path, path)
	}
	segs := d.children[path+"."]
	idx := make([]int, 0, len(segs))
	for s := range segs {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListIndex || strconv.Itoa(n) != s {
			return awsemu.Errorf("InvalidParameterValue", "The parameter %s.%s has an invalid list index %q (expected 1..%d)", path, s, s, maxListIndex)
		}
		idx = append(idx, n)
	}
	sort.Ints(idx)
	out := reflect.MakeSlice(v.Type(), len(idx), len(idx))
	for i, n := range idx {
		if err := d.decodeValue(out.Index(i), path+"."+strconv.Itoa(n)); err != nil {
			return err
		}
	}
	v.Set(out)
	return nil
}

// scalar returns the single value of path and marks it used.
func (d *queryDecoder) scalar(path string) (string, error) {
	vals, ok := d.form[path]
	if !ok {
		return "", awsemu.Errorf("InvalidParameterValue", "The parameter %s needs a value, not members", path)
	}
	if len(d.children[path+"."]) > 0 {
		return "", awsemu.Errorf("InvalidParameterValue", "The parameter %s is a single value; it has no members", path)
	}
	if len(vals) != 1 {
		return "", awsemu.Errorf("InvalidParameterValue", "The parameter %s is given %d times", path, len(vals))
	}
	d.used[path] = true
	return vals[0], nil
}

var timeType = reflect.TypeFor[time.Time]()

func invalidValue(path, s, want string) error {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return awsemu.Errorf("InvalidParameterValue", "Value (%s) for parameter %s is invalid. Expected %s.", s, path, want)
}

// setScalar parses s into the string, bool or number v, validating SDK enums
// against their Values() list.
func setScalar(v reflect.Value, s, path string) error {
	switch v.Kind() {
	case reflect.String:
		if vals := enumValues(v.Type()); vals != nil {
			if !vals[s] {
				return invalidValue(path, s, "one of "+enumList(vals))
			}
		}
		v.SetString(s)
	case reflect.Bool:
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			return invalidValue(path, s, "true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return invalidValue(path, s, fmt.Sprintf("a %d-bit integer", v.Type().Bits()))
		}
		v.SetInt(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return invalidValue(path, s, "a number")
		}
		v.SetFloat(f)
	default:
		return awsemu.Errorf("InvalidParameterValue", "The parameter %s has an unsupported type %s", path, v.Type())
	}
	return nil
}

// enumValues returns the allowed values of an SDK enum type (a string type
// with a Values() method), or nil for a plain string.
func enumValues(t reflect.Type) map[string]bool {
	if t.Kind() != reflect.String || t.PkgPath() == "" {
		return nil
	}
	if v, ok := enumCache.Load(t); ok {
		return v.(map[string]bool)
	}
	set := loadEnumValues(t)
	enumCache.Store(t, set)
	return set
}

var enumCache sync.Map // reflect.Type -> map[string]bool (nil: not an enum)

func loadEnumValues(t reflect.Type) map[string]bool {
	m, ok := t.MethodByName("Values")
	if !ok || m.Type.NumIn() != 1 || m.Type.NumOut() != 1 || m.Type.Out(0) != reflect.SliceOf(t) {
		return nil
	}
	vals := m.Func.Call([]reflect.Value{reflect.Zero(t)})[0]
	set := make(map[string]bool, vals.Len())
	for i := 0; i < vals.Len(); i++ {
		set[vals.Index(i).String()] = true
	}
	return set
}

func enumList(set map[string]bool) string {
	l := make([]string, 0, len(set))
	for k := range set {
		l = append(l, k)
	}
	sort.Strings(l)
	if len(l) > 12 {
		l = append(l[:12], "...")
	}
	return strings.Join(l, ", ")
}
