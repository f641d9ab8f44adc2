package config

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

func TestDefault(t *testing.T) {
	c := Default()
	host, _ := os.Hostname()
	if host == "" {
		host = "aquarium-fish-node"
	}
	want := &Config{
		NodeName:          host,
		APIAddress:        "127.0.0.1:8001",
		Directory:         "aquarium-fish-data",
		AllocationRetry:   3,
		DBCleanupInterval: 10 * time.Minute,
		LabelRemoveAtMin:  30 * time.Second,
		LabelRemoveAtMax:  72 * time.Hour,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Default():\n got %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	for _, doc := range []string{"", "\n# only a comment\n", "---\n", "~"} {
		got, err := Parse([]byte(doc))
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Parse(%q) = %+v, want the defaults", doc, got)
		}
	}
}

func TestParseAllKeys(t *testing.T) {
	c, err := Parse([]byte(`
node_name: fish-1
node_location: eu-west
api_address: 0.0.0.0:8443
node_address: 10.0.0.5:8443
directory: /var/lib/fish
default_resource_lifetime: 1d12h
allocation_retry: 5
db_cleanup_interval: 1w
label_remove_at_min: 1m
label_remove_at_max: 1M1d
node_identifiers: [eu, mac, "arch:arm64"]
node_slots_limit: 8
database: postgres://fish:secret@db:5432/fish?sslmode=disable
tls:
  key: /etc/fish/key.pem
  cert: /etc/fish/cert.pem
  ca: /etc/fish/ca.pem
  disabled: false
drivers:
  - name: test
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		NodeName:                "fish-1",
		NodeLocation:            "eu-west",
		APIAddress:              "0.0.0.0:8443",
		NodeAddress:             "10.0.0.5:8443",
		Directory:               "/var/lib/fish",
		DefaultResourceLifetime: 36 * time.Hour,
		AllocationRetry:         5,
		DBCleanupInterval:       core.Week,
		LabelRemoveAtMin:        time.Minute,
		LabelRemoveAtMax:        core.Month + core.Day,
		NodeIdentifiers:         []string{"eu", "mac", "arch:arm64"},
		NodeSlotsLimit:          8,
		Database:                "postgres://fish:secret@db:5432/fish?sslmode=disable",
		TLS:                     TLS{Key: "/etc/fish/key.pem", Cert: "/etc/fish/cert.pem", CA: "/etc/fish/ca.pem"},
		Drivers:                 []DriverConfig{{Name: "test", Cfg: json.RawMessage(`{}`)}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	if !c.IsPostgres() {
		t.Fatal("IsPostgres: false for a postgres:// DSN")
	}
}

func TestDurations(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"10m", 10 * time.Minute},
		{"10m30s", 10*time.Minute + 30*time.Second},
		{"1d", 24 * time.Hour},
		{"2w", 14 * 24 * time.Hour},
		{"1M1d", 31 * 24 * time.Hour},
		{"1y", 365 * 24 * time.Hour},
		{"10d5h2m3s", 10*24*time.Hour + 5*time.Hour + 2*time.Minute + 3*time.Second},
		{`"0"`, 0},
		{"0", 0},
	} {
		c, err := Parse([]byte("default_resource_lifetime: " + tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if c.DefaultResourceLifetime != tc.want {
			t.Errorf("%s: got %v, want %v", tc.in, c.DefaultResourceLifetime, tc.want)
		}
	}
}

func TestNullKeepsDefault(t *testing.T) {
	c, err := Parse([]byte("api_address:\nallocation_retry: ~\ndb_cleanup_interval: null\ntls:\n  key: ~\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.APIAddress != DefaultAPIAddress || c.AllocationRetry != 3 || c.DBCleanupInterval != 10*time.Minute {
		t.Fatalf("null changed a default: %+v", c)
	}
}

// seedAWS is the seed's "Configuration" block (aws-driver-wiki.txt) with
// every placeholder type replaced by a value, comments kept.
const seedAWS = `
drivers:
  - name: aws
    cfg:
      region:     us-west-2  # The AWS EC2 region to use
      key_id:     AKIAEXAMPLEKEYID  # IAM role credential key id
      secret_key: wJalrEXAMPLESECRET  # IAM role credential secret key

      account_ids:   [ "123456789012", "210987654321" ]  # Trusted account IDs to filter vpc, subnet, sg, images, snapshots... Default is the same as creds account
      instance_tags:   # Instance tags to use when this node provision them (to identify the node for example)
        Node: fish-1
        Team: ci

      dedicated_pool:  # Managed dedicated pools are used to allocate dedicated hosts on demand and manage their life to save some money
        macs:
          type: mac2.metal  # Type of the dedicated hosts pool (example: "mac2.metal")
          zone: us-west-2c  # Where to allocate the dedicated host (example: "us-west-2c")
          max:  10          # Maximum dedicated hosts to allocate

          # * When this option is unset or 0 - no optimization is enabled.
          # * When it's set - then it's a duration to stay idle and then allocate and terminate empty
          # instance to trigger scrubbing.
          scrubbing_delay: 10m30s  # Format example: 10m30s
`

func TestSeedAWSListForm(t *testing.T) {
	c, err := Parse([]byte(seedAWS))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Drivers) != 1 || c.Drivers[0].Name != "aws" || c.Drivers[0].Kind() != "aws" {
		t.Fatalf("drivers: %+v", c.Drivers)
	}
	// The driver decodes its cfg with encoding/json.
	var cfg struct {
		Region       string            `json:"region"`
		KeyID        string            `json:"key_id"`
		SecretKey    string            `json:"secret_key"`
		AccountIDs   []string          `json:"account_ids"`
		InstanceTags map[string]string `json:"instance_tags"`
		Pools        map[string]struct {
			Type           string        `json:"type"`
			Zone           string        `json:"zone"`
			Max            uint          `json:"max"`
			ScrubbingDelay core.Duration `json:"scrubbing_delay"`
		} `json:"dedicated_pool"`
	}
	dec := json.NewDecoder(strings.NewReader(string(c.Drivers[0].Cfg)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decode %s: %v", c.Drivers[0].Cfg, err)
	}
	if cfg.Region != "us-west-2" || cfg.KeyID != "AKIAEXAMPLEKEYID" || cfg.SecretKey != "wJalrEXAMPLESECRET" {
		t.Fatalf("credentials: %+v", cfg)
	}
	if !reflect.DeepEqual(cfg.AccountIDs, []string{"123456789012", "210987654321"}) {
		t.Fatalf("account_ids: %v", cfg.AccountIDs)
	}
	if !reflect.DeepEqual(cfg.InstanceTags, map[string]string{"Node": "fish-1", "Team": "ci"}) {
		t.Fatalf("instance_tags: %v", cfg.InstanceTags)
	}
	p := cfg.Pools["macs"]
	if p.Type != "mac2.metal" || p.Zone != "us-west-2c" || p.Max != 10 || p.ScrubbingDelay.D() != 10*time.Minute+30*time.Second {
		t.Fatalf("dedicated_pool: %+v", cfg.Pools)
	}
	// Order of the file is kept in the JSON text.
	want := `{"region":"us-west-2","key_id":"AKIAEXAMPLEKEYID","secret_key":"wJalrEXAMPLESECRET",` +
		`"account_ids":["123456789012","210987654321"],"instance_tags":{"Node":"fish-1","Team":"ci"},` +
		`"dedicated_pool":{"macs":{"type":"mac2.metal","zone":"us-west-2c","max":10,"scrubbing_delay":"10m30s"}}}`
	if string(c.Drivers[0].Cfg) != want {
		t.Fatalf("cfg JSON:\n got %s\nwant %s", c.Drivers[0].Cfg, want)
	}
}

func TestDriversMapForm(t *testing.T) {
	c, err := Parse([]byte(`
drivers:
  providers:
    aws:
      region: us-west-2
      dedicated_pool:
        macs: {type: mac2.metal, zones: [us-west-2a, us-west-2c], max: 4, release_delay: 1d}
    aws/prod:
      region: eu-west-1
    test:
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []DriverConfig{
		{Name: "aws", Cfg: json.RawMessage(`{"region":"us-west-2","dedicated_pool":{"macs":{"type":"mac2.metal","zones":["us-west-2a","us-west-2c"],"max":4,"release_delay":"1d"}}}`)},
		{Name: "aws/prod", Cfg: json.RawMessage(`{"region":"eu-west-1"}`)},
		{Name: "test", Cfg: json.RawMessage(`{}`)},
	}
	if len(c.Drivers) != len(want) {
		t.Fatalf("drivers: %+v", c.Drivers)
	}
	for i := range want {
		if c.Drivers[i].Name != want[i].Name || string(c.Drivers[i].Cfg) != string(want[i].Cfg) {
			t.Errorf("driver %d: got %s %s, want %s %s", i, c.Drivers[i].Name, c.Drivers[i].Cfg, want[i].Name, want[i].Cfg)
		}
	}
	if d, ok := c.Driver("aws/prod"); !ok || d.Kind() != "aws" {
		t.Fatalf("Driver(aws/prod) = %+v, %v", d, ok)
	}
	if _, ok := c.Driver("gcp"); ok {
		t.Fatal("Driver(gcp) found")
	}
}

func TestDriverCfgScalarsAndAnchors(t *testing.T) {
	c, err := Parse([]byte(`
drivers:
  - name: test
    cfg:
      base: &base {region: us-east-1, retries: 2}
      merged:
        <<: *base
        retries: 5
      f: 1.5
      big: 18446744073709551615
      hex: 0x10
      yes_str: "yes"
      on: true
      nothing: null
      when: 2024-01-02
      list: [1, "two", {three: 3}]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"base":{"region":"us-east-1","retries":2},"merged":{"retries":5,"region":"us-east-1"},` +
		`"f":1.5,"big":18446744073709551615,"hex":16,"yes_str":"yes","on":true,"nothing":null,` +
		`"when":"2024-01-02","list":[1,"two",{"three":3}]}`
	if got := string(c.Drivers[0].Cfg); got != want {
		t.Fatalf("cfg JSON:\n got %s\nwant %s", got, want)
	}
	if !json.Valid(c.Drivers[0].Cfg) {
		t.Fatal("cfg is not valid JSON")
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // substrings of the error
	}{
		{"unknown key", "node_nmae: x", []string{"node_nmae", "unknown key", "line 1"}},
		{"duplicate key", "node_name: a\nnode_name: b", []string{"node_name", "duplicate"}},
		{"bad duration", "db_cleanup_interval: 10 minutes", []string{"db_cleanup_interval", "invalid duration"}},
		{"bare number duration", "label_remove_at_min: 30", []string{"label_remove_at_min"}},
		{"duration list", "default_resource_lifetime: [1h]", []string{"default_resource_lifetime", "duration"}},
		{"bad unit", "label_remove_at_max: 3x", []string{"label_remove_at_max"}},
		{"negative lifetime", "default_resource_lifetime: -1h", []string{"default_resource_lifetime", "negative"}},
		{"zero cleanup", "db_cleanup_interval: 0", []string{"db_cleanup_interval", "positive"}},
		{"min over max", "label_remove_at_min: 4d\nlabel_remove_at_max: 3d", []string{"label_remove_at_min", "label_remove_at_max"}},
		{"retry not int", "allocation_retry: three", []string{"allocation_retry", "integer"}},
		{"retry negative", "allocation_retry: -1", []string{"allocation_retry", "negative"}},
		{"slots negative", "node_slots_limit: -2", []string{"node_slots_limit"}},
		{"slots float", "node_slots_limit: 1.5", []string{"node_slots_limit"}},
		{"identifiers scalar", "node_identifiers: eu", []string{"node_identifiers", "list"}},
		{"identifiers nested", "node_identifiers: [[a]]", []string{"node_identifiers", "list"}},
		{"name list", "node_name: [a]", []string{"node_name", "string"}},
		{"empty name", "node_name: ''", []string{"node_name", "empty"}},
		{"api address", "api_address: localhost", []string{"api_address", "host:port"}},
		{"node address", "node_address: 10.0.0.1", []string{"node_address", "host:port"}},
		{"database", "database: mysql://u:hunter2@h/db", []string{"database", "postgres://"}},
		{"tls unknown", "tls: {keyfile: a}", []string{"tls", "keyfile", "unknown key"}},
		{"tls disabled", "tls: {disabled: maybe}", []string{"tls", "disabled", "true or false"}},
		{"tls half", "tls: {key: k.pem}", []string{"tls", "key and cert"}},
		{"tls scalar", "tls: on", []string{"tls", "mapping"}},
		{"drivers scalar", "drivers: aws", []string{"drivers", "list"}},
		{"driver no name", "drivers: [{cfg: {}}]", []string{"drivers", "[0]", "name"}},
		{"driver name type", "drivers: [{name: [aws]}]", []string{"drivers", "name", "string"}},
		{"driver bad name", "drivers: [{name: aws/}]", []string{"drivers", "aws/", "KIND/INSTANCE"}},
		{"driver unknown key", "drivers: [{name: aws, config: {}}]", []string{"drivers", "config", "unknown key"}},
		{"driver cfg scalar", "drivers: [{name: aws, cfg: us-west-2}]", []string{"drivers", "cfg", "mapping"}},
		{"driver cfg inf", "drivers: [{name: aws, cfg: {x: .inf}}]", []string{"drivers", "cfg", "x", "JSON"}},
		{"driver cfg dup", "drivers: [{name: aws, cfg: {a: 1, a: 2}}]", []string{"drivers", "cfg", "a", "duplicate"}},
		{"driver dup", "drivers: [{name: aws}, {name: aws}]", []string{"drivers", "[1]", "aws", "twice"}},
		{"driver entry scalar", "drivers: [aws]", []string{"drivers", "[0]", "mapping"}},
		{"map unknown", "drivers: {gates: {}}", []string{"drivers", "gates", "unknown key"}},
		{"map providers list", "drivers: {providers: [aws]}", []string{"drivers", "providers", "mapping"}},
		{"map cfg scalar", "drivers: {providers: {aws: x}}", []string{"drivers", "providers.aws", "mapping"}},
		{"map bad name", "drivers: {providers: {/x: {}}}", []string{"drivers", "providers./x", "KIND"}},
		{"top level list", "- a\n- b", []string{"mapping"}},
		{"two documents", "node_name: a\n---\nnode_name: b", []string{"more than one"}},
		{"invalid yaml", "node_name: [a", []string{"config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("Parse(%q): no error", tc.doc)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks a password: %q", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fish.yml")
	if err := os.WriteFile(path, []byte("node_name: n1\ndirectory: "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeName != "n1" || c.SQLitePath() != filepath.Join(dir, "fish.db") || c.IsPostgres() {
		t.Fatalf("loaded %+v", c)
	}
	if _, err := Load(filepath.Join(dir, "missing.yml")); err == nil || !strings.Contains(err.Error(), "missing.yml") {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("allocation_retry: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "bad.yml") || !strings.Contains(err.Error(), "allocation_retry") {
		t.Fatalf("bad file: %v", err)
	}
}

func TestLogValueHidesSecrets(t *testing.T) {
	c, err := Parse([]byte(seedAWS + "database: postgres://fish:hunter2@db/fish\n"))
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("config", "cfg", c, "driver", c.Drivers[0])
	out := buf.String()
	for _, secret := range []string{"hunter2", "wJalrEXAMPLESECRET", "AKIAEXAMPLEKEYID"} {
		if strings.Contains(out, secret) {
			t.Errorf("log leaks %q: %s", secret, out)
		}
	}
	for _, want := range []string{`"database":"postgres"`, `"drivers":["aws"]`, `"driver":"aws"`, `"allocation_retry":3`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
}
