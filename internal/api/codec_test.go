package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
)

// The cached List encoding must be exactly the protobuf JSON mapping.
func TestApplicationListEncodingMatchesProtoJSON(t *testing.T) {
	md, _ := structpb.NewStruct(map[string]any{"N": 1000000, "s": "x\"y", "nested": map[string]any{"a": []any{1, "b"}}})
	resp := &pb.ApplicationServiceListResponse{Status: true, Message: "2 \"application(s)\"", Data: []*pb.Application{
		{Uid: "u1", OwnerName: "alice", LabelUid: "l1", Metadata: md, CreatedAt: timestamppb.New(time.Unix(1700000000, 5).UTC())},
		{Uid: "u2", LabelUid: "l1"},
	}}
	for _, r := range []*pb.ApplicationServiceListResponse{resp, {Data: []*pb.Application{}}} {
		fast, err := jsonCodec{name: "json"}.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := jsonCodec{name: "json"}.Marshal(r) // from the cache
		slow, err := jsonMarshal.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var a, b, c any
		if err := json.Unmarshal(fast, &a); err != nil {
			t.Fatalf("invalid JSON %s: %v", fast, err)
		}
		_ = json.Unmarshal(slow, &b)
		_ = json.Unmarshal(again, &c)
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(a, c) {
			t.Fatalf("cached encoding differs:\n%s\n%s", fast, slow)
		}
	}
}

func TestConvertYAML(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{"a: 1\nb: [x, 2]\n", `{"a":1,"b":["x",2]}`, ""},
		{"", `{}`, ""},
		{"{1: x}", "", "not a string"},
		{"a: [", "", "invalid YAML"},
		{"t: 2026-01-02T03:04:05Z", `{"t":"2026-01-02T03:04:05Z"}`, ""},
	}
	for _, c := range cases {
		got, err := convertYAML([]byte(c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%q: %s %v, want %s", c.in, got, err, c.want)
		}
	}
}

// FuzzConvertYAML: any body either converts to valid JSON or is rejected
// with an error; it never panics.
func FuzzConvertYAML(f *testing.F) {
	for _, s := range []string{"label: {name: x}", "a: [1, 2, {b: c}]", "{1: 2}", "- a\n- b", "x: &a [*a]", "t: 2026-01-01", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := convertYAML(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q from %q", out, in)
		}
	})
}
