package query

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"ttq/catalog"
	"ttq/timeline"
	"ttq/types"
)

func TestLift(t *testing.T) {
	cases := []struct {
		sql, text string
		asOf      string // "" for none
		tables    []string
	}{
		{"SELECT a FROM t AS OF '2026-11-25T10:00:00Z' WHERE b = 1", "SELECT a FROM t  WHERE b = 1", "AS OF '2026-11-25T10:00:00Z'", nil},
		{"SELECT a FROM t AS OF SYSTEM TIME 123", "SELECT a FROM t ", "AS OF 123", nil},
		{"SELECT 'AS OF x' FROM t WHERE c = 'FOR SYSTEM_TIME ALL'", "SELECT 'AS OF x' FROM t WHERE c = 'FOR SYSTEM_TIME ALL'", "", nil},
		{"SELECT `of` FROM t AS `of`", "SELECT `of` FROM t AS `of`", "", nil},
		{"SELECT a /* AS OF '1' */ FROM t -- AS OF '2'", "SELECT a /* AS OF '1' */ FROM t -- AS OF '2'", "", nil},
		{"SELECT * FROM t FOR SYSTEM_TIME AS OF '-1h' x JOIN u ON x.a = u.a", "SELECT * FROM t PARTITION (ttq_systime_0)  x JOIN u ON x.a = u.a", "", []string{"AS OF '-1h'"}},
		{"SELECT * FROM t FOR SYSTEM_TIME BETWEEN 1 AND 2, u FOR SYSTEM_TIME FROM '3' TO '4' AS OF 9", "SELECT * FROM t PARTITION (ttq_systime_0) , u PARTITION (ttq_systime_1)  ", "AS OF 9",
			[]string{"FOR SYSTEM_TIME BETWEEN 1 AND 2", "FOR SYSTEM_TIME BETWEEN '3' AND '4'"}},
		{"SELECT * FROM t FOR SYSTEM_TIME ALL", "SELECT * FROM t PARTITION (ttq_systime_0) ", "", []string{"FOR SYSTEM_TIME ALL"}},
	}
	for _, c := range cases {
		l, err := lift(c.sql)
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		if l.text != c.text {
			t.Errorf("%s: text %q, want %q", c.sql, l.text, c.text)
		}
		got := ""
		if l.asOf != nil {
			got = l.asOf.String()
		}
		if got != c.asOf {
			t.Errorf("%s: as of %q, want %q", c.sql, got, c.asOf)
		}
		var ts []string
		for _, s := range l.tables {
			ts = append(ts, s.String())
		}
		if strings.Join(ts, ";") != strings.Join(c.tables, ";") {
			t.Errorf("%s: tables %q, want %q", c.sql, ts, c.tables)
		}
	}
}

func TestErrors(t *testing.T) {
	e := newTestEnv(t)
	cases := []struct {
		sql  string
		want error
		msg  string // a part of the message
	}{
		{`SELECT * FROM prices AS OF '2026-11-25T10:00:41Z'`, errNotSealed, "global watermark"},
		{`SELECT * FROM prices FOR SYSTEM_TIME AS OF '2027-01-01T00:00:00Z' p`, errNotSealed, ""},
		{`SELECT * FROM prices FOR SYSTEM_TIME BETWEEN '2026-11-25T10:00:10Z' AND '2026-11-25T10:00:00Z'`, ErrBadTime, "swap"},
		{`SELECT * FROM prices AS OF 'yesterday'`, ErrBadTime, ""},
		{`SELECT * FROM prices AS OF -5`, ErrBadTime, "'-30s'"},
		{`SELECT * FROM nope`, ErrUnknownTable, "nope"},
		{`SELECT nope FROM prices`, ErrUnknownColumn, "nope"},
		{`SELECT x.price FROM prices`, ErrUnknownColumn, "no table or alias x"},
		{`SELECT product_id FROM prices p JOIN stock s ON p.product_id = s.product_id`, ErrAmbiguous, "p and s"},
		{`SELECT title, COUNT(*) FROM listings GROUP BY category`, ErrGroupBy, "title"},
		{`SELECT * FROM prices WHERE COUNT(*) > 1`, ErrUnsupported, "WHERE"},
		{`SELECT FOO(price) FROM prices`, ErrUnsupported, "FOO"},
		{`SELECT * FROM prices WHERE price = 'abc'`, ErrType, ""},
		{`SELECT * FROM prices WHERE product_id > 3`, ErrType, "VARCHAR"},
		{`SELECT * FROM prices WHERE _ts > 'noon'`, ErrType, ""},
		{`SELECT * FROM (SELECT 1) x`, ErrUnsupported, "subquery"},
		{`SELECT * FROM prices WHERE product_id IN (SELECT product_id FROM stock)`, ErrUnsupported, ""},
		{`SELECT * FROM prices UNION SELECT * FROM prices`, ErrUnsupported, "UNION"},
		{`SELECT * FROM prices a RIGHT JOIN prices b ON a.product_id = b.product_id`, ErrUnsupported, "LEFT JOIN"},
		{`SELECT * FROM prices AS OF 1 AS OF 2`, ErrSyntax, "FROM clause"},
		{`SELECT * FROM prices AS OF 1 JOIN stock ON 1 = 1`, ErrSyntax, "FROM clause"},
		{`SELECT * FROM prices FOR SYSTEM_TIME SOMETIME`, ErrSyntax, ""},
		{`SELECT * FROM prices WHERE`, ErrSyntax, ""},
		{`SELECT * FROM prices LIMIT 'a'`, ErrSyntax, ""},
		{`SELECT product_id FROM prices ORDER BY 5`, ErrUnknownColumn, "position"},
		{`SELECT * FROM prices p, prices p`, ErrAmbiguous, "twice"},
		{`SELECT*FROM prices' '`, ErrSyntax, "blank alias"},
		{`/*!*/`, ErrUnsupported, "MySQL-specific"},
		{`SELECT price FROM prices WHERE product_id = 'P1' /*!*/`, ErrUnsupported, "MySQL-specific"},
		{`SELECT * FROM ttq_watermarks FOR SYSTEM_TIME ALL`, ErrUnsupported, "system table"},
		{`SELECT 'unterminated FROM prices`, ErrSyntax, ""},
		{`INSERT INTO prices VALUES (1)`, ErrUnsupported, "ingest"},
		{`SELECT 1; SELECT 2`, ErrSyntax, "more than one"},
	}
	for _, c := range cases {
		_, err := e.run(c.sql)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.sql, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q should be one line mentioning %q", c.sql, err, c.msg)
		}
	}
}

func TestNothingSealed(t *testing.T) {
	e := newTestEnv(t)
	e.g = timeline.None
	if _, err := e.run(`SELECT * FROM prices`); !errors.Is(err, errNotSealed) {
		t.Fatalf("got %v", err)
	}
	got, res := e.query(t, `SELECT 1`)
	defer res.Release()
	if strings.Join(got, ",") != "1" {
		t.Fatalf("got %v", got)
	}
}

func TestResultTimes(t *testing.T) {
	e := newTestEnv(t)
	res, err := e.run(`SELECT * FROM prices`)
	if err != nil {
		t.Fatal(err)
	}
	if res.AsOf != sec(40) || res.Note != "" {
		t.Errorf("as of %s note %q", timeline.Format(res.AsOf), res.Note)
	}
	res, err = e.run(`SELECT * FROM cheap AS OF '2026-11-25T10:00:35Z'`)
	if err != nil {
		t.Fatal(err)
	}
	if res.AsOf != sec(35) || res.Note != "view cheap answered at epoch 2026-11-25T10:00:30Z" {
		t.Errorf("as of %s note %q", timeline.Format(res.AsOf), res.Note)
	}
	res, err = e.run(`SELECT * FROM prices a JOIN prices FOR SYSTEM_TIME AS OF '2026-11-25T10:00:05Z' b ON a.product_id = b.product_id`)
	if err != nil {
		t.Fatal(err)
	}
	if res.Note != "a as of 2026-11-25T10:00:40Z; b as of 2026-11-25T10:00:05Z" {
		t.Errorf("note %q", res.Note)
	}
	res, err = e.run(`SELECT * FROM ttq_watermarks`)
	if err != nil {
		t.Fatal(err)
	}
	if res.AsOf != timeline.None {
		t.Errorf("system table as of %d", res.AsOf)
	}
}

func explainText(t *testing.T, e *testEnv, sql string) string {
	t.Helper()
	got, res := e.query(t, "EXPLAIN "+sql)
	defer res.Release()
	return strings.Join(got, "\n")
}

func TestExplainAccessPaths(t *testing.T) {
	e := newTestEnv(t)
	cases := []struct{ sql, want string }{
		{`SELECT * FROM prices WHERE product_id = 'P1'`, "Scan prices as of 2026-11-25T10:00:40Z: key lookup (product_id = 'P1')"},
		{`SELECT * FROM prices WHERE product_id IN ('P2', 'P1')`, "key lookup (product_id IN ('P1', 'P2'))"},
		{`SELECT * FROM stock WHERE product_id = 'P1'`, "range (prefix product_id = 'P1')"},
		{`SELECT * FROM stock WHERE warehouse = 'W1' AND 'P1' = product_id`, "key lookup (product_id = 'P1' AND warehouse = 'W1')"},
		{`SELECT * FROM stock WHERE warehouse = 'W1'`, "full scan"},
		{`SELECT * FROM prices WHERE product_id = 'P1' OR product_id = 'P2'`, "full scan"},
		{`SELECT * FROM listings l JOIN prices p ON l.product_id = p.product_id`, "IndexJoin (key lookup prices (product_id = l.product_id))"},
		{`SELECT * FROM listings l LEFT JOIN stock s ON l.product_id = s.product_id AND s.warehouse = 'W1'`, "LeftIndexJoin (key lookup stock (product_id = l.product_id, warehouse = 'W1'))"},
		{`SELECT * FROM listings l JOIN stock s ON l.product_id = s.product_id`, "HashJoin (on l.product_id = s.product_id)"},
		{`SELECT * FROM prices FOR SYSTEM_TIME BETWEEN '2026-11-25T10:00:00Z' AND '2026-11-25T10:00:30Z'`, "history [2026-11-25T10:00:00Z, 2026-11-25T10:00:30Z]"},
		{`SELECT category, COUNT(*) FROM listings GROUP BY category ORDER BY 2 DESC LIMIT 1`, "Limit (1 offset 0)\n  Sort (2 DESC)\n    Project (category, COUNT(*))\n      Aggregate (group by category; COUNT(*))\n        Scan listings as of 2026-11-25T10:00:40Z: full scan"},
	}
	for _, c := range cases {
		got := explainText(t, e, c.sql)
		if !strings.Contains(got, c.want) {
			t.Errorf("%s\nplan:\n%s\nwant it to contain: %s", c.sql, got, c.want)
		}
	}
	// The key lookup must give the same answer as the scan.
	a, r1 := e.query(t, `SELECT * FROM stock WHERE product_id IN ('P1', 'P2') AND warehouse = 'W1'`)
	b, r2 := e.query(t, `SELECT * FROM stock WHERE CONCAT(product_id, '') IN ('P1', 'P2') AND warehouse = 'W1'`)
	defer r1.Release()
	defer r2.Release()
	if strings.Join(a, ",") != strings.Join(b, ",") || len(a) != 2 {
		t.Errorf("lookup %v, scan %v", a, b)
	}
	ts, res := e.query(t, `EXPLAIN TIMESTAMP SELECT * FROM prices p JOIN cheap c ON p.product_id = c.product_id AS OF '-15s'`)
	defer res.Release()
	want := "as of: 2026-11-25T10:00:25Z|global watermark: 2026-11-25T10:00:40Z|p (prices): 2026-11-25T10:00:25Z|c (view cheap): epoch 2026-11-25T10:00:20Z for 2026-11-25T10:00:25Z"
	if strings.Join(ts, "|") != want {
		t.Errorf("EXPLAIN TIMESTAMP:\n%s\nwant\n%s", strings.Join(ts, "|"), want)
	}
}

func TestAnalyze(t *testing.T) {
	e := newTestEnv(t)
	s, err := ParseSelect(`SELECT l.listing_id, p.price * 2 AS dbl, COUNT(*) n, l.active, NULL FROM listings l LEFT JOIN prices p ON l.product_id = p.product_id GROUP BY l.listing_id, p.price, l.active`)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := Analyze(e.cat, s)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cols {
		got = append(got, c.Name+" "+c.Type.String())
	}
	want := "listing_id VARCHAR, dbl DOUBLE, n BIGINT, active BOOLEAN, null VARCHAR"
	if strings.Join(got, ", ") != want {
		t.Errorf("got %s\nwant %s", strings.Join(got, ", "), want)
	}
	s, _ = ParseSelect(`SELECT * FROM ttq_watermarks`)
	if _, err := Analyze(e.cat, s); !errors.Is(err, ErrUnsupported) {
		t.Errorf("system table in Analyze: %v", err)
	}
}

func TestMaxRowsAndCancel(t *testing.T) {
	e := newTestEnv(t)
	s, _ := ParseSelect(`SELECT * FROM listings`)
	if _, err := Run(context.Background(), e, s, Options{MaxRows: 3}); !errors.Is(err, ErrTooManyRows) {
		t.Errorf("got %v", err)
	}
	res, err := Run(context.Background(), e, s, Options{MaxRows: 4, BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 2 || res.NumRows() != 4 {
		t.Errorf("%d batches, %d rows", len(res.Records), res.NumRows())
	}
	res.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, e, s, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func sampleResult() *Result {
	cols := []catalog.Column{{Name: "id", Type: types.Varchar}, {Name: "n", Type: types.BigInt}, {Name: "x", Type: types.Double},
		{Name: "ok", Type: types.Boolean}, {Name: "at", Type: types.Timestamp}}
	rows := [][]types.Value{
		{types.String("a,\"b\""), types.Int(-3), types.Float(0.1), types.Bool(true), types.Time(sec(0) + 123)},
		{types.NullValue, types.NullValue, types.Float(1e21), types.Bool(false), types.NullValue},
		{types.String("line\nbreak"), types.Int(12345678901), types.Float(2), types.NullValue, types.Time(sec(1))},
	}
	return NewResult(cols, rows, sec(40))
}

func TestWriteCSV(t *testing.T) {
	r := sampleResult()
	defer r.Release()
	var b bytes.Buffer
	if err := WriteCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	want := "id,n,x,ok,at\n" +
		"\"a,\"\"b\"\"\",-3,0.1,true,2026-11-25T10:00:00.000123Z\n" +
		",,1e+21,false,\n" +
		"\"line\nbreak\",12345678901,2,,2026-11-25T10:00:01Z\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestWriteJSON(t *testing.T) {
	r := sampleResult()
	defer r.Release()
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	want := `{"columns":[{"name":"id","type":"VARCHAR"},{"name":"n","type":"BIGINT"},{"name":"x","type":"DOUBLE"},{"name":"ok","type":"BOOLEAN"},{"name":"at","type":"TIMESTAMP"}],` +
		`"rows":[["a,\"b\"",-3,0.1,true,"2026-11-25T10:00:00.000123Z"],[null,null,1e+21,false,null],["line\nbreak",12345678901,2,null,"2026-11-25T10:00:01Z"]],` +
		`"as_of":"2026-11-25T10:00:40Z"}` + "\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteTable(t *testing.T) {
	r := NewResult([]catalog.Column{{Name: "product_id", Type: types.Varchar}, {Name: "price", Type: types.Double}},
		[][]types.Value{{types.String("P1"), types.Float(120)}, {types.String("P3"), types.NullValue}}, sec(40))
	defer r.Release()
	var b bytes.Buffer
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	want := "product_id | price\n" +
		"-----------+------\n" +
		"P1         |   120\n" +
		"P3         |  NULL\n" +
		"(2 rows)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestSplit(t *testing.T) {
	got, err := Split("CREATE SOURCE a; -- a comment; here\nSELECT ';' FROM t /* ; */;;\n  SELECT 2  ")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CREATE SOURCE a", "SELECT ';' FROM t", "SELECT 2"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q", got)
	}
}
