// Package timeline parses and formats ttq's time literals: int64 microseconds
// since the Unix epoch, UTC.
package timeline

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrBadTime is returned for a string that is neither RFC 3339, an integer of
// microseconds nor a negative duration.
var ErrBadTime = errors.New("timeline: bad time literal")

// None marks "no time": a source without a watermark, a store with nothing sealed.
const None int64 = -1 << 63

// Format renders ts as RFC 3339 in UTC with as many fractional digits as needed.
func Format(ts int64) string {
	if ts == None {
		return "none"
	}
	return time.UnixMicro(ts).UTC().Format(time.RFC3339Nano)
}

// ParseAbsolute parses an RFC 3339 string (any offset) or a decimal integer of
// microseconds. Sub-microsecond digits are rejected: they cannot be stored
// without loss.
func ParseAbsolute(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrBadTime)
	}
	if isInteger(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w %q: %v", ErrBadTime, s, err)
		}
		return n, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%w %q: want RFC 3339 such as 2026-11-25T10:00:00Z or integer microseconds", ErrBadTime, s)
	}
	if t.Nanosecond()%1000 != 0 {
		return 0, fmt.Errorf("%w %q: finer than a microsecond", ErrBadTime, s)
	}
	return t.UnixMicro(), nil
}

// Parse parses any time literal of the contract. A negative Go duration
// ('-30s', '-1h30m') means that long before now, which the caller passes as
// the current global watermark; it is an error when now is None.
func Parse(s string, now int64) (int64, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") && !isInteger(s) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%w %q: %v", ErrBadTime, s, err)
		}
		if d >= 0 {
			return 0, fmt.Errorf("%w %q: a relative time must be negative", ErrBadTime, s)
		}
		if now == None {
			return 0, fmt.Errorf("%w %q: relative to the global watermark, but nothing is sealed yet", ErrBadTime, s)
		}
		return now + d.Microseconds(), nil
	}
	return ParseAbsolute(s)
}

func isInteger(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	if s[0] == '-' || s[0] == '+' {
		i = 1
	}
	if i == len(s) {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseDuration parses a non-negative Go duration such as '5s' into microseconds.
func ParseDuration(s string) (int64, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: duration %q (use Go syntax such as 5s or 1h30m)", ErrBadTime, s)
	}
	return d.Microseconds(), nil
}
