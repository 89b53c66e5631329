package query

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"strings"
	"testing"
	"time"

	"ttq/mvcc"
	"ttq/types"
)

// TestParallelJoinMatchesSerial writes a random history of a few hundred
// products, listings and stock rows, checkpoints it, and runs random joins (inner and
// left, residual ON conditions, filters, grouping with sums of doubles
// over joins and single tables,
// orders, limits, a third table) AS OF random instants on two stores with
// the same versions: one with the segment cache, where the joins probe in
// parallel over many small key ranges, and one without, where they run on
// one goroutine. The rows, and their order where the statement leaves it
// open, must be the same.
func TestParallelJoinMatchesSerial(t *testing.T) {
	parallelJoins(t, 7)
	par := joinHistoryEnv(t, mvcc.Options{InMemory: true})
	ser := joinHistoryEnv(t, mvcc.Options{InMemory: true, SegmentCache: -1})
	r := rand.New(rand.NewSource(3))
	pick := func(xs ...string) string { return xs[r.Intn(len(xs))] }
	before := parJoins.Load()
	for i := 0; i < 600; i++ {
		at := fmt.Sprintf(" AS OF %d", sec(int64(r.Intn(41))))
		join := pick("JOIN", "LEFT JOIN", "INNER JOIN")
		on := pick("l.product_id = p.product_id", "p.product_id = l.product_id AND p.price > 40", "l.product_id = p.product_id AND l.title <> p.currency")
		where := pick("", " WHERE l.active = true", " WHERE l.category = 'c1' OR p.price < 30", " WHERE l.listing_id > 'M0400'")
		var sql string
		switch r.Intn(6) {
		case 0:
			sql = "SELECT l.category, COUNT(*), AVG(p.price), SUM(p.price), MIN(p.currency), MAX(l.title) FROM listings l " + join + " prices p ON " + on + at + where +
				" GROUP BY l.category" + pick("", " ORDER BY l.category")
		case 1:
			sql = "SELECT * FROM listings l " + join + " prices p ON " + on + at + where + pick("", " ORDER BY p.price DESC, l.listing_id", " LIMIT 5", " LIMIT 40")
		case 2:
			sql = "SELECT l.listing_id, p.price * 2, s.qty FROM listings l " + join + " prices p ON " + on + " " + pick("JOIN", "LEFT JOIN") +
				" stock s ON s.product_id = l.product_id" + at + where
		case 3:
			sql = "SELECT COUNT(DISTINCT p.product_id), SUM(p.price) FROM listings l " + join + " prices p ON " + on + at + where
		case 4: // one table, grouped on every core
			sql = "SELECT category, active, COUNT(*), COUNT(DISTINCT product_id), MIN(title), MAX(listing_id) FROM listings" + at +
				pick("", " WHERE active = true", " WHERE title <> 't1'") + " GROUP BY category, active" + pick("", " HAVING COUNT(*) > 20", " ORDER BY category, active")
		default: // grouped by the right side (NULL for LEFT JOIN's unmatched rows)
			sql = "SELECT p.currency, SUM(p.price), AVG(p.price * 2), COUNT(l.listing_id), MAX(p.price) FROM listings l " + join + " prices p ON " + on + at + where +
				" GROUP BY p.currency" + pick("", " ORDER BY p.currency")
		}
		got, want := render(par.run(sql)), render(ser.run(sql))
		if got != want {
			t.Fatalf("%s\nparallel: %s\n  serial: %s", sql, got, want)
		}
	}
	if n := parJoins.Load() - before; n < 600 {
		t.Errorf("%d sides of 600 statements' joins ran in parallel", n)
	}
}

// parallelJoins makes joins over the segment cache run in parallel in
// ranges of n entries for the test, on two cores at least.
func parallelJoins(t *testing.T, n int) {
	old, procs := partRows, runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))
	partRows = n
	t.Cleanup(func() { partRows = old; runtime.GOMAXPROCS(procs) })
}

// joinHistoryEnv is a store with writeJoinHistory's versions, its tables
// big enough for the planner to choose hash joins.
func joinHistoryEnv(t *testing.T, opts mvcc.Options) *testEnv {
	e := newTestEnvOpts(t, opts)
	writeJoinHistory(t, e)
	e.versions = map[string]int64{"listings": hashMinVersions, "prices": hashMinVersions, "stock": hashMinVersions}
	return e
}

// writeJoinHistory adds 300 products, 900 listings and stock in four
// warehouses, with several versions each (and deletes), over the fixture's
// 40 seconds, then checkpoints the tables at three sealed instants.
func writeJoinHistory(t *testing.T, e *testEnv) {
	t.Helper()
	r := rand.New(rand.NewSource(5))
	prices, _ := e.cat.Table("prices")
	listings, _ := e.cat.Table("listings")
	stock, _ := e.cat.Table("stock")
	for s := int64(0); s < 40; s++ {
		b := e.st.NewBatch()
		for n := 0; n < 60; n++ {
			var err error
			p := types.String(fmt.Sprintf("Q%03d", r.Intn(300)))
			switch r.Intn(10) {
			case 0:
				err = b.Delete(prices, []types.Value{p}, sec(s))
			case 1, 2, 3, 4:
				err = b.Put(prices, []types.Value{p, types.Float(float64(r.Intn(10000)) / 100), types.String(fmt.Sprint("C", r.Intn(3)))}, sec(s))
			case 5:
				w := types.String(fmt.Sprint("W", r.Intn(4)))
				if r.Intn(6) == 0 {
					err = b.Delete(stock, []types.Value{p, w}, sec(s))
				} else {
					err = b.Put(stock, []types.Value{p, w, types.Int(int64(r.Intn(50)))}, sec(s))
				}
			default:
				l := types.String(fmt.Sprintf("M%04d", r.Intn(900)))
				if r.Intn(12) == 0 {
					err = b.Delete(listings, []types.Value{l}, sec(s))
				} else {
					err = b.Put(listings, []types.Value{l, p, types.String(fmt.Sprint("t", r.Intn(5))), types.String(fmt.Sprint("c", r.Intn(4))), types.Bool(r.Intn(3) > 0)}, sec(s))
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []int64{sec(12), sec(25), sec(39)} {
		for _, tb := range []string{"prices", "listings", "stock"} {
			tbl, _ := e.cat.Table(tb)
			if _, err := e.st.Checkpoint(tbl, c); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestParallelJoinStops checks that a parallel join stops its workers when
// the statement (a join, or an aggregate over one) is cancelled or reads
// only part of it (LIMIT), and leaves no goroutine behind.
func TestParallelJoinStops(t *testing.T) {
	parallelJoins(t, 3)
	e := joinHistoryEnv(t, mvcc.Options{InMemory: true})
	base := runtime.NumGoroutine()
	sql := fmt.Sprintf("SELECT l.listing_id, p.price FROM listings l JOIN prices p ON l.product_id = p.product_id AS OF %d", sec(30))
	grouped := fmt.Sprintf("SELECT l.category, AVG(p.price) FROM listings l JOIN prices p ON l.product_id = p.product_id AS OF %d GROUP BY l.category", sec(30))
	before := parJoins.Load()
	for i := 0; i < 20; i++ {
		st, err := Parse(sql + " LIMIT 2")
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), e, st.(*Select), Options{})
		if err != nil || res.NumRows() != 2 {
			t.Fatalf("LIMIT 2: %v rows, %v", res, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, q := range []string{sql, grouped} {
			st, _ = Parse(q)
			if _, err := Run(ctx, e, st.(*Select), Options{}); !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled statement %s: %v, want context.Canceled", q, err)
			}
		}
	}
	if parJoins.Load() == before {
		t.Fatal("no join ran in parallel")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Errorf("%d goroutines after the statements, %d before", n, base)
	}
}

// A worker's panic becomes the statement's error, not the process's end.
func TestParallelWorkerPanic(t *testing.T) {
	parallelJoins(t, 7)
	e := joinHistoryEnv(t, mvcc.Options{InMemory: true})
	sn := e.st.At(sec(30))
	defer sn.Close()
	listings, _ := e.cat.Table("listings")
	parts := sn.ScanParts(listings, 7)
	if len(parts) < 2 {
		t.Fatalf("%d parts", len(parts))
	}
	pr := runParts(context.Background(), parts, func(w *parWorker, it mvcc.RowIter) (int, error) {
		panic("boom")
	})
	defer pr.close()
	if _, _, err := pr.next(); !errors.Is(err, ErrInternal) {
		t.Fatalf("next after a worker's panic: %v, want ErrInternal", err)
	}
}

// A hash join whose build side has several rows per key (stock: one row
// per product and warehouse) returns every pair, on one goroutine and in
// parallel: the join's rows are counted against a count made here from
// both tables' rows.
func TestHashJoinKeepsEveryRowOfAKey(t *testing.T) {
	parallelJoins(t, 7)
	for _, opts := range []mvcc.Options{{InMemory: true}, {InMemory: true, SegmentCache: -1}} {
		e := joinHistoryEnv(t, opts)
		for _, s := range []int64{10, 25, 40} {
			at := fmt.Sprintf(" AS OF %d", sec(s))
			col := func(sql string) map[string]int {
				r, err := e.run(sql + at)
				if err != nil {
					t.Fatal(err)
				}
				n := map[string]int{}
				for _, row := range r.Rows() {
					n[row[0].S]++
				}
				return n
			}
			listings, stock := col("SELECT product_id FROM listings"), col("SELECT product_id FROM stock")
			want, multi := 0, false
			for p, n := range listings {
				want += n * stock[p]
				multi = multi || n > 0 && stock[p] > 1
			}
			if !multi {
				t.Fatalf("at %d no listed product is in two warehouses: the test tests nothing", s)
			}
			sql := "SELECT COUNT(*) FROM listings l JOIN stock s ON s.product_id = l.product_id" + at
			r, err := e.run(sql)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Rows()[0][0].I; got != int64(want) {
				t.Errorf("segment cache %v, %s: %d rows, want %d", opts.SegmentCache >= 0, sql, got, want)
			}
			if plan := render(e.run("EXPLAIN " + sql)); !strings.Contains(plan, "HashJoin") {
				t.Fatalf("not a hash join: %s", plan)
			}
		}
	}
}
