package meta

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSerializeSpecExample(t *testing.T) {
	data := map[string]any{"test1": "test2", "testk": "testv"}
	cases := map[string]string{
		"json":   `{"test1":"test2","testk":"testv"}`,
		"env":    "test1=test2\ntestk=testv\n",
		"export": "export test1=test2\nexport testk=testv\n",
		"ps1":    "$test1='test2'\n$testk='testv'\n",
	}
	for format, want := range cases {
		got, err := Serialize(data, format, "")
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if string(got) != want {
			t.Errorf("%s:\n got %q\nwant %q", format, got, want)
		}
	}
}

func TestSerializeDetails(t *testing.T) {
	merged, err := Merge(json.RawMessage(`{"big":1000000,"pi":3.5,"n":null,"arr":[1,"a"],"a":{"b":"x y","c":{"d":true}},"q":"it's","9lives":"cat","k-e.y":"v"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	env, err := Serialize(merged, "env", "pre")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"pre_a_b='x y'",
		"pre_a_c_d=true",
		`pre_arr='[1,"a"]'`,
		"pre_big=1000000",
		"pre_key=v",
		"pre_lives=cat",
		"pre_n=",
		"pre_pi=3.5",
		`pre_q='it'"'"'s'`,
	}, "\n") + "\n"
	if string(env) != want {
		t.Errorf("env:\n got %q\nwant %q", env, want)
	}
	ps1, err := Serialize(merged, "ps1", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ps1), "$q='it''s'\n") || !strings.Contains(string(ps1), "$big='1000000'\n") {
		t.Errorf("ps1: %q", ps1)
	}
	js, err := Serialize(merged, "json", "ignored")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(js), `{"9lives":"cat","a":{"b":"x y"`) || !strings.Contains(string(js), `"big":1000000`) {
		t.Errorf("json: %s", js)
	}
}

func TestSerializeErrors(t *testing.T) {
	if _, err := Serialize(map[string]any{"a_b": "1", "a": map[string]any{"b": "2"}}, "env", ""); err == nil || !strings.Contains(err.Error(), "a_b") {
		t.Errorf("collision not reported: %v", err)
	}
	if _, err := Serialize(map[string]any{"a": "1"}, "yaml", ""); err == nil || !strings.Contains(err.Error(), "yaml") {
		t.Errorf("bad format: %v", err)
	}
	if _, err := Serialize(map[string]any{"---": "1"}, "env", ""); err == nil {
		t.Error("unusable key accepted")
	}
	if _, err := Merge(json.RawMessage(`[1]`), nil); err == nil || !strings.Contains(err.Error(), "application metadata") {
		t.Errorf("bad app metadata: %v", err)
	}
}

func TestMergeLabelWins(t *testing.T) {
	m, err := Merge(json.RawMessage(`{"a":"app","b":"app"}`), json.RawMessage(`{"b":"label"}`))
	if err != nil {
		t.Fatal(err)
	}
	if m["a"] != "app" || m["b"] != "label" {
		t.Errorf("merge: %v", m)
	}
}
