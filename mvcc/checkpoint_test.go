package mvcc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"ttq/catalog"
	"ttq/types"
)

// scanText renders a scan's rows with the commit time of each.
func scanText(t *testing.T, it RowIter) string {
	t.Helper()
	defer it.Close()
	var b strings.Builder
	for it.Next() {
		fmt.Fprintf(&b, "%v@%d;", it.Row(), it.TS())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestCheckpointScansEqualVersionScans writes a random history (upserts,
// deletes and re-creations of few keys, so keys have many versions),
// takes checkpoints along it (and reopens the store between them), and
// checks that a whole-table scan at every instant gives exactly what a
// scan of the versions gives: at checkpoints, between them, before the
// first and after the last.
//
// It runs with the segment cache off (scans read Badger), on, and with a
// budget so small that most segments are read from Badger and the rest
// evict each other.
func TestCheckpointScansEqualVersionScans(t *testing.T) {
	for _, tc := range []struct {
		seed    uint64
		cache   int64
		tailMin int // the sorted log's tail (cklog.go): all in it, or merged often
	}{{1, -1, 4096}, {2, -1, 4096}, {1, 0, 4096}, {2, 0, 0}, {3, 0, 3}, {1, 3000, 4096}, {3, 3000, 0}} {
		seed := tc.seed
		opts := Options{NoSync: true, SegmentCache: tc.cache}
		t.Run(fmt.Sprintf("seed%d/cache%d/tail%d", seed, tc.cache, tc.tailMin), func(t *testing.T) {
			old := tailMin
			tailMin = tc.tailMin
			defer func() { tailMin = old }()
			dir := t.TempDir()
			tbl := &catalog.Table{ID: 5, Name: "t", Columns: []catalog.Column{
				{Name: "k", Type: types.Varchar}, {Name: "n", Type: types.BigInt}, {Name: "s", Type: types.Varchar},
			}, PK: []int{0}}
			other := &catalog.Table{ID: 6, Name: "u", Columns: []catalog.Column{{Name: "k", Type: types.BigInt}}, PK: []int{0}}
			st, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { st.Close() }()
			rng := rand.New(rand.NewPCG(seed, 9))
			const end = 600
			cks := []int64{100, 101, 250, 400, 520}
			next := 0
			for ts := int64(0); ts < end; ts++ {
				b := st.NewBatch()
				for n := rng.IntN(4); n > 0; n-- {
					k := types.String(fmt.Sprintf("k%02d", rng.IntN(40)))
					if rng.IntN(5) == 0 {
						if err := b.Delete(tbl, []types.Value{k}, ts); err != nil {
							t.Fatal(err)
						}
					} else if err := b.Put(tbl, []types.Value{k, types.Int(ts), types.String(strings.Repeat("x", rng.IntN(3)))}, ts); err != nil {
						t.Fatal(err)
					}
				}
				if err := b.Put(other, []types.Value{types.Int(ts % 7)}, ts); err != nil {
					t.Fatal(err)
				}
				if err := b.Flush(); err != nil {
					t.Fatal(err)
				}
				if next < len(cks) && ts == cks[next] {
					if _, err := st.Checkpoint(tbl, ts); err != nil {
						t.Fatal(err)
					}
					next++
					if next == 3 {
						st.Close()
						if st, err = Open(dir, opts); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if got := fmt.Sprint(ckAt(st, tbl)); got != fmt.Sprint(cks) {
				t.Fatalf("checkpoints %s, want %v", got, cks)
			}
			viaCheckpoint, viaCache, split := 0, 0, 0
			for T := int64(-1); T <= end; T++ {
				sn := st.At(T)
				it := sn.Scan(tbl, nil)
				switch it.(type) {
				case *ckptIter:
					viaCheckpoint++
				case *segIter:
					viaCheckpoint++
					viaCache++
				}
				got, want := scanText(t, it), scanText(t, sn.ScanVersions(tbl, nil))
				if got != want {
					t.Fatalf("AS OF %d:\n got %s\nwant %s", T, got, want)
				}
				// Split into parts, the scan returns the same rows.
				if parts := sn.ScanParts(tbl, 1+int(T%7)); parts != nil {
					split++
					var b strings.Builder
					for _, p := range parts {
						b.WriteString(scanText(t, p))
					}
					if b.String() != want {
						t.Fatalf("AS OF %d in %d parts:\n got %s\nwant %s", T, len(parts), b.String(), want)
					}
				}
				sn.Close()
			}
			// Instants from the first checkpoint to the last; with the
			// segment cache, those before the first too (from the versions
			// up to it, kept in the cache) and those after the last (from
			// the versions logged since).
			want := 520 - 100 + 1
			if tc.cache == 0 {
				want = end + 2
			}
			if viaCheckpoint < want || tc.cache <= 0 && viaCheckpoint != want {
				t.Errorf("%d scans read a checkpoint, want %d", viaCheckpoint, want)
			}
			if split < viaCache/2 {
				t.Errorf("%d of %d scans through the cache were split into parts", split, viaCache)
			}
			switch {
			case tc.cache < 0 && viaCache != 0:
				t.Errorf("%d scans read the segment cache, which is off", viaCache)
			case tc.cache == 0 && viaCache != viaCheckpoint:
				t.Errorf("%d of %d checkpoint scans read the segment cache", viaCache, viaCheckpoint)
			case tc.cache > 0 && (viaCache == 0 || viaCache == viaCheckpoint):
				t.Errorf("%d of %d checkpoint scans read a cache too small for some segments", viaCache, viaCheckpoint)
			}
			// More versions after the last checkpoint, scans between
			// them: the sorted log grows with each scan (some keys written
			// again at the same instant, where the last write wins).
			for ts := int64(end); ts < end+60; ts++ {
				for w := range 3 {
					b := st.NewBatch()
					for n := rng.IntN(4); n > 0; n-- {
						k := types.String(fmt.Sprintf("k%02d", rng.IntN(40)))
						if rng.IntN(5) == 0 {
							must(t, b.Delete(tbl, []types.Value{k}, ts))
						} else {
							must(t, b.Put(tbl, []types.Value{k, types.Int(ts), types.String(fmt.Sprint(rng.IntN(9)))}, ts))
						}
					}
					must(t, b.Flush())
					if w == 1 {
						continue // two batches logged between scans
					}
					for _, T := range []int64{ts, ts - 1 - int64(rng.IntN(60))} {
						sn := st.At(T)
						it := sn.Scan(tbl, nil)
						if _, ok := it.(*segIter); !ok && tc.cache == 0 {
							t.Errorf("AS OF %d, after the last checkpoint: %T, want a scan of the cached rows and the log", T, it)
						}
						if got, want := scanText(t, it), scanText(t, sn.ScanVersions(tbl, nil)); got != want {
							t.Fatalf("AS OF %d, after more versions:\n got %s\nwant %s", T, got, want)
						}
						sn.Close()
					}
				}
			}
			// DROP TABLE removes them.
			if err := st.DropTable(tbl.ID); err != nil {
				t.Fatal(err)
			}
			if got := ckAt(st, tbl); got != nil {
				t.Errorf("checkpoints after DropTable: %v", got)
			}
			// A table created again under the same id and checkpointed at
			// the same instant is read anew, not from the segment cache.
			b := st.NewBatch()
			if err := b.Put(tbl, []types.Value{types.String("new"), types.Int(1), types.String("")}, 10); err != nil {
				t.Fatal(err)
			}
			if err := b.Flush(); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Checkpoint(tbl, 599); err != nil {
				t.Fatal(err)
			}
			for _, T := range []int64{10, 599} {
				sn := st.At(T)
				if got, want := scanText(t, sn.Scan(tbl, nil)), "[new 1 ]@10;"; got != want {
					t.Errorf("AS OF %d after the table was dropped and written again: %s, want %s", T, got, want)
				}
				sn.Close()
			}
			if err := st.DropTable(tbl.ID); err != nil {
				t.Fatal(err)
			}
			st.Close()
			if st, err = Open(dir, opts); err != nil {
				t.Fatal(err)
			}
			if got := ckAt(st, tbl); got != nil {
				t.Errorf("checkpoints after DropTable and a reopen: %v", got)
			}
		})
	}
}

// BenchmarkScanDepth scans a table of 20,000 rows AS OF an instant in the
// middle of its last round of updates, with 1 to 32 versions a key, through
// the checkpoints (taken after every round, as the engine's policy does)
// and through the versions alone. rows/s counts rows returned.
func BenchmarkScanDepth(b *testing.B) {
	const n = 20_000
	tbl := &catalog.Table{ID: 5, Name: "t", Columns: []catalog.Column{
		{Name: "k", Type: types.BigInt}, {Name: "v", Type: types.BigInt}, {Name: "s", Type: types.Varchar},
	}, PK: []int{0}}
	for _, depth := range []int{1, 4, 16, 32} {
		st, err := Open(b.TempDir(), Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(uint64(depth), 1))
		ts := int64(0)
		var T int64
		for d := 0; d < depth; d++ {
			batch := st.NewBatch()
			for _, i := range rng.Perm(n) {
				if err := batch.Put(tbl, []types.Value{types.Int(int64(i)), types.Int(ts), types.String("some title text")}, ts); err != nil {
					b.Fatal(err)
				}
				if d == depth-1 && ts%n == n/2 {
					T = ts
				}
				ts++
			}
			if err := batch.Flush(); err != nil {
				b.Fatal(err)
			}
			if d == 0 && depth == 1 {
				T = ts - 1
			}
			if _, err := st.Checkpoint(tbl, ts-1); err != nil {
				b.Fatal(err)
			}
		}
		for _, via := range []string{"checkpoint", "versions"} {
			b.Run(fmt.Sprintf("depth%d/%s", depth, via), func(b *testing.B) {
				rows := 0
				for it := 0; it < b.N; it++ {
					sn := st.At(T)
					var ri RowIter
					if via == "checkpoint" {
						ri = sn.Scan(tbl, nil)
					} else {
						ri = sn.ScanVersions(tbl, nil)
					}
					for ri.Next() {
						rows++
					}
					ri.Close()
					sn.Close()
				}
				b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			})
		}
		st.Close()
	}
}

// TestCheckpointsWhileWriting takes checkpoints while another goroutine
// writes (the engine's situation: the checkpointer works beside the
// writer), each at the last instant the writer has finished, then checks
// scans through them against scans of the versions. Versions written while
// a checkpoint walks the table must reach the next one's change list.
func TestCheckpointsWhileWriting(t *testing.T) {
	st, err := Open(t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tbl := &catalog.Table{ID: 5, Name: "t", Columns: []catalog.Column{{Name: "k", Type: types.BigInt}, {Name: "v", Type: types.BigInt}}, PK: []int{0}}
	var sealed atomic.Int64
	sealed.Store(-1)
	const end = 3000
	done := make(chan error)
	go func() {
		rng := rand.New(rand.NewPCG(4, 4))
		for ts := int64(0); ts < end; ts++ {
			b := st.NewBatch()
			for n := 0; n < 5; n++ {
				k := types.Int(rng.Int64N(300))
				var err error
				if rng.IntN(6) == 0 {
					err = b.Delete(tbl, []types.Value{k}, ts)
				} else {
					err = b.Put(tbl, []types.Value{k, types.Int(ts)}, ts)
				}
				if err != nil {
					done <- err
					return
				}
			}
			if err := b.Flush(); err != nil {
				done <- err
				return
			}
			sealed.Store(ts)
			if ts%10 == 0 {
				time.Sleep(50 * time.Microsecond) // leave checkpoints and scans time between batches
			}
		}
		done <- nil
	}()
	// Meanwhile scans AS OF the newest sealed instant (after the last
	// checkpoint: the cached rows and the log) see what the versions say.
	stop, scanned := make(chan struct{}), make(chan error, 1)
	go func() {
		logged := 0
		for {
			select {
			case <-stop:
				if logged == 0 {
					scanned <- errors.New("no scan read the log")
				} else {
					scanned <- nil
				}
				return
			default:
			}
			T := sealed.Load()
			if T < 0 {
				continue
			}
			sn := st.At(T)
			it := sn.Scan(tbl, nil)
			if si, ok := it.(*segIter); ok && si.chg != nil && (len(si.chg.ents) > 0 || si.chg2 != nil) {
				logged++
			}
			got, want := scanText(t, it), scanText(t, sn.ScanVersions(tbl, nil))
			sn.Close()
			if got != want {
				scanned <- fmt.Errorf("AS OF %d while writing:\n got %s\nwant %s", T, got, want)
				return
			}
		}
	}()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		// (every 50 instants, so that scans find versions logged since)
		if c := sealed.Load(); c >= 0 && (len(ckAt(st, tbl)) == 0 || c-50 > ckAt(st, tbl)[len(ckAt(st, tbl))-1]) {
			if _, err := st.Checkpoint(tbl, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	if err := <-scanned; err != nil {
		t.Fatal(err)
	}
	at := ckAt(st, tbl)
	if len(at) < 5 {
		t.Fatalf("only %d checkpoints taken while writing", len(at))
	}
	for T := at[0]; T < end; T += 7 {
		sn := st.At(T)
		got, want := scanText(t, sn.Scan(tbl, nil)), scanText(t, sn.ScanVersions(tbl, nil))
		sn.Close()
		if got != want {
			t.Fatalf("AS OF %d (checkpoints %v):\n got %s\nwant %s", T, at, got, want)
		}
	}
}

func ckAt(st *Store, t *catalog.Table) []int64 {
	at, _ := st.CheckpointList(t)
	return at
}

// TestSegmentStringsShared checks that rows scanned through the segment
// cache copy their strings unless the caller asks to share the cache's
// memory (ShareStrings): a caller that keeps rows (a view's index) must
// not hold a segment beyond the cache's budget.
func TestSegmentStringsShared(t *testing.T) {
	st, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tbl := &catalog.Table{ID: 7, Name: "t", Columns: []catalog.Column{{Name: "k", Type: types.Varchar}, {Name: "s", Type: types.Varchar}}, PK: []int{0}}
	b := st.NewBatch()
	for i := 0; i < 50; i++ {
		if err := b.Put(tbl, []types.Value{types.String(fmt.Sprintf("k%02d", i)), types.String(fmt.Sprintf("value %d", i))}, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Checkpoint(tbl, 49); err != nil {
		t.Fatal(err)
	}
	inSegments := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		st.segs.mu.Lock()
		defer st.segs.mu.Unlock()
		for _, g := range st.segs.m {
			if len(g.buf) > 0 && p >= uintptr(unsafe.Pointer(&g.buf[0])) && p < uintptr(unsafe.Pointer(&g.buf[0]))+uintptr(len(g.buf)) {
				return true
			}
		}
		return false
	}
	for _, share := range []bool{false, true} {
		for _, T := range []int64{20, 49} { // the versions up to the checkpoint; its rows
			sn := st.At(T)
			it := sn.Scan(tbl, nil)
			if _, ok := it.(*segIter); !ok {
				t.Fatalf("AS OF %d: scan not through the segment cache (%T)", T, it)
			}
			if share {
				it.(StringSharer).ShareStrings()
			}
			n, shared := 0, 0
			for it.Next() {
				n++
				if inSegments(it.Row()[1].S) {
					shared++
				}
			}
			it.Close()
			sn.Close()
			if want := map[bool]int{false: 0, true: n}[share]; n == 0 || shared != want {
				t.Errorf("AS OF %d, ShareStrings %v: %d of %d rows' strings in the cache's memory, want %d", T, share, shared, n, want)
			}
		}
	}
}

// A table with about one version a row is scanned in Badger after its last
// checkpoint: sorting its log would cost memory to save little.
func TestNoLogShallowHistory(t *testing.T) {
	st, err := Open(t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tbl := &catalog.Table{ID: 5, Name: "t", Columns: []catalog.Column{{Name: "k", Type: types.BigInt}, {Name: "v", Type: types.BigInt}}, PK: []int{0}}
	for ts := int64(0); ts < 200; ts++ {
		b := st.NewBatch()
		must(t, b.Put(tbl, []types.Value{types.Int(ts), types.Int(ts)}, ts)) // a new key each time
		must(t, b.Flush())
		if ts == 99 {
			if _, err := st.Checkpoint(tbl, 99); err != nil {
				t.Fatal(err)
			}
		}
	}
	sn := st.At(199)
	defer sn.Close()
	it := sn.Scan(tbl, nil)
	if _, ok := it.(*segIter); ok {
		t.Errorf("a table of one version a row scanned through the log")
	}
	if got, want := scanText(t, it), scanText(t, sn.ScanVersions(tbl, nil)); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if lg := st.ckpts.logs[tbl.ID]; lg == nil || lg.sorted != nil {
		t.Errorf("the log (kept for the next checkpoint) %v, sorted for a scan", lg)
	}
}
