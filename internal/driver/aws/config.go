package aws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver/aws/pool"
)

// Default waits of the snapshot and image tasks.
const (
	DefaultSnapshotCreateWait = 2 * time.Hour
	DefaultImageCreateWait    = 2 * time.Hour
	DefaultInstanceKeyPrefix  = "aquarium-"
)

// Config is the driver config (the `cfg` object of the node's drivers section).
type Config struct {
	Region    string `json:"region"`     // AWS region
	KeyID     string `json:"key_id"`     // static credentials; empty = default AWS chain
	SecretKey string `json:"secret_key"` // never logged

	AccountIDs   []string          `json:"account_ids"`   // trusted owners (caller's account always added)
	InstanceTags map[string]string `json:"instance_tags"` // tags on everything this node creates; override label tags

	// DedicatedPool maps a pool name to its config.
	DedicatedPool map[string]*pool.Config `json:"dedicated_pool"`

	// InstanceKey: "" (none), "generate" (a key pair per instance) or the name
	// of an existing key pair.
	InstanceKey       string `json:"instance_key"`
	InstanceKeyPrefix string `json:"instance_key_prefix"` // name prefix of generated key pairs

	// BaseURL points every AWS client at another endpoint (e.g. the emulator).
	BaseURL string `json:"base_url"`

	SnapshotCreateWait core.Duration `json:"snapshot_create_wait"` // bound of snapshot waits (default 2h)
	ImageCreateWait    core.Duration `json:"image_create_wait"`    // bound of image waits (default 2h)
}

// InstanceKeyGenerate is the instance_key value that creates a key pair per instance.
const InstanceKeyGenerate = "generate"

var (
	accountIDRe = regexp.MustCompile(`^[0-9]{12}$`)
	regionRe    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	keyNameRe   = regexp.MustCompile(`^[\x20-\x7e]{1,255}$`)
)

// String describes the config without secrets (safe to log).
func (c Config) String() string {
	pools := make([]string, 0, len(c.DedicatedPool))
	for k := range c.DedicatedPool {
		pools = append(pools, k)
	}
	sort.Strings(pools)
	creds := "default-chain"
	if c.KeyID != "" {
		creds = "static"
	}
	return fmt.Sprintf("region=%s credentials=%s accounts=%v pools=%v instance_key=%q base_url=%q",
		c.Region, creds, c.AccountIDs, pools, c.InstanceKey, c.BaseURL)
}

// ParseConfig decodes and validates the driver config JSON. Unknown keys and
// invalid values are errors naming the key.
func ParseConfig(data []byte) (*Config, error) {
	cfg := &Config{}
	data = bytes.TrimSpace(data)
	if len(data) > 0 && !bytes.Equal(data, []byte("null")) {
		// dedicated_pool is decoded separately so its errors carry the pool name.
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(data, &raw); err != nil {
			return nil, fmt.Errorf("aws config: %w", err)
		}
		poolsRaw, hasPools := raw["dedicated_pool"]
		delete(raw, "dedicated_pool")
		rest, err := json.Marshal(raw)
		if err != nil {
			return nil, fmt.Errorf("aws config: %w", err)
		}
		if err := decodeStrict(rest, cfg); err != nil {
			return nil, fmt.Errorf("aws config: %w", err)
		}
		if hasPools && !bytes.Equal(bytes.TrimSpace(poolsRaw), []byte("null")) {
			var pools map[string]json.RawMessage
			if err := json.Unmarshal(poolsRaw, &pools); err != nil {
				return nil, fmt.Errorf("aws config: dedicated_pool: must be a map of pool name to pool config: %w", err)
			}
			cfg.DedicatedPool = make(map[string]*pool.Config, len(pools))
			for name, pr := range pools {
				pc := &pool.Config{}
				if err := decodeStrict(pr, pc); err != nil {
					return nil, fmt.Errorf("aws config: dedicated_pool.%s: %w", name, err)
				}
				pc.Name = name
				cfg.DedicatedPool[name] = pc
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeStrict decodes a JSON object into the struct v points to, key by
// key, so that unknown keys and bad values are errors naming the key.
func decodeStrict(data []byte, v any) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("must be a JSON object: %w", err)
	}
	rv := reflect.ValueOf(v).Elem()
	rt := rv.Type()
	fields := map[string]int{}
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" && rt.Field(i).IsExported() {
			fields[name] = i
		}
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i, ok := fields[k]
		if !ok {
			return fmt.Errorf("unknown key %q", k)
		}
		dec := json.NewDecoder(bytes.NewReader(raw[k]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(rv.Field(i).Addr().Interface()); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return fmt.Errorf("%s: must be %s, got %s", k, te.Type, te.Value)
			}
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// Validate checks values and fills defaults. Errors name the key.
func (c *Config) Validate() error {
	if c.Region != "" && !regionRe.MatchString(c.Region) {
		return fmt.Errorf("aws config: region: %q is not an AWS region name", c.Region)
	}
	if c.KeyID != "" && c.SecretKey == "" {
		return errors.New("aws config: secret_key: required when key_id is set")
	}
	if c.KeyID == "" && c.SecretKey != "" {
		return errors.New("aws config: key_id: required when secret_key is set")
	}
	for i, a := range c.AccountIDs {
		if !accountIDRe.MatchString(a) {
			return fmt.Errorf("aws config: account_ids[%d]: %q is not a 12-digit AWS account id", i, a)
		}
	}
	for k, v := range c.InstanceTags {
		if err := validateTag(k, v); err != nil {
			return fmt.Errorf("aws config: instance_tags.%s: %w", k, err)
		}
	}
	if c.InstanceKey != "" && c.InstanceKey != InstanceKeyGenerate && !keyNameRe.MatchString(c.InstanceKey) {
		return fmt.Errorf("aws config: instance_key: %q is not a valid key pair name", c.InstanceKey)
	}
	if c.InstanceKeyPrefix == "" {
		c.InstanceKeyPrefix = DefaultInstanceKeyPrefix
	} else if !keyNameRe.MatchString(c.InstanceKeyPrefix) || len(c.InstanceKeyPrefix) > 128 {
		return fmt.Errorf("aws config: instance_key_prefix: %q must be printable ASCII up to 128 characters", c.InstanceKeyPrefix)
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("aws config: base_url: %q must be an http(s) URL", c.BaseURL)
		}
	}
	switch {
	case c.SnapshotCreateWait < 0:
		return errors.New("aws config: snapshot_create_wait: must not be negative")
	case c.SnapshotCreateWait == 0:
		c.SnapshotCreateWait = core.Duration(DefaultSnapshotCreateWait)
	}
	switch {
	case c.ImageCreateWait < 0:
		return errors.New("aws config: image_create_wait: must not be negative")
	case c.ImageCreateWait == 0:
		c.ImageCreateWait = core.Duration(DefaultImageCreateWait)
	}
	for name, pc := range c.DedicatedPool {
		if pc == nil {
			return fmt.Errorf("aws config: dedicated_pool.%s: must be an object", name)
		}
		if name == "" || strings.ContainsAny(name, " \t\n") {
			return fmt.Errorf("aws config: dedicated_pool: invalid pool name %q", name)
		}
		pc.Name = name
		if err := pc.Normalize(); err != nil {
			return fmt.Errorf("aws config: %w", err)
		}
	}
	return nil
}

// validateTag checks an EC2 tag key/value.
func validateTag(k, v string) error {
	switch {
	case k == "":
		return errors.New("tag key must not be empty")
	case len(k) > 128:
		return errors.New("tag key longer than 128 characters")
	case strings.HasPrefix(strings.ToLower(k), "aws:"):
		return errors.New("tag keys starting with aws: are reserved")
	case len(v) > 256:
		return errors.New("tag value longer than 256 characters")
	}
	return nil
}
