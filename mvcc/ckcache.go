package mvcc

import (
	"bytes"
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"

	"ttq/catalog"
	"ttq/types"
)

// A checkpoint's entries never change once it is recorded, so the store
// keeps recently scanned ones in memory (the segment cache): a whole-table
// scan AS OF T through a checkpoint then merges two arrays in key order
// and decodes rows in place, instead of stepping two Badger iterators
// through the LSM tree and copying every row out of it. This is the
// buffer pool of the columnar engines' scans; it holds the entries in
// their stored encoding (about the size they have on disk), not decoded
// rows, and evicts the least recently used segment past its budget
// (Options.SegmentCache).
//
// A segment is one checkpoint's rows (kind ckRows), its change list
// (ckChanges), or a table's versions up to its first checkpoint
// (segVersions). It is loaded by the first scan that needs it, with one
// sequential read; scans meanwhile wait for that load rather than read it
// twice.

// DefaultSegmentCache is the segment cache's budget when
// Options.SegmentCache is 0.
const DefaultSegmentCache = 512 << 20

type segKey struct {
	id   uint32
	kind byte
	c    int64
}

// segment is one checkpoint segment in memory. buf holds every entry's
// key (the table's encoded primary key) and value back to back; ents
// index it, in key order (and time order within a key, for changes).
type segment struct {
	key  segKey
	done chan struct{} // closed when loaded
	err  error
	buf  []byte
	ents []segEnt
	elem *list.Element // in the LRU list; nil once evicted or never kept
	// tooBig: the segment takes more than the cache may give one; scans
	// read it from Badger.
	tooBig bool
}

var errSegTooBig = errors.New("mvcc: checkpoint segment larger than the cache gives one")

// segEnt is one entry: key buf[pk:val], value buf[val:end].
type segEnt struct {
	pk, val, end uint32
	ts           int64 // a row's commit time, or a change's version time
	del          bool  // a change that deletes the key
	same         bool  // the key is the one of the entry before
}

func (g *segment) size() int64 { return int64(len(g.buf)) + int64(len(g.ents))*24 + 128 }

func (g *segment) entKey(i int) []byte { e := &g.ents[i]; return g.buf[e.pk:e.val] }
func (g *segment) entVal(i int) []byte { e := &g.ents[i]; return g.buf[e.val:e.end] }

type segCache struct {
	loading sync.Mutex // held while a segment loads
	hits    atomic.Int64
	loads   atomic.Int64
	mu      sync.Mutex
	budget  int64 // < 0: off
	used    int64
	m       map[segKey]*segment
	lru     list.List // front: most recently used
}

func newSegCache(budget int64) *segCache {
	if budget == 0 {
		budget = DefaultSegmentCache
	}
	return &segCache{budget: budget, m: map[segKey]*segment{}}
}

// get returns segment k, loading it if needed, or nil when the cache is
// off or the segment takes more than half of it (the caller reads it from
// Badger; that verdict is remembered).
func (c *segCache) get(s *Store, k segKey) (*segment, error) {
	if c.budget < 0 {
		return nil, nil
	}
	c.mu.Lock()
	g := c.m[k]
	if g != nil {
		if g.elem != nil {
			c.lru.MoveToFront(g.elem)
		}
		c.mu.Unlock()
		c.hits.Add(1)
		<-g.done
		if g.tooBig {
			return nil, nil
		}
		return g, g.err
	}
	g = &segment{key: k, done: make(chan struct{})}
	c.m[k] = g
	c.mu.Unlock()

	// One load at a time: concurrent scans of different segments would
	// otherwise hold up to half the budget each, beyond it, while loading.
	c.loading.Lock()
	c.loads.Add(1)
	g.err = g.load(s, c.budget/2)
	c.loading.Unlock()
	if g.err == nil {
		for i := 1; i < len(g.ents); i++ {
			g.ents[i].same = bytes.Equal(g.entKey(i), g.entKey(i-1))
		}
	}
	if g.tooBig = errors.Is(g.err, errSegTooBig); g.tooBig {
		g.err, g.buf, g.ents = nil, nil, nil
	}
	close(g.done)

	c.mu.Lock()
	defer c.mu.Unlock()
	if g.tooBig {
		return nil, nil // stays in m (without memory): not loaded again
	}
	if c.m[k] != g {
		return g, g.err // purged while loading: serve this scan, keep nothing
	}
	if g.err != nil {
		delete(c.m, k)
		return nil, g.err
	}
	g.elem = c.lru.PushFront(g)
	c.used += g.size()
	for c.used > c.budget {
		old := c.lru.Back().Value.(*segment)
		c.evict(old)
	}
	return g, nil
}

func (c *segCache) evict(g *segment) {
	c.lru.Remove(g.elem)
	g.elem = nil
	c.used -= g.size()
	delete(c.m, g.key)
}

// SegmentCacheStats describes the segment cache.
type SegmentCacheStats struct {
	Budget int64 // bytes it may hold (< 0: off)
	Bytes  int64 // bytes it holds
	Loads  int64 // segments read from Badger into it (or found too big)
	Hits   int64 // scans that found their segment in it (or loading)
}

// SegmentCacheStats returns the segment cache's size and counters.
func (s *Store) SegmentCacheStats() SegmentCacheStats {
	c := s.segs
	c.mu.Lock()
	defer c.mu.Unlock()
	return SegmentCacheStats{Budget: c.budget, Bytes: c.used, Loads: c.loads.Load(), Hits: c.hits.Load()}
}

// purge forgets every segment of table id (DROP TABLE).
func (c *segCache) purge(id uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, g := range c.m {
		if k.id != id {
			continue
		}
		if g.elem != nil {
			c.evict(g)
		} else {
			delete(c.m, k) // loading: its scan keeps it, the cache does not
		}
	}
}

// load reads the segment's entries from Badger, or stops with
// errSegTooBig once they take more than limit bytes.
func (g *segment) load(s *Store, limit int64) error {
	if g.key.kind == segVersions {
		return g.loadVersions(s, limit)
	}
	p := ckPrefix(g.key.id, g.key.kind, g.key.c)
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
	defer it.Close()
	for it.Seek(p); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()[len(p):]
		err := item.Value(func(v []byte) error {
			var (
				ts  int64
				del bool
			)
			switch g.key.kind {
			case ckRows:
				if len(v) < 8 {
					return fmt.Errorf("%w: short checkpoint row of table %d", ErrBadKey, g.key.id)
				}
				ts, v = int64(binary.BigEndian.Uint64(v[:8])), v[8:]
			default:
				if len(k) < 8 || len(v) == 0 {
					return fmt.Errorf("%w: short change entry of table %d", ErrBadKey, g.key.id)
				}
				ts, k = int64(binary.BigEndian.Uint64(k[len(k)-8:])), k[:len(k)-8]
				del, v = v[0] != 1, v[1:]
			}
			return g.add(k, v, ts, del, limit)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// segVersions is the kind of a segment that is no checkpoint's: the
// versions of a table up to its first checkpoint c, read from the table's
// own entries, in the layout of a change list. They are sealed (c is), so
// they never change either; reads at or after the retention horizon see
// the same versions in it as in Badger (Badger keeps, for each key, the
// version visible at the horizon).
const segVersions byte = 'V'

// add appends one entry, or fails with errSegTooBig past limit.
func (g *segment) add(pk, val []byte, ts int64, del bool, limit int64) error {
	if int64(len(g.buf))+int64(len(pk))+int64(len(val)) > math.MaxUint32 {
		return errSegTooBig
	}
	e := segEnt{pk: uint32(len(g.buf)), ts: ts, del: del}
	g.buf = append(g.buf, pk...)
	e.val = uint32(len(g.buf))
	g.buf = append(g.buf, val...)
	e.end = uint32(len(g.buf))
	g.ents = append(g.ents, e)
	if g.size() > limit {
		return errSegTooBig
	}
	return nil
}

// loadVersions reads every version at or before g.key.c of the table,
// each key's oldest first.
func (g *segment) loadVersions(s *Store, limit int64) error {
	p := tablePrefix(nil, g.key.id)
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, AllVersions: true})
	defer it.Close()
	run := 0 // entries of the current key (Badger gives them newest first)
	for it.Seek(p); it.Valid(); it.Next() {
		item := it.Item()
		ts := TS(item.Version())
		if ts > g.key.c {
			continue
		}
		k := item.Key()[len(p):]
		if run > 0 && !bytes.Equal(g.entKey(len(g.ents)-1), k) {
			slices.Reverse(g.ents[len(g.ents)-run:])
			run = 0
		}
		var err error
		if item.IsDeletedOrExpired() {
			err = g.add(k, nil, ts, true, limit)
		} else {
			err = item.Value(func(v []byte) error { return g.add(k, v, ts, false, limit) })
		}
		if err != nil {
			return err
		}
		run++
	}
	slices.Reverse(g.ents[len(g.ents)-run:])
	return nil
}

// scanCachedVersions is the scan AS OF T < c, t's first checkpoint, over
// the cached versions up to c, or nil when they are not in the cache.
func (s *Store) scanCachedVersions(t *catalog.Table, T, c int64) RowIter {
	chg, err := s.segs.get(s, segKey{t.ID, segVersions, c})
	if chg == nil || err != nil {
		return nil
	}
	si := &segIter{t: t, T: T, rows: &segment{}, chg: chg, cend: len(chg.ents)}
	si.nextChange()
	return si
}

// segIter merges a cached checkpoint's rows with the cached change list
// after it, both in key order: ckptIter's algorithm over memory. After
// ShareStrings, the strings of the rows it returns point into the
// segments' memory, which never changes.
type segIter struct {
	t    *catalog.Table
	T    int64
	rows *segment
	ri   int
	rend int      // the end of the rows read (a part's, or len(rows.ents))
	chg  *segment // nil: no changes to apply
	ci   int      // the next change entry not yet taken
	cend int      // the end of the changes read
	// chg2, when set, is a second change list of versions written after
	// chg's (the log's tail): of two versions of a key at one time, its
	// wins.
	chg2       *segment
	ci2, cend2 int
	cpk        []byte   // the next changed key with a version at or before T, or nil
	cseg       *segment // the change list holding its last such version,
	cval       int      // at this entry (deleted when del)
	row        []types.Value
	ts         int64
	arena      []types.Value
	reuse      bool
	share      bool // strings point into the segments (ShareStrings)
	err        error
}

// ShareStrings makes the strings of the rows point into the cached
// segments instead of copies (StringSharer).
func (s *segIter) ShareStrings() { s.share = true }

// ReuseRows makes Row's row overwritten by the next Next (RowReuser).
func (s *segIter) ReuseRows() { s.reuse = true }

// nextChange finds the next key of the change lists with a version at or
// before T, and its last such version.
func (s *segIter) nextChange() {
	s.cpk = nil
	for {
		has1, has2 := s.ci < s.cend, s.chg2 != nil && s.ci2 < s.cend2
		var c int
		switch {
		case has1 && has2:
			c = bytes.Compare(s.chg.entKey(s.ci), s.chg2.entKey(s.ci2))
		case has1:
			c = -1
		case has2:
			c = 1
		default:
			return
		}
		var key []byte
		l1, l2 := -1, -1
		if c <= 0 {
			key, l1 = s.chg.entKey(s.ci), s.lastAtT(s.chg, &s.ci, s.cend)
		}
		if c >= 0 {
			if key == nil {
				key = s.chg2.entKey(s.ci2)
			}
			l2 = s.lastAtT(s.chg2, &s.ci2, s.cend2)
		}
		switch {
		case l2 >= 0 && (l1 < 0 || s.chg2.ents[l2].ts >= s.chg.ents[l1].ts):
			s.cpk, s.cseg, s.cval = key, s.chg2, l2
			return
		case l1 >= 0:
			s.cpk, s.cseg, s.cval = key, s.chg, l1
			return
		}
	}
}

// lastAtT reads the entries of one key of g from *i, leaving *i after
// them, and returns the last at or before T (-1: none).
func (s *segIter) lastAtT(g *segment, i *int, end int) int {
	last := -1
	for {
		if g.ents[*i].ts <= s.T {
			last = *i
		}
		if *i++; *i == end || !g.ents[*i].same {
			return last
		}
	}
}

// decode makes entry i of g the current row: in the last row's place
// (ReuseRows), or cut from the arena; either way with room for one more
// value after it (RowIter.Row).
func (s *segIter) decode(g *segment, i int) bool {
	row, n := s.row, len(s.t.Columns)
	if s.reuse && row == nil {
		row = make([]types.Value, n, n+1)
	} else if !s.reuse {
		if len(s.arena) < n+1 {
			s.arena = make([]types.Value, 256*(n+1))
		}
		row, s.arena = s.arena[:n:n+1], s.arena[n+1:]
	}
	s.row, s.err = decodeRow(row, s.t.Columns, g.entVal(i), s.share)
	s.ts = g.ents[i].ts
	return s.err == nil
}

func (s *segIter) Next() bool {
	for s.err == nil {
		var rowPK []byte
		if s.ri < s.rend {
			rowPK = s.rows.entKey(s.ri)
		}
		switch {
		case rowPK == nil && s.cpk == nil:
			return false
		case rowPK != nil && (s.cpk == nil || bytes.Compare(rowPK, s.cpk) < 0):
			s.ri++
			return s.decode(s.rows, s.ri-1)
		default:
			if rowPK != nil && bytes.Equal(rowPK, s.cpk) {
				s.ri++
			}
			g, i := s.cseg, s.cval
			s.nextChange()
			if g.ents[i].del {
				continue
			}
			return s.decode(g, i)
		}
	}
	return false
}

func (s *segIter) Row() []types.Value { return s.row }
func (s *segIter) TS() int64          { return s.ts }
func (s *segIter) Err() error         { return s.err }
func (s *segIter) Close()             {}

// lowerBound returns the first entry of g whose key is at or after k.
func (g *segment) lowerBound(k []byte) int {
	return sort.Search(len(g.ents), func(i int) bool { return bytes.Compare(g.entKey(i), k) >= 0 })
}

// ScanParts splits the scan of the whole of t AS OF the snapshot's instant
// into scans of consecutive key ranges of about rowsPerPart entries each,
// in key order, when that scan reads the segment cache; it returns nil
// otherwise (scan with Scan). Together the parts return exactly Scan's
// rows, in the same order; each may be read on its own goroutine.
func (sn *Snapshot) ScanParts(t *catalog.Table, rowsPerPart int) []RowIter {
	if sn.s == nil || rowsPerPart <= 0 {
		return nil
	}
	it := sn.s.scanFrom(sn, t)
	si, ok := it.(*segIter)
	if !ok {
		if it != nil {
			it.Close() // Badger's iterators: no parts
		}
		return nil
	}
	// Split keys from the larger segment, each the first of its key's
	// entries.
	by := si.rows
	if si.chg != nil && len(si.chg.ents) > len(by.ents) {
		by = si.chg
	}
	var splits [][]byte
	for i := rowsPerPart; i < len(by.ents); i += rowsPerPart {
		k := by.entKey(i)
		if len(splits) == 0 || !bytes.Equal(splits[len(splits)-1], k) {
			splits = append(splits, k)
		}
	}
	if len(splits) == 0 {
		return nil
	}
	parts := make([]RowIter, 0, len(splits)+1)
	ri, ci, ci2 := 0, 0, 0
	for i := 0; i <= len(splits); i++ {
		p := &segIter{t: t, T: si.T, rows: si.rows, ri: ri, rend: len(si.rows.ents), chg: si.chg, ci: ci, chg2: si.chg2, ci2: ci2}
		if si.chg != nil {
			p.cend = len(si.chg.ents)
		}
		if si.chg2 != nil {
			p.cend2 = len(si.chg2.ents)
		}
		if i < len(splits) {
			p.rend = si.rows.lowerBound(splits[i])
			if si.chg != nil {
				p.cend = si.chg.lowerBound(splits[i])
			}
			if si.chg2 != nil {
				p.cend2 = si.chg2.lowerBound(splits[i])
			}
		}
		ri, ci, ci2 = p.rend, p.cend, p.cend2
		if p.chg != nil {
			p.nextChange()
		}
		parts = append(parts, p)
	}
	return parts
}
