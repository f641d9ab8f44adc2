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

// ddOverhead is the longest form less the values: {} + ,"key":"" per
// string + ,"key_generated":true.
const ddOverhead = len(`{}`) + len(`,"key_name":""`) + len(`,"key_generated":true`) + len(`,"host_id":""`) +
	len(`,"pool":""`) + len(`,"zone":""`) + len(`,"subnet":""`)

// marshalDriverData is json.Marshal(dd).
func marshalDriverData(dd DriverData) ([]byte, error) {
	return appendDriverData(make([]byte, 0, ddOverhead+len(dd.KeyName)+len(dd.HostID)+len(dd.Pool)+len(dd.Zone)+len(dd.Subnet)), dd)
}

// appendDriverData appends json.Marshal(dd) to b.
func appendDriverData(b []byte, dd DriverData) ([]byte, error) {
	if !jsonPlain(dd.KeyName) || !jsonPlain(dd.HostID) || !jsonPlain(dd.Pool) || !jsonPlain(dd.Zone) || !jsonPlain(dd.Subnet) {
		j, err := json.Marshal(dd)
		if err != nil {
			return b, err
		}
		return append(b, j...), nil
	}
	start := len(b)
	b = append(b, '{')
	b = appendPlainField(b, start, `"key_name":"`, dd.KeyName)
	if dd.KeyGenerated {
		if len(b) > start+1 {
			b = append(b, ',')
		}
		b = append(b, `"key_generated":true`...)
	}
	b = appendPlainField(b, start, `"host_id":"`, dd.HostID)
	b = appendPlainField(b, start, `"pool":"`, dd.Pool)
	b = appendPlainField(b, start, `"zone":"`, dd.Zone)
	b = appendPlainField(b, start, `"subnet":"`, dd.Subnet)
	return append(b, '}'), nil
}

// appendPlainField appends the member keyOpen+val+`"` of a JSON object
// being written to b from b[start] on (with a comma unless it is the
// first), unless val is empty (omitempty). keyOpen is `"key":"`; val must
// be jsonPlain.
func appendPlainField(b []byte, start int, keyOpen, val string) []byte {
	if val == "" {
		return b
	}
	if len(b) > start+1 {
		b = append(b, ',')
	}
	b = append(b, keyOpen...)
	b = append(b, val...)
	return append(b, '"')
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

// ddMembers are the members marshalDriverData writes, in its order (the
// key_generated member is only ever written true).
var ddMembers = [...]string{`"key_name":"`, `"key_generated":true`, `"host_id":"`, `"pool":"`, `"zone":"`, `"subnet":"`}

// parseDriverDataPlain parses what marshalDriverData writes: the known
// members in its order, plain strings, no spaces. It reports false for
// anything else, leaving the general case to encoding/json. (Matching the
// members in order, and scanning each value once up to its quote, is about
// twice as fast as finding and switching on keys.)
func parseDriverDataPlain(s string, dd *DriverData) bool {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return false
	}
	s = s[1 : len(s)-1]
	for m := 0; s != ""; m++ {
		for m < len(ddMembers) && !strings.HasPrefix(s, ddMembers[m]) {
			m++
		}
		if m == len(ddMembers) {
			return false
		}
		s = s[len(ddMembers[m]):]
		if m == 1 {
			dd.KeyGenerated = true
		} else {
			n := 0
			for n < len(s) && jsonPlainByte[s[n]] {
				n++
			}
			if n == len(s) || s[n] != '"' {
				return false
			}
			v := s[:n]
			s = s[n+1:]
			switch m {
			case 0:
				dd.KeyName = v
			case 2:
				dd.HostID = v
			case 3:
				dd.Pool = v
			case 4:
				dd.Zone = v
			case 5:
				dd.Subnet = v
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
