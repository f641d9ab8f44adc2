package aws

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/aquarium-fish/aquarium-fish/internal/strarena"
)

// The direct DriverData encoding matches encoding/json byte for byte, and
// the decoder agrees with encoding/json on every input.
func TestDriverDataMatchesEncodingJSON(t *testing.T) {
	vals := []string{"", "i-0abc", "h-0123456789abcdef0", "us-west-2a", "a<b", "q\"uote", "back\\slash",
		"tab\t", "é", "\u2028", "\xff", "&", "del\x7f"}
	for _, kn := range vals {
		for _, other := range vals {
			for _, gen := range []bool{false, true} {
				dd := DriverData{KeyName: kn, KeyGenerated: gen, HostID: other, Pool: "mac", Zone: other, Subnet: "subnet-1"}
				want, err := json.Marshal(dd)
				if err != nil {
					t.Fatal(err)
				}
				got, err := marshalDriverData(dd)
				if err != nil || string(got) != string(want) {
					t.Fatalf("marshal %+v = %s, %v; want %s", dd, got, err, want)
				}
				var back, wantBack DriverData
				if err := json.Unmarshal(want, &wantBack); err != nil {
					t.Fatal(err)
				}
				if err := unmarshalDriverData(got, &back); err != nil || back != wantBack {
					t.Fatalf("unmarshal %s = %+v, %v; want %+v", got, back, err, wantBack)
				}
			}
		}
	}
	if got, _ := marshalDriverData(DriverData{}); string(got) != "{}" {
		t.Fatalf("empty = %s", got)
	}
	inputs := []string{`{}`, ` {}`, `{"pool":"p"}`, `{"pool":"p",}`, `{"pool":"p"`, `{"POOL":"p"}`,
		`{"pool":"p","pool":"q"}`, `{"pool":null}`, `{"pool":1}`, `{"key_generated":"true"}`,
		`{"key_generated":true,"zone":"z"}`, `{"key_generated":false}`, `{"key_generated":tru}`,
		`{"other":"x"}`, `{"host_id":"a\"b"}`, `{"host_id":"a\u0041"}`, `{"zone":"z"} `, `[]`, ``, `{"zone":"z",,"pool":"p"}`,
		`{"zone""z"}`, `{"zone":"z"x}`, `{"zone":"z","pool":"p"}`, `{"pool":""}`, `{"key_generated":true,"key_name":"k"}`,
		`{"key_name":"k","key_generated":true,"host_id":"h","pool":"p","zone":"z","subnet":"s"}`, `{"subnet":"s"`,
		`{"pool":"p"}}`, `{"pool":"p\"}`, `{"key_generated":true}`, `{"key_generated":true,}`, `{,"pool":"p"}`}
	for _, in := range inputs {
		start := DriverData{Pool: "keep", KeyGenerated: true}
		var want, got = start, start
		werr := json.Unmarshal([]byte(in), &want)
		gerr := unmarshalDriverData([]byte(in), &got)
		if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) || !reflect.DeepEqual(want, got) {
			t.Fatalf("%q: got %+v, %v; encoding/json %+v, %v", in, got, gerr, want, werr)
		}
	}
}

// TestAppendDriverData: appending to a buffer that already holds bytes
// (Allocate's resource buffer) writes the same JSON after them.
func TestAppendDriverData(t *testing.T) {
	dd := DriverData{KeyName: "k", KeyGenerated: true, HostID: "h-1", Pool: "macs", Zone: "us-west-2a", Subnet: "subnet-1"}
	for _, d := range []DriverData{dd, {KeyGenerated: true}, {}, {Zone: "a<b"}} {
		want, _ := json.Marshal(d)
		got, err := appendDriverData([]byte("xy"), d)
		if err != nil || string(got) != "xy"+string(want) {
			t.Fatalf("append %+v = %s, %v; want xy%s", d, got, err, want)
		}
	}
}

func BenchmarkDriverData(b *testing.B) {
	dd := DriverData{HostID: "h-0123456789abcdef0", Pool: "macs", Zone: "us-west-2a", Subnet: "subnet-0123456789abcdef0"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		data, err := marshalDriverData(dd)
		if err != nil {
			b.Fatal(err)
		}
		var back DriverData
		if err := unmarshalDriverData(data, &back); err != nil || back != dd {
			b.Fatal(back, err)
		}
	}
}

// The arena's tokens and names equal clientTokenOf's and defaultName's,
// and stay unchanged while later ones fill the chunk and move on.
func TestTokenArena(t *testing.T) {
	var a strarena.Arena
	type made struct{ tok, name, wantTok, wantName string }
	var all []made
	for i := range 300 { // several chunks
		app := "sim-" + strconv.Itoa(i)
		if i%50 == 7 {
			app = strings.Repeat("u", 60+i%3) // the hashed token
		}
		label := []string{"", "mac-label"}[i%2]
		withName := i%3 != 0
		tok, name := arenaTokenAndName(&a, app, label, "0123abcd", i%4, withName)
		wantName := ""
		if withName {
			wantName = defaultName(label, app)
		}
		all = append(all, made{tok, name, clientTokenOf(app, "0123abcd", i%4), wantName})
	}
	for i, m := range all {
		if m.tok != m.wantTok || m.name != m.wantName {
			t.Fatalf("%d: token, name = %q, %q; want %q, %q", i, m.tok, m.name, m.wantTok, m.wantName)
		}
	}
	if n := testing.AllocsPerRun(100, func() { arenaTokenAndName(&a, "sim-12345", "", "0123abcd", 0, true) }); n >= 1 {
		t.Errorf("allocations per token and name = %v, want < 1", n)
	}
}
