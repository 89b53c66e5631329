package precompute

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/types"
)

// TestIndexMatchesModel applies random adds (new rows, new versions of
// rows held, rows moving to another value or to NULL) and removes to an
// index and to a map, and compares every value's keys, rows and commit
// times, and every key's row, after each step: with the real hash, and
// with hashes weak enough that most values and keys collide, and with
// compaction after almost every remove.
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
			type held struct {
				row []types.Value
				ts  int64
			}
			model := map[string]held{} // key -> row
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
				if rng.IntN(3) > 0 {
					ix.add(r, int64(step))
					model[key] = held{r, int64(step)}
				} else {
					ix.remove(r)
					delete(model, key)
				}
				// Every key: held with its last row, or not held.
				for k1 := int64(0); k1 < 40; k1++ {
					for k2 := 0; k2 < 3; k2++ {
						kv := []types.Value{types.Int(k1), types.String(fmt.Sprint("k", k2))}
						got, ts, ok, err := ix.get(mvcc.EncodeKey(nil, tbl.ID, kv))
						if err != nil {
							t.Fatal(err)
						}
						want, had := model[fmt.Sprint(kv[0], "/", kv[1])]
						if ok != had || ok && (fmt.Sprint(got) != fmt.Sprint(want.row) || ts != want.ts) {
							t.Fatalf("step %d: key %v: get %v@%d %v, want %v@%d %v", step, kv, got, ts, ok, want.row, want.ts, had)
						}
					}
				}
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
					for k, h := range model {
						if !h.row[2].IsNull() && h.row[2].I == v {
							want = append(want, fmt.Sprint(k, "=", h.row[3].S, "@", h.ts))
						}
					}
					slices.Sort(got)
					slices.Sort(want)
					if !slices.Equal(got, want) {
						t.Fatalf("step %d: value %d: index has %v, want %v", step, v, got, want)
					}
				}
				if ix.len() != len(model) {
					t.Fatalf("step %d: len %d, want %d", step, ix.len(), len(model))
				}
			}
			live := 0
			for i := range ix.ents {
				if off, n := ix.ents[i].span(); off != freeOff {
					live += int(n)
				}
			}
			if len(ix.arena)-ix.dead != live || len(ix.arena) > 2*live+compactMin {
				t.Errorf("arena %d bytes (%d dead) for %d bytes of entries: not compacted", len(ix.arena), ix.dead, live)
			}
		})
	}
}
