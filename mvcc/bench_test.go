package mvcc

import (
	"fmt"
	"testing"

	"ttq/types"
)

// BenchmarkHistory: the versions of one key in a range that holds 10 of
// them, with 100 to 10,000 versions stored: the cost follows the versions
// returned, not the versions stored.
func BenchmarkHistory(b *testing.B) {
	for _, stored := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("stored=%d", stored), func(b *testing.B) {
			st, err := Open(b.TempDir(), Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			tb := testTable()
			batch := st.NewBatch()
			for i := 0; i < stored; i++ {
				for _, id := range []string{"P0", "P1", "P2"} {
					if err := batch.Put(tb, row(id, float64(i)), int64(1000+i*10)); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := batch.Flush(); err != nil {
				b.Fatal(err)
			}
			key := []types.Value{types.String("P1")}
			for _, where := range []string{"newest", "oldest"} {
				from := int64(1000 + (stored-10)*10)
				if where == "oldest" {
					from = 1000
				}
				to := from + 95
				b.Run(where, func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						n := 0
						if err := st.History(tb, key, from, to, func(RowVersion) error { n++; return nil }); err != nil {
							b.Fatal(err)
						}
						if n != 10 {
							b.Fatalf("%d versions, want 10", n)
						}
					}
				})
			}
		})
	}
}
