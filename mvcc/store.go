// Package mvcc keeps every version of every row in Badger's managed mode: one
// Badger version per update, at the update's timeline time, so a snapshot AS
// OF T is a Badger read at T.
package mvcc

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"ttq/catalog"
	"ttq/types"
)

// Sentinel errors of the store.
var (
	// ErrBelowDiscard is returned for a write at or below the discard
	// timestamp: Badger would abort the process on such a commit.
	ErrBelowDiscard = errors.New("mvcc: write below the retention horizon")
	// ErrNegativeTime is returned for a version before the Unix epoch.
	ErrNegativeTime = errors.New("mvcc: time before 1970-01-01T00:00:00Z")
	// ErrLocked is returned when another process holds the data directory.
	ErrLocked = errors.New("mvcc: data directory is in use")
	// ErrClosed is returned for use of a closed store.
	ErrClosed = errors.New("mvcc: store is closed")
	// ErrWriteFailed: the versions of a committed batch could not be
	// written. The store takes no further batch or meta commit; reopening
	// it finishes the batch from its intent.
	ErrWriteFailed = errors.New("mvcc: writing a committed batch failed; reopen the store")
	// ErrTooLarge is returned for a version whose key or row Badger
	// cannot hold (a key above 65,000 bytes; in memory, a row above the
	// value threshold, less room for a checkpoint's header). It is refused
	// before the batch commits.
	ErrTooLarge = errors.New("mvcc: key or row too large")
)

// Options configure a Store.
type Options struct {
	// InMemory keeps everything in memory (tests and benchmarks of the
	// engine above the disk).
	InMemory bool
	// NoSync turns off the fsync of every commit. Only for benchmarks that
	// measure what durability costs.
	NoSync bool
	// BlockCache is the size in bytes of Badger's cache of decompressed
	// table blocks: 0 means Badger's default (256 MiB).
	BlockCache int64
	// SegmentCache is the budget in bytes of the cache of checkpoint
	// segments scans read (ckcache.go): 0 means DefaultSegmentCache, < 0
	// turns it off.
	SegmentCache int64
}

// Store is the versioned row store.
type Store struct {
	db *badger.DB

	intentChunk int // largest value of one intent chunk
	maxValue    int // largest row Badger takes

	mu        sync.Mutex // guards metaSeq and discard
	metaSeq   uint64     // sequence number of the last meta commit
	discardTs int64      // timeline horizon handed to Badger; versions below may be merged
	sizes     sizes      // estimated versions per table
	ckpts     checkpoints
	segs      *segCache

	flushMu sync.Mutex
	next    int          // intent slot of the next batch
	slots   [2]*Flushing // the last batch committed through each slot
	last    *Flushing    // the last batch committed
	// writeFn writes a batch's versions: writeVersions, or a test's fault.
	writeFn func([]pending) error
}

// Open opens (or creates) the store in dir.
func Open(dir string, o Options) (*Store, error) {
	opts := badger.DefaultOptions(dir).
		// Keep every version: history is the product. Retention is explicit,
		// through SetHorizon and Badger's discard timestamp.
		WithNumVersionsToKeep(math.MaxInt32).
		WithSyncWrites(!o.NoSync).
		WithDetectConflicts(false).
		WithLogger(nil).
		WithMetricsEnabled(false)
	if o.BlockCache > 0 {
		opts = opts.WithBlockCacheSize(o.BlockCache)
	}
	if o.InMemory {
		opts = opts.WithInMemory(true).WithDir("").WithValueDir("")
	} else if err := removeEmptyLogs(dir); err != nil {
		return nil, fmt.Errorf("mvcc: open %s: remove empty log files left by a crash: %w", dir, err)
	}
	db, err := badger.OpenManaged(opts)
	if err != nil {
		if !o.InMemory && isLockErr(err) {
			return nil, fmt.Errorf("%w: %s (is another ttq running on it?)", ErrLocked, dir)
		}
		return nil, fmt.Errorf("mvcc: open %s: %w", dir, err)
	}
	s := &Store{db: db, intentChunk: 4 << 20, segs: newSegCache(o.SegmentCache)}
	s.writeFn = s.writeVersions
	s.maxValue = int(min(opts.ValueLogFileSize-1<<20, math.MaxInt32))
	if o.InMemory {
		s.intentChunk = 512 << 10 // below Badger's in-memory value limit
		// room for the 9 bytes a checkpoint puts before a row
		s.maxValue = int(opts.ValueThreshold) - 64
	}
	if err := s.loadMetaSeq(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.recoverIntent(); err != nil {
		db.Close()
		return nil, fmt.Errorf("mvcc: finish the last batch: %w", err)
	}
	// Writing the last batch again is not news: count only what this
	// process writes from here on.
	s.sizes.written, s.sizes.since = nil, nil
	if err := s.loadCheckpoints(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func isLockErr(err error) bool {
	// Badger reports a held directory lock only as text and wraps no
	// sentinel; this is the one place that has to look at the message.
	return strings.Contains(err.Error(), "Cannot acquire directory lock")
}

// Close flushes and closes Badger.
func (s *Store) Close() error {
	s.Drain() // a failed write is already reported to whoever waits for it
	return s.db.Close()
}

// DB exposes the Badger handle for benchmarks that compare against raw
// Badger on the same data.
func (s *Store) DB() *badger.DB { return s.db }

// Snapshot reads the store as of one timeline instant.
type Snapshot struct {
	s   *Store
	txn *badger.Txn
	ts  int64
}

// At returns a snapshot AS OF ts. The caller must Close it.
func (s *Store) At(ts int64) *Snapshot {
	if ts < 0 {
		ts = -1 // nothing is visible before the epoch; version 0 reads nothing
	}
	return &Snapshot{s: s, txn: s.db.NewTransactionAt(uint64(ts+1), false), ts: ts}
}

// TS returns the instant the snapshot reads at.
func (sn *Snapshot) TS() int64 { return sn.ts }

// Close releases the snapshot.
func (sn *Snapshot) Close() { sn.txn.Discard() }

// Get reads one row by its full primary key. It returns ok=false when the
// row does not exist at the snapshot (never written or deleted). ts is the
// commit time of the visible version.
func (sn *Snapshot) Get(t *catalog.Table, key []types.Value, dst []types.Value) (row []types.Value, ts int64, ok bool, err error) {
	var kb [64]byte
	item, err := sn.txn.Get(EncodeKey(kb[:0], t.ID, key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("mvcc: get %s: %w", t.Name, err)
	}
	err = item.Value(func(b []byte) error {
		row, err = DecodeRow(dst, t.Columns, b)
		return err
	})
	if err != nil {
		return nil, 0, false, err
	}
	return row, TS(item.Version()), true, nil
}

// Reader reads rows at one instant. A Snapshot is one; so is anything that
// can stand in for it (a view's epoch, a test double).
type Reader interface {
	Get(t *catalog.Table, key []types.Value, dst []types.Value) (row []types.Value, ts int64, ok bool, err error)
	Scan(t *catalog.Table, prefix []types.Value) RowIter
	Close()
}

// RowIter is the iterator protocol of row scans.
type RowIter interface {
	Next() bool
	Row() []types.Value
	TS() int64
	Err() error
	Close()
}

var (
	_ Reader  = (*Snapshot)(nil)
	_ RowIter = (*Iter)(nil)
)

// Scan iterates the rows of t visible at the snapshot whose key starts with
// prefix (a prefix of the key columns; empty for the whole table), in key
// order. A scan of the whole table reads through a checkpoint when one
// covers the snapshot's instant (checkpoint.go).
func (sn *Snapshot) Scan(t *catalog.Table, prefix []types.Value) RowIter {
	if len(prefix) == 0 && sn.s != nil {
		if it := sn.s.scanFrom(sn, t); it != nil {
			return it
		}
	}
	return sn.ScanVersions(t, prefix)
}

// ScanVersions is Scan through the versions alone, never a checkpoint.
func (sn *Snapshot) ScanVersions(t *catalog.Table, prefix []types.Value) RowIter {
	p := EncodeKey(nil, t.ID, prefix)
	it := sn.txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
	it.Seek(p)
	return &Iter{it: it, table: t, first: true}
}

// RowReuser is implemented by the iterators Scan returns: after
// ReuseRows, Row returns a row the next call to Next overwrites, for a
// caller that keeps nothing of a row past it (an allocation a row saved).
type RowReuser interface{ ReuseRows() }

// StringSharer is implemented by iterators whose rows can point into
// memory the store keeps for every scan (the segment cache) instead of
// copying their strings: after ShareStrings they do. Only for a caller
// that keeps no row, nor any string of one, past its statement: what it
// kept would hold that memory beyond the cache's budget and eviction.
type StringSharer interface{ ShareStrings() }

// Iter walks rows of one table at a snapshot. Use it as
//
//	for it.Next() { row := it.Row() }
//	if err := it.Err(); err != nil { ... }
//	it.Close()
type Iter struct {
	it    *badger.Iterator
	table *catalog.Table
	row   []types.Value
	ts    int64
	first bool
	reuse bool
	err   error
}

// ReuseRows makes Row's row overwritten by the next Next (RowReuser).
func (i *Iter) ReuseRows() { i.reuse = true }

// Next advances to the next visible row.
func (i *Iter) Next() bool {
	if i.err != nil {
		return false
	}
	if i.first {
		i.first = false
	} else {
		i.it.Next()
	}
	if !i.it.Valid() {
		return false
	}
	item := i.it.Item()
	err := item.Value(func(b []byte) error {
		var dst []types.Value
		if i.reuse {
			dst = i.row
		}
		var err error
		i.row, err = DecodeRow(dst, i.table.Columns, b)
		return err
	})
	if err != nil {
		i.err = err
		return false
	}
	i.ts = TS(item.Version())
	return true
}

// Row returns the current row. It stays valid after Next (unless
// ReuseRows was called), and it is the caller's: nothing else refers to
// it, or to the values it may have room for after its columns (cap beyond
// len), so a caller may append to it in place. Every RowIter's rows are so.
func (i *Iter) Row() []types.Value { return i.row }

// TS returns the commit time of the current row's visible version.
func (i *Iter) TS() int64 { return i.ts }

// Err returns the error that stopped the iteration, if any.
func (i *Iter) Err() error { return i.err }

// Close releases the iterator.
func (i *Iter) Close() { i.it.Close() }

// Version is one version of a row in a history read.
type RowVersion struct {
	Row       []types.Value
	ValidFrom int64
	// ValidTo is when the next version or delete replaced it, or
	// timeline.None when it was still visible at the end of the range.
	ValidTo int64
}

// History returns every version of t's rows (with key prefix) visible at
// some instant of [from, to]: a version is visible from its ts until the
// next version or delete of its row. It reads only versions at or below to,
// so the answer is sealed once to is.
func (s *Store) History(t *catalog.Table, prefix []types.Value, from, to int64, fn func(RowVersion) error) error {
	if to < 0 {
		return nil
	}
	txn := s.db.NewTransactionAt(Version(to), false)
	defer txn.Discard()
	p := EncodeKey(nil, t.ID, prefix)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, AllVersions: true})
	defer it.Close()
	var lastKey []byte
	var newer int64 // ts of the next newer version of the current key, or None
	const none = math.MinInt64
	it.Seek(p)
	for it.Valid() {
		item := it.Item()
		k := item.Key()
		if lastKey == nil || string(k) != string(lastKey) {
			lastKey = item.KeyCopy(lastKey[:0])
			newer = none
		}
		ts := TS(item.Version())
		validTo := newer
		newer = ts
		if validTo != none && validTo <= from {
			// This version, and every older one of the key, ended before
			// the range began: jump to the next key. No key of a table is
			// a prefix of another (fixed-width or terminated columns), so
			// key+0x00 sorts after every version of key.
			it.Seek(append(append([]byte(nil), lastKey...), 0))
			continue
		}
		if item.IsDeletedOrExpired() {
			it.Next()
			continue
		}
		var row []types.Value
		if err := item.Value(func(b []byte) error {
			var err error
			row, err = DecodeRow(nil, t.Columns, b)
			return err
		}); err != nil {
			return err
		}
		if err := fn(RowVersion{Row: row, ValidFrom: ts, ValidTo: validTo}); err != nil {
			return err
		}
		it.Next()
	}
	return nil
}
