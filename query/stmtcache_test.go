package query

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/xwb1989/sqlparser"
)

// describe renders everything a parsed statement carries, for comparing
// the cache's statements with the parser's.
func describe(t *testing.T, st Statement) string {
	t.Helper()
	s, ok := st.(*Select)
	if !ok {
		return fmt.Sprintf("%T %+v", st, st)
	}
	var tables []string
	for at, spec := range s.tables {
		tables = append(tables, sqlparser.String(at)+" "+spec.String())
	}
	sort.Strings(tables)
	asOf := "<nil>"
	if s.AsOf != nil {
		asOf = s.AsOf.String()
	}
	return fmt.Sprintf("text=%q ast=%q asof=%s tables=%v", s.Text, sqlparser.String(s.AST), asOf, tables)
}

// TestStatementsMatchParse parses statements of many shapes, each shape
// with several sets of literals, through the cache and checks every one
// equals what Parse gives — also for the second and later statements of a
// shape, which reuse the tree of an earlier one.
func TestStatementsMatchParse(t *testing.T) {
	shapes := []struct {
		format string
		args   [][]any
		cached bool // the shape is expected to be served from the cache
	}{
		{"SELECT price, _ts FROM prices AS OF %d WHERE product_id = '%s'", [][]any{{100, "P1"}, {200, "P2"}, {300, "P0003"}}, true},
		{"SELECT l.listing_id, l.title, p.price FROM listings l JOIN prices p ON l.product_id = p.product_id AS OF '%s' WHERE l.listing_id = '%s';",
			[][]any{{"2026-11-25T10:00:00Z", "L1"}, {"-30s", "L22"}, {"2026-11-25T10:00:01.5Z", "it''s"}}, true},
		{"SELECT price, _valid_from, _valid_to FROM prices FOR SYSTEM_TIME BETWEEN %d AND %d WHERE product_id = '%s' ORDER BY _valid_from",
			[][]any{{1, 2, "a"}, {30, 40, "b"}, {500, 600, "c"}}, true},
		{"SELECT * FROM t FOR SYSTEM_TIME FROM '%s' TO '%s' x WHERE x.a > %v", [][]any{{"1s", "2s", 1.5}, {"3s", "4s", 2.25}}, true},
		{"SELECT a FROM t FOR SYSTEM_TIME AS OF %d JOIN u FOR SYSTEM_TIME ALL ON t.a = u.a WHERE t.b IN (%d, %d) LIMIT %d", [][]any{{1, 2, 3, 4}, {5, 6, 7, 8}}, true},
		{"SELECT category, COUNT(*), AVG(price) FROM t WHERE active = true AND price BETWEEN %d AND %d GROUP BY category ORDER BY 1", [][]any{{1, 2}, {3, 4}}, true},
		{"SELECT a FROM t WHERE a = %d", [][]any{{-5}, {-6}, {-70}}, false},                      // sqlparser folds '-' and 5 into one literal
		{"SELECT CAST(a AS CHAR(%d)) FROM t WHERE b = '%s'", [][]any{{3, "x"}, {4, "y"}}, false}, // a literal outside the walk
		{"SELECT 'x%s' AS c, %d + a FROM t", [][]any{{"1", 2}, {"22", 3}, {"", 4}}, true},
	}
	c := NewStatements(100)
	for _, sh := range shapes {
		before := c.hits
		for round := 0; round < 2; round++ {
			for _, args := range sh.args {
				sql := fmt.Sprintf(sh.format, args...)
				want, err := Parse(sql)
				if err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				p := c.Parse(sql)
				got, err := p.Statement()
				if err != nil {
					t.Fatalf("%s: cached parse: %v", sql, err)
				}
				if g, w := describe(t, got), describe(t, want); g != w {
					t.Errorf("%s:\n got %s\nwant %s", sql, g, w)
				}
				p.Release()
			}
		}
		hits := c.hits - before
		if sh.cached && hits != 2*len(sh.args)-1 {
			t.Errorf("%s: %d statements served from the cache, want %d", sh.format, hits, 2*len(sh.args)-1)
		}
		if !sh.cached && hits != 0 {
			t.Errorf("%s: %d statements served from the cache, want none", sh.format, hits)
		}
	}
}

// TestStatementsErrors checks the cache reports what Parse reports.
func TestStatementsErrors(t *testing.T) {
	c := NewStatements(10)
	for _, sql := range []string{"", ";", "SELECT 1; SELECT 2", "SELECT * FROM t AS OF", "SELECT 'open", "SELEC x", "INSERT INTO t VALUES (1)"} {
		_, werr := Parse(sql)
		p := c.Parse(sql)
		_, gerr := p.Statement()
		p.Release()
		if werr == nil || gerr == nil || werr.Error() != gerr.Error() {
			t.Errorf("%q: cache says %v, Parse says %v", sql, gerr, werr)
		}
	}
}

// TestStatementsConcurrent parses statements of one shape from many
// goroutines at once (run with -race): each must get its own literals.
func TestStatementsConcurrent(t *testing.T) {
	c := NewStatements(10)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				key := fmt.Sprintf("K%d_%d", g, i)
				sql := fmt.Sprintf("SELECT a FROM t AS OF %d WHERE k = '%s'", g*1000+i, key)
				p := c.Parse(sql)
				st, err := p.Statement()
				if err != nil {
					errs <- err.Error()
					return
				}
				s := st.(*Select)
				if d := describe(t, s); !strings.Contains(d, "'"+key+"'") || s.AsOf.To.Text != fmt.Sprint(g*1000+i) {
					errs <- "statement " + sql + " parsed as " + d
				}
				p.Release()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// FuzzStatements parses a statement through the cache after another of
// its shape (every literal changed) left its tree there: the result must
// be what Parse gives, statement or error.
func FuzzStatements(f *testing.F) {
	for _, s := range []string{
		"SELECT price, _ts FROM prices AS OF 100 WHERE product_id = 'P1'",
		"SELECT l.listing_id, p.price FROM listings l JOIN prices p ON l.product_id = p.product_id AS OF '-30s' WHERE l.listing_id = 'L1'",
		"SELECT price FROM prices FOR SYSTEM_TIME BETWEEN 1 AND 2 WHERE product_id = 'a' ORDER BY _valid_from LIMIT 3",
		"SELECT category, COUNT(*) FROM t WHERE active = true AND price BETWEEN 1.5 AND 2e3 GROUP BY category HAVING COUNT(*) > 2",
		"SELECT 'x' AS c, 2 + a, x'0a', 0x1F FROM t WHERE b IN (1, 2, 'three')",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		toks, err := tokenize(sql)
		if err != nil {
			return
		}
		// Another statement of the same shape: every literal changed.
		var b strings.Builder
		pos := 0
		for _, tk := range toks {
			if !isLiteral(tk) {
				continue
			}
			b.WriteString(sql[pos:tk.start])
			switch tk.typ {
			case sqlparser.STRING:
				b.WriteString("'zz'")
			case sqlparser.INTEGRAL:
				b.WriteString("7")
			default:
				b.WriteString(sql[tk.start:tk.end])
			}
			pos = tk.end
		}
		b.WriteString(sql[pos:])
		c := NewStatements(4)
		for _, s := range []string{b.String(), sql} {
			want, werr := Parse(s)
			p := c.Parse(s)
			got, gerr := p.Statement()
			if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
				t.Fatalf("%q: cache says %v, Parse says %v", s, gerr, werr)
			}
			if werr == nil {
				if g, w := describe(t, got), describe(t, want); g != w {
					t.Fatalf("%q:\n got %s\nwant %s", s, g, w)
				}
			}
			p.Release()
		}
	})
}
