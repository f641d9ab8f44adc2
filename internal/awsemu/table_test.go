package awsemu

import "testing"

// TestTableAddReplaces checks the rare paths of table.add: an id added again
// with another object retires the old one; the same object added twice stays live.
func TestTableAddReplaces(t *testing.T) {
	var tb table[*kmsKey]
	tb.init()
	a := &kmsKey{}
	a.id, a.seq = "k-1", 1
	b := &kmsKey{}
	b.id, b.seq = "k-2", 2
	tb.add(a)
	tb.add(b)
	c := &kmsKey{}
	c.id, c.seq = "k-1", 3
	tb.add(c)
	if !a.removed || b.removed || c.removed {
		t.Fatalf("removed flags a=%v b=%v c=%v", a.removed, b.removed, c.removed)
	}
	if got, _ := tb.get("k-1"); got != c || tb.len() != 2 || tb.dead != 1 {
		t.Fatalf("get=%p want %p, len=%d dead=%d", got, c, tb.len(), tb.dead)
	}
	tb.add(b) // the same object again: still live, nothing retired
	if b.removed || tb.dead != 1 || tb.len() != 2 {
		t.Fatalf("re-add: removed=%v dead=%d len=%d", b.removed, tb.dead, tb.len())
	}
	tb.removeObj(c)
	if _, ok := tb.get("k-1"); ok || !c.removed || tb.len() != 1 {
		t.Fatal("removeObj after replacement")
	}
}
