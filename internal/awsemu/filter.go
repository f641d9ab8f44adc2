package awsemu

import (
	"cmp"
	"encoding/base64"
	"iter"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ---- tags ----

type tag struct{ k, v string }

// tagSet keeps tags sorted by key.
type tagSet []tag

func (t tagSet) get(k string) (string, bool) {
	i := sort.Search(len(t), func(i int) bool { return t[i].k >= k })
	if i < len(t) && t[i].k == k {
		return t[i].v, true
	}
	return "", false
}

func (t *tagSet) set(k, v string) {
	s := *t
	i := len(s) // tags usually arrive sorted or nearly: scan from the end
	for i > 0 && s[i-1].k > k {
		i--
	}
	if i > 0 && s[i-1].k == k {
		s[i-1].v = v
		return
	}
	s = append(s, tag{})
	copy(s[i+1:], s[i:])
	s[i] = tag{k, v}
	*t = s
}

func (t tagSet) sdk() []types.Tag {
	if len(t) == 0 {
		return nil
	}
	out := make([]types.Tag, len(t))
	strs := make([]string, 2*len(t)) // one allocation for every Key and Value
	for i, x := range t {
		strs[2*i], strs[2*i+1] = x.k, x.v
		out[i] = types.Tag{Key: &strs[2*i], Value: &strs[2*i+1]}
	}
	return out
}

// sdkInto is sdk with the Tag structs in buf (when they fit) and the Key and
// Value strings from a: no allocation of its own for a few tags.
func (t tagSet) sdkInto(buf []types.Tag, a *outAlloc) []types.Tag {
	if len(t) == 0 {
		return nil
	}
	var out []types.Tag
	if len(t) <= cap(buf) {
		out = buf[:len(t):len(t)] // capped: an append by the caller reallocates
	} else {
		out = make([]types.Tag, len(t))
	}
	for i, x := range t {
		// (field stores: out is fresh zeroed memory, see fillInstanceSDK)
		out[i].Key, out[i].Value = a.str(x.k), a.str(x.v)
	}
	return out
}

func tagsFromMap(m map[string]string) tagSet {
	var t tagSet
	for k, v := range m {
		t.set(k, v)
	}
	return t
}

// validateTags checks AWS tag rules and returns them as a set.
func validateTags(in []types.Tag) (tagSet, error) {
	if err := checkTags(in); err != nil {
		return nil, err
	}
	var t tagSet
	if len(in) > 0 {
		t = make(tagSet, 0, len(in))
	}
	for _, x := range in {
		t.set(aws.ToString(x.Key), aws.ToString(x.Value))
	}
	return t, nil
}

// checkTags checks AWS tag rules (the errors of validateTags).
func checkTags(in []types.Tag) error {
	if len(in) > 50 {
		return Errorf("TagLimitExceeded", "The maximum number of tags per resource is 50.")
	}
	for _, x := range in {
		k := aws.ToString(x.Key)
		v := aws.ToString(x.Value)
		switch {
		case k == "":
			return Errorf("InvalidParameterValue", "Tag key must not be empty.")
		case len(k) > 128:
			return Errorf("InvalidParameterValue", "Tag key exceeds the maximum length of 128 characters.")
		case len(v) > 256:
			return Errorf("InvalidParameterValue", "Tag value exceeds the maximum length of 256 characters.")
		case len(k) >= 4 && strings.EqualFold(k[:4], "aws:"):
			return Errorf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use.")
		}
	}
	return nil
}

// taggableIndex is the index of rt in allowed (the last one if listed
// twice), or the AWS error for a resource type the operation cannot tag.
func taggableIndex(rt types.ResourceType, allowed []types.ResourceType) (int, error) {
	k := -1
	for i, a := range allowed {
		if rt == a {
			k = i
		}
	}
	if k < 0 {
		return 0, Errorf("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt)
	}
	return k, nil
}

// splitTagSpecs is tagSpecs without a map: out[i] receives the tags for
// allowed[i] (same checks, same order of errors). The tags are added to
// out[i] as given (the caller passes empty scratch sets to reuse them).
func splitTagSpecs(specs []types.TagSpecification, allowed []types.ResourceType, out []tagSet) error {
	for _, s := range specs {
		k, err := taggableIndex(s.ResourceType, allowed)
		if err != nil {
			return err
		}
		if err := checkTags(s.Tags); err != nil {
			return err
		}
		// setting each tag in request order gives the set validateTags
		// builds and merges (last value wins, sorted by key)
		for _, x := range s.Tags {
			out[k].set(aws.ToString(x.Key), aws.ToString(x.Value))
		}
	}
	return nil
}

// tagSpecs extracts the tags of TagSpecifications for resourceType; any
// other resource type than the allowed ones is an error like AWS answers.
func tagSpecs(specs []types.TagSpecification, allowed ...types.ResourceType) (map[types.ResourceType]tagSet, error) {
	out := map[types.ResourceType]tagSet{}
	for _, s := range specs {
		if _, err := taggableIndex(s.ResourceType, allowed); err != nil {
			return nil, err
		}
		t, err := validateTags(s.Tags)
		if err != nil {
			return nil, err
		}
		cur := out[s.ResourceType]
		for _, x := range t {
			cur.set(x.k, x.v)
		}
		out[s.ResourceType] = cur
	}
	return out, nil
}

// ---- filters ----

type filter struct {
	name   string
	tagKey string // for tag:K
	values []string
}

// filterable objects expose their tags and the values of named filters.
type filterable interface {
	tagList() tagSet
	filterValues(name string, w *World) []string
}

func compileFilters(fs []types.Filter, known map[string]bool) ([]filter, error) {
	out := make([]filter, 0, len(fs))
	for _, f := range fs {
		name := aws.ToString(f.Name)
		fl := filter{name: name, values: f.Values}
		switch {
		case strings.HasPrefix(name, "tag:") && len(name) > 4:
			fl.tagKey = name[4:]
		case name == "tag-key" || name == "tag-value":
		case known[name]:
		default:
			return nil, Errorf("InvalidParameterValue", "The filter '%s' is invalid", name)
		}
		if len(f.Values) == 0 {
			return nil, Errorf("InvalidParameterValue", "The filter '%s' requires at least one value", name)
		}
		out = append(out, fl)
	}
	return out, nil
}

func (w *World) matches(o filterable, fs []filter) bool {
	for i := range fs {
		f := &fs[i]
		var vals []string
		switch {
		case f.tagKey != "":
			v, ok := o.tagList().get(f.tagKey)
			if !ok || !anyMatchOne(f.values, v) {
				return false
			}
			continue
		case f.name == "tag-key":
			vals = w.fbuf[:0]
			for _, t := range o.tagList() {
				vals = append(vals, t.k)
			}
		case f.name == "tag-value":
			vals = w.fbuf[:0]
			for _, t := range o.tagList() {
				vals = append(vals, t.v)
			}
		default:
			vals = o.filterValues(f.name, w)
		}
		if cap(vals) > cap(w.fbuf) {
			w.fbuf = vals[:0] // keep the grown scratch buffer
		}
		if !anyMatch(f.values, vals) {
			return false
		}
	}
	return true
}

func anyMatchOne(patterns []string, v string) bool {
	for _, p := range patterns {
		if globMatch(p, v) {
			return true
		}
	}
	return false
}

func anyMatch(patterns, vals []string) bool {
	for _, p := range patterns {
		for _, v := range vals {
			if globMatch(p, v) {
				return true
			}
		}
	}
	return false
}

// globMatch matches AWS filter wildcards: * (any run), ? (one char), \ escapes.
func globMatch(p, s string) bool {
	if !strings.ContainsAny(p, `*?\`) {
		return p == s
	}
	// iterative matcher with backtracking on the last star
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			c := p[pi]
			switch {
			case c == '*':
				starP, starS = pi, si
				pi++
				continue
			case c == '?':
				pi++
				si++
				continue
			case c == '\\' && pi+1 < len(p):
				if p[pi+1] == s[si] {
					pi += 2
					si++
					continue
				}
			case c == s[si]:
				pi++
				si++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		si = starS
		pi = starP + 1
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// ---- paging ----

type pager struct {
	after uint64
	limit int
	kind  string
}

// newPager validates MaxResults/NextToken for a paged Describe action.
func (w *World) newPager(kind string, maxResults *int32, token *string, minMax, maxMax int32) (pager, error) {
	p := pager{kind: kind, limit: w.spec.DefaultPageSize}
	if maxResults != nil {
		m := *maxResults
		if m < minMax || m > maxMax {
			return p, Errorf("InvalidParameterValue", "Value ( %d ) for parameter maxResults is invalid. Expecting a value between %d and %d.", m, minMax, maxMax)
		}
		p.limit = int(m)
	}
	if t := aws.ToString(token); t != "" {
		seq, ok := decodeToken(kind, t)
		if !ok {
			return p, Errorf("InvalidParameterValue", "The value '%s' for parameter nextToken is invalid.", t)
		}
		p.after = seq
	}
	return p, nil
}

func encodeToken(kind string, seq uint64) *string {
	s := base64.RawURLEncoding.EncodeToString([]byte("v1|" + kind + "|" + strconv.FormatUint(seq, 10)))
	return &s
}

func decodeToken(kind, t string) (uint64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		return 0, false
	}
	parts := strings.Split(string(b), "|")
	if len(parts) != 3 || parts[0] != "v1" || parts[1] != kind {
		return 0, false
	}
	seq, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil || seq == 0 {
		return 0, false
	}
	return seq, true
}

// collect takes matching objects from src (in creation order) after the
// pager position, up to the page limit, and the token of the next page.
func collect[T object](src iter.Seq[T], p pager, match func(T) bool) ([]T, *string) {
	var out []T
	var next *string
	for v := range src {
		if v.base().seq <= p.after || !match(v) {
			continue
		}
		if p.limit > 0 && len(out) == p.limit {
			next = encodeToken(p.kind, out[len(out)-1].base().seq)
			break
		}
		out = append(out, v)
	}
	return out, next
}

// collectPicked is collect over objects returned by pick; it reuses objs.
func collectPicked[T object](objs []T, p pager, match func(T) bool) ([]T, *string) {
	out := objs[:0]
	var next *string
	for _, v := range objs {
		if v.base().seq <= p.after || !match(v) {
			continue
		}
		if p.limit > 0 && len(out) == p.limit {
			next = encodeToken(p.kind, out[len(out)-1].base().seq)
			break
		}
		out = append(out, v)
	}
	return out, next
}

func (t *table[T]) all(after uint64) iter.Seq[T] {
	return func(yield func(T) bool) { t.each(after, yield) }
}

// pick returns the objects named by ids (deduplicated, in creation order)
// and the ids that do not exist.
func pick[T object](t *table[T], ids []string, visible func(T) bool) ([]T, []string) {
	return pickInto(make([]T, 0, len(ids)), t, ids, visible)
}

// pickInto is pick appending to dst[:0] (scratch of the caller).
func pickInto[T object](dst []T, t *table[T], ids []string, visible func(T) bool) ([]T, []string) {
	var seen map[string]bool // only for long lists; short ones are scanned
	if len(ids) > 16 {
		seen = make(map[string]bool, len(ids))
	}
	out := dst[:0]
	var missing []string
	for i, id := range ids {
		if seen != nil {
			if seen[id] {
				continue
			}
			seen[id] = true
		} else if slices.Contains(ids[:i], id) {
			continue
		}
		v, ok := t.get(id)
		if !ok || (visible != nil && !visible(v)) {
			missing = append(missing, id)
			continue
		}
		out = append(out, v)
	}
	if len(out) > 1 {
		slices.SortFunc(out, func(a, b T) int { return cmp.Compare(a.base().seq, b.base().seq) })
	}
	return out, missing
}

func sliceSeq[T any](s []T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for _, v := range s {
			if !yield(v) {
				return
			}
		}
	}
}

// notFound builds the AWS "does not exist" error for one or several ids.
func notFound(code, what string, ids []string) error {
	if len(ids) == 1 {
		return Errorf(code, "The %s '%s' does not exist", what, ids[0])
	}
	return Errorf(code, "The %ss '%s' do not exist", what, strings.Join(ids, ", "))
}

// checkIDs validates id syntax ("i-" + 8 or 17 hex digits) and answers the
// Malformed error AWS gives.
func checkIDs(code, prefix string, ids []string) error {
	for _, id := range ids {
		if !wellFormed(prefix, id) {
			return Errorf(code, "Invalid id: \"%s\"", id)
		}
	}
	return nil
}

func wellFormed(prefix, id string) bool {
	if len(id) <= len(prefix) || id[:len(prefix)] != prefix || id[len(prefix)] != '-' {
		return false
	}
	h := id[len(prefix)+1:]
	if len(h) != 8 && len(h) != 17 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !lowerHex[h[i]] {
			return false
		}
	}
	return true
}

// lowerHex marks the bytes of lowercase hex digits (a table lookup per byte
// in wellFormed, which checks several ids per call).
var lowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

func dryRun(b *bool) error {
	if aws.ToBool(b) {
		return &APIError{Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set.", HTTPStatus: 412}
	}
	return nil
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func sortBySeq[T object](objs []T) {
	sort.Slice(objs, func(i, j int) bool { return objs[i].base().seq < objs[j].base().seq })
}

// outAlloc hands out pointers for one output from a few shared backing
// arrays instead of one allocation per field. Every output gets its own
// arrays, so callers never alias world state or each other.
type outAlloc struct {
	strs  []string
	i32s  []int32
	bools []bool
	times []time.Time
}

func (a *outAlloc) str(v string) *string {
	if len(a.strs) == cap(a.strs) {
		a.strs = make([]string, 0, 16)
	}
	a.strs = append(a.strs, v)
	return &a.strs[len(a.strs)-1]
}

func (a *outAlloc) i32(v int32) *int32 {
	if len(a.i32s) == cap(a.i32s) {
		a.i32s = make([]int32, 0, 16)
	}
	a.i32s = append(a.i32s, v)
	return &a.i32s[len(a.i32s)-1]
}

func (a *outAlloc) b(v bool) *bool {
	if len(a.bools) == cap(a.bools) {
		a.bools = make([]bool, 0, 16)
	}
	a.bools = append(a.bools, v)
	return &a.bools[len(a.bools)-1]
}

func (a *outAlloc) tm(v time.Time) *time.Time {
	if len(a.times) == cap(a.times) {
		a.times = make([]time.Time, 0, 8)
	}
	a.times = append(a.times, v)
	return &a.times[len(a.times)-1]
}
