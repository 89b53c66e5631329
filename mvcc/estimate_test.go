package mvcc

import (
	"testing"

	"ttq/catalog"
	"ttq/types"
)

// TestEstimateVersions writes versions of two tables and checks the
// estimates count them, before and after a reopen (which moves them from
// the memtable into Badger's tables).
func TestEstimateVersions(t *testing.T) {
	dir := t.TempDir()
	a := &catalog.Table{ID: 3, Name: "a", Columns: []catalog.Column{{Name: "k", Type: types.BigInt}}, PK: []int{0}}
	b := &catalog.Table{ID: 4, Name: "b", Columns: []catalog.Column{{Name: "k", Type: types.BigInt}}, PK: []int{0}}
	st, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	batch := st.NewBatch()
	for i := int64(0); i < 3000; i++ {
		if err := batch.Put(a, []types.Value{types.Int(i % 1000)}, i); err != nil {
			t.Fatal(err)
		}
		if i < 500 {
			if err := batch.Put(b, []types.Value{types.Int(i)}, i); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := batch.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := st.EstimateVersions(a); got != 3000 {
		t.Errorf("a: %d versions, want 3000", got)
	}
	if got := st.EstimateVersions(b); got != 500 {
		t.Errorf("b: %d versions, want 500", got)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = Open(dir, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// One Badger table holds both: it is shared equally.
	ea, eb := st.EstimateVersions(a), st.EstimateVersions(b)
	if ea+eb < 3000 || ea+eb > 3600 || ea == 0 || eb == 0 {
		t.Errorf("after reopen: a %d, b %d versions, want about 3500 in all, some to each", ea, eb)
	}
	if got := st.EstimateVersions(&catalog.Table{ID: 9}); got != 0 {
		t.Errorf("a table never written: %d versions", got)
	}
}
