package awsemu

import (
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// parsedTags is the tag list of one TagSpecification, parsed once for the
// launches that repeat it (see tagCache).
type parsedTags struct {
	raw []tag // the request's tags as given (the content a request is checked against)
	// set is the tagSet of raw (sorted by key, last value wins). It is
	// shared by every instance and volume launched with these tags, so it
	// is read-only and capped: CreateTags clones an object's set before
	// changing it (see CreateTags).
	set  tagSet
	hash uint64 // of raw: runHash hashes this instead of the tags
	err  error  // what checkTags answers for raw
	buf  [6]tag // backs raw for a few tags (one allocation per parse)
}

// matches tells whether ts has exactly the content p was parsed from.
func (p *parsedTags) matches(ts []types.Tag) bool {
	if len(ts) != len(p.raw) {
		return false
	}
	for i := range ts {
		if aws.ToString(ts[i].Key) != p.raw[i].k || aws.ToString(ts[i].Value) != p.raw[i].v {
			return false
		}
	}
	return true
}

func newParsedTags(ts []types.Tag) *parsedTags {
	p := &parsedTags{err: checkTags(ts)}
	var h fieldHash
	h.num(int64(len(ts)))
	switch {
	case len(ts) == 0: // (no set, as before)
	case len(ts) <= len(p.buf):
		p.raw = p.buf[:len(ts):len(ts)] // (capped: the set may be raw itself)
	default:
		p.raw = make([]tag, len(ts))
	}
	sorted := true
	for i, x := range ts {
		k, v := aws.ToString(x.Key), aws.ToString(x.Value)
		p.raw[i] = tag{k, v}
		h.str(k)
		h.str(v)
		if i > 0 && p.raw[i-1].k >= k {
			sorted = false
		}
	}
	p.hash = h.sum()
	if sorted { // (the usual request: the set is the list itself)
		p.set = p.raw
		return p
	}
	for _, t := range p.raw {
		p.set.set(t.k, t.v)
	}
	p.set = slices.Clip(p.set)
	return p
}

// tagCache keeps the last few parsed tag lists of launches. Launches mostly
// repeat the tags of a recent one (the pool's scrub template; the driver
// gives its instance and its volume the same tags), and a hit costs a
// comparison instead of building and checking a set and copying it into
// each object. Entries are found by content, never by pointer: callers
// reuse their request structs and change them between calls.
type tagCache struct {
	recent [4]*parsedTags
	next   int
}

func (c *tagCache) parse(ts []types.Tag) *parsedTags {
	for _, p := range c.recent {
		if p != nil && p.matches(ts) {
			return p
		}
	}
	p := newParsedTags(ts)
	c.recent[c.next] = p
	c.next = (c.next + 1) % len(c.recent)
	return p
}

// parseSpecs appends the parsed tags of each spec to dst (in spec order).
func (c *tagCache) parseSpecs(dst []*parsedTags, specs []types.TagSpecification) []*parsedTags {
	for i := range specs {
		dst = append(dst, c.parse(specs[i].Tags))
	}
	return dst
}

// mergeParsedTags is splitTagSpecs over parsed tags (parsed[i] is of
// specs[i]): the same checks in the same order, and the same sets, which
// are the shared parsed sets when a resource type has one spec.
func mergeParsedTags(specs []types.TagSpecification, parsed []*parsedTags, allowed []types.ResourceType, out []tagSet) error {
	for i, s := range specs {
		k, err := taggableIndex(s.ResourceType, allowed)
		if err != nil {
			return err
		}
		p := parsed[i]
		if p.err != nil {
			return p.err
		}
		if len(out[k]) == 0 {
			out[k] = p.set
			continue
		}
		// a second spec of the type: merge into a copy (out[k] is shared)
		m := slices.Clone(out[k])
		for _, t := range p.raw {
			m.set(t.k, t.v)
		}
		out[k] = slices.Clip(m)
	}
	return nil
}
