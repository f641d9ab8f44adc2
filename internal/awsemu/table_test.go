package awsemu

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

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

// TestTableAddFresh checks that a table fed by addFresh (fresh ids) and add
// (now and then an id in use) answers every read as one fed by add only:
// random removals by object and by id, gets, lengths and listings, across
// compactions.
func TestTableAddFresh(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	var lazy, eager table[*kmsKey]
	lazy.init()
	eager.init()
	var lz, eg []*kmsKey // the objects added, same index in both
	id := func(n int) string { return fmt.Sprintf("k-%d", n) }
	list := func(tb *table[*kmsKey]) (ids []string) {
		tb.each(0, func(k *kmsKey) bool { ids = append(ids, fmt.Sprint(k.id, "/", k.seq)); return true })
		return ids
	}
	for step := range 4000 {
		switch op := rng.IntN(10); {
		case op < 4: // add
			n, fresh := len(lz), true
			if n > 0 && rng.IntN(20) == 0 {
				n, fresh = rng.IntN(n), false
			}
			a, b := &kmsKey{}, &kmsKey{}
			a.id, a.seq = id(n), uint64(len(lz)+1)
			b.id, b.seq = a.id, a.seq
			if fresh {
				lazy.addFresh(a)
			} else {
				lazy.add(a)
			}
			eager.add(b)
			lz, eg = append(lz, a), append(eg, b)
		case op < 7 && len(lz) > 0: // remove an object (maybe removed already)
			i := rng.IntN(len(lz))
			lazy.removeObj(lz[i])
			eager.removeObj(eg[i])
		case op < 8 && len(lz) > 0: // remove by id
			s := id(rng.IntN(len(lz)))
			lazy.remove(s)
			eager.remove(s)
		case op < 9: // get
			s := id(rng.IntN(len(lz) + 1))
			a, aok := lazy.get(s)
			b, bok := eager.get(s)
			if aok != bok || (aok && a.seq != b.seq) {
				t.Fatalf("step %d: get(%s) = %v %v, want %v %v", step, s, a, aok, b, bok)
			}
		default:
			if a, b := list(&lazy), list(&eager); !slices.Equal(a, b) {
				t.Fatalf("step %d: listing %v, want %v", step, a, b)
			}
		}
		if lazy.len() != eager.len() {
			t.Fatalf("step %d: len %d, want %d", step, lazy.len(), eager.len())
		}
	}
	for i := range lz {
		if lz[i].removed != eg[i].removed {
			t.Fatalf("object %d (%s): removed %v, want %v", i, lz[i].id, lz[i].removed, eg[i].removed)
		}
	}
	if a, b := list(&lazy), list(&eager); !slices.Equal(a, b) {
		t.Fatalf("listing %v, want %v", a, b)
	}
}
