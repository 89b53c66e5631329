package timeline

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	const g = 1795600810000000 // 2026-11-25T10:00:10Z
	cases := []struct {
		in   string
		want int64
		err  bool
	}{
		{"2026-11-25T10:00:00Z", 1795600800000000, false},
		{"2026-11-25T10:00:00.000123Z", 1795600800000123, false},
		{"2026-11-25T15:30:00+05:30", 1795600800000000, false},
		{"1795600800000123", 1795600800000123, false},
		{" 42 ", 42, false},
		{"-30s", g - 30_000_000, false},
		{"-1h30m", g - 5_400_000_000, false},
		{"-1", -1, false}, // an integer, not a duration
		{"2026-11-25T10:00:00.0000001Z", 0, true},
		{"30s", 0, true},
		{"yesterday", 0, true},
		{"", 0, true},
		{"2026-11-25 10:00:00", 0, true},
		{"99999999999999999999", 0, true},
	}
	for _, c := range cases {
		got, err := Parse(c.in, g)
		if c.err {
			if !errors.Is(err, ErrBadTime) {
				t.Errorf("Parse(%q) = %d, %v; want ErrBadTime", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	if _, err := Parse("-5s", None); !errors.Is(err, ErrBadTime) {
		t.Errorf("relative time with nothing sealed: %v", err)
	}
}

func TestFormat(t *testing.T) {
	for ts, want := range map[int64]string{
		1795600800000000: "2026-11-25T10:00:00Z",
		1795600800000123: "2026-11-25T10:00:00.000123Z",
		1795600800500000: "2026-11-25T10:00:00.5Z",
		0:                "1970-01-01T00:00:00Z",
	} {
		if got := Format(ts); got != want {
			t.Errorf("Format(%d) = %s, want %s", ts, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"2026-11-25T10:00:00Z", "-30s", "123", "2026-11-25T10:00:00.000123+01:00", "-1h-1m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := Parse(s, 1795600810000000)
		if err != nil {
			if !errors.Is(err, ErrBadTime) {
				t.Fatalf("error without ErrBadTime: %v", err)
			}
			return
		}
		// Whatever parses as an absolute time formats back to the same instant.
		if ts >= 0 && ts < 253402300800000000 { // before year 10000
			back, err := ParseAbsolute(Format(ts))
			if err != nil || back != ts {
				t.Fatalf("round trip of %d via %q: %d, %v", ts, Format(ts), back, err)
			}
		}
	})
}
