package precompute

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/types"
)

// Epoch is the base rows that changed in one epoch (prev, B]: for each
// table id, the keys of the rows with a version in it.
type Epoch struct {
	B    int64
	Keys map[uint32]*keySet
}

// keySet is a set of primary keys of one table.
type keySet struct {
	t    *catalog.Table
	keys map[string][]types.Value // encoded key -> key values
	// at holds, for keys whose every version in the epoch came from the
	// change log, the version visible at the epoch's boundary (the last
	// one applied with the largest ts): the row (nil: deleted) and its
	// ts. Keys found by a scan are absent: their rows are read.
	at map[string]logged
}

// logged is a version of a row known from the change log.
type logged struct {
	row []types.Value // nil: a delete
	ts  int64
	ok  bool // false: some version of the key in the epoch is not known
}

func (k *keySet) sorted() [][]types.Value {
	encs := make([]string, 0, len(k.keys))
	for e := range k.keys {
		encs = append(encs, e)
	}
	sort.Strings(encs)
	out := make([][]types.Value, len(encs))
	for i, e := range encs {
		out[i] = k.keys[e]
	}
	return out
}

// Changed returns, in boundary order, the epochs in (from, to] whose base
// tables had a version (upsert or delete) in them: a version at ts belongs
// to the epoch ending at the first boundary at or after ts. Boundaries
// without changes are absent, so they cost nothing. It reads only versions
// newer than from (Badger skips tables whose versions are all older).
func Changed(store *mvcc.Store, tables []*catalog.Table, from, to, epoch int64) ([]*Epoch, error) {
	return ChangedLogged(nil, store, tables, from, to, epoch)
}

// ChangedLogged is Changed answered from log when it is complete for the
// tables from from; otherwise it scans the store and seeds log (when not
// nil) with what the scan found, so the next epochs use it.
func ChangedLogged(log *ChangeLog, store *mvcc.Store, tables []*catalog.Table, from, to, epoch int64) ([]*Epoch, error) {
	if to <= from {
		return nil, nil
	}
	if log != nil {
		if eps, ok := log.Changed(tables, from, to, epoch); ok {
			return eps, nil
		}
	}
	g := grouper{byB: map[int64]*Epoch{}, epoch: epoch}
	for _, t := range tables {
		vs, err := ChangedScan(store, t, from)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if v.TS <= to {
				g.add(t, v.enc, v.Key, v.TS, nil, false)
			}
		}
		if log != nil {
			log.Seed(t, from, vs)
		}
	}
	return g.sorted(), nil
}

// ChangedScan returns every stored version of t's rows with ts > from
// (upserts and deletes), reading only versions newer than from (Badger
// skips tables whose versions are all older).
func ChangedScan(store *mvcc.Store, t *catalog.Table, from int64) ([]Version, error) {
	txn := store.DB().NewTransactionAt(^uint64(0)-1, false)
	defer txn.Discard()
	kinds := make([]types.Type, len(t.PK))
	for i, k := range t.PK {
		kinds[i] = t.Columns[k].Type
	}
	p := mvcc.EncodeKey(nil, t.ID, nil)
	opt := badger.IteratorOptions{Prefix: p, AllVersions: true, SinceTs: mvcc.Version(from)}
	if from < 0 {
		opt.SinceTs = 0
	}
	it := txn.NewIterator(opt)
	defer it.Close()
	var out []Version
	var last []byte
	var lastKey []types.Value
	var lastEnc string
	for it.Seek(p); it.Valid(); it.Next() {
		item := it.Item()
		ts := mvcc.TS(item.Version())
		if ts <= from {
			continue
		}
		k := item.Key()
		if last == nil || !bytes.Equal(k, last) {
			last = item.KeyCopy(last[:0])
			_, key, err := mvcc.DecodeKey(k, kinds)
			if err != nil {
				return nil, fmt.Errorf("precompute: changes of %s: %w", t.Name, err)
			}
			lastKey, lastEnc = key, string(last)
		}
		out = append(out, Version{enc: lastEnc, Key: lastKey, TS: ts})
	}
	return out, nil
}
