package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

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
	fast, declined, hist := 0, 0, 0
	for i := 0; i < 5000; i++ {
		var sql string
		asOf := pick("", " AS OF '"+fmt.Sprint(sec(int64(r.Intn(45))))+"'", " AS OF "+fmt.Sprint(sec(int64(r.Intn(45)))), " AS OF SYSTEM TIME '-25s'", " AS OF 'junk'")
		switch r.Intn(6) {
		case 3, 4, 5: // histories
			a, b := sec(int64(r.Intn(25))), sec(int64(15+r.Intn(30))) // mostly a <= b
			t1, t2 := pick("'"+fmt.Sprint(a)+"'", fmt.Sprint(a), fmt.Sprint(a), fmt.Sprint(b), "'-25s'", "'junk'"),
				pick("'"+fmt.Sprint(b)+"'", fmt.Sprint(b), fmt.Sprint(b), fmt.Sprint(a), "'-1s'", "'2027-01-01T00:00:00Z'")
			clause := pick(" FOR SYSTEM_TIME BETWEEN "+t1+" AND "+t2, " FOR SYSTEM_TIME FROM "+t1+" TO "+t2, " FOR SYSTEM_TIME ALL", " FOR SYSTEM_TIME AS OF "+t1)
			order := pick("", "", " ORDER BY _valid_from", " ORDER BY _VALID_FROM ASC", " ORDER BY _valid_from DESC", " ORDER BY price", " LIMIT 1")
			if r.Intn(2) == 0 {
				items := pick("price", "price, _valid_from, _valid_to", "_VALID_TO, currency, _ts", "*", "_ts, price, product_id", "prices.price, _valid_from", "nope")
				key := pick("'P1'", "'P2'", "'P3'", "'P9'", "1")
				sql = "SELECT " + items + " FROM prices" + clause + pick("", " p") + " WHERE " + pick("product_id = "+key, key+" = product_id", "product_id = "+key+" AND price = 1") + order
			} else {
				items := pick("qty, _valid_from, _valid_to", "warehouse, qty", "_valid_from")
				sql = "SELECT " + items + " FROM stock" + clause + " WHERE " + pick("product_id = 'P1' AND warehouse = 'W1'", "warehouse = 'W2' AND product_id = 'P1'", "product_id = 'P1'") + order
			}
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
		if pg.hist != nil {
			hist++
		}
		if got := render(res, err); got != slow {
			t.Fatalf("%s\nfast:    %q\ngeneral: %q", sql, got, slow)
		}
	}
	if hist < 200 {
		t.Fatalf("fast path answered %d histories: the test does not exercise them", hist)
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

// TestResultMatchesArrowBuilders checks the records the result builder
// lays out itself against Arrow's record builders, for every type, NULLs
// included, in records of one row and records of several.
func TestResultMatchesArrowBuilders(t *testing.T) {
	cols := []catalog.Column{
		{Name: "i", Type: types.BigInt}, {Name: "f", Type: types.Double}, {Name: "s", Type: types.Varchar},
		{Name: "b", Type: types.Boolean}, {Name: "ts", Type: types.Timestamp}, {Name: "n", Type: types.Null},
	}
	rows := [][]types.Value{
		{types.Int(-7), types.Float(2.5), types.String("héllo"), types.Bool(true), types.Time(1764064800000000), types.String("x")},
		{types.Int(0), types.Float(0), types.String(""), types.Bool(false), types.Time(0), {}},
		{{}, {}, {}, {}, {}, {}},
		{types.Int(1 << 62), types.Int(3), types.Int(42), types.Bool(true), types.Time(-1)},
	}
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 40; i++ {
		row := make([]types.Value, len(cols)+1)
		for c := range row {
			switch r.Intn(6) {
			case 0:
			case 1:
				row[c] = types.Int(r.Int63n(1000) - 500)
			case 2:
				row[c] = types.String(fmt.Sprint(r.Intn(100000)))
			default:
				row[c] = types.Bool(r.Intn(2) == 0)
			}
		}
		rows = append(rows, row)
	}
	for _, size := range []int{1, 3, 1024} {
		b := newResultBuilder(cols, size)
		for _, row := range rows {
			b.add(row)
		}
		got := b.finish(5)
		want := arrowBuilt(b.cols, rows, size)
		if len(got.Records) != len(want) {
			t.Fatalf("size %d: %d records, want %d", size, len(got.Records), len(want))
		}
		for k, w := range want {
			g := got.Records[k]
			if !g.Schema().Equal(w.Schema()) || g.NumRows() != w.NumRows() {
				t.Fatalf("size %d record %d: schema %v rows %d, want %v rows %d", size, k, g.Schema(), g.NumRows(), w.Schema(), w.NumRows())
			}
			for c := range cols {
				if !array.Equal(g.Column(c), w.Column(c)) || g.Column(c).NullN() != w.Column(c).NullN() {
					t.Errorf("size %d record %d column %s: %v, want %v", size, k, cols[c].Name, g.Column(c), w.Column(c))
				}
			}
			w.Release()
		}
		if got.NumRows() != int64(len(rows)) {
			t.Errorf("size %d: %d rows, want %d", size, got.NumRows(), len(rows))
		}
		got.Release()
	}
}

// arrowBuilt is the reference: rows put through Arrow's record builders.
func arrowBuilt(cols []catalog.Column, rows [][]types.Value, size int) []arrow.RecordBatch {
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schemaOf(cols))
	defer rb.Release()
	var out []arrow.RecordBatch
	for i, row := range rows {
		for c, col := range cols {
			var v types.Value
			if c < len(row) {
				v = row[c]
			}
			bld := rb.Field(c)
			if v.IsNull() {
				bld.AppendNull()
				continue
			}
			switch col.Type {
			case types.BigInt:
				bld.(*array.Int64Builder).Append(castInt(v))
			case types.Double:
				bld.(*array.Float64Builder).Append(v.AsFloat())
			case types.Boolean:
				bld.(*array.BooleanBuilder).Append(v.I != 0)
			case types.Timestamp:
				bld.(*array.TimestampBuilder).Append(arrow.Timestamp(v.I))
			default:
				bld.(*array.StringBuilder).Append(v.Text())
			}
		}
		if (i+1)%size == 0 || i == len(rows)-1 {
			out = append(out, rb.NewRecordBatch())
		}
	}
	return out
}

// TestPointHistoryLimits: a history longer than the statement's row
// limits goes to the general path, which reports the limit.
func TestPointHistoryLimits(t *testing.T) {
	e := newTestEnv(t)
	sql := fmt.Sprintf("SELECT price FROM prices FOR SYSTEM_TIME BETWEEN %d AND %d WHERE product_id = 'P1' ORDER BY _valid_from", sec(3), sec(40))
	pg, ok := ParsePointGet(sql)
	if !ok {
		t.Fatal("not recognised")
	}
	res, err := RunPointGet(context.Background(), e, pg, Options{})
	if err != nil || res.NumRows() != 2 {
		t.Fatalf("unlimited: %v rows, %v; want the two versions", res.NumRows(), err)
	}
	res.Release()
	for _, o := range []Options{{MaxRows: 1}, {MaxHeldRows: 1}} {
		if _, err := RunPointGet(context.Background(), e, pg, o); !errors.Is(err, ErrNotPointGet) {
			t.Errorf("%+v: %v, want ErrNotPointGet", o, err)
		}
	}
	if res, err := RunPointGet(context.Background(), e, pg, Options{MaxRows: 2, MaxHeldRows: 2}); err != nil {
		t.Errorf("at the limits: %v", err)
	} else {
		res.Release()
	}
}

// TestPointJoinMatchesGeneralPath runs random statements shaped like a
// point lookup joined with a second table by key through the fast path
// and through Parse+Run: answered alike, or declined.
func TestPointJoinMatchesGeneralPath(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	r := rand.New(rand.NewSource(11))
	pick := func(xs ...string) string { return xs[r.Intn(len(xs))] }
	fast, declined := 0, 0
	for i := 0; i < 4000; i++ {
		asOf := pick("", " AS OF '"+fmt.Sprint(sec(int64(r.Intn(45))))+"'", " AS OF "+fmt.Sprint(sec(int64(r.Intn(45)))), " AS OF SYSTEM TIME '-25s'", " AS OF 'junk'")
		var sql string
		switch r.Intn(5) {
		case 0, 1, 2:
			from := pick("listings l JOIN prices p ON l.product_id = p.product_id", "listings l INNER JOIN prices AS p ON p.product_id = l.product_id",
				"listings AS l JOIN prices p ON l.product_id = p.product_id", "listings l JOIN prices p ON l.title = p.product_id",
				"listings l JOIN prices p ON l.product_id = p.price", "listings l LEFT JOIN prices p ON l.product_id = p.product_id",
				"listings l JOIN listings p ON l.product_id = p.listing_id", "listings l JOIN stock p ON l.product_id = p.product_id",
				"listings l JOIN prices L ON l.product_id = L.product_id", "listings l JOIN cheap p ON l.product_id = p.product_id")
			items := pick("l.listing_id, l.title, p.price", "p.price", "l.title, p.currency, p._ts, l._ts", "*", "title, price", "l.nope", "x.price", "P.PRICE, L.CATEGORY, l.active", "product_id, p.price", "currency")
			cond := pick("l.listing_id = 'L1'", "l.listing_id = 'L2'", "l.listing_id = 'L3'", "l.listing_id = 'L4'", "l.listing_id = 'L9'",
				"'L1' = l.listing_id", "listing_id = 'L1'", "l.listing_id = 'L1' AND l.title = 'x'", "p.product_id = 'P1'", "l.listing_id = 1")
			sql = "SELECT " + items + " FROM " + from + asOf + " WHERE " + cond
		case 3:
			sql = "SELECT listings.title, prices.price, prices._ts FROM listings JOIN prices ON listings.product_id = prices.product_id" + asOf +
				" WHERE listings.listing_id = " + pick("'L1'", "'L2'", "'L4'")
		default:
			sql = "SELECT s.qty, p.price, s._ts FROM stock s JOIN prices p ON p.product_id = s.product_id" + asOf +
				" WHERE " + pick("s.product_id = 'P1' AND s.warehouse = 'W1'", "s.warehouse = 'W1' AND s.product_id = 'P2'", "s.product_id = 'P1'")
		}
		slow := render(e.run(sql))
		pg, ok := ParsePointGet(sql)
		if !ok {
			declined++
			continue
		}
		res, err := RunPointGet(ctx, e, pg, Options{})
		if errors.Is(err, ErrNotPointGet) {
			declined++
			continue
		}
		if pg.join == nil {
			t.Fatalf("%s: answered as a lookup without its join", sql)
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

// FuzzPointGet: whatever the point paths answer, the general path answers
// alike (answer or error text); what they decline is not checked.
func FuzzPointGet(f *testing.F) {
	for _, s := range []string{
		"SELECT price, _ts FROM prices AS OF '2026-11-25T10:00:05Z' WHERE product_id = 'P1'",
		"SELECT * FROM stock WHERE warehouse = 'W1' AND product_id = 'P1'",
		"SELECT l.listing_id, l.title, p.price FROM listings l JOIN prices p ON l.product_id = p.product_id AS OF 1795600810000000 WHERE l.listing_id = 'L4'",
		"SELECT price, _valid_from, _valid_to FROM prices FOR SYSTEM_TIME BETWEEN '2026-11-25T10:00:01Z' AND '2026-11-25T10:00:35Z' WHERE product_id = 'P2' ORDER BY _valid_from",
		"SELECT qty FROM stock FOR SYSTEM_TIME FROM 1795600800000000 TO '-5s' WHERE product_id = 'P1' AND warehouse = 'W1'",
	} {
		f.Add(s)
	}
	e := newTestEnv(f)
	f.Fuzz(func(t *testing.T, sql string) {
		pg, ok := ParsePointGet(sql)
		if !ok {
			return
		}
		res, err := RunPointGet(context.Background(), e, pg, Options{})
		if errors.Is(err, ErrNotPointGet) {
			return
		}
		if got, want := render(res, err), render(e.run(sql)); got != want {
			t.Fatalf("%q\nfast:    %q\ngeneral: %q", sql, got, want)
		}
	})
}

// TestSchemaCacheKeys: column lists that differ only in where one name
// ends and the next begins get schemas of their own.
func TestSchemaCacheKeys(t *testing.T) {
	a := []catalog.Column{{Name: "a\x00\x02b", Type: types.BigInt}}
	b := []catalog.Column{{Name: "a", Type: types.BigInt}, {Name: "b", Type: types.Type(2)}}
	for _, cols := range [][]catalog.Column{a, b, a} {
		if s := schemaOf(cols); s.NumFields() != len(cols) || s.Field(0).Name != cols[0].Name {
			t.Fatalf("%q: schema %v", cols, s)
		}
	}
}
