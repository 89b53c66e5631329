package precompute

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestViewDirMatchesModel replaces the rows of random roots in a directory
// (through a diff, which must name the rows to write and to delete) and in
// a map, and compares every root's rows and digests after each step: with the real hash, with root hashes that mostly collide, and with
// one chain for every root and compaction after almost every removal.
func TestViewDirMatchesModel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mask    uint64
		compact int
	}{
		{"maphash", ^uint64(0), 1 << 20},
		{"colliding roots", 3, 1 << 20},
		{"one chain, compacting", 0, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(c int) { compactMin = c }(compactMin)
			compactMin = tc.compact
			d := newViewDir()
			d.mask = tc.mask
			// Roots r1, r10, r100... are prefixes of each other as strings
			// but not as encoded keys; here "r1/" vs "r10/" play that part.
			root := func(i int) string { return fmt.Sprintf("r%d/", i) }
			model := map[string]map[string]digest{} // root -> key -> digest
			rng := rand.New(rand.NewPCG(3, 4))
			for step := 0; step < 3000; step++ {
				r := root(rng.IntN(25))
				rows := map[string]digest{}
				x := d.diff(1, func(_ int, buf []byte) []byte { return append(buf, r...) })
				for j := rng.IntN(4); j > 0; j-- {
					k := fmt.Sprintf("%s%d", r, rng.IntN(5))
					if _, ok := rows[k]; ok {
						continue
					}
					dg := d.digestOf([]byte(fmt.Sprint(rng.IntN(3))))
					rows[k] = dg
					old, had := model[r][k]
					if got, want := x.row(dirRow{root: r, key: k, d: dg}), !had || old != dg; got != want {
						t.Fatalf("step %d: row %s (stored %v, %v) must be written: %v, want %v", step, k, had, old, got, want)
					}
				}
				var removed []string
				x.removed(func(k string) error { removed = append(removed, k); return nil })
				var vanished []string
				for k := range model[r] {
					if _, ok := rows[k]; !ok {
						vanished = append(vanished, k)
					}
				}
				slices.Sort(removed)
				slices.Sort(vanished)
				if !slices.Equal(removed, vanished) {
					t.Fatalf("step %d: removed %v, want %v", step, removed, vanished)
				}
				d.apply(x)
				model[r] = rows
				n := 0
				for i := 0; i < 25; i++ {
					r := root(i)
					got := map[string]digest{}
					d.each([]byte(r), func(_ int32, k []byte, dg digest) {
						if _, dup := got[string(k)]; dup {
							t.Fatalf("step %d: %s listed twice", step, k)
						}
						got[string(k)] = dg
					})
					if !maps.Equal(got, model[r]) {
						t.Fatalf("step %d: root %s has %v, want %v", step, r, got, model[r])
					}
					n += len(got)
				}
				if d.len() != n {
					t.Fatalf("step %d: len %d, want %d", step, d.len(), n)
				}
			}
			if tc.compact < 100 && len(d.arena) > 64*d.len() {
				t.Errorf("arena %d bytes for %d rows: not compacted", len(d.arena), d.len())
			}
		})
	}
}
