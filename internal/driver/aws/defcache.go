package aws

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"sync"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// maxParsedDefs bounds the parsed-definition cache; when full it starts over.
const maxParsedDefs = 256

// parsedDef is a validated definition with everything Allocate derives from
// it alone (and the driver config), computed once. It is shared between
// calls and must be treated as read-only.
type parsedDef struct {
	def     core.Definition // deep copy of the key
	cfg     *Config         // config the definition was validated against
	opts    *Options
	disks   []diskSpec
	groups  []string
	imgRef  string
	defHash string // first 4 bytes of sha256(json(def)), hex: the client token part
	// tags: label tags overridden by instance_tags, sorted by key, without the
	// keys Allocate sets per call (see buildTags).
	tags    []ec2types.Tag
	hasName bool // the static tags set Name
	// poolZones are the zones asked of the pool: pool_zones, else the
	// pool's configured zones (nil without a pool).
	poolZones []string
}

// defCache maps definition options bytes to the parsed definitions that
// have them (compared field by field on lookup).
type defCache struct {
	mu sync.Mutex
	n  int
	m  map[string][]*parsedDef
}

func (c *defCache) lookup(cfg *Config, def *core.Definition) *parsedDef {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The map key already says the options are equal.
	for _, p := range c.m[string(def.Options)] {
		if p.cfg == cfg && defEqualBesidesOptions(&p.def, def) {
			return p
		}
	}
	return nil
}

func (c *defCache) store(p *parsedDef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || c.n >= maxParsedDefs {
		c.m, c.n = map[string][]*parsedDef{}, 0
	}
	k := string(p.def.Options)
	c.m[k] = append(c.m[k], p)
	c.n++
}

// defEqualBesidesOptions reports whether two definitions have the same
// fields apart from Options (nil and empty collections are equal: they
// marshal and validate alike).
func defEqualBesidesOptions(a, b *core.Definition) bool {
	return a.Driver == b.Driver && slices.Equal(a.Images, b.Images) &&
		resourcesEqual(&a.Resources, &b.Resources) &&
		ptrEqual(a.Authentication, b.Authentication)
}

func resourcesEqual(a, b *core.Resources) bool {
	return a.Cpu == b.Cpu && a.Ram == b.Ram && a.Network == b.Network && a.Lifetime == b.Lifetime &&
		maps.Equal(a.Disks, b.Disks) && slices.Equal(a.NodeFilter, b.NodeFilter) && ptrEqual(a.Slots, b.Slots)
}

func ptrEqual[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// cloneDef deep-copies the fields of def that lookup compares.
func cloneDef(def core.Definition) core.Definition {
	c := def
	c.Options = bytes.Clone(def.Options)
	c.Images = slices.Clone(def.Images)
	c.Resources.Disks = maps.Clone(def.Resources.Disks)
	c.Resources.NodeFilter = slices.Clone(def.Resources.NodeFilter)
	if def.Resources.Slots != nil {
		s := *def.Resources.Slots
		c.Resources.Slots = &s
	}
	if def.Authentication != nil {
		a := *def.Authentication
		c.Authentication = &a
	}
	return c
}

// definitionHash is the definition part of the client token.
func definitionHash(def core.Definition) string {
	b, _ := json.Marshal(def)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:4])
}

// definition validates def (see parseDefinition) and returns its parsed
// form, cached per exact definition and config. Invalid definitions are not
// cached: they are validated again (with the same error) on every call.
func (d *Driver) definition(def core.Definition) (*parsedDef, error) {
	d.mu.RLock()
	cfg := d.cfg
	d.mu.RUnlock()
	return d.definitionFor(cfg, def)
}

// definitionFor is definition with the config already read.
func (d *Driver) definitionFor(cfg *Config, def core.Definition) (*parsedDef, error) {
	if p := d.defs.lookup(cfg, &def); p != nil {
		return p, nil
	}
	o, disks, err := d.parseDefinitionUncached(def)
	if err != nil {
		return nil, err
	}
	p := &parsedDef{def: cloneDef(def), cfg: cfg, opts: o, disks: disks, groups: o.Groups(),
		imgRef: imageRef(def, o), defHash: definitionHash(def)}
	m := map[string]string{}
	maps.Copy(m, o.Tags)
	if cfg != nil {
		maps.Copy(m, cfg.InstanceTags)
	}
	_, p.hasName = m[TagName]
	if o.Pool != "" {
		p.poolZones = o.PoolZones
		if len(p.poolZones) == 0 && cfg != nil && cfg.DedicatedPool[o.Pool] != nil {
			p.poolZones = cfg.DedicatedPool[o.Pool].Zones
		}
	}
	p.tags = toTags(m)
	d.defs.store(p)
	return p, nil
}

// buildTags merges label tags, then instance_tags (override), then the
// driver's own tags; Name stays user-settable. The result is sorted by key.
// Static tags come from p (shared pointers: the SDK does not modify inputs).
func (d *Driver) buildTags(p *parsedDef, appUID, labelName, labelUID string) []ec2types.Tag {
	var v tagValues
	return d.buildTagsInto(nil, &v, p, appUID, labelName, labelUID)
}

// tagValues holds the values of the per-call tags that buildTagsInto points
// to (see launch).
type tagValues struct {
	appUID, labelUID, name string
}

// buildTagsInto is buildTags appending to buf (when it has room: Allocate
// passes a buffer of its launch input) with the per-call values stored in v,
// so the tags cost no allocation of their own beyond the Name string. A
// v.name already set is the Name value (defaultName of the same arguments).
func (d *Driver) buildTagsInto(buf []ec2types.Tag, v *tagValues, p *parsedDef, appUID, labelName, labelUID string) []ec2types.Tag {
	// Per-call tags, in key order (AquariumApplication < AquariumLabel <
	// AquariumNode < Name).
	var dyn [4]ec2types.Tag
	n := 0
	v.appUID = appUID
	dyn[n] = ec2types.Tag{Key: tagKeyApplication, Value: &v.appUID}
	n++
	if labelUID != "" {
		v.labelUID = labelUID
		dyn[n] = ec2types.Tag{Key: tagKeyLabel, Value: &v.labelUID}
		n++
	}
	if d.nodeName != "" {
		dyn[n] = ec2types.Tag{Key: tagKeyNode, Value: d.nodeNamePtr}
		n++
	}
	if !p.hasName {
		if v.name == "" { // (Allocate may have built it with the client token)
			v.name = defaultName(labelName, appUID)
		}
		dyn[n] = ec2types.Tag{Key: tagKeyName, Value: &v.name}
		n++
	}
	out := buf[:0]
	if cap(out) < len(p.tags)+n {
		out = make([]ec2types.Tag, 0, len(p.tags)+n)
	}
	i, j := 0, 0
	for i < len(p.tags) || j < n {
		switch {
		case j == n:
			out = append(out, p.tags[i])
			i++
		case i == len(p.tags):
			out = append(out, dyn[j])
			j++
		default:
			sk, dk := *p.tags[i].Key, *dyn[j].Key
			switch {
			case sk < dk:
				out = append(out, p.tags[i])
				i++
			case sk > dk:
				out = append(out, dyn[j])
				j++
			default: // the driver's tag overrides
				out = append(out, dyn[j])
				i++
				j++
			}
		}
	}
	return out
}

// defaultName is the Name tag value when the tags set none.
func defaultName(labelName, appUID string) string {
	if labelName != "" {
		return labelName + "-" + appUID
	}
	return "aquarium-" + appUID
}

// Shared keys of the driver's own tags.
var (
	tagKeyApplication = awssdk.String(TagApplication)
	tagKeyLabel       = awssdk.String(TagLabel)
	tagKeyNode        = awssdk.String(TagNode)
	tagKeyName        = awssdk.String(TagName)
)
