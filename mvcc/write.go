package mvcc

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"

	"ttq/catalog"
	"ttq/types"
)

// Batch collects row versions. Flush writes them through Badger's loader,
// each at its own version; Commit first makes the batch durable
// as an intent together with the bookkeeping it produced (see
// docs/STORAGE.md), so a crash can never leave half of it.
type Batch struct {
	s      *Store
	ents   []pending
	bytes  int
	err    error
	sorted bool // ents are in write order (Sort, kept by Append)
}

// maxKey is the longest key Badger takes (its limit, 65,000 bytes, leaves
// room for the version it appends).
const maxKey = 65000

type pending struct {
	key, val []byte
	ver      uint64
	del      bool
	pos      uint32 // position in the batch, while sortPending sorts it
}

// NewBatch starts a batch of row versions.
func (s *Store) NewBatch() *Batch { return &Batch{s: s} }

// Len returns the number of versions in the batch.
func (b *Batch) Len() int { return len(b.ents) }

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
	k := EncodeRowKey(nil, t.ID, row, t.PK)
	v := EncodeRow(nil, t.Columns, row)
	if len(k) > maxKey || len(v) > b.s.maxValue {
		return fmt.Errorf("%w: key of %d bytes (at most %d), row of %d bytes (at most %d)", ErrTooLarge, len(k), maxKey, len(v), b.s.maxValue)
	}
	b.ents = append(b.ents, pending{key: k, val: v, ver: Version(ts)})
	b.bytes += len(k) + len(v) + 16
	b.sorted = false
	return nil
}

// Delete stores a delete of key at ts.
func (b *Batch) Delete(t *catalog.Table, key []types.Value, ts int64) error {
	if err := b.check(ts); err != nil {
		return err
	}
	k := EncodeKey(nil, t.ID, key)
	if len(k) > maxKey {
		return fmt.Errorf("%w: key of %d bytes (at most %d)", ErrTooLarge, len(k), maxKey)
	}
	b.ents = append(b.ents, pending{key: k, ver: Version(ts), del: true})
	b.bytes += len(k) + 16
	b.sorted = false
	return nil
}

// Sort puts the batch's versions in the order Flush writes them in, so
// that batches built side by side are sorted side by side before Append
// joins them into one write.
func (b *Batch) Sort() {
	sortPending(b.ents)
	b.sorted = true
}

// Append moves the versions of o after those of b, as if they had been
// put after them: of two writes of one key at one instant, o's wins. Two
// sorted batches make a sorted one (merged, in linear time).
func (b *Batch) Append(o *Batch) {
	if b.err == nil {
		b.err = o.err
	}
	switch {
	case len(b.ents) == 0:
		b.ents, b.sorted = o.ents, o.sorted
	case b.sorted && o.sorted:
		b.ents = mergePending(b.ents, o.ents)
	default:
		b.ents, b.sorted = append(b.ents, o.ents...), false
	}
	b.bytes += o.bytes
	o.ents, o.bytes, o.sorted = nil, 0, false
}

// Flush writes the batch's versions and waits until they are durable.
func (b *Batch) Flush() error {
	if b.err != nil {
		return b.err
	}
	return b.s.writeVersions(b.ents)
}

// Cancel drops a batch that will not be written.
func (b *Batch) Cancel() { b.ents = nil }

// writeVersions writes versions through Badger's loader, which hands
// entries to Badger's write goroutine in the order given, sorted here by
// key (then newest version first, the order of Badger's tables). A write
// batch would key them by a map, costing a hash and a copy each, and insert
// them in random order; inserted in key order, neighbouring inserts walk the
// same skiplist nodes, which are then in the cache (docs/PERFORMANCE.md,
// "Eighth round"). The sort is stable, so of two writes of one key at one
// version the later is inserted last and wins, as in a write batch. The
// durability is a write batch's: every request of the loader is written
// and synced by Badger's write path, and Finish waits for all of them.
func (s *Store) writeVersions(ents []pending) error {
	if len(ents) == 0 {
		return nil
	}
	sortPending(ents)
	l := s.db.NewKVLoader(4)
	var kv pb.KV
	for i := range ents {
		e := &ents[i]
		kv.Key, kv.Value, kv.Version, kv.Meta = e.key, e.val, e.ver, nil
		if e.del {
			kv.Meta = deleteMeta
		}
		if err := l.Set(&kv); err != nil {
			_ = l.Finish()
			return fmt.Errorf("mvcc: write: %w", err)
		}
	}
	if err := l.Finish(); err != nil {
		return fmt.Errorf("mvcc: flush: %w", err)
	}
	s.countWrites(ents)
	s.captureVersions(ents)
	return nil
}

// sortPending sorts versions in Badger's order: by key, then newest
// version first. Of two writes of one key at one version, the later stays
// after the earlier: the sort (pdqsort; 0.70 against 0.98 ms for a stable
// sort of 3,500 random view keys) breaks ties by the position each had.
func sortPending(ents []pending) {
	if slices.IsSortedFunc(ents, cmpPending) {
		return
	}
	for i := range ents {
		ents[i].pos = uint32(i)
	}
	slices.SortFunc(ents, func(a, b pending) int {
		if c := cmpPending(a, b); c != 0 {
			return c
		}
		return cmp.Compare(a.pos, b.pos)
	})
}

func cmpPending(a, b pending) int {
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c
	}
	return cmp.Compare(b.ver, a.ver)
}

// mergePending merges two sorted runs; of equal versions, a's come first.
func mergePending(a, b []pending) []pending {
	out := make([]pending, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if cmpPending(b[0], a[0]) < 0 {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// deleteMeta marks a loaded entry as a delete: Badger's bitDelete, the meta
// byte its backups carry (TestSnapshotReadsVersionAtT reads deletes back).
var deleteMeta = []byte{1}

// An intent is a meta record holding the versions of a committed batch.
// Commit writes it atomically with the batch's bookkeeping before the
// versions themselves; Open writes them again, which is idempotent (same
// keys, versions and values), so a crash between the two steps finishes the
// batch instead of leaving part of it.
//
// There are two intent slots, used in turn, so that a batch can commit
// while the versions of the one before are still being written: a batch's
// intent is overwritten only by the batch two after it, which first waits
// until those versions are durable. Open replays both slots, the older
// first (their meta versions order them), so a later write of the same key
// at the same instant still wins.
var intentSlots = [2]string{"intent", "intent1"}

// intentName is slot 0's header, the name stores before the second slot
// used for their only intent.
const intentName = "intent"

func intentChunkName(slot, i int) string { return fmt.Sprintf("%s.%d", intentSlots[slot], i) }

func encodeIntent(ents []pending) []byte {
	n := 0
	for _, e := range ents {
		n += len(e.key) + len(e.val) + 24
	}
	b := make([]byte, 0, n+binary.MaxVarintLen64)
	b = binary.AppendUvarint(b, uint64(len(ents)))
	for _, e := range ents {
		if e.del {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = binary.AppendUvarint(b, e.ver)
		b = binary.AppendUvarint(b, uint64(len(e.key)))
		b = append(b, e.key...)
		b = binary.AppendUvarint(b, uint64(len(e.val)))
		b = append(b, e.val...)
	}
	return b
}

func decodeIntent(b []byte) ([]pending, error) {
	bad := fmt.Errorf("%w: intent record", ErrBadRow)
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, bad
	}
	b = b[k:]
	ents := make([]pending, 0, n)
	field := func() ([]byte, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return nil, false
		}
		f := b[k : k+int(l)]
		b = b[k+int(l):]
		return f, true
	}
	for i := uint64(0); i < n; i++ {
		if len(b) < 1 {
			return nil, bad
		}
		e := pending{del: b[0] == 1}
		b = b[1:]
		var k int
		if e.ver, k = binary.Uvarint(b); k <= 0 {
			return nil, bad
		}
		b = b[k:]
		var ok1, ok2 bool
		e.key, ok1 = field()
		e.val, ok2 = field()
		if !ok1 || !ok2 {
			return nil, bad
		}
		ents = append(ents, e)
	}
	return ents, nil
}

// Flushing is a committed batch whose versions are being written.
type Flushing struct {
	done chan struct{}
	err  error
}

// Wait returns once the batch's versions are durable, or why they are not.
// A nil Flushing has nothing to wait for.
func (f *Flushing) Wait() error {
	if f == nil {
		return nil
	}
	<-f.done
	return f.err
}

// failed returns the batch's write error if it has finished with one.
func (f *Flushing) failed() error {
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
		return f.err
	default:
		return nil
	}
}

// Commit makes a batch and its bookkeeping durable as one unit and returns
// once its versions are written (CommitAsync, then Wait).
func (s *Store) Commit(b *Batch, m MetaWrite, firstReject uint64) error {
	f, err := s.CommitAsync(b, m, firstReject)
	if err != nil {
		return err
	}
	return f.Wait()
}

// CommitAsync makes a batch and its bookkeeping durable as one unit: the
// meta records, the rejects and the batch's versions as an intent, in one
// atomic Badger transaction, durable when it returns. The versions
// themselves are written after it returns, after those of every batch
// committed before, by a goroutine the returned Flushing reports on; if
// the process dies first, Open finishes them from the intent. Readers must
// not be shown the batch before Wait returns.
//
// Once the versions of a batch fail to be written, every later commit
// fails with ErrWriteFailed: its bookkeeping could describe versions that
// are not there.
func (s *Store) CommitAsync(b *Batch, m MetaWrite, firstReject uint64) (*Flushing, error) {
	if b.err != nil {
		return nil, b.err
	}
	s.flushMu.Lock()
	slot := s.next
	before, last := s.slots[slot], s.last
	s.flushMu.Unlock()
	if err := before.Wait(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWriteFailed, err)
	}
	if err := last.failed(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWriteFailed, err)
	}
	if m.Puts == nil {
		m.Puts = map[string][]byte{}
	}
	// The intent is stored in chunks: Badger refuses one value above its
	// value-log threshold in memory, and large values on disk belong in
	// the value log anyway.
	blob := encodeIntent(b.ents)
	n := 0
	for len(blob) > 0 || n == 0 {
		c := min(len(blob), s.intentChunk)
		m.Puts[intentChunkName(slot, n)] = blob[:c]
		blob = blob[c:]
		n++
	}
	m.intent = &intentHead{slot: slot, chunks: n}
	// The versions are sorted for writing (writeVersions) while the meta
	// commit waits for Badger, not after it.
	ents := b.ents
	sorted := make(chan struct{})
	go func() {
		sortPending(ents)
		close(sorted)
	}()
	if err := s.commitMeta(m, firstReject); err != nil {
		<-sorted
		return nil, err
	}
	f := &Flushing{done: make(chan struct{})}
	s.flushMu.Lock()
	prev := s.last
	s.last, s.slots[slot], s.next = f, f, 1-slot
	s.flushMu.Unlock()
	go func() {
		defer close(f.done)
		<-sorted
		if err := prev.Wait(); err != nil {
			// this batch's versions wait for a reopen too
			f.err = fmt.Errorf("%w: %w", ErrWriteFailed, err)
			return
		}
		f.err = s.writeFn(ents)
	}()
	return f, nil
}

// SetWriteHook makes every committed batch's versions wait for fn(number
// of versions) before they are written. For tests of the layers above
// (a slow disk); nil removes it. Call it before committing.
func (s *Store) SetWriteHook(fn func(n int)) {
	if fn == nil {
		s.writeFn = s.writeVersions
		return
	}
	s.writeFn = func(ents []pending) error {
		fn(len(ents))
		return s.writeVersions(ents)
	}
}

// Drain waits until the versions of every committed batch are durable.
func (s *Store) Drain() error {
	s.flushMu.Lock()
	last := s.last
	s.flushMu.Unlock()
	if err := last.Wait(); err != nil {
		if errors.Is(err, ErrWriteFailed) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrWriteFailed, err)
	}
	return nil
}

// recoverIntent writes the versions of the last committed batches again,
// the older slot first.
func (s *Store) recoverIntent() error {
	type slot struct {
		n, seq uint64
		i      int
	}
	var found []slot
	for i, name := range intentSlots {
		head, ver, ok, err := s.metaVersion(name)
		if err != nil {
			return err
		}
		if !ok || len(head) == 0 {
			continue
		}
		n, k := binary.Uvarint(head)
		if k <= 0 {
			return fmt.Errorf("%w: intent header", ErrBadRow)
		}
		seq := ver // a store from before metaTs: the header's version
		if k < len(head) {
			if seq, k = binary.Uvarint(head[k:]); k <= 0 {
				return fmt.Errorf("%w: intent header", ErrBadRow)
			}
		}
		found = append(found, slot{n, seq, i})
	}
	if len(found) == 2 && found[1].seq < found[0].seq {
		found[0], found[1] = found[1], found[0]
	}
	for _, sl := range found {
		n := sl.n
		var b []byte
		for i := 0; i < int(n); i++ {
			c, ok, err := s.Meta(intentChunkName(sl.i, i))
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: intent chunk %d missing", ErrBadRow, i)
			}
			b = append(b, c...)
		}
		ents, err := decodeIntent(b)
		if err != nil {
			return err
		}
		if err := s.writeVersions(ents); err != nil {
			return err
		}
	}
	return nil
}

// MetaWrite is one atomic change to the store's bookkeeping: named meta
// records (catalog, watermarks, offsets) and rejected records. It commits as
// a single Badger transaction, so all of it or none survives a crash.
type MetaWrite struct {
	Puts    map[string][]byte
	Deletes []string
	Rejects [][]byte // appended with consecutive sequence numbers
	// Aside marks a commit made beside the writer (a checkpoint's
	// record): it leaves the last batch's intent alone, since that batch's
	// versions may still be on their way.
	Aside bool

	intent *intentHead // the header of the batch's intent, which holds this commit's sequence number
}

// CommitMeta applies m atomically and durably. Unless m is Aside, it first
// waits for the versions of every committed batch (Drain) and retires their
// intents.
func (s *Store) CommitMeta(m MetaWrite, firstReject uint64) error {
	if !m.Aside {
		if err := s.Drain(); err != nil {
			return err
		}
		if m.Puts == nil {
			m.Puts = map[string][]byte{}
		}
		for _, name := range intentSlots {
			if _, ok := m.Puts[name]; !ok {
				m.Puts[name] = nil
			}
		}
	}
	return s.commitMeta(m, firstReject)
}

// intentHead is where a batch's intent goes: its slot and number of
// chunks. The slot's header record holds the chunk count and the meta
// commit's sequence number, which orders the two slots at Open.
type intentHead struct{ slot, chunks int }

// metaTs is the Badger version of every meta record. Written again at
// the same version, a record replaces its earlier value (in the memtable,
// and in compactions, which keep the newest of equal keys and versions),
// so the store holds one copy of each meta record instead of every
// version of it: an intent, about the size of its batch, was kept once per
// batch before. Data versions (ts + 1, microseconds) stay far below it,
// and so does any discard timestamp; readers of meta read at MaxUint64.
// Stores written before kept meta records at their sequence numbers, all
// below metaTs, so the first commit here supersedes them.
const metaTs = math.MaxUint64 - 1

func (s *Store) commitMeta(m MetaWrite, firstReject uint64) error {
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
	seq := s.metaSeq + 1
	if h := m.intent; h != nil {
		head := binary.AppendUvarint(binary.AppendUvarint(nil, uint64(h.chunks)), seq)
		if err := txn.Set(metaKey(intentSlots[h.slot]), head); err != nil {
			return fmt.Errorf("mvcc: meta: %w", err)
		}
	}
	if err := txn.Set(metaKey(seqName), binary.AppendUvarint(nil, seq)); err != nil {
		return fmt.Errorf("mvcc: meta: %w", err)
	}
	if err := txn.CommitAt(metaTs, nil); err != nil {
		return fmt.Errorf("mvcc: meta commit: %w", err)
	}
	s.metaSeq = seq
	return nil
}

// Meta reads the latest value of a meta record; ok is false if absent.
func (s *Store) Meta(name string) (v []byte, ok bool, err error) {
	v, _, ok, err = s.metaVersion(name)
	return v, ok, err
}

// metaVersion is Meta with the record's Badger version (metaTs, or in a
// store from before metaTs the sequence number of the commit that wrote it).
func (s *Store) metaVersion(name string) (v []byte, ver uint64, ok bool, err error) {
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	item, err := txn.Get(metaKey(name))
	if err == badger.ErrKeyNotFound {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("mvcc: meta %s: %w", name, err)
	}
	v, err = item.ValueCopy(nil)
	return v, item.Version(), err == nil, err
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

// seqName is the meta record every meta commit rewrites with its sequence
// number (stores from before metaTs: as its version).
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
	if item.Version() != metaTs { // a store from before metaTs
		s.metaSeq = item.Version()
		return nil
	}
	err = item.Value(func(v []byte) error {
		var k int
		if s.metaSeq, k = binary.Uvarint(v); k <= 0 {
			return fmt.Errorf("%w: meta sequence", ErrBadRow)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mvcc: read meta sequence: %w", err)
	}
	return nil
}

// DropTable removes every version of table id. It is used by DROP TABLE
// after the catalog no longer names the table.
//
// Badger's DropPrefix refuses every write while it runs, so DropTable
// first waits for the versions of every committed batch: written meanwhile,
// they would fail and stop the store. The caller keeps new batches from
// committing until it returns (the engine holds its writer lock).
func (s *Store) DropTable(id uint32) error {
	if err := s.Drain(); err != nil {
		return err
	}
	if err := s.dropCheckpoints(id); err != nil {
		return err
	}
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
