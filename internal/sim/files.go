package sim

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/aquarium-fish/aquarium-fish/internal/config"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/driver/aws"
	"github.com/aquarium-fish/aquarium-fish/internal/driver/aws/pool"
)

// yamlToJSON decodes YAML into JSON-compatible values.
func yamlToJSON(b []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// LoadNodeConfig reads the dedicated pool parameters from a node config: the
// node's own loader (internal/config: both drivers forms, key-naming errors)
// and the AWS driver's own config parser (aws.ParseConfig: the pool records
// validated exactly as the node validates them). poolName selects the pool
// when the config has several ("" = the only one).
func LoadNodeConfig(path, poolName string, p *Params) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	type found struct {
		key string
		cfg *pool.Config
	}
	var pools []found
	for _, dc := range cfg.Drivers {
		if dc.Kind() != aws.Kind {
			continue
		}
		ac, err := aws.ParseConfig(dc.Cfg)
		if err != nil {
			return fmt.Errorf("config %s: drivers %s: %w", path, dc.Name, err)
		}
		for pn, pc := range ac.DedicatedPool {
			if poolName == "" || pn == poolName {
				pools = append(pools, found{dc.Name + ".cfg.dedicated_pool." + pn, pc})
			}
		}
	}
	switch {
	case len(pools) == 0 && poolName != "":
		return fmt.Errorf("config %s: no aws dedicated_pool named %q", path, poolName)
	case len(pools) == 0:
		return fmt.Errorf("config %s: no aws driver with a dedicated_pool", path)
	case len(pools) > 1:
		keys := make([]string, len(pools))
		for i, f := range pools {
			keys[i] = f.key
		}
		sort.Strings(keys)
		return fmt.Errorf("config %s: several dedicated pools (%s): choose one with --pool", path, strings.Join(keys, ", "))
	}
	pc := pools[0].cfg
	p.PoolName = pc.Name
	p.InstanceType = pc.Type
	p.MaxHosts = pc.Max
	p.Zones = append([]string(nil), pc.Zones...)
	sd := pc.ScrubbingDelay.D()
	p.ScrubbingDelay = &sd
	if pc.ReleaseDelay != nil {
		rd := pc.ReleaseDelay.D()
		p.ReleaseDelay = &rd
	}
	p.PendingToAvailableDelay = pc.PendingToAvailableDelay.D()
	return nil
}

// LoadLabel reads a label (YAML or JSON) and uses its first aws definition
// as the definition of every job; its instance_type, image and pool options
// become the run's parameters.
func LoadLabel(path string, p *Params) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("label: %w", err)
	}
	doc, err := yamlToJSON(raw)
	if err != nil {
		return fmt.Errorf("label %s: %w", path, err)
	}
	if m, ok := doc.(map[string]any); ok {
		if l, ok := m["label"]; ok { // accept {label: {...}} as the API does
			doc = l
		}
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("label %s: %w", path, err)
	}
	var l core.Label
	if err := json.Unmarshal(js, &l); err != nil {
		return fmt.Errorf("label %s: %w", path, err)
	}
	for i, d := range l.Definitions {
		if !strings.HasPrefix(d.Driver, "aws") {
			continue
		}
		var o struct {
			Image        string `json:"image"`
			InstanceType string `json:"instance_type"`
			Pool         string `json:"pool"`
		}
		if len(d.Options) > 0 {
			if err := json.Unmarshal(d.Options, &o); err != nil {
				return fmt.Errorf("label %s: definitions[%d].options: %w", path, i, err)
			}
		}
		if o.Pool == "" {
			return fmt.Errorf("label %s: definitions[%d].options.pool: required (the simulator runs a dedicated pool)", path, i)
		}
		if o.InstanceType == "" {
			return fmt.Errorf("label %s: definitions[%d].options.instance_type: required", path, i)
		}
		def := d
		p.Definition = &def
		p.PoolName = o.Pool
		p.Image = o.Image
		if p.InstanceType == "" {
			p.InstanceType = o.InstanceType
		}
		return nil
	}
	return fmt.Errorf("label %s: definitions: no aws definition", path)
}
