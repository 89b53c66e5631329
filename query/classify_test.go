package query

import "testing"

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
	for _, c := range cases {
		got, err := Classify(c.sql)
		if err != nil || got.Statements != c.n || got.Kind != c.kind || got.ReadOnly != c.readOnly {
			t.Errorf("Classify(%q) = %+v, %v; want %d %s %v", c.sql, got, err, c.n, c.kind, c.readOnly)
		}
	}
}
