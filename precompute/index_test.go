package precompute

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"ttq/catalog"
	"ttq/types"
)

// TestIndexMatchesModel applies random adds (new rows and new versions of
// rows already held) and removes to an index and to a map, and compares
// every value's keys, rows and commit times after each step: with the real
// hash, and with hashes weak enough that most values and pairs collide,
// and with compaction after almost every remove.
func TestIndexMatchesModel(t *testing.T) {
	tbl := &catalog.Table{ID: 7, Columns: []catalog.Column{
		{Name: "k1", Type: types.BigInt}, {Name: "k2", Type: types.Varchar}, {Name: "v", Type: types.BigInt}, {Name: "p", Type: types.Varchar},
	}, PK: []int{0, 1}}
	for _, tc := range []struct {
		name    string
		hash    func([]byte) uint64
		compact int
	}{
		{"maphash", nil, 1 << 20},
		{"weak hash", func(b []byte) uint64 { return uint64(len(b) % 3) }, 1 << 20},
		{"constant hash, compacting", func([]byte) uint64 { return 42 }, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(c int) { compactMin = c }(compactMin)
			compactMin = tc.compact
			ix := newIndex(tbl, 2)
			if tc.hash != nil {
				ix.hash = tc.hash
			}
			model := map[int64]map[string]string{} // value -> key -> "payload@ts"
			rng := rand.New(rand.NewPCG(1, 2))
			row := func() []types.Value {
				r := []types.Value{types.Int(rng.Int64N(40)), types.String(fmt.Sprint("k", rng.IntN(3))), types.Int(rng.Int64N(6)),
					types.String(strings.Repeat("p", rng.IntN(9)))}
				if rng.IntN(20) == 0 {
					r[2] = types.NullValue
				}
				return r
			}
			for step := 0; step < 3000; step++ {
				r := row()
				key := fmt.Sprint(r[0], "/", r[1])
				if rng.IntN(2) == 0 {
					ix.add(r, int64(step))
					if !r[2].IsNull() {
						if model[r[2].I] == nil {
							model[r[2].I] = map[string]string{}
						}
						model[r[2].I][key] = fmt.Sprint(r[3].S, "@", step)
					}
				} else {
					ix.remove(r)
					if !r[2].IsNull() {
						delete(model[r[2].I], key)
					}
				}
				n := 0
				for v := int64(0); v < 6; v++ {
					var got, want []string
					var keys []string
					if err := ix.each(types.Int(v), func(enc string, k []types.Value) {
						keys = append(keys, fmt.Sprint(k[0], "/", k[1]))
					}); err != nil {
						t.Fatal(err)
					}
					if err := ix.eachRow(types.Int(v), func(row []types.Value, ts int64) {
						got = append(got, fmt.Sprint(row[0], "/", row[1], "=", row[3].S, "@", ts))
						if types.Compare(row[2], types.Int(v)) != 0 {
							t.Fatalf("step %d: value %d: row %v", step, v, row)
						}
					}); err != nil {
						t.Fatal(err)
					}
					if len(keys) != len(got) {
						t.Fatalf("step %d: value %d: keys %v, rows %v", step, v, keys, got)
					}
					for k, p := range model[v] {
						want = append(want, k+"="+p)
					}
					slices.Sort(got)
					slices.Sort(want)
					if !slices.Equal(got, want) {
						t.Fatalf("step %d: value %d: index has %v, want %v", step, v, got, want)
					}
					n += len(want)
				}
				if ix.len() != n {
					t.Fatalf("step %d: len %d, want %d", step, ix.len(), n)
				}
			}
			if tc.compact < 100 && len(ix.arena) > 64*ix.len() {
				t.Errorf("arena %d bytes for %d entries: not compacted", len(ix.arena), ix.len())
			}
		})
	}
}
