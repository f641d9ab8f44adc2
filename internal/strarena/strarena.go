// Package strarena makes many small strings with one allocation per 4 KiB
// chunk instead of one per string: the simulator makes hundreds of
// thousands of client tokens and application uids a year.
//
// The strings are ordinary immutable Go strings. A chunk is a
// strings.Builder that only ever appends within its capacity, so the bytes
// behind a returned string are never written again; a full chunk is left
// to the strings that refer to it and is collected when the last of them
// is. Keeping one string keeps its whole chunk alive, so an arena suits
// strings that are kept and dropped roughly together.
package strarena

import "strings"

// chunkSize is the capacity of a chunk (a string longer than that gets a
// chunk of its own size).
const chunkSize = 4096

// Arena hands out strings carved from its current chunk. The zero value is
// ready to use. An Arena is not safe for concurrent use.
type Arena struct{ b strings.Builder }

// String returns a string with the bytes of p.
func (a *Arena) String(p []byte) string {
	if a.b.Cap()-a.b.Len() < len(p) {
		a.b = strings.Builder{} // (the full chunk stays with its strings)
		a.b.Grow(max(chunkSize, len(p)))
	}
	start := a.b.Len()
	a.b.Write(p)
	return a.b.String()[start:]
}
