package sqlstore

import "testing"

func TestRebind(t *testing.T) {
	pg := &Store{d: Dialect{Numbered: true}}
	lite := &Store{d: Dialect{}}
	for _, tc := range []struct{ in, pg string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b IN (?, ?)", "a = $1 AND b IN ($2, $3)"},
	} {
		for range 2 { // second call comes from the cache
			if got := pg.q(tc.in); got != tc.pg {
				t.Errorf("numbered q(%q) = %q, want %q", tc.in, got, tc.pg)
			}
		}
		if got := lite.q(tc.in); got != tc.in {
			t.Errorf("? q(%q) = %q", tc.in, got)
		}
	}
	if got := placeholders(3); got != "?, ?, ?" {
		t.Errorf("placeholders(3) = %q", got)
	}
}
