package aws

import (
	"encoding/json"
	"strings"
)

// DriverData is encoded on every Allocate and decoded on every Deallocate.
// The common case (plain ASCII ids) takes a direct path that produces and
// accepts exactly what encoding/json does; anything else goes through
// encoding/json.

// jsonPlainByte[c] reports whether encoding/json writes byte c verbatim in
// a string: printable ASCII except '"', '\\' and the HTML-escaped '<', '>',
// '&'. A table lookup per byte is about a third faster than the comparisons,
// and every id of every Allocate and Deallocate goes through it.
var jsonPlainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		switch c {
		case '"', '\\', '<', '>', '&':
		default:
			t[c] = true
		}
	}
	return t
}()

// jsonPlain reports whether encoding/json writes s verbatim between quotes.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !jsonPlainByte[s[i]] {
			return false
		}
	}
	return true
}

// marshalDriverData is json.Marshal(dd).
func marshalDriverData(dd DriverData) ([]byte, error) {
	fields := [...]struct{ key, val string }{
		{"key_name", dd.KeyName}, {"host_id", dd.HostID}, {"pool", dd.Pool},
		{"zone", dd.Zone}, {"subnet", dd.Subnet},
	}
	n := 2
	for _, f := range fields {
		if !jsonPlain(f.val) {
			return json.Marshal(dd)
		}
		n += len(f.key) + len(f.val) + 6
	}
	b := make([]byte, 0, n+len(`"key_generated":true,`))
	b = append(b, '{')
	add := func(key, val string, quote bool) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		if quote {
			b = append(b, '"')
		}
		b = append(b, val...)
		if quote {
			b = append(b, '"')
		}
	}
	if dd.KeyName != "" {
		add("key_name", dd.KeyName, true)
	}
	if dd.KeyGenerated {
		add("key_generated", "true", false)
	}
	for _, f := range fields[1:] {
		if f.val != "" {
			add(f.key, f.val, true)
		}
	}
	return append(b, '}'), nil
}

// unmarshalDriverData is json.Unmarshal(data, dd).
func unmarshalDriverData(data []byte, dd *DriverData) error {
	out := *dd
	if parseDriverDataPlain(string(data), &out) {
		*dd = out
		return nil
	}
	v := *dd // only this path's copy goes to the heap
	err := json.Unmarshal(data, &v)
	*dd = v
	return err
}

// parseDriverDataPlain parses the compact form marshalDriverData writes
// (known keys, plain strings, no spaces). It reports false for anything
// else, leaving the general case to encoding/json.
func parseDriverDataPlain(s string, dd *DriverData) bool {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return false
	}
	s = s[1 : len(s)-1]
	for s != "" {
		if s[0] != '"' {
			return false
		}
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return false
		}
		key := s[1 : 1+end]
		s = s[2+end:]
		if s == "" || s[0] != ':' {
			return false
		}
		s = s[1:]
		var val string
		switch {
		case key == "key_generated":
			switch {
			case strings.HasPrefix(s, "true"):
				dd.KeyGenerated = true
				s = s[4:]
			case strings.HasPrefix(s, "false"):
				dd.KeyGenerated = false
				s = s[5:]
			default:
				return false
			}
		default:
			if s == "" || s[0] != '"' {
				return false
			}
			e := strings.IndexByte(s[1:], '"')
			if e < 0 {
				return false
			}
			val = s[1 : 1+e]
			if !jsonPlain(val) {
				return false
			}
			s = s[2+e:]
			switch key {
			case "key_name":
				dd.KeyName = val
			case "host_id":
				dd.HostID = val
			case "pool":
				dd.Pool = val
			case "zone":
				dd.Zone = val
			case "subnet":
				dd.Subnet = val
			default:
				return false
			}
		}
		if s == "" {
			break
		}
		if s[0] != ',' || len(s) == 1 {
			return false
		}
		s = s[1:]
	}
	return true
}
