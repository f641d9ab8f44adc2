package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// setDrivers accepts the seed's list form
//
//	drivers:
//	  - name: aws
//	    cfg: {region: us-west-2}
//
// and the map form
//
//	drivers:
//	  providers:
//	    aws: {region: us-west-2}
//	    aws/prod: {region: eu-west-1}
//
// keeping the order of the file.
func (c *Config) setDrivers(v *yaml.Node) error {
	c.Drivers = nil
	switch v.Kind {
	case yaml.SequenceNode:
		for i, item := range v.Content {
			d, err := listDriver(item)
			if err != nil {
				return fmt.Errorf("[%d] (line %d): %w", i, item.Line, err)
			}
			if err := c.addDriver(d); err != nil {
				return fmt.Errorf("[%d] (line %d): %w", i, item.Line, err)
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := v.Content[i], v.Content[i+1]
			if k.Value != "providers" {
				return fmt.Errorf("%s (line %d): unknown key (the map form is drivers: {providers: {NAME: CFG}})", k.Value, k.Line)
			}
			if isNull(val) {
				continue
			}
			if val.Kind != yaml.MappingNode {
				return fmt.Errorf("providers (line %d): must be a mapping of driver name to its config", val.Line)
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				nk, cfg := val.Content[j], val.Content[j+1]
				where := fmt.Sprintf("providers.%s (line %d)", nk.Value, nk.Line)
				raw, err := cfgJSON(cfg)
				if err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
				if err := c.addDriver(DriverConfig{Name: nk.Value, Cfg: raw}); err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
			}
		}
	default:
		return errors.New("must be a list of {name, cfg} or a mapping {providers: {NAME: CFG}}")
	}
	return nil
}

func listDriver(item *yaml.Node) (DriverConfig, error) {
	var d DriverConfig
	if item.Kind != yaml.MappingNode {
		return d, errors.New("must be a mapping with name and cfg")
	}
	var cfgNode *yaml.Node
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		switch k.Value {
		case "name":
			if v.Kind != yaml.ScalarNode || isNull(v) {
				return d, errors.New("name: must be a string")
			}
			d.Name = v.Value
		case "cfg":
			cfgNode = v
		default:
			return d, fmt.Errorf("%s: unknown key (a driver entry has name and cfg)", k.Value)
		}
	}
	raw, err := cfgJSON(cfgNode)
	if err != nil {
		return d, fmt.Errorf("cfg: %w", err)
	}
	d.Cfg = raw
	return d, nil
}

func (c *Config) addDriver(d DriverConfig) error {
	if err := validDriverName(d.Name); err != nil {
		return err
	}
	if _, dup := c.Driver(d.Name); dup {
		return fmt.Errorf("name: driver %q configured twice", d.Name)
	}
	c.Drivers = append(c.Drivers, d)
	return nil
}

func validDriverName(name string) error {
	if name == "" {
		return errors.New("name: must not be empty")
	}
	kind, inst, hasInst := strings.Cut(name, "/")
	if kind == "" || (hasInst && (inst == "" || strings.Contains(inst, "/"))) {
		return fmt.Errorf("name: %q must be KIND or KIND/INSTANCE", name)
	}
	return nil
}

// cfgJSON converts a driver's YAML config (a mapping, or absent/null = {})
// to a JSON object, keeping key order.
func cfgJSON(n *yaml.Node) (json.RawMessage, error) {
	if n == nil || isNull(n) {
		return json.RawMessage(`{}`), nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: must be a mapping", n.Line)
	}
	var b bytes.Buffer
	if err := writeJSON(&b, n, ""); err != nil {
		return nil, err
	}
	return json.RawMessage(b.Bytes()), nil
}

// writeJSON writes node n as JSON; path names the key in errors.
func writeJSON(b *bytes.Buffer, n *yaml.Node, path string) error {
	switch n.Kind {
	case yaml.AliasNode:
		return writeJSON(b, n.Alias, path)
	case yaml.MappingNode:
		pairs, err := mappingPairs(n, path)
		if err != nil {
			return err
		}
		b.WriteByte('{')
		for i, p := range pairs {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(p.key)
			b.Write(kb)
			b.WriteByte(':')
			if err := writeJSON(b, p.val, join(path, p.key)); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, item, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		return writeScalar(b, n, path)
	default:
		return fmt.Errorf("%s (line %d): unsupported YAML node", path, n.Line)
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

type pair struct {
	key string
	val *yaml.Node
}

// mappingPairs flattens a mapping, applying YAML merge keys (<<): explicit
// keys win over merged ones; duplicate explicit keys are an error.
func mappingPairs(n *yaml.Node, path string) ([]pair, error) {
	var out []pair
	index := map[string]int{}
	explicit := map[string]bool{}
	var merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, src := range srcs {
				if src.Kind == yaml.AliasNode {
					src = src.Alias
				}
				if src.Kind != yaml.MappingNode {
					return nil, fmt.Errorf("%s (line %d): << must merge a mapping", path, k.Line)
				}
				ps, err := mappingPairs(src, path)
				if err != nil {
					return nil, err
				}
				merged = append(merged, ps...)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s (line %d): keys must be strings", path, k.Line)
		}
		if explicit[k.Value] {
			return nil, fmt.Errorf("%s (line %d): duplicate key", join(path, k.Value), k.Line)
		}
		explicit[k.Value] = true
		index[k.Value] = len(out)
		out = append(out, pair{k.Value, v})
	}
	for _, p := range merged {
		if explicit[p.key] {
			continue
		}
		if _, ok := index[p.key]; ok {
			continue // the first merge source wins, per the YAML merge spec
		}
		index[p.key] = len(out)
		out = append(out, p)
	}
	return out, nil
}

func writeScalar(b *bytes.Buffer, n *yaml.Node, path string) error {
	switch n.ShortTag() {
	case "!!null":
		b.WriteString("null")
	case "!!bool":
		var v bool
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("%s (line %d): %w", path, n.Line, err)
		}
		b.WriteString(strconv.FormatBool(v))
	case "!!int":
		var v int64
		if err := n.Decode(&v); err != nil {
			var u uint64
			if err2 := n.Decode(&u); err2 != nil {
				return fmt.Errorf("%s (line %d): %w", path, n.Line, err)
			}
			b.WriteString(strconv.FormatUint(u, 10))
			return nil
		}
		b.WriteString(strconv.FormatInt(v, 10))
	case "!!float":
		var v float64
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("%s (line %d): %w", path, n.Line, err)
		}
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Errorf("%s (line %d): %s has no JSON form", path, n.Line, n.Value)
		}
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	default: // !!str, !!timestamp, !!binary and custom tags stay text
		s, _ := json.Marshal(n.Value)
		b.Write(s)
	}
	return nil
}
