package precompute

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/query"
	"ttq/types"
)

// Follow as the end of a feed's range follows new epochs until the
// context ends.
const Follow int64 = math.MaxInt64

// Kinds of Change.
const (
	Upsert   = "upsert"
	Delete   = "delete"
	Progress = "progress"
)

// Change is one record of a view's change feed.
type Change struct {
	Kind string
	// Epoch is the boundary the change belongs to; for a progress record,
	// every change at or before it has been sent.
	Epoch int64
	// Key holds the view's key columns (upserts and deletes).
	Key []types.Value
	// Row is the whole new row (upserts only).
	Row []types.Value
}

// FeedSource is what a change feed reads: the engine.
type FeedSource interface {
	Catalog() *catalog.Catalog
	Store() *mvcc.Store
	// ViewProgress is the last boundary the view is complete for.
	ViewProgress(name string) (int64, error)
	// Sealed is closed the next time the global watermark moves.
	Sealed() <-chan struct{}
}

// Changes calls fn, in boundary order, for every view row that changed at
// an epoch boundary in (from, to] — an upsert with the whole row or a
// delete with the key — and after each boundary's changes a progress
// record. Applying the upserts and deletes to the view AS OF from (empty
// when from is before the view's first epoch) gives the view AS OF each
// progress record's epoch. A final progress record at to (or at the last
// boundary reached) ends the range. With to = Follow, or a to that is not
// sealed yet, it waits for new epochs until ctx ends.
func Changes(ctx context.Context, src FeedSource, view string, from, to int64, fn func(Change) error) error {
	sent := from
	for {
		v, err := src.Catalog().View(view)
		if err != nil {
			return err
		}
		wake := src.Sealed()
		p, err := src.ViewProgress(view)
		if err != nil {
			return err
		}
		upto := min(p, to)
		if upto > sent {
			if err := changesBetween(src.Store(), v, sent, upto, fn); err != nil {
				return err
			}
			if err := fn(Change{Kind: Progress, Epoch: upto}); err != nil {
				return err
			}
			sent = upto
		}
		if sent >= to {
			return nil
		}
		// A sealed end that is not a boundary: the last boundary at or
		// before it is as far as the range can go.
		if w, ok := src.(interface{ Watermark() int64 }); ok && to != Follow && w.Watermark() >= to && v.Epoch > 0 {
			if end := Floor(to, v.Epoch); p >= end {
				if sent < end {
					if err := fn(Change{Kind: Progress, Epoch: end}); err != nil {
						return err
					}
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// changesBetween emits the stored versions of v's rows in (from, to],
// grouped by boundary, each group followed by a progress record (but the
// last, which the caller sends).
func changesBetween(store *mvcc.Store, v *catalog.View, from, to int64, fn func(Change) error) error {
	t := query.ViewTable(v)
	txn := store.DB().NewTransactionAt(mvcc.Version(to), false)
	defer txn.Discard()
	p := mvcc.EncodeKey(nil, v.ID, nil)
	opt := badger.IteratorOptions{Prefix: p, AllVersions: true}
	if from >= 0 {
		opt.SinceTs = mvcc.Version(from)
	}
	type version struct {
		b   int64
		key string
		del bool
		val []byte
	}
	var vs []version
	seen := map[string]bool{}
	it := txn.NewIterator(opt)
	for it.Seek(p); it.Valid(); it.Next() {
		item := it.Item()
		b := mvcc.TS(item.Version())
		if b <= from || b > to {
			continue
		}
		k := string(item.Key())
		if id := fmt.Sprint(b) + "/" + k; seen[id] {
			continue // the same version written twice (maintenance redone after a crash)
		} else {
			seen[id] = true
		}
		ver := version{b: b, key: k, del: item.IsDeletedOrExpired()}
		if !ver.del {
			val, err := item.ValueCopy(nil)
			if err != nil {
				it.Close()
				return err
			}
			ver.val = val
		}
		vs = append(vs, ver)
	}
	it.Close()
	sort.SliceStable(vs, func(i, j int) bool {
		if vs[i].b != vs[j].b {
			return vs[i].b < vs[j].b
		}
		return vs[i].key < vs[j].key
	})
	for i, ver := range vs {
		if i > 0 && vs[i-1].b != ver.b {
			if err := fn(Change{Kind: Progress, Epoch: vs[i-1].b}); err != nil {
				return err
			}
		}
		var row []types.Value
		var err error
		if ver.del {
			// The key comes from the row the delete ended.
			row, err = rowBefore(store, t, []byte(ver.key), ver.b)
			if err != nil {
				return err
			}
			if row == nil {
				continue // nothing was visible: a delete of a deleted row
			}
			if err := fn(Change{Kind: Delete, Epoch: ver.b, Key: keyOf(row, t.PK)}); err != nil {
				return err
			}
			continue
		}
		if row, err = mvcc.DecodeRow(nil, t.Columns, ver.val); err != nil {
			return err
		}
		if err := fn(Change{Kind: Upsert, Epoch: ver.b, Key: keyOf(row, t.PK), Row: row}); err != nil {
			return err
		}
	}
	return nil
}

// rowBefore reads the row stored under key just before b (nil if none).
func rowBefore(store *mvcc.Store, t *catalog.Table, key []byte, b int64) ([]types.Value, error) {
	txn := store.DB().NewTransactionAt(mvcc.Version(b-1), false)
	defer txn.Discard()
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var row []types.Value
	err = item.Value(func(val []byte) error {
		row, err = mvcc.DecodeRow(nil, t.Columns, val)
		return err
	})
	return row, err
}
