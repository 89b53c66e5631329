package query

import (
	"fmt"
	"strings"

	"ttq/types"
)

// column is one column of a row flowing between operators.
type column struct {
	table  string // the alias of the FROM item it comes from; "" for computed ones
	name   string
	typ    types.Type
	hidden bool // pseudo-columns such as _ts: not part of *
}

// scope is the row layout an expression is compiled against.
type scope struct {
	cols []column
}

// resolve finds the column qual.name (qual may be empty).
func (s *scope) resolve(qual, name string) (int, error) {
	qual, name = strings.ToLower(qual), strings.ToLower(name)
	found := -1
	for i, c := range s.cols {
		if c.name != name || (qual != "" && c.table != qual) {
			continue
		}
		if found >= 0 {
			return -1, fmt.Errorf("%w: %s is in both %s and %s; qualify it, e.g. %s.%s", ErrAmbiguous, name, s.cols[found].table, c.table, s.cols[found].table, name)
		}
		found = i
	}
	if found < 0 {
		where := "any table in FROM"
		if qual != "" {
			where = qual
			name = qual + "." + name
			known := false
			for _, c := range s.cols {
				if c.table == qual {
					known = true
				}
			}
			if !known {
				return -1, fmt.Errorf("%w %s: no table or alias %s in FROM", ErrUnknownColumn, name, qual)
			}
		}
		return -1, fmt.Errorf("%w %s: not a column of %s", ErrUnknownColumn, name, where)
	}
	return found, nil
}

func (s *scope) tables() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range s.cols {
		if c.table != "" && !seen[c.table] {
			seen[c.table] = true
			out = append(out, c.table)
		}
	}
	return out
}

func concatScopes(a, b *scope) *scope {
	cols := make([]column, 0, len(a.cols)+len(b.cols))
	cols = append(cols, a.cols...)
	cols = append(cols, b.cols...)
	return &scope{cols: cols}
}
