package pool

import (
	"fmt"
	"strings"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// MacMinAllocation is Apple's minimum allocation period of a mac dedicated
// host: AWS refuses to release it earlier.
const MacMinAllocation = 24 * time.Hour

// Config is one dedicated pool as written in the driver config (seed keys).
type Config struct {
	Name           string        `json:"-"`     // the map key
	Type           string        `json:"type"`  // host instance type, e.g. "mac2.metal"
	Zone           string        `json:"zone"`  // seed form
	Zones          []string      `json:"zones"` // list form; Zone is merged in front
	Max            int           `json:"max"`
	ScrubbingDelay core.Duration `json:"scrubbing_delay"`
	// ReleaseDelay is how old an idle host must be before it is released;
	// nil means 24h for every mac type and 0 otherwise.
	ReleaseDelay            *core.Duration `json:"release_delay"`
	PendingToAvailableDelay core.Duration  `json:"pending_to_available_delay"`
}

// IsMacType reports whether an instance type is an EC2 Mac type (mac1,
// mac2*, mac-m4*): one instance per host, 24h minimum allocation, scrubbing.
func IsMacType(t string) bool {
	return strings.HasPrefix(t, "mac1.") || strings.HasPrefix(t, "mac2") || strings.HasPrefix(t, "mac-")
}

// Normalize validates the config and fills defaults: Zone is merged in
// front of Zones (duplicates removed) and ReleaseDelay gets its default.
// Errors name the key, e.g. `dedicated_pool.macs.max: must be > 0`.
func (c *Config) Normalize() error {
	key := func(k string) string { return "dedicated_pool." + c.Name + "." + k }
	if strings.TrimSpace(c.Name) == "" {
		return fmt.Errorf("dedicated_pool: pool name must not be empty")
	}
	c.Type = strings.TrimSpace(c.Type)
	if c.Type == "" {
		return fmt.Errorf("%s: required (host instance type, e.g. mac2.metal)", key("type"))
	}
	zones := make([]string, 0, len(c.Zones)+1)
	seen := map[string]bool{}
	add := func(k, z string) error {
		z = strings.TrimSpace(z)
		if z == "" {
			return fmt.Errorf("%s: zone must not be empty", k)
		}
		if !seen[z] {
			seen[z] = true
			zones = append(zones, z)
		}
		return nil
	}
	if c.Zone != "" {
		if err := add(key("zone"), c.Zone); err != nil {
			return err
		}
	}
	for i, z := range c.Zones {
		if err := add(fmt.Sprintf("%s[%d]", key("zones"), i), z); err != nil {
			return err
		}
	}
	if len(zones) == 0 {
		return fmt.Errorf("%s: required (or %s)", key("zone"), key("zones"))
	}
	c.Zones = zones
	c.Zone = zones[0]
	if c.Max <= 0 {
		return fmt.Errorf("%s: must be > 0", key("max"))
	}
	if c.ScrubbingDelay < 0 {
		return fmt.Errorf("%s: must not be negative", key("scrubbing_delay"))
	}
	if c.PendingToAvailableDelay < 0 {
		return fmt.Errorf("%s: must not be negative", key("pending_to_available_delay"))
	}
	if c.ReleaseDelay == nil {
		d := core.Duration(0)
		if IsMacType(c.Type) {
			d = core.Duration(MacMinAllocation)
		}
		c.ReleaseDelay = &d
	} else if *c.ReleaseDelay < 0 {
		return fmt.Errorf("%s: must not be negative", key("release_delay"))
	}
	return nil
}

// releaseAge is the minimum age of an idle host before it is released: the
// configured release_delay, but never less than what AWS accepts for mac
// hosts (24h plus a safety margin against clock skew).
func (c *Config) releaseAge() time.Duration {
	d := time.Duration(0)
	if c.ReleaseDelay != nil {
		d = c.ReleaseDelay.D()
	}
	if IsMacType(c.Type) && d < MacMinAllocation+releaseSafety {
		d = MacMinAllocation + releaseSafety
	}
	return d
}

// minReleaseAge is the age below which AWS refuses ReleaseHosts.
func (c *Config) minReleaseAge() time.Duration {
	if IsMacType(c.Type) {
		return MacMinAllocation + releaseSafety
	}
	return 0
}

// family returns the instance family of a type: "c5.large" -> "c5".
func family(t string) string {
	f, _, _ := strings.Cut(t, ".")
	return f
}
