package precompute

import (
	"testing"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/types"
)

func TestChangeLog(t *testing.T) {
	tb := &catalog.Table{ID: 7, Name: "t", Columns: []catalog.Column{{Name: "k", Type: types.BigInt}, {Name: "v", Type: types.BigInt}}, PK: []int{0}}
	row := func(k, v int64) []types.Value { return []types.Value{types.Int(k), types.Int(v)} }
	key := func(k int64) []types.Value { return []types.Value{types.Int(k)} }
	enc := func(k int64) string { return string(mvcc.EncodeKey(nil, tb.ID, key(k))) }
	tables := []*catalog.Table{tb}

	l := NewChangeLog()
	l.Add([]BaseChange{{Table: tb, Row: row(1, 1), TS: 11}})
	if _, ok := l.Changed(tables, 10, 20, 10); ok {
		t.Fatal("a table never seeded answered from the log")
	}
	// Seeded from a scan that found key 1 at 12 (row unknown).
	l.Seed(tb, 10, []Version{{enc: enc(1), Key: key(1), TS: 12}})
	l.Add([]BaseChange{
		{Table: tb, Row: row(2, 1), TS: 15},
		{Table: tb, Row: row(2, 2), TS: 15}, // same ts, applied later: wins
		{Table: tb, Row: row(2, 3), TS: 14},
		{Table: tb, Row: row(1, 5), TS: 13},
		{Table: tb, Key: key(3), TS: 25},
	})
	eps, ok := l.Changed(tables, 10, 30, 10)
	if !ok || len(eps) != 2 || eps[0].B != 20 || eps[1].B != 30 {
		t.Fatalf("epochs %v %v", eps, ok)
	}
	ks := eps[0].Keys[tb.ID]
	if len(ks.keys) != 2 {
		t.Fatalf("keys %v", ks.keys)
	}
	if a := ks.at[enc(1)]; a.ok {
		t.Fatalf("key 1 has a version from the scan, but its row is known: %v", a)
	}
	if a := ks.at[enc(2)]; !a.ok || a.ts != 15 || a.row[1].I != 2 {
		t.Fatalf("key 2 at 20: %v", a)
	}
	if a := eps[1].Keys[tb.ID].at[enc(3)]; !a.ok || a.row != nil {
		t.Fatalf("key 3 deleted at 30: %v", a)
	}
	l.Prune(tb.ID, 20)
	if _, ok := l.Changed(tables, 10, 30, 10); ok {
		t.Fatal("answered for versions already pruned")
	}
	if eps, ok := l.Changed(tables, 20, 30, 10); !ok || len(eps) != 1 || l.Len() != 1 {
		t.Fatalf("after prune: %v %v %d", eps, ok, l.Len())
	}
	l.Cap = 2
	l.Add([]BaseChange{{Table: tb, Row: row(4, 1), TS: 31}, {Table: tb, Row: row(5, 1), TS: 32}})
	if _, ok := l.Changed(tables, 20, 40, 10); ok || l.Len() != 0 {
		t.Fatal("an overflowing log still answers")
	}
}

func TestParallelChunks(t *testing.T) {
	for _, n := range []int{0, 1, minParallel - 1, minParallel, 3*minParallel + 7} {
		parts, err := parallel(n, func(lo, hi int, out *[]int) error {
			for i := lo; i < hi; i++ {
				*out = append(*out, i)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		next := 0
		for _, p := range parts {
			for _, i := range p {
				if i != next {
					t.Fatalf("n=%d: got %d, want %d", n, i, next)
				}
				next++
			}
		}
		if next != n {
			t.Fatalf("n=%d: %d items", n, next)
		}
	}
}
