package engine_test

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"ttq/catalog"
	"ttq/engine"
	"ttq/mvcc"
	"ttq/query"
	"ttq/types"
)

// The benchmarks run ttq and raw Badger managed mode on the same versions in
// the same run; docs/PERFORMANCE.md has the command and the numbers.

const benchBase = int64(1_800_000_000_000_000)

func benchLines(n, keys int) []string {
	lines := make([]string, 0, n+1)
	for i := 0; i < n; i++ {
		lines = append(lines, fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"product_id":"P%07d","price":%d.5,"currency":"EUR"}}`,
			benchBase+int64(i), i%keys, i%1000))
	}
	return lines
}

func openBench(b *testing.B) *engine.Engine {
	b.Helper()
	e, err := engine.Open(b.TempDir(), engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	err = e.ExecScript(context.Background(), `CREATE SOURCE pricing; CREATE TABLE prices (product_id VARCHAR PRIMARY KEY, price DOUBLE, currency VARCHAR) SOURCE pricing;`,
		query.Options{}, func(string, *query.Result) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkIngest: durable updates per second through engine.Apply (decode,
// validate, version, commit), against raw Badger WriteBatch of the same
// versions (pre-encoded, no validation).
func BenchmarkIngest(b *testing.B) {
	const batch = 8192
	lines := benchLines(batch, batch)
	b.Run("ttq", func(b *testing.B) {
		e := openBench(b)
		defer e.Close()
		recs := make([]engine.Record, len(lines))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			for j, l := range lines {
				// shift every round forward so nothing is late
				recs[j] = engine.Record{Line: []byte(strings.Replace(l, fmt.Sprint(benchBase+int64(j)), fmt.Sprint(benchBase+int64(i*batch+j)), 1)), Origin: "bench"}
			}
			b.StartTimer()
			if _, _, err := e.Apply(context.Background(), recs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "updates/s")
	})
	b.Run("badger", func(b *testing.B) {
		db, err := badger.OpenManaged(badger.DefaultOptions(b.TempDir()).WithSyncWrites(true).WithLogger(nil).WithNumVersionsToKeep(1 << 30).WithDetectConflicts(false))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		tb := benchTable()
		keys, vals := make([][]byte, batch), make([][]byte, batch)
		for j := 0; j < batch; j++ {
			row := []types.Value{types.String(fmt.Sprintf("P%07d", j)), types.Float(float64(j%1000) + .5), types.String("EUR")}
			keys[j], vals[j] = mvcc.EncodeKey(nil, tb.ID, row[:1]), mvcc.EncodeRow(nil, tb.Columns, row)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			wb := db.NewManagedWriteBatch()
			for j := 0; j < batch; j++ {
				if err := wb.SetEntryAt(badger.NewEntry(keys[j], vals[j]), mvcc.Version(benchBase+int64(i*batch+j))); err != nil {
					b.Fatal(err)
				}
			}
			if err := wb.Flush(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "updates/s")
	})
}

// BenchmarkLoad: durable updates per second through engine.Load of NDJSON
// (read, decode ahead, judge, commit, write versions), 8 batches of the
// default size into a fresh store each round, a watermark per 1,000 lines.
func BenchmarkLoad(b *testing.B) {
	const n = 8 * 8192
	lines := benchLines(n, n/4)
	var in strings.Builder
	for i, l := range lines {
		in.WriteString(l)
		in.WriteByte('\n')
		if i%1000 == 999 {
			fmt.Fprintf(&in, `{"source":"pricing","op":"watermark","ts":%d}`+"\n", benchBase+int64(i))
		}
	}
	text := in.String()
	var el float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := openBench(b)
		b.StartTimer()
		t0 := time.Now()
		c, err := e.Load(context.Background(), strings.NewReader(text), "bench")
		el += time.Since(t0).Seconds()
		if err != nil || c.Applied != n {
			b.Fatal(c, err)
		}
		b.StopTimer()
		e.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*n)/el, "updates/s")
}

func benchTable() *catalog.Table {
	return &catalog.Table{ID: 1, Name: "prices", Source: "pricing", Columns: []catalog.Column{
		{Name: "product_id", Type: types.Varchar}, {Name: "price", Type: types.Double}, {Name: "currency", Type: types.Varchar}}, PK: []int{0}}
}

// loadedBench holds 10k keys with 10 versions each.
func loadedBench(b *testing.B) (*engine.Engine, *catalog.Table, int) {
	const keys, versions = 10_000, 10
	e := openBench(b)
	lines := benchLines(keys*versions, keys)
	lines = append(lines, fmt.Sprintf(`{"source":"pricing","op":"watermark","ts":%d}`, benchBase+int64(keys*versions)))
	if _, err := e.Load(context.Background(), strings.NewReader(strings.Join(lines, "\n")), "bench"); err != nil {
		b.Fatal(err)
	}
	t, _ := e.Catalog().Table("prices")
	return e, t, keys
}

// BenchmarkPointLookup: one row by primary key AS OF a random T, through the
// engine's snapshot read, through SQL, and as a raw Badger Get.
func BenchmarkPointLookup(b *testing.B) {
	e, t, keys := loadedBench(b)
	defer e.Close()
	st := e.Store()
	r := rand.New(rand.NewSource(1))
	span := int64(keys * 10)
	b.Run("ttq-snapshot", func(b *testing.B) {
		var dst []types.Value
		for i := 0; i < b.N; i++ {
			sn := st.At(benchBase + r.Int63n(span))
			row, _, ok, err := sn.Get(t, []types.Value{types.String(fmt.Sprintf("P%07d", r.Intn(keys)))}, dst)
			if err != nil {
				b.Fatal(err)
			}
			if ok {
				dst = row
			}
			sn.Close()
		}
	})
	b.Run("ttq-sql", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			q := fmt.Sprintf("SELECT price FROM prices AS OF %d WHERE product_id = 'P%07d'", benchBase+r.Int63n(span), r.Intn(keys))
			res, err := e.Exec(context.Background(), q, query.Options{})
			if err != nil {
				b.Fatal(err)
			}
			res.Release()
		}
	})
	b.Run("badger", func(b *testing.B) {
		db := st.DB()
		for i := 0; i < b.N; i++ {
			txn := db.NewTransactionAt(mvcc.Version(benchBase+r.Int63n(span)), false)
			item, err := txn.Get(mvcc.EncodeKey(nil, t.ID, []types.Value{types.String(fmt.Sprintf("P%07d", r.Intn(keys)))}))
			if err == nil {
				_ = item.Value(func([]byte) error { return nil })
			} else if err != badger.ErrKeyNotFound {
				b.Fatal(err)
			}
			txn.Discard()
		}
	})
}

// BenchmarkScan: every visible row AS OF a T in the last tenth of history.
func BenchmarkScan(b *testing.B) {
	e, t, keys := loadedBench(b)
	defer e.Close()
	st := e.Store()
	at := benchBase + int64(keys*9)
	b.Run("ttq-snapshot", func(b *testing.B) {
		n := 0
		for i := 0; i < b.N; i++ {
			sn := st.At(at)
			it := sn.Scan(t, nil)
			for it.Next() {
				n++
			}
			it.Close()
			sn.Close()
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("ttq-sql-count", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			res, err := e.Exec(context.Background(), fmt.Sprintf("SELECT COUNT(*), SUM(price) FROM prices AS OF %d", at), query.Options{})
			if err != nil {
				b.Fatal(err)
			}
			res.Release()
		}
		b.ReportMetric(float64(b.N*keys)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("badger", func(b *testing.B) {
		db := st.DB()
		n := 0
		p := mvcc.EncodeKey(nil, t.ID, nil)
		for i := 0; i < b.N; i++ {
			txn := db.NewTransactionAt(mvcc.Version(at), false)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
			for it.Seek(p); it.Valid(); it.Next() {
				_ = it.Item().Value(func([]byte) error { return nil })
				n++
			}
			it.Close()
			txn.Discard()
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkJoinAggregate runs the side-by-side bench's Q3 shape (listings
// JOIN prices, filtered, grouped by category with COUNT and AVG): 25,000
// products and 75,000 listings with four versions each, checkpointed after
// each round (then the segment cache serves the scans), so the statement
// is what is measured. "middle" reads AS OF instants in the middle of the
// history, between checkpoints; "newest" AS OF instants in a fifth round
// written after the last checkpoint (its rows and the versions logged
// since). rows/s counts listings read.
func BenchmarkJoinAggregate(b *testing.B) {
	const products, listings, rounds = 25_000, 75_000, 4
	ctx := context.Background()
	e, err := engine.Open(b.TempDir(), engine.Options{CheckpointMin: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	err = e.ExecScript(ctx, `CREATE SOURCE s;
CREATE TABLE prices (product_id VARCHAR PRIMARY KEY, price DOUBLE) SOURCE s;
CREATE TABLE listings (listing_id VARCHAR PRIMARY KEY, product_id VARCHAR, category VARCHAR, active BOOLEAN, title VARCHAR) SOURCE s;`,
		query.Options{}, func(string, *query.Result) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	var sb strings.Builder
	ts := benchBase
	var lastCk int64
	for round := 0; round <= rounds; round++ {
		for i := 0; i < products; i++ {
			ts++
			fmt.Fprintf(&sb, `{"source":"s","table":"prices","op":"upsert","ts":%d,"data":{"product_id":"P%06d","price":%d.25}}`+"\n", ts, i, r.Intn(10000))
		}
		for i := 0; i < listings; i++ {
			ts++
			fmt.Fprintf(&sb, `{"source":"s","table":"listings","op":"upsert","ts":%d,"data":{"listing_id":"L%07d","product_id":"P%06d","category":"c%02d","active":%t,"title":"listing title %d"}}`+"\n",
				ts, i, r.Intn(products), r.Intn(40), r.Intn(5) != 0, i)
		}
		fmt.Fprintf(&sb, `{"source":"s","op":"watermark","ts":%d}`+"\n", ts)
		if _, err := e.Load(ctx, strings.NewReader(sb.String()), "bench"); err != nil {
			b.Fatal(err)
		}
		sb.Reset()
		if round < rounds {
			if err := e.Checkpoint(); err != nil {
				b.Fatal(err)
			}
			lastCk = ts
		}
	}
	for _, bc := range []struct {
		name     string
		from, to int64
	}{
		{"middle", benchBase + (lastCk-benchBase)/4, benchBase + 3*(lastCk-benchBase)/4},
		{"newest", lastCk + 1, ts},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				at := bc.from + r.Int63n(bc.to-bc.from+1)
				res, err := e.Exec(ctx, fmt.Sprintf("SELECT l.category, COUNT(*) AS n, AVG(p.price) AS avg_price FROM listings l JOIN prices p ON l.product_id = p.product_id AS OF %d WHERE l.active = true GROUP BY l.category ORDER BY l.category", at), query.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if res.NumRows() != 40 {
					b.Fatalf("%d groups, want 40", res.NumRows())
				}
				res.Release()
			}
			b.ReportMetric(float64(b.N*listings)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
