package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"ttq/catalog"
	"ttq/types"
)

// render is the CSV of a result plus its snapshot time, or the error.
func render(r *Result, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, r); err != nil {
		return "write: " + err.Error()
	}
	return fmt.Sprintf("%s@%d %s", b.String(), r.AsOf, r.Note)
}

// TestPointGetMatchesGeneralPath runs many statements shaped like point
// lookups through the fast path and through Parse+Run: the answers must be
// the same, and whatever the fast path declines must be declined, never
// answered differently.
func TestPointGetMatchesGeneralPath(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	r := rand.New(rand.NewSource(7))
	pick := func(xs ...string) string { return xs[r.Intn(len(xs))] }
	fast, declined := 0, 0
	for i := 0; i < 3000; i++ {
		var sql string
		asOf := pick("", " AS OF '"+fmt.Sprint(sec(int64(r.Intn(45))))+"'", " AS OF "+fmt.Sprint(sec(int64(r.Intn(45)))), " AS OF SYSTEM TIME '-25s'", " AS OF 'junk'")
		switch r.Intn(3) {
		case 0:
			alias := pick("", " p", " AS p", " P")
			qual := ""
			if alias != "" && r.Intn(2) == 0 {
				qual = pick("p.", "P.", "prices.")
			} else if alias == "" && r.Intn(3) == 0 {
				qual = pick("prices.", "PRICES.", "x.")
			}
			items := pick("*", qual+"price", "product_id, "+qual+"PRICE, _ts", "currency, price, currency", "nope", "_TS")
			key := pick("'P1'", "'P2'", "'P3'", "'P4'", "1", "'p1'")
			cond := pick(qual+"product_id = "+key, key+" = "+qual+"product_id", "product_id = "+key+" AND price = 1", "price = 100")
			sql = "SELECT " + items + " FROM prices" + alias + asOf + " WHERE " + cond
		case 1:
			items := pick("*", "qty", "warehouse, qty, _ts")
			cond := pick("product_id = 'P1' AND warehouse = 'W1'", "warehouse = 'W2' AND product_id = 'P1'", "product_id = 'P1'", "product_id = 'P2' AND warehouse = 'W1' AND warehouse = 'W1'")
			sql = "SELECT " + items + " FROM stock" + asOf + " WHERE " + cond + pick("", ";", " ;")
		default:
			sql = pick("SELECT price FROM cheap WHERE product_id = 'P2'", "SELECT * FROM ttq_watermarks WHERE source = 'x'",
				"SELECT price FROM prices WHERE product_id = -5", "SELECT price FROM prices WHERE product_id = 'P1' OR product_id = 'P2'",
				"SELECT price, FROM prices WHERE product_id = 'P1'", "select PRICE from PRICES where PRODUCT_ID = 'P1'")
		}
		slow := render(e.run(sql))
		pg, ok := ParsePointGet(sql)
		if !ok {
			declined++
			continue
		}
		res, err := RunPointGet(ctx, e, pg, Options{BatchSize: 2})
		if errors.Is(err, ErrNotPointGet) {
			declined++
			continue
		}
		fast++
		if got := render(res, err); got != slow {
			t.Fatalf("%s\nfast:    %q\ngeneral: %q", sql, got, slow)
		}
	}
	if fast < 500 || declined < 500 {
		t.Fatalf("fast path answered %d, declined %d: the test does not exercise both", fast, declined)
	}
}

func TestParsePointGetShapes(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT price FROM prices WHERE product_id = 'P1'":                                 true,
		"SELECT price FROM prices AS OF '-1s' WHERE product_id = 'P1';":                    true,
		"SELECT p.price FROM prices AS p AS OF SYSTEM TIME 5 WHERE p.product_id = 'P1'":    true,
		"SELECT price FROM prices WHERE product_id IN ('P1')":                              false,
		"SELECT price FROM prices FOR SYSTEM_TIME AS OF '-1s' WHERE product_id = 'P1'":     false,
		"SELECT price FROM prices WHERE product_id = 'P1' ORDER BY price":                  false,
		"SELECT price AS p FROM prices WHERE product_id = 'P1'":                            false,
		"SELECT price FROM prices WHERE product_id = 'P1' -- AS OF '2026-11-25T10:00:00Z'": true,
		"SELECT price FROM prices, stock WHERE product_id = 'P1'":                          false,
	} {
		if _, got := ParsePointGet(sql); got != want {
			t.Errorf("%s: %v, want %v", sql, got, want)
		}
	}
}

// TestOneRowMatchesBuilder checks the arrays a point lookup builds
// directly against the record builders' for every type, NULL included.
func TestOneRowMatchesBuilder(t *testing.T) {
	cols := []catalog.Column{
		{Name: "i", Type: types.BigInt}, {Name: "f", Type: types.Double}, {Name: "s", Type: types.Varchar},
		{Name: "b", Type: types.Boolean}, {Name: "ts", Type: types.Timestamp},
	}
	rows := [][]types.Value{
		{types.Int(-7), types.Float(2.5), types.String("héllo"), types.Bool(true), types.Time(1764064800000000)},
		{types.Int(0), types.Float(0), types.String(""), types.Bool(false), types.Time(0)},
		{{}, {}, {}, {}, {}},
		{types.Int(1 << 62), types.Int(3), types.Int(42), types.Bool(true), types.Time(-1)},
	}
	for _, row := range rows {
		got := oneRow(cols, row, 5)
		want := NewResult(cols, [][]types.Value{row}, 5)
		if len(got.Records) != 1 || len(want.Records) != 1 {
			t.Fatalf("%v: %d and %d records", row, len(got.Records), len(want.Records))
		}
		g, w := got.Records[0], want.Records[0]
		if !g.Schema().Equal(w.Schema()) || g.NumRows() != 1 {
			t.Fatalf("%v: schema %v rows %d, want %v", row, g.Schema(), g.NumRows(), w.Schema())
		}
		for i := range cols {
			if !array.Equal(g.Column(i), w.Column(i)) {
				t.Errorf("%v column %s: %v, want %v", row, cols[i].Name, g.Column(i), w.Column(i))
			}
			if g.Column(i).NullN() != w.Column(i).NullN() {
				t.Errorf("%v column %s: %d nulls, want %d", row, cols[i].Name, g.Column(i).NullN(), w.Column(i).NullN())
			}
		}
		if fmt.Sprint(got.Rows()) != fmt.Sprint(want.Rows()) {
			t.Errorf("rows %v, want %v", got.Rows(), want.Rows())
		}
		got.Release()
		want.Release()
	}
}
