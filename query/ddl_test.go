package query

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"ttq/catalog"
	"ttq/types"
)

func TestParseDDL(t *testing.T) {
	cases := []struct {
		sql  string
		want Statement
	}{
		{"CREATE SOURCE pricing;", &CreateSource{Name: "pricing", Options: map[string]string{}}},
		{"create source Search WITH (topic = 'search.updates', FORMAT = debezium, watermark='bounded', max_delay = '5s')",
			&CreateSource{Name: "search", Options: map[string]string{"topic": "search.updates", "format": "debezium", "watermark": "bounded", "max_delay": "5s"}}},
		{"CREATE TABLE Prices (product_id VARCHAR(64) PRIMARY KEY, price DOUBLE, currency TEXT NOT NULL) SOURCE pricing",
			&CreateTable{Name: "prices", Source: "pricing", PK: []int{0}, Options: map[string]string{},
				Columns: []catalog.Column{{Name: "product_id", Type: types.Varchar}, {Name: "price", Type: types.Double}, {Name: "currency", Type: types.Varchar}}}},
		{"CREATE TABLE IF NOT EXISTS stock (product_id VARCHAR, warehouse VARCHAR, qty INT, at TIMESTAMP, ok BOOL, PRIMARY KEY (warehouse, product_id)) SOURCE inventory WITH (retention = '1h')",
			&CreateTable{Name: "stock", Source: "inventory", PK: []int{1, 0}, IfNotExists: true, Options: map[string]string{"retention": "1h"},
				Columns: []catalog.Column{{Name: "product_id", Type: types.Varchar}, {Name: "warehouse", Type: types.Varchar}, {Name: "qty", Type: types.BigInt}, {Name: "at", Type: types.Timestamp}, {Name: "ok", Type: types.Boolean}}}},
		{"CREATE TABLE `key` (`select` BIGINT PRIMARY KEY) SOURCE s", &CreateTable{Name: "key", Source: "s", PK: []int{0}, Options: map[string]string{}, Columns: []catalog.Column{{Name: "select", Type: types.BigInt}}}},
		{"CREATE VIEW lp WITH (epoch = '5s') AS SELECT l.listing_id, p.price FROM listings l LEFT JOIN prices p ON l.product_id = p.product_id;",
			&CreateView{Name: "lp", Options: map[string]string{"epoch": "5s"}, Query: "SELECT l.listing_id, p.price FROM listings l LEFT JOIN prices p ON l.product_id = p.product_id"}},
		{"DROP VIEW listing_prices", &Drop{Kind: "view", Name: "listing_prices"}},
		{"drop table if exists Prices", &Drop{Kind: "table", Name: "prices", IfExists: true}},
		{"DROP SOURCE pricing", &Drop{Kind: "source", Name: "pricing"}},
		{"SHOW TABLES", &Show{What: "tables"}},
		{"show sources;", &Show{What: "sources"}},
		{"SHOW VIEWS", &Show{What: "views"}},
		{"DESCRIBE prices", &Describe{Name: "prices"}},
		{"desc Prices", &Describe{Name: "prices"}},
	}
	for _, c := range cases {
		got, err := Parse(c.sql)
		if err != nil {
			t.Errorf("%s: %v", c.sql, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\ngot  %#v\nwant %#v", c.sql, got, c.want)
		}
	}
	st, err := Parse("EXPLAIN TIMESTAMP SELECT * FROM prices AS OF '-1s'")
	if err != nil {
		t.Fatal(err)
	}
	if ex := st.(*Explain); !ex.Timestamp || ex.Select.AsOf == nil || ex.Select.AsOf.To.Text != "-1s" {
		t.Errorf("explain: %#v", ex)
	}
}

func TestParseDDLErrors(t *testing.T) {
	cases := []struct {
		sql, msg string
		want     error
	}{
		{"CREATE TABLE t (a BIGINT) SOURCE s", "PRIMARY KEY", ErrSyntax},
		{"CREATE TABLE t (a BIGINT PRIMARY KEY)", "SOURCE", ErrSyntax},
		{"CREATE TABLE t (a BLOB PRIMARY KEY) SOURCE s", "BLOB", types.ErrUnknownType},
		{"CREATE TABLE t (a BIGINT, PRIMARY KEY (b)) SOURCE s", "\"b\"", ErrUnknownColumn},
		{"CREATE TABLE t (a BIGINT PRIMARY KEY, b INT PRIMARY KEY) SOURCE s", "second PRIMARY KEY", ErrSyntax},
		{"CREATE TABLE t (a BIGINT PRIMARY KEY, a INT) SOURCE s", "twice", ErrSyntax},
		{"CREATE TABLE t (a BIGINT PRIMARY KEY SOURCE s", "offset 37", ErrSyntax},
		{"CREATE TABLE t (a BIGINT PRIMARY KEY) SOURCE s extra", "after the end", ErrSyntax},
		{"CREATE SOURCE s WITH (topic 'x')", "'='", ErrSyntax},
		{"CREATE SOURCE s WITH (a = 1, a = 2)", "twice", ErrSyntax},
		{"CREATE INDEX i ON t (a)", "CREATE SOURCE", ErrSyntax},
		{"CREATE VIEW v AS DELETE FROM t", "SELECT", ErrSyntax},
		{"CREATE VIEW v AS SELECT * FROM t AS OF 1", "AS OF", ErrUnsupported},
		{"DROP INDEX i", "DROP TABLE", ErrSyntax},
		{"SHOW DATABASES", "SHOW TABLES", ErrSyntax},
		{"DESCRIBE", "name", ErrSyntax},
		{"EXPLAIN CREATE SOURCE s", "SELECT", ErrSyntax},
		{"", "empty", ErrSyntax},
		{"  ;  ", "empty", ErrSyntax},
		{"UPDATE t SET a = 1", "ingest", ErrUnsupported},
		{"GRANT ALL", "expected SELECT", ErrSyntax},
	}
	for _, c := range cases {
		_, err := Parse(c.sql)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want %v mentioning %q", c.sql, err, c.want, c.msg)
		}
	}
}

func FuzzParse(f *testing.F) {
	e := newTestEnv(f)
	for _, s := range []string{
		"SELECT * FROM prices AS OF '2026-11-25T10:00:00Z' WHERE product_id = 'P1'",
		"SELECT l.category, COUNT(DISTINCT p.price) FROM listings l LEFT JOIN prices FOR SYSTEM_TIME BETWEEN 1 AND 2 p ON l.product_id = p.product_id GROUP BY 1 HAVING COUNT(*) > 1 ORDER BY 2 DESC LIMIT 3",
		"CREATE TABLE t (a VARCHAR(10) PRIMARY KEY, b INT) SOURCE s WITH (retention='1h')",
		"CREATE VIEW v AS SELECT 1",
		"EXPLAIN SELECT * FROM stock s JOIN prices p USING (product_id)",
		"SELECT `of` FROM t FOR SYSTEM_TIME ALL /* AS OF */ -- x",
		"SELECT CASE WHEN a THEN 1 END, 'x' LIKE '%\\_' ESCAPE '\\\\' FROM dual",
		"SELECT /*! 1 */",
		"SELECT 'abc",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		st, err := Parse(sql)
		if err != nil {
			return
		}
		var sel *Select
		switch st := st.(type) {
		case *Select:
			sel = st
		case *Explain:
			sel = st.Select
		case *CreateView:
			s, err := ParseSelect(st.Query)
			if err != nil {
				t.Fatalf("view query %q does not parse: %v", st.Query, err)
			}
			sel = s
		default:
			return
		}
		if _, err := Analyze(e.cat, sel); err != nil && errors.Is(err, ErrInternal) {
			t.Fatalf("%q: %v", sql, err)
		}
		if res, err := e.run(sql); err == nil {
			res.Release()
		} else if errors.Is(err, ErrInternal) {
			t.Fatalf("%q: %v", sql, err)
		}
	})
}
