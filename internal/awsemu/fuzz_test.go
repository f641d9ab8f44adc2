package awsemu

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
)

// globRef is a regexp-based reference for globMatch.
func globRef(p, s string) bool {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '*':
			b.WriteString("(?s:.*)")
		case c == '?':
			b.WriteString("(?s:.)")
		case c == '\\' && i+1 < len(p):
			i++
			b.WriteString(regexp.QuoteMeta(string(p[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String()).MatchString(s)
}

func FuzzGlobMatch(f *testing.F) {
	for _, s := range [][2]string{{"a*c", "abc"}, {"*-arm64", "x-arm64"}, {`a\*b`, "a*b"}, {"??", "ab"}, {"*a*a*", "banana"}, {"\\", "\\"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, p, s string) {
		if !isASCII(p) || !isASCII(s) {
			return // AWS values are byte strings; the reference works on runes
		}
		if got, want := globMatch(p, s), globRef(p, s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, reference %v", p, s, got, want)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzParseSpec: any input either fails with an error or builds a world; never a panic.
func FuzzParseSpec(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "world.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("base: empty\nzones: [us-west-2a]\n"))
	f.Add([]byte("vpcs: [{cidr: 10.0.0.0/16, subnets: [{zone: us-west-2a, cidr: 10.0.0.0/28, used_ips: 11}]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err != nil {
			return
		}
		for _, k := range s.KeyPairs {
			if k.Type != "ed25519" {
				return // RSA key generation would make the fuzzer crawl
			}
		}
		_, _ = New(clock.NewVirtual(t0), s)
	})
}
