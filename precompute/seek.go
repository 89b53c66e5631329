package precompute

import (
	"github.com/dgraph-io/badger/v4"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/types"
)

// seeker reads many key prefixes of one table AS OF one instant with a
// single Badger iterator, repositioned by Seek for each prefix: opening an
// iterator per prefix (Snapshot.Scan) costs far more than a Seek when an
// epoch reads thousands of prefixes.
type seeker struct {
	t   *catalog.Table
	txn *badger.Txn
	it  *badger.Iterator
	kb  []byte
}

func newSeeker(store *mvcc.Store, t *catalog.Table, ts int64) *seeker {
	v := mvcc.Version(ts)
	if ts < 0 {
		v = 0
	}
	txn := store.DB().NewTransactionAt(v, false)
	p := mvcc.EncodeKey(nil, t.ID, nil)
	return &seeker{t: t, txn: txn, it: txn.NewIterator(badger.IteratorOptions{Prefix: p})}
}

// scan calls fn with every row (and the commit time of its version) whose
// key starts with prefix, in key order.
func (s *seeker) scan(prefix []types.Value, fn func(row []types.Value, ts int64)) error {
	s.kb = mvcc.EncodeKey(s.kb[:0], s.t.ID, prefix)
	for s.it.Seek(s.kb); s.it.ValidForPrefix(s.kb); s.it.Next() {
		item := s.it.Item()
		var row []types.Value
		err := item.Value(func(b []byte) error {
			var err error
			row, err = mvcc.DecodeRow(nil, s.t.Columns, b)
			return err
		})
		if err != nil {
			return err
		}
		fn(row, mvcc.TS(item.Version()))
	}
	return nil
}

func (s *seeker) close() {
	s.it.Close()
	s.txn.Discard()
}

// isWholeKey reports whether col alone is t's primary key: a lookup by it
// is a point read.
func isWholeKey(t *catalog.Table, col int) bool { return len(t.PK) == 1 && t.PK[0] == col }

// inKey reports whether col is one of t's primary-key columns.
func inKey(t *catalog.Table, col int) bool {
	for _, k := range t.PK {
		if k == col {
			return true
		}
	}
	return false
}

// keyRow returns a row of t with only its primary-key columns set.
func keyRow(t *catalog.Table, key []types.Value) []types.Value {
	row := make([]types.Value, len(t.Columns))
	for j, k := range t.PK {
		row[k] = key[j]
	}
	return row
}
