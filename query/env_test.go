package query

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/timeline"
	"ttq/types"
)

var errNotSealed = errors.New("test: not sealed")

// T0 is 2026-11-25T10:00:00Z; the fixture writes versions at T0 + seconds.
var T0 = mustTime("2026-11-25T10:00:00Z")

func mustTime(s string) int64 {
	ts, err := timeline.ParseAbsolute(s)
	if err != nil {
		panic(err)
	}
	return ts
}

func sec(n int64) int64 { return T0 + n*1_000_000 }

type testEnv struct {
	st  *mvcc.Store
	cat *catalog.Catalog
	g   int64
	// versions is what EstimateVersions says of each table (none: 0, so
	// joins keep their index lookups).
	versions map[string]int64
}

func (e *testEnv) EstimateVersions(t *catalog.Table) int64 { return e.versions[t.Name] }

func (e *testEnv) Catalog() *catalog.Catalog { return e.cat }
func (e *testEnv) Watermark() int64          { return e.g }
func (e *testEnv) CheckReadable(ts int64) error {
	if e.g == timeline.None || ts > e.g {
		return fmt.Errorf("%w: %s is after the global watermark %s", errNotSealed, timeline.Format(ts), timeline.Format(e.g))
	}
	return nil
}
func (e *testEnv) Snapshot(ts int64) mvcc.Reader { return e.st.At(ts) }
func (e *testEnv) History(t *catalog.Table, prefix []types.Value, from, to int64, fn func(mvcc.RowVersion) error) error {
	return e.st.History(t, prefix, from, to, fn)
}

// ViewAt answers with 10-second epochs starting at T0.
func (e *testEnv) ViewAt(v *catalog.View, ts int64) (int64, error) {
	if ts < T0 {
		return 0, fmt.Errorf("test: before the view's first epoch")
	}
	return T0 + (ts-T0)/10_000_000*10_000_000, nil
}
func (e *testEnv) SystemTable(name string) ([]catalog.Column, [][]types.Value, bool, error) {
	if name != "ttq_watermarks" {
		return nil, nil, false, nil
	}
	cols := []catalog.Column{{Name: "source", Type: types.Varchar}, {Name: "watermark", Type: types.Timestamp}}
	rows := [][]types.Value{
		{types.String("inventory"), types.Time(sec(50))},
		{types.String("pricing"), types.Time(sec(40))},
		{types.String("search"), types.Time(sec(45))},
	}
	return cols, rows, true, nil
}

func newTestEnv(t testing.TB) *testEnv { return newTestEnvOpts(t, mvcc.Options{InMemory: true}) }

func newTestEnvOpts(t testing.TB, opts mvcc.Options) *testEnv {
	t.Helper()
	st, err := mvcc.Open("", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cat := catalog.New()
	for _, s := range []string{"pricing", "search", "inventory"} {
		if err := cat.AddSource(&catalog.Source{Name: s}); err != nil {
			t.Fatal(err)
		}
	}
	mustTable := func(script string) *catalog.Table {
		stmt, err := Parse(script)
		if err != nil {
			t.Fatal(err)
		}
		ct := stmt.(*CreateTable)
		tb := &catalog.Table{Name: ct.Name, Source: ct.Source, Columns: ct.Columns, PK: ct.PK}
		if err := cat.AddTable(tb); err != nil {
			t.Fatal(err)
		}
		return tb
	}
	prices := mustTable(`CREATE TABLE prices (product_id VARCHAR(64) PRIMARY KEY, price DOUBLE, currency TEXT) SOURCE pricing`)
	listings := mustTable(`CREATE TABLE listings (listing_id VARCHAR PRIMARY KEY, product_id VARCHAR, title VARCHAR, category VARCHAR, active BOOLEAN) SOURCE search`)
	stock := mustTable(`CREATE TABLE stock (product_id VARCHAR, warehouse VARCHAR, qty BIGINT, PRIMARY KEY (product_id, warehouse)) SOURCE inventory`)
	view := &catalog.View{Name: "cheap", Query: "SELECT product_id, price FROM prices WHERE price < 100",
		Columns: []catalog.Column{{Name: "product_id", Type: types.Varchar}, {Name: "price", Type: types.Double}}, PK: []int{0}}
	if err := cat.AddView(view); err != nil {
		t.Fatal(err)
	}
	S, F, B, N := types.String, types.Float, types.Bool, types.NullValue
	I := types.Int
	b := st.NewBatch()
	put := func(tb *catalog.Table, ts int64, row ...types.Value) {
		if err := b.Put(tb, row, ts); err != nil {
			t.Fatal(err)
		}
	}
	del := func(tb *catalog.Table, ts int64, key ...types.Value) {
		if err := b.Delete(tb, key, ts); err != nil {
			t.Fatal(err)
		}
	}
	put(prices, sec(0), S("P1"), F(100), S("INR"))
	put(prices, sec(10), S("P1"), F(120), S("INR"))
	put(prices, sec(0), S("P2"), F(50), S("USD"))
	del(prices, sec(20), S("P2"))
	put(prices, sec(30), S("P2"), F(55), S("USD"))
	put(prices, sec(5), S("P3"), N, N)
	put(listings, sec(0), S("L1"), S("P1"), S("Red shoe"), S("shoes"), B(true))
	put(listings, sec(0), S("L2"), S("P2"), S("Blue shoe"), S("shoes"), B(false))
	put(listings, sec(5), S("L3"), S("P9"), S("Hat"), S("hats"), B(true))
	put(listings, sec(5), S("L4"), S("P3"), S("Sock 100%"), N, B(true))
	put(stock, sec(0), S("P1"), S("W1"), I(10))
	put(stock, sec(0), S("P1"), S("W2"), I(5))
	put(stock, sec(0), S("P2"), S("W1"), I(0))
	put(stock, sec(10), S("P1"), S("W1"), I(8))
	vt := ViewTable(view)
	put(vt, sec(0), S("P2"), F(50))
	del(vt, sec(20), S("P2"))
	put(vt, sec(30), S("P2"), F(55))
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	return &testEnv{st: st, cat: cat, g: sec(40)}
}

// query runs sql and renders each row as values joined by "|".
func (e *testEnv) query(t testing.TB, sql string) ([]string, *Result) {
	t.Helper()
	res, err := e.run(sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var out []string
	for _, row := range res.Rows() {
		s := make([]string, len(row))
		for i, v := range row {
			s[i] = v.String()
		}
		out = append(out, strings.Join(s, "|"))
	}
	return out, res
}

func (e *testEnv) run(sql string) (*Result, error) {
	st, err := Parse(sql)
	if err != nil {
		return nil, err
	}
	switch st := st.(type) {
	case *Select:
		return Run(context.Background(), e, st, Options{BatchSize: 2})
	case *Explain:
		return RunExplain(context.Background(), e, st)
	}
	return nil, fmt.Errorf("not a query: %T", st)
}
