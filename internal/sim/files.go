package sim

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
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

// LoadNodeConfig reads the dedicated pool parameters from a node config
// (YAML). Both drivers forms are accepted: the seed list
// `drivers: [{name: aws, cfg: {...}}]` and the map
// `drivers: {providers: {aws: {...}}}`. poolName selects the pool when the
// config has several ("" = the only one). The pool record is validated by
// the pool package itself (pool.Config.Normalize).
func LoadNodeConfig(path, poolName string, p *Params) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	doc, err := yamlToJSON(raw)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("config %s: want a YAML mapping at the top level", path)
	}
	// Collect aws driver configs by instance name.
	cfgs := map[string]any{}
	switch d := top["drivers"].(type) {
	case nil:
		return fmt.Errorf("config %s: drivers: missing (want an aws driver with a dedicated_pool)", path)
	case []any:
		for i, e := range d {
			m, ok := e.(map[string]any)
			if !ok {
				return fmt.Errorf("config %s: drivers[%d]: want a mapping with name and cfg", path, i)
			}
			name, _ := m["name"].(string)
			if strings.HasPrefix(name, "aws") {
				cfgs[name] = m["cfg"]
			}
		}
	case map[string]any:
		prov, ok := d["providers"].(map[string]any)
		if !ok {
			return fmt.Errorf("config %s: drivers.providers: want a mapping of driver name to config", path)
		}
		for name, c := range prov {
			if strings.HasPrefix(name, "aws") {
				cfgs[name] = c
			}
		}
	default:
		return fmt.Errorf("config %s: drivers: want a list or a mapping", path)
	}
	type found struct {
		key string
		cfg any
	}
	var pools []found
	names := make([]string, 0, len(cfgs))
	for n := range cfgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, dn := range names {
		c, _ := cfgs[dn].(map[string]any)
		dp, _ := c["dedicated_pool"].(map[string]any)
		for pn, pc := range dp {
			if poolName == "" || pn == poolName {
				pools = append(pools, found{dn + ".cfg.dedicated_pool." + pn, pc})
			}
		}
	}
	if len(pools) == 0 {
		if poolName != "" {
			return fmt.Errorf("config %s: no aws dedicated_pool named %q", path, poolName)
		}
		return fmt.Errorf("config %s: no aws driver with a dedicated_pool", path)
	}
	if len(pools) > 1 {
		keys := make([]string, len(pools))
		for i, f := range pools {
			keys[i] = f.key
		}
		sort.Strings(keys)
		return fmt.Errorf("config %s: several dedicated pools (%s): choose one with --pool", path, strings.Join(keys, ", "))
	}
	js, err := json.Marshal(pools[0].cfg)
	if err != nil {
		return fmt.Errorf("config %s: %s: %w", path, pools[0].key, err)
	}
	var pc pool.Config
	dec := json.NewDecoder(strings.NewReader(string(js)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pc); err != nil {
		return fmt.Errorf("config %s: %s: %w", path, pools[0].key, err)
	}
	pc.Name = pools[0].key[strings.LastIndex(pools[0].key, ".")+1:]
	if err := pc.Normalize(); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
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
