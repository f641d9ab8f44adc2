package server

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
)

// captureWorld is the World for wire round-trip tests: it records the input
// the server decoded for each action and answers a prepared output, so a test
// can compare both directions of the protocol with what the SDK client sent
// and parsed.
type captureWorld struct {
	mu       sync.Mutex
	got      map[string]any
	outputs  map[string]any
	rejected []string
}

func newCaptureWorld() *captureWorld {
	return &captureWorld{got: map[string]any{}, outputs: map[string]any{}}
}

func (c *captureWorld) RecordCall(action string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rejected = append(c.rejected, fmt.Sprintf("%s: %v", action, err))
}
func (c *captureWorld) ClearFaults()                         {}
func (c *captureWorld) ResetCalls()                          {}
func (c *captureWorld) Calls() map[string]awsemu.ActionStats { return nil }
func (c *captureWorld) AddFault(awsemu.FaultRule) error      { return nil }
func (c *captureWorld) Faults() []awsemu.FaultRule           { return nil }
func (c *captureWorld) State() *awsemu.State                 { return nil }

func answer[O any](c *captureWorld, action string, in any) (*O, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got[action] = in
	if o, ok := c.outputs[action].(*O); ok {
		return o, nil
	}
	return new(O), nil
}

// filler sets every exported member of an SDK struct to a distinct,
// valid value (enums take their declared values), a few levels deep.
type filler struct{ seq int }

var fillEpoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func (f *filler) fill(v reflect.Value, depth int) {
	f.seq++
	t := v.Type()
	switch {
	case t == timeType:
		v.Set(reflect.ValueOf(fillEpoch.Add(time.Duration(f.seq) * 1001 * time.Millisecond)))
		return
	case t.Kind() == reflect.Pointer:
		if depth > 7 {
			return
		}
		e := reflect.New(t.Elem())
		f.fill(e.Elem(), depth)
		v.Set(e)
	case t.Kind() == reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			fd := t.Field(i)
			if fd.IsExported() && fd.Name != "ResultMetadata" {
				f.fill(v.Field(i), depth+1)
			}
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		v.SetBytes([]byte(fmt.Sprintf("blob-%d", f.seq)))
	case t.Kind() == reflect.Slice:
		if depth > 7 {
			return
		}
		s := reflect.MakeSlice(t, 2, 2)
		f.fill(s.Index(0), depth+1)
		f.fill(s.Index(1), depth+1)
		v.Set(s)
	case t.Kind() == reflect.Map:
		m := reflect.MakeMap(t)
		k := reflect.New(t.Key()).Elem()
		f.fill(k, depth+1)
		e := reflect.New(t.Elem()).Elem()
		f.fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case t.Kind() == reflect.String:
		if vals := enumValues(t); len(vals) > 0 {
			l := make([]string, 0, len(vals))
			for s := range vals {
				l = append(l, s)
			}
			sort.Strings(l)
			v.SetString(l[f.seq%len(l)])
			return
		}
		v.SetString(fmt.Sprintf("v%d <&'\"> ü", f.seq))
	case t.Kind() == reflect.Bool:
		v.SetBool(f.seq%2 == 0)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		v.SetInt(int64(f.seq))
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		v.SetFloat(float64(f.seq) + 0.25)
	}
}

// diff lists the paths where a and b differ (ResultMetadata ignored).
func diff(path string, a, b reflect.Value, out *[]string) {
	if len(*out) > 20 {
		return
	}
	if a.Type() == timeType {
		if !a.Interface().(time.Time).Equal(b.Interface().(time.Time)) {
			*out = append(*out, fmt.Sprintf("%s: sent %v, got %v", path, a, b))
		}
		return
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				*out = append(*out, fmt.Sprintf("%s: sent nil=%v, got nil=%v", path, a.IsNil(), b.IsNil()))
			}
			return
		}
		diff(path, a.Elem(), b.Elem(), out)
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			fd := a.Type().Field(i)
			if fd.IsExported() && fd.Name != "ResultMetadata" {
				diff(path+"."+fd.Name, a.Field(i), b.Field(i), out)
			}
		}
	case reflect.Slice:
		if a.Len() != b.Len() {
			*out = append(*out, fmt.Sprintf("%s: sent %d items, got %d", path, a.Len(), b.Len()))
			return
		}
		for i := 0; i < a.Len(); i++ {
			diff(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i), out)
		}
	case reflect.Map:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, fmt.Sprintf("%s: sent %v, got %v", path, a, b))
		}
	case reflect.Interface:
	default:
		if a.Interface() != b.Interface() {
			*out = append(*out, fmt.Sprintf("%s: sent %v, got %v", path, a, b))
		}
	}
}

// servedActions lists every action with the SDK client that calls it.
func servedActions(endpoint string) map[string]reflect.Value {
	cfg := SDKConfig(endpoint, "us-west-2")
	clients := []any{ec2.NewFromConfig(cfg), sts.NewFromConfig(cfg), kms.NewFromConfig(cfg), servicequotas.NewFromConfig(cfg)}
	names := []string{"GetCallerIdentity", "ListAliases", "DescribeKey", "ListServiceQuotas", "ListAWSDefaultServiceQuotas"}
	for a := range ec2Actions {
		names = append(names, a)
	}
	out := map[string]reflect.Value{}
	for _, n := range names {
		for _, c := range clients {
			if m := reflect.ValueOf(c).MethodByName(n); m.IsValid() {
				out[n] = m
				break
			}
		}
	}
	return out
}

// TestWireRoundTripEveryMember sends, through the real SDK clients, an input
// with every member set for each served action and checks the world received
// exactly those values; the world answers an output with every member set
// and the test checks the SDK parsed exactly those values.
func TestWireRoundTripEveryMember(t *testing.T) {
	w := newCaptureWorld()
	actions := servedActions(NewTestServer(t, w))
	if len(actions) != len(ec2Actions)+5 {
		t.Fatalf("found SDK methods for %d actions, want %d", len(actions), len(ec2Actions)+5)
	}
	names := make([]string, 0, len(actions))
	for n := range actions {
		names = append(names, n)
	}
	sort.Strings(names)
	f := &filler{}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			m := actions[name]
			in := reflect.New(m.Type().In(1).Elem())
			f.fill(in.Elem(), 0)
			want := reflect.New(m.Type().Out(0).Elem())
			f.fill(want.Elem(), 0)
			w.mu.Lock()
			w.outputs[name] = want.Interface()
			w.mu.Unlock()

			res := m.Call([]reflect.Value{reflect.ValueOf(context.Background()), in})
			if err, _ := res[1].Interface().(error); err != nil {
				t.Fatalf("%s: %v (rejected: %v)", name, err, w.rejected)
			}
			w.mu.Lock()
			got := w.got[name]
			w.mu.Unlock()
			var d []string
			diff("input", in, reflect.ValueOf(got), &d)
			diff("output", want, res[0], &d)
			if len(d) > 0 {
				t.Errorf("%s round trip differs:\n  %s", name, strings.Join(d, "\n  "))
			}
		})
	}
}

// TestLargeAnswersOnKeptAliveConnections is the regression test for
// SafeBodyTransport: many large answers in a row on reused connections never
// fail with "use of closed network connection".
func TestLargeAnswersOnKeptAliveConnections(t *testing.T) {
	w := newCaptureWorld()
	cl := ec2.NewFromConfig(SDKConfig(NewTestServer(t, w), "us-west-2"))
	out := &ec2.DescribeInstancesOutput{}
	(&filler{}).fill(reflect.ValueOf(out).Elem(), 0)
	w.outputs["DescribeInstances"] = out
	for i := range 200 {
		if _, err := cl.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}
