package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ttq/engine"
	"ttq/query"
)

// viewBench is a store with a 3-table join view over n base rows per table,
// sealed, ready to close one epoch at a time.
type viewBench struct {
	b  *testing.B
	e  *engine.Engine
	n  int
	ts int64
}

func openViewBench(b *testing.B, n int) *viewBench {
	b.Helper()
	e, err := engine.Open(b.TempDir(), engine.Options{NoSync: true, BatchSize: 8192})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	schema := `CREATE SOURCE s; CREATE TABLE listings (listing_id BIGINT PRIMARY KEY, product_id BIGINT, title VARCHAR) SOURCE s;
CREATE TABLE prices (product_id BIGINT PRIMARY KEY, price DOUBLE) SOURCE s;
CREATE TABLE stock (product_id BIGINT, warehouse VARCHAR, qty BIGINT, PRIMARY KEY (product_id, warehouse)) SOURCE s;
CREATE VIEW docs AS SELECT l.listing_id, l.title, p.price, s.warehouse, s.qty FROM listings l JOIN prices p ON p.product_id = l.product_id LEFT JOIN stock s ON s.product_id = l.product_id`
	if err := e.ExecScript(context.Background(), schema, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
		b.Fatal(err)
	}
	vb := &viewBench{b: b, e: e, n: n, ts: 1_000_000}
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `{"source":"s","table":"listings","op":"upsert","ts":%d,"data":{"listing_id":%d,"product_id":%d,"title":"t%d"}}`+"\n", vb.ts, i, i, i)
		fmt.Fprintf(&sb, `{"source":"s","table":"prices","op":"upsert","ts":%d,"data":{"product_id":%d,"price":%d}}`+"\n", vb.ts, i, i%500)
		fmt.Fprintf(&sb, `{"source":"s","table":"stock","op":"upsert","ts":%d,"data":{"product_id":%d,"warehouse":"w","qty":%d}}`+"\n", vb.ts, i, i%7)
	}
	fmt.Fprintf(&sb, `{"source":"s","op":"watermark","ts":%d}`+"\n", vb.ts+500_000)
	vb.load(sb.String())
	return vb
}

func (vb *viewBench) load(lines string) {
	vb.b.Helper()
	if _, err := vb.e.Load(context.Background(), strings.NewReader(lines), "bench"); err != nil {
		vb.b.Fatal(err)
	}
}

// change loads c changed price rows in the next epoch (not yet sealed).
func (vb *viewBench) change(it, c int) {
	vb.ts += 1_000_000
	var sb strings.Builder
	for i := 0; i < c; i++ {
		fmt.Fprintf(&sb, `{"source":"s","table":"prices","op":"upsert","ts":%d,"data":{"product_id":%d,"price":%d}}`+"\n", vb.ts, (i*7919+it)%vb.n, it+i)
	}
	vb.load(sb.String())
}

// closeEpoch moves the watermark past the epoch's boundary, which brings
// the view to it, and returns how long that took.
func (vb *viewBench) closeEpoch() time.Duration {
	start := time.Now()
	vb.load(fmt.Sprintf(`{"source":"s","op":"watermark","ts":%d}`+"\n", vb.ts+500_000))
	return time.Since(start)
}

// BenchmarkViewEpoch measures closing one epoch of a 3-table join view
// over n base rows per table with c changed price rows in the epoch.
func BenchmarkViewEpoch(b *testing.B) {
	for _, size := range []struct{ n, c int }{{100_000, 100}, {100_000, 1_000}, {100_000, 10_000}} {
		b.Run(fmt.Sprintf("rows%d/changed%d", size.n, size.c), func(b *testing.B) {
			vb := openViewBench(b, size.n)
			b.ResetTimer()
			var total time.Duration
			for it := 0; it < b.N; it++ {
				b.StopTimer()
				vb.change(it, size.c)
				b.StartTimer()
				total += vb.closeEpoch()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/epoch")
		})
	}
}
