// Package config loads the node configuration (YAML, SPEC §1).
//
// Every top-level key is known; an unknown key, a bad duration or a value
// of the wrong type is an error naming the key (and its line). The drivers
// section accepts both the seed's list form and the map form and is turned
// into JSON objects that drivers decode with encoding/json.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// Defaults (SPEC §1).
const (
	DefaultAPIAddress        = "127.0.0.1:8001"
	DefaultDirectory         = "aquarium-fish-data"
	DefaultAllocationRetry   = 3
	DefaultDBCleanupInterval = 10 * time.Minute
	DefaultLabelRemoveAtMin  = 30 * time.Second
	DefaultLabelRemoveAtMax  = 72 * time.Hour
	// SQLiteFile is the embedded database file inside Directory.
	SQLiteFile = "fish.db"
)

// Config is the node configuration.
type Config struct {
	NodeName     string // node_name [hostname]
	NodeLocation string // node_location
	APIAddress   string // api_address [127.0.0.1:8001]
	NodeAddress  string // node_address: how other nodes reach this one
	Directory    string // directory [aquarium-fish-data]

	// DefaultResourceLifetime applies when a definition's lifetime is "" or
	// "0"; 0 = no timeout.
	DefaultResourceLifetime time.Duration
	// AllocationRetry is how many extra allocation attempts an application
	// gets before ERROR.
	AllocationRetry   int
	DBCleanupInterval time.Duration // dead applications older than this are purged
	LabelRemoveAtMin  time.Duration // bounds of a temporary label's remove_at
	LabelRemoveAtMax  time.Duration

	NodeIdentifiers []string // node_identifiers, matched by resources.node_filter
	NodeSlotsLimit  uint     // node_slots_limit, 0 = no limit

	// Database is "" for the embedded SQLite in Directory, or a postgres://
	// DSN shared by several nodes. It may hold a password: never log it.
	Database string

	TLS TLS

	Drivers []DriverConfig
}

// TLS are the API's TLS options.
type TLS struct {
	Key      string // key: PEM private key file
	Cert     string // cert: PEM certificate file
	CA       string // ca: PEM CA file for client certificates
	Disabled bool   // disabled: plain HTTP
}

// DriverConfig is one driver instance: Name is "aws" or "aws/prod" (kind
// "aws", second instance); Cfg is its configuration as a JSON object.
type DriverConfig struct {
	Name string
	Cfg  json.RawMessage
}

// Kind is the driver kind: the part of Name before "/".
func (d DriverConfig) Kind() string {
	kind, _, _ := strings.Cut(d.Name, "/")
	return kind
}

// Default returns the configuration used for keys a file leaves out.
func Default() *Config {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "aquarium-fish-node"
	}
	return &Config{
		NodeName:          name,
		APIAddress:        DefaultAPIAddress,
		Directory:         DefaultDirectory,
		AllocationRetry:   DefaultAllocationRetry,
		DBCleanupInterval: DefaultDBCleanupInterval,
		LabelRemoveAtMin:  DefaultLabelRemoveAtMin,
		LabelRemoveAtMax:  DefaultLabelRemoveAtMax,
	}
}

// Load reads the YAML file at path over Default().
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse reads YAML over Default(). An empty document gives the defaults.
func Parse(data []byte) (*Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c, c.Validate()
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("config: more than one YAML document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if isNull(root) {
		return c, c.Validate()
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config: line %d: top level must be a mapping of keys", root.Line)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		key := k.Value
		if seen[key] {
			return nil, keyErr(key, k, errors.New("duplicate key"))
		}
		seen[key] = true
		if err := c.set(key, v); err != nil {
			return nil, keyErr(key, v, err)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func keyErr(key string, n *yaml.Node, err error) error {
	return fmt.Errorf("config: %s (line %d): %w", key, n.Line, err)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// set decodes the value of one top-level key. A null value keeps the default.
func (c *Config) set(key string, v *yaml.Node) error {
	set, ok := setters[key]
	if !ok {
		return errors.New("unknown key")
	}
	if isNull(v) {
		return nil
	}
	return set(c, v)
}

var setters = map[string]func(c *Config, v *yaml.Node) error{
	"node_name":                 func(c *Config, v *yaml.Node) error { return str(v, &c.NodeName) },
	"node_location":             func(c *Config, v *yaml.Node) error { return str(v, &c.NodeLocation) },
	"api_address":               func(c *Config, v *yaml.Node) error { return str(v, &c.APIAddress) },
	"node_address":              func(c *Config, v *yaml.Node) error { return str(v, &c.NodeAddress) },
	"directory":                 func(c *Config, v *yaml.Node) error { return str(v, &c.Directory) },
	"database":                  func(c *Config, v *yaml.Node) error { return str(v, &c.Database) },
	"default_resource_lifetime": func(c *Config, v *yaml.Node) error { return dur(v, &c.DefaultResourceLifetime) },
	"db_cleanup_interval":       func(c *Config, v *yaml.Node) error { return dur(v, &c.DBCleanupInterval) },
	"label_remove_at_min":       func(c *Config, v *yaml.Node) error { return dur(v, &c.LabelRemoveAtMin) },
	"label_remove_at_max":       func(c *Config, v *yaml.Node) error { return dur(v, &c.LabelRemoveAtMax) },
	"allocation_retry": func(c *Config, v *yaml.Node) error {
		if err := scalar(v, "!!int", "an integer"); err != nil {
			return err
		}
		return v.Decode(&c.AllocationRetry)
	},
	"node_slots_limit": func(c *Config, v *yaml.Node) error {
		if err := scalar(v, "!!int", "a non-negative integer"); err != nil {
			return err
		}
		var n int64
		if err := v.Decode(&n); err != nil {
			return err
		}
		if n < 0 {
			return errors.New("must be a non-negative integer")
		}
		c.NodeSlotsLimit = uint(n)
		return nil
	},
	"node_identifiers": func(c *Config, v *yaml.Node) error {
		if v.Kind != yaml.SequenceNode {
			return errors.New("must be a list of strings")
		}
		c.NodeIdentifiers = nil
		for _, item := range v.Content {
			if item.Kind != yaml.ScalarNode || isNull(item) {
				return fmt.Errorf("line %d: must be a list of strings", item.Line)
			}
			c.NodeIdentifiers = append(c.NodeIdentifiers, item.Value)
		}
		return nil
	},
	"tls":     func(c *Config, v *yaml.Node) error { return c.TLS.set(v) },
	"drivers": func(c *Config, v *yaml.Node) error { return c.setDrivers(v) },
}

// scalar checks that v is a scalar with the given resolved tag.
func scalar(v *yaml.Node, tag, what string) error {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != tag {
		return fmt.Errorf("must be %s", what)
	}
	return nil
}

// str accepts any scalar as a string (so node_name: 1234 works).
func str(v *yaml.Node, dst *string) error {
	if v.Kind != yaml.ScalarNode {
		return errors.New("must be a string")
	}
	*dst = v.Value
	return nil
}

// dur parses a duration with core.ParseDuration (Go syntax plus d, w, M, y).
func dur(v *yaml.Node, dst *time.Duration) error {
	if v.Kind != yaml.ScalarNode {
		return errors.New(`must be a duration like "10m" or "1d12h"`)
	}
	d, err := core.ParseDuration(v.Value)
	if err != nil {
		return fmt.Errorf(`%w (want e.g. "10m", "1d12h", "1M1d")`, err)
	}
	*dst = d
	return nil
}

func (t *TLS) set(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return errors.New("must be a mapping with key, cert, ca, disabled")
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		var err error
		if isNull(val) && (k.Value == "key" || k.Value == "cert" || k.Value == "ca" || k.Value == "disabled") {
			continue
		}
		switch k.Value {
		case "key":
			err = str(val, &t.Key)
		case "cert":
			err = str(val, &t.Cert)
		case "ca":
			err = str(val, &t.CA)
		case "disabled":
			if err = scalar(val, "!!bool", "true or false"); err == nil {
				err = val.Decode(&t.Disabled)
			}
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			return fmt.Errorf("%s (line %d): %w", k.Value, k.Line, err)
		}
	}
	return nil
}

// Validate checks values that are well-formed YAML but make no sense.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.NodeName) == "" {
		return errors.New("config: node_name: must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.APIAddress); err != nil {
		return fmt.Errorf("config: api_address: %q is not host:port: %w", c.APIAddress, err)
	}
	if c.NodeAddress != "" {
		if _, _, err := net.SplitHostPort(c.NodeAddress); err != nil {
			return fmt.Errorf("config: node_address: %q is not host:port: %w", c.NodeAddress, err)
		}
	}
	if c.Directory == "" {
		return errors.New("config: directory: must not be empty")
	}
	if c.AllocationRetry < 0 {
		return errors.New("config: allocation_retry: must not be negative")
	}
	for key, d := range map[string]time.Duration{
		"default_resource_lifetime": c.DefaultResourceLifetime,
		"label_remove_at_min":       c.LabelRemoveAtMin,
		"label_remove_at_max":       c.LabelRemoveAtMax,
	} {
		if d < 0 {
			return fmt.Errorf("config: %s: must not be negative, got %v", key, d)
		}
	}
	if c.DBCleanupInterval <= 0 {
		return fmt.Errorf("config: db_cleanup_interval: must be positive, got %v", c.DBCleanupInterval)
	}
	if c.LabelRemoveAtMin > c.LabelRemoveAtMax {
		return fmt.Errorf("config: label_remove_at_min (%v) must not exceed label_remove_at_max (%v)",
			c.LabelRemoveAtMin, c.LabelRemoveAtMax)
	}
	if c.Database != "" && !c.IsPostgres() {
		// Do not echo the value: a DSN may carry a password.
		return errors.New(`config: database: must be empty (embedded SQLite) or a "postgres://" DSN`)
	}
	if !c.TLS.Disabled && (c.TLS.Key == "") != (c.TLS.Cert == "") {
		return errors.New("config: tls: key and cert must be set together")
	}
	return nil
}

// IsPostgres reports whether Database selects PostgreSQL.
func (c *Config) IsPostgres() bool {
	return strings.HasPrefix(c.Database, "postgres://") || strings.HasPrefix(c.Database, "postgresql://")
}

// SQLitePath is the embedded database file (when Database is empty).
func (c *Config) SQLitePath() string {
	return filepath.Join(c.Directory, SQLiteFile)
}

// Driver returns the configuration of the driver instance name.
func (c *Config) Driver(name string) (DriverConfig, bool) {
	for _, d := range c.Drivers {
		if d.Name == name {
			return d, true
		}
	}
	return DriverConfig{}, false
}
