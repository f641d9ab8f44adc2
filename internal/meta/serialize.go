// Package meta turns resource metadata into the formats the meta API and
// instance user data use: json, env, export and ps1.
package meta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Formats lists the supported serialization formats.
var Formats = []string{"json", "env", "export", "ps1"}

// ValidFormat reports whether f is a supported format ("" is not).
func ValidFormat(f string) bool {
	for _, x := range Formats {
		if f == x {
			return true
		}
	}
	return false
}

// Merge returns the metadata a resource sees: the application metadata with
// the label metadata on top (label wins, shallow). Empty inputs are allowed.
// Numbers are kept exact (json.Number).
func Merge(application, label json.RawMessage) (map[string]any, error) {
	out := map[string]any{}
	for _, part := range []struct {
		name string
		raw  json.RawMessage
	}{{"application metadata", application}, {"label metadata", label}} {
		if len(bytes.TrimSpace(part.raw)) == 0 || string(bytes.TrimSpace(part.raw)) == "null" {
			continue
		}
		m, err := decodeObject(part.raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", part.name, err)
		}
		for k, v := range m {
			out[k] = v
		}
	}
	return out, nil
}

func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("must be a JSON object: %w", err)
	}
	return m, nil
}

// Serialize writes data in format (json, env, export or ps1). prefix is
// prepended to every key as PREFIX_ (ignored by json).
func Serialize(data map[string]any, format, prefix string) ([]byte, error) {
	switch format {
	case "json":
		if data == nil {
			data = map[string]any{}
		}
		b, err := json.Marshal(data) // encoding/json sorts map keys
		if err != nil {
			return nil, fmt.Errorf("metadata json: %w", err)
		}
		return b, nil
	case "env", "export", "ps1":
	default:
		return nil, fmt.Errorf("format %q: must be one of %s", format, strings.Join(Formats, ", "))
	}
	p := ""
	if prefix != "" {
		p = cleanKey(prefix)
		if p == "" {
			return nil, fmt.Errorf("prefix %q: has no usable characters [A-Za-z0-9_]", prefix)
		}
		p += "_"
	}
	leaves := map[string]string{}
	origin := map[string]string{}
	if err := flatten(data, "", "", leaves, origin); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(leaves))
	for k := range leaves {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	for _, k := range keys {
		v := leaves[k]
		switch format {
		case "env":
			fmt.Fprintf(&buf, "%s%s=%s\n", p, k, shellQuote(v))
		case "export":
			fmt.Fprintf(&buf, "export %s%s=%s\n", p, k, shellQuote(v))
		case "ps1":
			fmt.Fprintf(&buf, "$%s%s='%s'\n", p, k, strings.ReplaceAll(v, "'", "''"))
		}
	}
	return buf.Bytes(), nil
}

// flatten collects leaf values under cleaned, '_'-joined keys; origin keeps
// the source path of each key so collisions can be reported.
func flatten(m map[string]any, keyPrefix, pathPrefix string, leaves, origin map[string]string) error {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		path := name
		if pathPrefix != "" {
			path = pathPrefix + "." + name
		}
		ck := cleanKey(name)
		key := ck
		if keyPrefix != "" {
			key = keyPrefix + "_" + ck
		}
		if ck == "" && keyPrefix == "" {
			return fmt.Errorf("metadata key %q: has no usable characters [A-Za-z0-9_]", path)
		}
		if child, ok := m[name].(map[string]any); ok {
			if err := flatten(child, key, path, leaves, origin); err != nil {
				return err
			}
			continue
		}
		val, err := leafString(m[name])
		if err != nil {
			return fmt.Errorf("metadata key %q: %w", path, err)
		}
		if prev, dup := origin[key]; dup {
			return fmt.Errorf("metadata keys %q and %q both become %q", prev, path, key)
		}
		origin[key] = path
		leaves[key] = val
	}
	return nil
}

// cleanKey keeps [A-Za-z0-9_] and drops leading digits.
func cleanKey(k string) string {
	var b strings.Builder
	for _, r := range k {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return strings.TrimLeft(b.String(), "0123456789")
}

func leafString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		return x.String(), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e18 {
			return strconv.FormatInt(int64(x), 10), nil
		}
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case float32:
		return leafString(float64(x))
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint, uint64, int32, uint32:
		return fmt.Sprint(x), nil
	default:
		b, err := json.Marshal(x) // arrays and anything else as JSON
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
}

// shellQuote quotes v for a POSIX shell only when needed.
func shellQuote(v string) string {
	if v == "" {
		return ""
	}
	safe := true
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'"'"'`) + "'"
}
