package pool

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/strarena"
)

func dur(d time.Duration) *core.Duration { c := core.Duration(d); return &c }

func TestConfigNormalize(t *testing.T) {
	cases := []struct {
		name        string
		cfg         Config
		wantErr     string
		wantZones   []string
		wantRelease time.Duration
	}{
		{name: "seed form mac", cfg: Config{Name: "macs", Type: "mac2.metal", Zone: "us-west-2c", Max: 3},
			wantZones: []string{"us-west-2c"}, wantRelease: 24 * time.Hour},
		{name: "zone merged in front, duplicates dropped", cfg: Config{Name: "m", Type: "mac1.metal", Zone: "b", Zones: []string{"a", "b", "c"}, Max: 1},
			wantZones: []string{"b", "a", "c"}, wantRelease: 24 * time.Hour},
		{name: "mac-m4 default release 24h", cfg: Config{Name: "m4", Type: "mac-m4pro.metal", Zones: []string{"a"}, Max: 1},
			wantZones: []string{"a"}, wantRelease: 24 * time.Hour},
		{name: "mac2-m2pro default release 24h", cfg: Config{Name: "m", Type: "mac2-m2pro.metal", Zones: []string{"a"}, Max: 1},
			wantZones: []string{"a"}, wantRelease: 24 * time.Hour},
		{name: "non-mac default release 0", cfg: Config{Name: "c5", Type: "c5.large", Zones: []string{"a"}, Max: 1},
			wantZones: []string{"a"}, wantRelease: 0},
		{name: "explicit release kept", cfg: Config{Name: "m", Type: "mac2.metal", Zone: "a", Max: 1, ReleaseDelay: dur(48 * time.Hour)},
			wantZones: []string{"a"}, wantRelease: 48 * time.Hour},
		{name: "no type", cfg: Config{Name: "macs", Zone: "a", Max: 1}, wantErr: "dedicated_pool.macs.type: required"},
		{name: "no zone", cfg: Config{Name: "macs", Type: "mac2.metal", Max: 1}, wantErr: "dedicated_pool.macs.zone: required"},
		{name: "empty zone in list", cfg: Config{Name: "macs", Type: "mac2.metal", Zones: []string{"a", " "}, Max: 1}, wantErr: "dedicated_pool.macs.zones[1]: zone must not be empty"},
		{name: "max 0", cfg: Config{Name: "macs", Type: "mac2.metal", Zone: "a"}, wantErr: "dedicated_pool.macs.max: must be > 0"},
		{name: "negative scrubbing", cfg: Config{Name: "macs", Type: "mac2.metal", Zone: "a", Max: 1, ScrubbingDelay: -1}, wantErr: "dedicated_pool.macs.scrubbing_delay: must not be negative"},
		{name: "negative release", cfg: Config{Name: "macs", Type: "mac2.metal", Zone: "a", Max: 1, ReleaseDelay: dur(-time.Hour)}, wantErr: "dedicated_pool.macs.release_delay: must not be negative"},
		{name: "negative p2a", cfg: Config{Name: "macs", Type: "mac2.metal", Zone: "a", Max: 1, PendingToAvailableDelay: -1}, wantErr: "dedicated_pool.macs.pending_to_available_delay: must not be negative"},
		{name: "no name", cfg: Config{Type: "mac2.metal", Zone: "a", Max: 1}, wantErr: "pool name must not be empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			err := cfg.Normalize()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(cfg.Zones, ",") != strings.Join(c.wantZones, ",") {
				t.Errorf("zones = %v, want %v", cfg.Zones, c.wantZones)
			}
			if cfg.ReleaseDelay == nil || cfg.ReleaseDelay.D() != c.wantRelease {
				t.Errorf("release_delay = %v, want %v", cfg.ReleaseDelay, c.wantRelease)
			}
		})
	}
}

func TestReleaseAgeNeverBelowMacMinimum(t *testing.T) {
	cfg := Config{Name: "m", Type: "mac2.metal", Zone: "a", Max: 1, ReleaseDelay: dur(time.Hour)}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.releaseAge(); got < MacMinAllocation {
		t.Fatalf("releaseAge = %v, below the AWS minimum", got)
	}
	lin := Config{Name: "c", Type: "c5.large", Zone: "a", Max: 1}
	if err := lin.Normalize(); err != nil {
		t.Fatal(err)
	}
	if got := lin.releaseAge(); got != 0 {
		t.Fatalf("non-mac releaseAge = %v, want 0", got)
	}
}

func TestIsMacType(t *testing.T) {
	for typ, want := range map[string]bool{
		"mac1.metal": true, "mac2.metal": true, "mac2-m2.metal": true, "mac2-m2pro.metal": true,
		"mac2-m1ultra.metal": true, "mac-m4.metal": true, "mac-m4pro.metal": true,
		"c5.large": false, "m5.metal": false, "macaroni.large": false,
	} {
		if got := IsMacType(typ); got != want {
			t.Errorf("IsMacType(%q) = %v, want %v", typ, got, want)
		}
	}
}

func TestClientToken(t *testing.T) {
	tok := clientToken("h", "0b8b3c5e-1d2f-4a5b-9c8d-7e6f5a4b3c2d", 1)
	if tok != "0b8b3c5e-1d2f-4a5b-9c8d-7e6f5a4b3c2d-h-1" {
		t.Fatalf("token = %q", tok)
	}
	long := clientToken("h", strings.Repeat("x", 100), 12)
	if len(long) > 64 {
		t.Fatalf("token too long: %d", len(long))
	}
	if long == clientToken("h", strings.Repeat("x", 100), 13) {
		t.Fatal("attempts must give different tokens")
	}
	// the long form is stable across versions (a restarted node retries
	// with the same token): first 20 bytes of SHA-256 in hex
	sum := sha256.Sum256([]byte(strings.Repeat("x", 100)))
	if want := hex.EncodeToString(sum[:20]) + "-h-12"; long != want {
		t.Fatalf("long token = %q, want %q", long, want)
	}
	if tok := clientToken("s", "h-0abc", -62135596800); tok != "h-0abc-s--62135596800" {
		t.Fatalf("negative attempt: %q", tok)
	}
}

// The arena's tokens equal clientToken's and stay unchanged while later
// tokens fill the chunk and move on to new ones.
func TestTokenArena(t *testing.T) {
	var a strarena.Arena
	type made struct {
		tok, want string
	}
	var all []made
	for i := range 600 { // several chunks
		key := "h-0" + strconv.Itoa(i)
		if i%50 == 7 {
			key = strings.Repeat("k", 70+i%3) // the hashed form
		}
		all = append(all, made{arenaToken(&a, "s", key, i-40), clientToken("s", key, i-40)})
	}
	for i, m := range all {
		if m.tok != m.want {
			t.Fatalf("token %d = %q, want %q", i, m.tok, m.want)
		}
	}
	if got := testing.AllocsPerRun(100, func() { arenaToken(&a, "h", "0b8b3c5e-1d2f-4a5b-9c8d-7e6f5a4b3c2d", 3) }); got >= 1 {
		t.Errorf("allocations per token = %v, want < 1", got)
	}
}
