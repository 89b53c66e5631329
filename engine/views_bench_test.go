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

// BenchmarkViewEpoch measures closing one epoch of a 3-table join view
// over n base rows per table with c changed price rows in the epoch.
func BenchmarkViewEpoch(b *testing.B) {
	for _, size := range []struct{ n, c int }{{100_000, 100}, {100_000, 1_000}, {100_000, 10_000}} {
		b.Run(fmt.Sprintf("rows%d/changed%d", size.n, size.c), func(b *testing.B) {
			e, err := engine.Open(b.TempDir(), engine.Options{NoSync: true, BatchSize: 8192})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			ctx := context.Background()
			schema := `CREATE SOURCE s; CREATE TABLE listings (listing_id BIGINT PRIMARY KEY, product_id BIGINT, title VARCHAR) SOURCE s;
CREATE TABLE prices (product_id BIGINT PRIMARY KEY, price DOUBLE) SOURCE s;
CREATE TABLE stock (product_id BIGINT, warehouse VARCHAR, qty BIGINT, PRIMARY KEY (product_id, warehouse)) SOURCE s;
CREATE VIEW docs AS SELECT l.listing_id, l.title, p.price, s.warehouse, s.qty FROM listings l JOIN prices p ON p.product_id = l.product_id LEFT JOIN stock s ON s.product_id = l.product_id`
			if err := e.ExecScript(ctx, schema, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
				b.Fatal(err)
			}
			var sb strings.Builder
			ts := int64(1_000_000)
			for i := 0; i < size.n; i++ {
				fmt.Fprintf(&sb, `{"source":"s","table":"listings","op":"upsert","ts":%d,"data":{"listing_id":%d,"product_id":%d,"title":"t%d"}}`+"\n", ts, i, i, i)
				fmt.Fprintf(&sb, `{"source":"s","table":"prices","op":"upsert","ts":%d,"data":{"product_id":%d,"price":%d}}`+"\n", ts, i, i%500)
				fmt.Fprintf(&sb, `{"source":"s","table":"stock","op":"upsert","ts":%d,"data":{"product_id":%d,"warehouse":"w","qty":%d}}`+"\n", ts, i, i%7)
			}
			fmt.Fprintf(&sb, `{"source":"s","op":"watermark","ts":%d}`+"\n", ts+500_000)
			if _, err := e.Load(ctx, strings.NewReader(sb.String()), "init"); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			var total time.Duration
			for it := 0; it < b.N; it++ {
				b.StopTimer()
				ts += 1_000_000
				sb.Reset()
				for i := 0; i < size.c; i++ {
					fmt.Fprintf(&sb, `{"source":"s","table":"prices","op":"upsert","ts":%d,"data":{"product_id":%d,"price":%d}}`+"\n", ts, (i*7919+it)%size.n, it+i)
				}
				if _, err := e.Load(ctx, strings.NewReader(sb.String()), "changes"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				// Closing the epoch: the watermark passes the boundary.
				if _, err := e.Load(ctx, strings.NewReader(fmt.Sprintf(`{"source":"s","op":"watermark","ts":%d}`+"\n", ts+500_000)), "wm"); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/epoch")
		})
	}
}
