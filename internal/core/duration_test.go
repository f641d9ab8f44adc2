package core

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{"1h2m3s", time.Hour + 2*time.Minute + 3*time.Second, false},
		{"1d", 24 * time.Hour, false},
		{"1M1d", 31 * 24 * time.Hour, false},
		{"10d5h2m3s", 10*24*time.Hour + 5*time.Hour + 2*time.Minute + 3*time.Second, false},
		{"1w", 7 * 24 * time.Hour, false},
		{"1y", 365 * 24 * time.Hour, false},
		{"-1h", -time.Hour, false},
		{"1.5h", 90 * time.Minute, false},
		{"500ms", 500 * time.Millisecond, false},
		{"abc", 0, true},
		{"1x", 0, true},
		{"h", 0, true},
	}
	for _, c := range cases {
		got, err := ParseDuration(c.in)
		if (err != nil) != c.err {
			t.Errorf("ParseDuration(%q) err=%v, want err=%v", c.in, err, c.err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseDuration(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}
