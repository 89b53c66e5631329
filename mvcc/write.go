package mvcc

import (
	"fmt"
	"math"

	"github.com/dgraph-io/badger/v4"

	"ttq/catalog"
	"ttq/types"
)

// Batch collects row versions and writes them with one Badger managed write
// batch. Versions become durable at Flush; they stay invisible to sealed
// reads until a meta commit raises the watermark above them.
type Batch struct {
	s     *Store
	wb    *badger.WriteBatch
	n     int
	bytes int
	err   error
}

// NewBatch starts a batch of row versions.
func (s *Store) NewBatch() *Batch {
	return &Batch{s: s, wb: s.db.NewManagedWriteBatch()}
}

// Len returns the number of versions in the batch.
func (b *Batch) Len() int { return b.n }

// Size returns the approximate number of bytes in the batch.
func (b *Batch) Size() int { return b.bytes }

func (b *Batch) check(ts int64) error {
	if b.err != nil {
		return b.err
	}
	if ts < 0 {
		return fmt.Errorf("%w: %d", ErrNegativeTime, ts)
	}
	b.s.mu.Lock()
	d := b.s.discardTs
	b.s.mu.Unlock()
	if d > 0 && ts <= d {
		return fmt.Errorf("%w: version %d at or below %d", ErrBelowDiscard, ts, d)
	}
	return nil
}

// Put stores row (all columns of t) as the version of its key at ts.
func (b *Batch) Put(t *catalog.Table, row []types.Value, ts int64) error {
	if err := b.check(ts); err != nil {
		return err
	}
	key := make([]types.Value, len(t.PK))
	for i, k := range t.PK {
		key[i] = row[k]
	}
	k := EncodeKey(nil, t.ID, key)
	v := EncodeRow(nil, t.Columns, row)
	b.n++
	b.bytes += len(k) + len(v) + 16
	if err := b.wb.SetEntryAt(badger.NewEntry(k, v), Version(ts)); err != nil {
		b.err = fmt.Errorf("mvcc: put %s: %w", t.Name, err)
		return b.err
	}
	return nil
}

// Delete stores a delete of key at ts.
func (b *Batch) Delete(t *catalog.Table, key []types.Value, ts int64) error {
	if err := b.check(ts); err != nil {
		return err
	}
	k := EncodeKey(nil, t.ID, key)
	b.n++
	b.bytes += len(k) + 16
	if err := b.wb.DeleteAt(k, Version(ts)); err != nil {
		b.err = fmt.Errorf("mvcc: delete %s: %w", t.Name, err)
		return b.err
	}
	return nil
}

// Flush writes the batch and waits until it is durable.
func (b *Batch) Flush() error {
	if b.err != nil {
		b.wb.Cancel()
		return b.err
	}
	if err := b.wb.Flush(); err != nil {
		return fmt.Errorf("mvcc: flush: %w", err)
	}
	return nil
}

// Cancel drops a batch that will not be flushed.
func (b *Batch) Cancel() { b.wb.Cancel() }

// MetaWrite is one atomic change to the store's bookkeeping: named meta
// records (catalog, watermarks, offsets) and rejected records. It commits as
// a single Badger transaction, so all of it or none survives a crash.
type MetaWrite struct {
	Puts    map[string][]byte
	Deletes []string
	Rejects [][]byte // appended with consecutive sequence numbers
}

// CommitMeta applies m atomically and durably and returns the sequence
// number given to its first reject.
func (s *Store) CommitMeta(m MetaWrite, firstReject uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	txn := s.db.NewTransactionAt(math.MaxUint64, true)
	defer txn.Discard()
	for name, v := range m.Puts {
		if err := txn.Set(metaKey(name), v); err != nil {
			return fmt.Errorf("mvcc: meta %s: %w", name, err)
		}
	}
	for _, name := range m.Deletes {
		if err := txn.Delete(metaKey(name)); err != nil {
			return fmt.Errorf("mvcc: meta delete %s: %w", name, err)
		}
	}
	for i, r := range m.Rejects {
		if err := txn.Set(rejectKey(firstReject+uint64(i)), r); err != nil {
			return fmt.Errorf("mvcc: reject: %w", err)
		}
	}
	s.metaSeq++
	if err := txn.Set(metaKey(seqName), nil); err != nil {
		return fmt.Errorf("mvcc: meta: %w", err)
	}
	if err := txn.CommitAt(s.metaSeq, nil); err != nil {
		return fmt.Errorf("mvcc: meta commit: %w", err)
	}
	return nil
}

// Meta reads the latest value of a meta record; ok is false if absent.
func (s *Store) Meta(name string) (v []byte, ok bool, err error) {
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	item, err := txn.Get(metaKey(name))
	if err == badger.ErrKeyNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("mvcc: meta %s: %w", name, err)
	}
	v, err = item.ValueCopy(nil)
	return v, err == nil, err
}

// Rejects calls fn for every stored reject in sequence order.
func (s *Store) Rejects(fn func(seq uint64, rec []byte) error) error {
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	p := []byte{prefixReject}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
	defer it.Close()
	for it.Seek(p); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		if len(k) != 9 {
			continue
		}
		seq := uint64(0)
		for _, c := range k[1:] {
			seq = seq<<8 | uint64(c)
		}
		if err := item.Value(func(b []byte) error { return fn(seq, b) }); err != nil {
			return err
		}
	}
	return nil
}

// seqName is the meta record every meta commit rewrites; its version is the
// sequence number of the last meta commit.
const seqName = "seq"

// loadMetaSeq finds the last meta commit's version, so new meta commits sort
// after every earlier one.
func (s *Store) loadMetaSeq() error {
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	item, err := txn.Get(metaKey(seqName))
	if err == badger.ErrKeyNotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mvcc: read meta sequence: %w", err)
	}
	s.metaSeq = item.Version()
	return nil
}

// DropTable removes every version of table id. It is used by DROP TABLE
// after the catalog no longer names the table.
func (s *Store) DropTable(id uint32) error {
	return s.db.DropPrefix(tablePrefix(nil, id))
}

// SetHorizon moves the retention horizon forward to ts: Badger may then
// merge away versions that no read at or after ts can see. It never moves
// backward.
func (s *Store) SetHorizon(ts int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts <= s.discardTs {
		return
	}
	s.discardTs = ts
	s.db.SetDiscardTs(Version(ts))
}

// Horizon returns the current retention horizon (0 when everything is kept).
func (s *Store) Horizon() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discardTs
}
