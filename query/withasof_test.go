package query

import (
	"errors"
	"testing"
)

func TestWithAsOf(t *testing.T) {
	cases := []struct{ in, want string }{
		{"SELECT * FROM prices", "SELECT * FROM prices AS OF '-1h' "},
		{"SELECT * FROM prices;", "SELECT * FROM prices AS OF '-1h' ;"},
		{"SELECT a FROM t WHERE b = 'WHERE' ORDER BY a", "SELECT a FROM t  AS OF '-1h' WHERE b = 'WHERE' ORDER BY a"},
		{"SELECT a FROM t JOIN u ON t.k = u.k LIMIT 3", "SELECT a FROM t JOIN u ON t.k = u.k  AS OF '-1h' LIMIT 3"},
		{"SELECT (SELECT 1) AS x FROM t GROUP BY x", "SELECT (SELECT 1) AS x FROM t  AS OF '-1h' GROUP BY x"},
	}
	for _, c := range cases {
		got, err := WithAsOf(c.in, "-1h")
		if err != nil || got != c.want {
			t.Errorf("WithAsOf(%q) = %q, %v; want %q", c.in, got, err, c.want)
			continue
		}
		if _, err := Parse(got); err != nil && !errors.Is(err, ErrUnsupported) {
			t.Errorf("result does not parse: %q: %v", got, err)
		}
	}
	if _, err := WithAsOf("SELECT * FROM t AS OF '2026-11-25T10:00:00Z'", "-1h"); !errors.Is(err, ErrSyntax) {
		t.Errorf("double AS OF: %v", err)
	}
	if _, err := WithAsOf("SELECT 1", "-1h"); !errors.Is(err, ErrSyntax) {
		t.Errorf("no FROM: %v", err)
	}
}
