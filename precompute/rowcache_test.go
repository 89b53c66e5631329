package precompute

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"ttq/catalog"
	"ttq/types"
)

// TestRowCacheMatchesModel replaces, removes and reads the rows of random
// roots in a row cache and in a map, with the real hash and with one under
// which every root collides, compacting often.
func TestRowCacheMatchesModel(t *testing.T) {
	tbl := &catalog.Table{ID: 9, Columns: []catalog.Column{{Name: "k", Type: types.BigInt}, {Name: "s", Type: types.Varchar}}, PK: []int{0, 1}}
	for _, weak := range []bool{false, true} {
		t.Run(fmt.Sprint("weak=", weak), func(t *testing.T) {
			defer func(c int) { compactMin = c }(compactMin)
			compactMin = 64
			c := newRowCache()
			if weak {
				c.hash = func([]byte) uint64 { return 7 }
			}
			model := map[string][]string{}
			rng := rand.New(rand.NewPCG(3, 5))
			for step := 0; step < 2000; step++ {
				root := fmt.Sprint("root", rng.IntN(30))
				var blob []byte
				var want []string
				for n := rng.IntN(4); n > 0; n-- {
					row := []types.Value{types.Int(rng.Int64N(100)), types.String(fmt.Sprint("v", step))}
					blob = appendRow(blob, tbl, row)
					want = append(want, fmt.Sprint(row))
				}
				c.set(root, blob)
				if len(want) == 0 {
					delete(model, root)
				} else {
					model[root] = want
				}
				for i := 0; i < 30; i++ {
					r := fmt.Sprint("root", i)
					var got []string
					if err := c.rows(tbl, r, func(row []types.Value) { got = append(got, fmt.Sprint(row)) }); err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(got, model[r]) {
						t.Fatalf("step %d: %s has %v, want %v", step, r, got, model[r])
					}
				}
			}
			if len(c.arena) > 4096 {
				t.Errorf("arena of %d bytes for at most 30 roots: not compacted", len(c.arena))
			}
		})
	}
}
