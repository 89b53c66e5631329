package precompute

import (
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
	if to <= from {
		return nil, nil
	}
	txn := store.DB().NewTransactionAt(mvcc.Version(to), false)
	defer txn.Discard()
	byB := map[int64]*Epoch{}
	for _, t := range tables {
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
		for it.Seek(p); it.Valid(); it.Next() {
			item := it.Item()
			ts := mvcc.TS(item.Version())
			if ts <= from || ts > to {
				continue
			}
			b := Ceil(ts, epoch)
			ep := byB[b]
			if ep == nil {
				ep = &Epoch{B: b, Keys: map[uint32]*keySet{}}
				byB[b] = ep
			}
			ks := ep.Keys[t.ID]
			if ks == nil {
				ks = &keySet{t: t, keys: map[string][]types.Value{}}
				ep.Keys[t.ID] = ks
			}
			if _, ok := ks.keys[string(item.Key())]; ok {
				continue
			}
			_, key, err := mvcc.DecodeKey(item.Key(), kinds)
			if err != nil {
				it.Close()
				return nil, fmt.Errorf("precompute: changes of %s: %w", t.Name, err)
			}
			ks.keys[string(item.KeyCopy(nil))] = key
		}
		it.Close()
	}
	out := make([]*Epoch, 0, len(byB))
	for _, ep := range byB {
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].B < out[j].B })
	return out, nil
}
