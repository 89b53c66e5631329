package query

import (
	"errors"
	"testing"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		sql      string
		n        int
		kind     string
		readOnly bool
	}{
		{"SELECT 1", 1, "select", true},
		{"  (SELECT 1);", 1, "select", true},
		{"/* DROP TABLE x */ SELECT 'DROP'", 1, "select", true},
		{"-- comment\nDROP TABLE prices", 1, "ddl", false},
		{"create view v as select 1", 1, "ddl", false},
		{"EXPLAIN SELECT 1; SHOW TABLES", 2, "meta", true},
		{"DELETE FROM prices", 1, "write", false},
		{";;SELECT 1;;", 1, "select", true},
		{"", 0, "other", false},
		{"SELEC 1", 1, "other", false},
	}
	stmts := NewStatements(8)
	for _, c := range cases {
		got, err := Classify(c.sql)
		if err != nil || got.Statements != c.n || got.Kind != c.kind || got.ReadOnly != c.readOnly {
			t.Errorf("Classify(%q) = %+v, %v; want %d %s %v", c.sql, got, err, c.n, c.kind, c.readOnly)
		}
		// The server classes the tokens of the engine's parse instead.
		p := stmts.Parse(c.sql)
		if pc, err := p.Class(); err != nil || pc != got {
			t.Errorf("Parse(%q).Class() = %+v, %v; Classify says %+v", c.sql, pc, err, got)
		}
		p.Release()
	}
	_, want := Classify("SELECT 'unterminated")
	if _, err := stmts.Parse("SELECT 'unterminated").Class(); !errors.Is(want, ErrSyntax) || !errors.Is(err, ErrSyntax) {
		t.Errorf("a tokenizer error: Class %v, Classify %v", err, want)
	}
}
