package strarena

import (
	"strconv"
	"strings"
	"testing"
)

// Strings keep their values while later ones fill chunks and move on, and
// a chunk serves many strings with one allocation.
func TestStringsStayAndShareChunks(t *testing.T) {
	var a Arena
	var got []string
	for i := range 3000 {
		got = append(got, a.String([]byte("tok-"+strconv.Itoa(i))))
	}
	for i, s := range got {
		if want := "tok-" + strconv.Itoa(i); s != want {
			t.Fatalf("string %d = %q, want %q", i, s, want)
		}
	}
	big := strings.Repeat("x", 3*chunkSize)
	if s := a.String([]byte(big)); s != big {
		t.Fatal("a string longer than a chunk changed")
	}
	if s := a.String(nil); s != "" {
		t.Fatalf("empty = %q", s)
	}
	buf := []byte("reused-buffer")
	s := a.String(buf)
	copy(buf, "XXXXXX")
	if s != "reused-buffer" {
		t.Fatalf("the string follows the caller's buffer: %q", s)
	}
	var b Arena
	b.String([]byte("warm"))
	allocs := testing.AllocsPerRun(1000, func() { b.String([]byte("sim-123456")) })
	if allocs > 0.01 {
		t.Fatalf("%.3f allocations per string, want one per ~400", allocs)
	}
}
