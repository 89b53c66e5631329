package query

import (
	"fmt"
	"strings"

	"github.com/xwb1989/sqlparser"
)

// WithAsOf returns sql with a statement-level AS OF lit inserted right after
// its FROM clause (for `ttq export --as-of` and clients that take the time
// separately from the query). A statement that already has AS OF is an
// error: one snapshot per statement.
func WithAsOf(sql, lit string) (string, error) {
	s, err := ParseSelect(sql)
	if err != nil {
		return "", err
	}
	if s.AsOf != nil {
		return "", fmt.Errorf("%w: the query has its own AS OF; give the time in one place", ErrSyntax)
	}
	toks, err := tokenize(sql)
	if err != nil {
		return "", err
	}
	depth, sawFrom := 0, false
	insert := len(strings.TrimRight(strings.TrimSpace(sql), ";"))
	insert = strings.Index(sql, strings.TrimSpace(sql)) + insert
	for _, t := range toks {
		switch {
		case t.typ == '(':
			depth++
		case t.typ == ')':
			depth--
		case depth == 0 && t.typ == sqlparser.FROM:
			sawFrom = true
		case depth == 0 && sawFrom && !t.quoted && t.typ != ')' && endsFrom(t) && t.typ != 0:
			insert = t.start
			goto done
		}
	}
done:
	if !sawFrom {
		return "", fmt.Errorf("%w: AS OF needs a FROM clause", ErrSyntax)
	}
	quoted := "'" + strings.ReplaceAll(lit, "'", "''") + "'"
	return sql[:insert] + " AS OF " + quoted + " " + sql[insert:], nil
}
