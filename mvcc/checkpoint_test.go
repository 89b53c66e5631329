package mvcc

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

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
func TestCheckpointScansEqualVersionScans(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			dir := t.TempDir()
			tbl := &catalog.Table{ID: 5, Name: "t", Columns: []catalog.Column{
				{Name: "k", Type: types.Varchar}, {Name: "n", Type: types.BigInt}, {Name: "s", Type: types.Varchar},
			}, PK: []int{0}}
			other := &catalog.Table{ID: 6, Name: "u", Columns: []catalog.Column{{Name: "k", Type: types.BigInt}}, PK: []int{0}}
			st, err := Open(dir, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { st.Close() }()
			rng := rand.New(rand.NewPCG(seed, 9))
			const end = 600
			cks := []int64{100, 101, 250, 400, 599}
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
						if st, err = Open(dir, Options{NoSync: true}); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if got := fmt.Sprint(st.Checkpoints(tbl)); got != fmt.Sprint(cks) {
				t.Fatalf("checkpoints %s, want %v", got, cks)
			}
			viaCheckpoint := 0
			for T := int64(-1); T <= end; T++ {
				sn := st.At(T)
				it := sn.Scan(tbl, nil)
				if _, ok := it.(*ckptIter); ok {
					viaCheckpoint++
				}
				got, want := scanText(t, it), scanText(t, sn.ScanVersions(tbl, nil))
				sn.Close()
				if got != want {
					t.Fatalf("AS OF %d:\n got %s\nwant %s", T, got, want)
				}
			}
			// Instants from the first checkpoint to the last.
			if viaCheckpoint != 599-100+1 {
				t.Errorf("%d scans read a checkpoint, want %d", viaCheckpoint, 599-100+1)
			}
			// DROP TABLE removes them.
			if err := st.DropTable(tbl.ID); err != nil {
				t.Fatal(err)
			}
			if got := st.Checkpoints(tbl); got != nil {
				t.Errorf("checkpoints after DropTable: %v", got)
			}
			st.Close()
			if st, err = Open(dir, Options{NoSync: true}); err != nil {
				t.Fatal(err)
			}
			if got := st.Checkpoints(tbl); got != nil {
				t.Errorf("checkpoints after DropTable and a reopen: %v", got)
			}
		})
	}
}
