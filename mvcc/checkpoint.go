package mvcc

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"ttq/catalog"
	"ttq/types"
)

// Checkpoints make an AS OF scan of a whole table cost the rows visible at
// that instant, not every version ever written.
//
// A Badger iterator at T steps through every version of every key to find
// the one visible at T; with ten versions a key, a scan reads ten entries
// a row. A checkpoint of table t at a sealed instant c stores, once:
//
//	R | c | key -> ts of the visible version, row     (each row visible at c)
//	C | c | key | ts -> 1 row, or 0 for a delete       (each version in (c', c])
//
// where c' is the table's previous checkpoint. A scan AS OF T with
// c' < T <= c merges, in key order, the rows of c' with the change list
// of c, where a key's last version at or before T replaces its row. Both
// are sequential reads of entries with one version each, so the scan
// costs the rows at c' plus the versions of one interval (which the
// engine keeps to about the table's size), whatever the depth of the
// history; the segment cache (ckcache.go) keeps recently read ones in
// memory. A scan before the first checkpoint reads the versions up to it
// into that cache once (the first has no change list: writing one would
// copy the whole history at a cost ingest pays); a scan after the last
// reads the versions.
//
// A checkpoint is written after the instant is sealed (no version at or
// before it can be added), then recorded in the meta record ckpt/<id>; a
// crash before that leaves entries no reader looks at, overwritten when
// the checkpoint is taken again.
const (
	ckRows    byte = 'R'
	ckChanges byte = 'C'
)

// ckVersion is the Badger version checkpoint entries are written at: each
// has one version, visible to every snapshot.
const ckVersion = 1

type checkpoints struct {
	build sync.Mutex // one checkpoint is built at a time
	mu    sync.Mutex // guards m and logs
	m     map[uint32]*tableCkpts
	logs  map[uint32]*ckLog // versions since the last checkpoint, by table
}

// tableCkpts is the checkpoint record of one table.
type tableCkpts struct {
	At []int64 `json:"at"` // completed checkpoints, ascending
	// Changes[i] says whether checkpoint i holds the versions since
	// checkpoint i-1 (not the first, nor one taken after the retention
	// horizon passed the previous one: Badger may have merged away
	// versions, deletes included, that the list would need).
	Changes []bool `json:"changes"`
	Rows    int64  `json:"rows"` // rows visible at the last one
}

func ckptMeta(id uint32) string { return "ckpt/" + strconv.FormatUint(uint64(id), 10) }

func ckPrefix(id uint32, kind byte, c int64) []byte {
	b := binary.BigEndian.AppendUint32([]byte{prefixCkpt}, id)
	b = append(b, kind)
	return binary.BigEndian.AppendUint64(b, uint64(c))
}

// loadCheckpoints reads every table's checkpoint record.
func (s *Store) loadCheckpoints() error {
	s.ckpts.m, s.ckpts.logs = map[uint32]*tableCkpts{}, map[uint32]*ckLog{}
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	p := metaKey("ckpt/")
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
	defer it.Close()
	for it.Seek(p); it.Valid(); it.Next() {
		id, err := strconv.ParseUint(strings.TrimPrefix(string(it.Item().Key()[1:]), "ckpt/"), 10, 32)
		if err != nil {
			return fmt.Errorf("mvcc: checkpoint record %q: %w", it.Item().Key(), err)
		}
		var tc tableCkpts
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &tc) }); err != nil {
			return fmt.Errorf("mvcc: checkpoint record of table %d: %w", id, err)
		}
		s.ckpts.m[uint32(id)] = &tc
	}
	return nil
}

// CheckpointList returns the instants of t's checkpoints, ascending, and
// whether each holds a change list (scans between it and the one before
// read it).
func (s *Store) CheckpointList(t *catalog.Table) (at []int64, changes []bool) {
	s.ckpts.mu.Lock()
	defer s.ckpts.mu.Unlock()
	if tc := s.ckpts.m[t.ID]; tc != nil {
		return slices.Clone(tc.At), slices.Clone(tc.Changes)
	}
	return nil, nil
}

// CheckpointStats returns the versions written to t since its last
// checkpoint (by this process) and the rows it had then.
func (s *Store) CheckpointStats(t *catalog.Table) (since, rows int64) {
	s.ckpts.mu.Lock()
	if tc := s.ckpts.m[t.ID]; tc != nil {
		rows = tc.Rows
	}
	s.ckpts.mu.Unlock()
	s.sizes.mu.Lock()
	defer s.sizes.mu.Unlock()
	return s.sizes.since[t.ID], rows
}

// ckLog holds the versions of one table written since its last checkpoint,
// captured as they are written (captureVersions). Complete, it lets the
// next checkpoint be built from the last one and the log alone, without
// walking the table's history.
type ckLog struct {
	complete bool
	ents     []logEnt
	seq      uint64
	// after is the checkpoint the entries follow (once complete); gen
	// counts the times ents was replaced rather than appended to.
	after int64
	gen   uint64
	// sorted is the log's first entries as a change list (logSegment),
	// built by one scan at a time (sortMu).
	sorted *logSorted
	sortMu sync.Mutex
}

// logEnt is one version: the encoded key after the table prefix, its
// time, and its encoded row (nil: a delete).
type logEnt struct {
	pk  []byte
	ts  int64
	val []byte
	seq uint64 // write order (0: found by a walk, before anything logged)
}

// maxLogged bounds a table's log; past it the log is dropped and the next
// checkpoint walks the versions.
const maxLogged = 2 << 20

// captureVersions logs written versions of the tables with a log.
func (s *Store) captureVersions(ents []pending) {
	s.ckpts.mu.Lock()
	defer s.ckpts.mu.Unlock()
	if len(s.ckpts.logs) == 0 {
		return
	}
	for _, e := range ents {
		id, ok := dataTable(e.key)
		if !ok {
			continue
		}
		lg := s.ckpts.logs[id]
		if lg == nil {
			continue
		}
		if len(lg.ents) >= maxLogged {
			delete(s.ckpts.logs, id)
			continue
		}
		var val []byte
		if !e.del {
			val = e.val
		}
		lg.seq++
		lg.ents = append(lg.ents, logEnt{pk: e.key[5:], ts: TS(e.ver), val: val, seq: lg.seq})
	}
}

// Checkpoint takes a checkpoint of t at c, which must be sealed: no
// version at or before c may be written after this starts. It returns the
// rows visible at c. The first checkpoint of a table in a process walks
// the table's versions; later ones merge the previous checkpoint's rows
// with the versions logged since, so their cost follows the table's size
// and its recent changes, not its history.
func (s *Store) Checkpoint(t *catalog.Table, c int64) (int64, error) {
	if c < 0 {
		return 0, fmt.Errorf("mvcc: checkpoint of %s at %d: %w", t.Name, c, ErrNegativeTime)
	}
	s.ckpts.build.Lock()
	defer s.ckpts.build.Unlock()
	s.ckpts.mu.Lock()
	prev := int64(-1)
	if tc := s.ckpts.m[t.ID]; tc != nil && len(tc.At) > 0 {
		prev = tc.At[len(tc.At)-1]
	}
	var delta []logEnt
	lg := s.ckpts.logs[t.ID]
	incremental := prev >= 0 && lg != nil && lg.complete && c > prev
	if incremental {
		// Take the versions at or before c; the rest stay for the next one.
		var keep []logEnt
		for _, e := range lg.ents {
			if e.ts <= c {
				delta = append(delta, e)
			} else {
				keep = append(keep, e)
			}
		}
		lg.ents, lg.after, lg.gen, lg.sorted = keep, c, lg.gen+1, nil
	} else if c > prev {
		// Log from now on; the walk below finds what was written before.
		s.ckpts.logs[t.ID] = &ckLog{}
	}
	s.ckpts.mu.Unlock()
	if c <= prev {
		return 0, nil // already covered
	}
	s.sizes.mu.Lock()
	sinceAtStart := s.sizes.since[t.ID]
	s.sizes.mu.Unlock()

	wb := s.db.NewManagedWriteBatch()
	defer wb.Cancel()
	b := ckBuilder{wb: wb, t: t, rowsP: ckPrefix(t.ID, ckRows, c), chgP: ckPrefix(t.ID, ckChanges, c)}
	var (
		later   []logEnt // versions after c found by the walk
		changes bool
		err     error
	)
	if incremental {
		err = s.buildFrom(&b, prev, delta)
		changes = true
	} else {
		if prev >= 0 && prev < s.Horizon() {
			prev = -1 // no change list since last (see tableCkpts.Changes)
		}
		later, err = s.buildByWalk(&b, c, prev)
		changes = prev >= 0
	}
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		s.ckpts.mu.Lock()
		delete(s.ckpts.logs, t.ID) // the log may miss what was taken out
		s.ckpts.mu.Unlock()
		return 0, fmt.Errorf("mvcc: checkpoint of %s: %w", t.Name, err)
	}
	// The writer appends to the log under ckpts.mu on every write: sorting
	// and the synced meta commit happen outside it. (Only builds change m,
	// and they run one at a time.)
	if !incremental {
		s.completeLog(t.ID, later, c)
	}
	s.ckpts.mu.Lock()
	tc := &tableCkpts{Rows: b.rows}
	if old := s.ckpts.m[t.ID]; old != nil {
		tc.At, tc.Changes = slices.Clone(old.At), slices.Clone(old.Changes)
	}
	s.ckpts.mu.Unlock()
	tc.At, tc.Changes = append(tc.At, c), append(tc.Changes, changes)
	js, err := json.Marshal(tc)
	if err == nil {
		err = s.CommitMeta(MetaWrite{Puts: map[string][]byte{ckptMeta(t.ID): js}, Aside: true}, 0)
	}
	s.ckpts.mu.Lock()
	if err != nil {
		delete(s.ckpts.logs, t.ID) // its versions up to c were taken out for this one
	} else {
		s.ckpts.m[t.ID] = tc
	}
	s.ckpts.mu.Unlock()
	if err != nil {
		return 0, err
	}
	s.sizes.mu.Lock()
	if s.sizes.since != nil {
		s.sizes.since[t.ID] -= sinceAtStart
	}
	s.sizes.mu.Unlock()
	return b.rows, nil
}

// completeLog completes table id's log, created before a walk that found
// later, the versions after c: the walk saw everything written before it
// started, the log everything after it was created; together, every
// version after c.
func (s *Store) completeLog(id uint32, later []logEnt, c int64) {
	s.ckpts.mu.Lock()
	lg := s.ckpts.logs[id]
	var logged []logEnt
	if lg != nil {
		logged, lg.ents = lg.ents, nil
	}
	s.ckpts.mu.Unlock()
	if lg == nil {
		return
	}
	merged := dedupLog(append(later, logged...))
	s.ckpts.mu.Lock()
	lg.ents = append(merged, lg.ents...) // then what was written meanwhile
	lg.complete, lg.after, lg.gen, lg.sorted = true, c, lg.gen+1, nil
	s.ckpts.mu.Unlock()
}

// ckBuilder writes one checkpoint's entries.
type ckBuilder struct {
	wb          *badger.WriteBatch
	t           *catalog.Table
	rowsP, chgP []byte
	rows        int64
}

func (b *ckBuilder) row(pk []byte, ts int64, val []byte) error {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(val)), uint64(ts))
	b.rows++
	return b.wb.SetEntryAt(badger.NewEntry(append(slices.Clone(b.rowsP), pk...), append(v, val...)), ckVersion)
}

func (b *ckBuilder) change(pk []byte, ts int64, val []byte) error {
	key := binary.BigEndian.AppendUint64(append(slices.Clone(b.chgP), pk...), uint64(ts))
	v := []byte{0}
	if val != nil {
		v = append([]byte{1}, val...)
	}
	return b.wb.SetEntryAt(badger.NewEntry(key, v), ckVersion)
}

// buildByWalk writes the checkpoint at c from every version of the table
// (and, when prev >= 0, the change list of (prev, c]); it returns the
// versions after c it saw.
func (s *Store) buildByWalk(b *ckBuilder, c, prev int64) ([]logEnt, error) {
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	p := tablePrefix(nil, b.t.ID)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, AllVersions: true})
	defer it.Close()
	var (
		later   []logEnt
		lastKey []byte
		seen    bool // the key's version visible at c was met
	)
	for it.Seek(p); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		if lastKey == nil || !bytes.Equal(k, lastKey) {
			lastKey = append(lastKey[:0], k...)
			seen = false
		}
		ts := TS(item.Version())
		if seen && ts <= prev {
			continue // older than the previous checkpoint and not visible at c
		}
		pk := slices.Clone(k[len(p):])
		var val []byte
		if !item.IsDeletedOrExpired() {
			var err error
			if val, err = item.ValueCopy(nil); err != nil {
				return nil, err
			}
		}
		if ts > c {
			later = append(later, logEnt{pk: pk, ts: ts, val: val})
			continue
		}
		if !seen && val != nil {
			if err := b.row(pk, ts, val); err != nil {
				return nil, err
			}
		}
		seen = true
		if prev >= 0 && ts > prev {
			if err := b.change(pk, ts, val); err != nil {
				return nil, err
			}
		}
	}
	return later, nil
}

// buildFrom writes the checkpoint from the previous one's rows and the
// versions since it (delta: every version in (prev, c]).
func (s *Store) buildFrom(b *ckBuilder, prev int64, delta []logEnt) error {
	delta = dedupLog(delta)
	for _, e := range delta {
		if err := b.change(e.pk, e.ts, e.val); err != nil {
			return err
		}
	}
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	rp := ckPrefix(b.t.ID, ckRows, prev)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: rp})
	defer it.Close()
	it.Seek(rp)
	i := 0
	for it.Valid() || i < len(delta) {
		var pk []byte
		if it.Valid() {
			pk = it.Item().Key()[len(rp):]
		}
		if pk != nil && (i >= len(delta) || bytes.Compare(pk, delta[i].pk) < 0) {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if err := b.row(pk, int64(binary.BigEndian.Uint64(v[:8])), v[8:]); err != nil {
				return err
			}
			it.Next()
			continue
		}
		// The key's last version in the delta replaces its row.
		j := i
		for j+1 < len(delta) && bytes.Equal(delta[j+1].pk, delta[i].pk) {
			j++
		}
		if pk != nil && bytes.Equal(pk, delta[i].pk) {
			it.Next()
		}
		if e := delta[j]; e.val != nil {
			if err := b.row(e.pk, e.ts, e.val); err != nil {
				return err
			}
		}
		i = j + 1
	}
	return nil
}

// dedupLog sorts versions by key and time, keeping write order among
// writes of one key at one time, and keeps the last of those: the later
// write of a key at one instant shadows the earlier (and a version both
// found by a walk and logged after it is the same version).
func dedupLog(ents []logEnt) []logEnt {
	slices.SortFunc(ents, func(a, b logEnt) int {
		if c := bytes.Compare(a.pk, b.pk); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ts, b.ts); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	out := ents[:0]
	for i, e := range ents {
		if i+1 < len(ents) && ents[i+1].ts == e.ts && bytes.Equal(ents[i+1].pk, e.pk) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// dropCheckpoints removes table id's checkpoints (DROP TABLE).
func (s *Store) dropCheckpoints(id uint32) error {
	s.ckpts.build.Lock()
	defer s.ckpts.build.Unlock()
	s.ckpts.mu.Lock()
	defer s.ckpts.mu.Unlock()
	if _, ok := s.ckpts.m[id]; !ok {
		return nil
	}
	if err := s.CommitMeta(MetaWrite{Deletes: []string{ckptMeta(id)}, Aside: true}, 0); err != nil {
		return err
	}
	delete(s.ckpts.m, id)
	delete(s.ckpts.logs, id)
	s.segs.purge(id)
	return s.db.DropPrefix(binary.BigEndian.AppendUint32([]byte{prefixCkpt}, id))
}

// scanFrom returns the scan of all of t AS OF sn's instant through a
// checkpoint, or nil when no checkpoint covers it.
func (s *Store) scanFrom(sn *Snapshot, t *catalog.Table) RowIter {
	T := sn.ts
	s.ckpts.mu.Lock()
	tc := s.ckpts.m[t.ID]
	var (
		at      []int64
		changes []bool
	)
	if tc != nil {
		at, changes = tc.At, tc.Changes
	}
	s.ckpts.mu.Unlock()
	// The checkpoint at or before T, and the next one (whose change list
	// holds the versions after it).
	i := sort.Search(len(at), func(i int) bool { return at[i] > T }) - 1
	var rowsAt, chgAt int64
	switch {
	case i >= 0 && at[i] == T:
		rowsAt, chgAt = at[i], noChanges
	case i >= 0 && i+1 < len(at) && changes[i+1]:
		rowsAt, chgAt = at[i], at[i+1]
	case i < 0 && len(at) > 0:
		// Before the first checkpoint: the versions up to it, sealed,
		// read once into the segment cache (or walked by the scan).
		return s.scanCachedVersions(t, T, at[0])
	case i >= 0 && i == len(at)-1:
		// After the last: its rows and the versions logged since.
		return s.scanLogged(t, T, at[i])
	default:
		return nil
	}
	if it := s.scanCached(t, T, rowsAt, chgAt); it != nil {
		return it
	}
	ci := &ckptIter{t: t, T: T, rp: ckPrefix(t.ID, ckRows, rowsAt)}
	ci.rows = sn.txn.NewIterator(badger.IteratorOptions{Prefix: ci.rp})
	ci.rows.Seek(ci.rp)
	if chgAt != noChanges {
		ci.cp = ckPrefix(t.ID, ckChanges, chgAt)
		ci.chg = sn.txn.NewIterator(badger.IteratorOptions{Prefix: ci.cp})
		ci.chg.Seek(ci.cp)
		ci.nextChange()
	}
	return ci
}

// noChanges is scanFrom's change list instant for a scan exactly at a
// checkpoint: none.
const noChanges = -1

// scanCached is scanFrom's scan over the segment cache, or nil when a
// segment is not in it (too big, the cache off, or an error reading it,
// which the Badger iterators then report).
func (s *Store) scanCached(t *catalog.Table, T, rowsAt, chgAt int64) RowIter {
	rows, err := s.segs.get(s, segKey{t.ID, ckRows, rowsAt})
	if rows == nil || err != nil {
		return nil
	}
	si := &segIter{t: t, T: T, rows: rows, rend: len(rows.ents)}
	if chgAt != noChanges {
		if si.chg, err = s.segs.get(s, segKey{t.ID, ckChanges, chgAt}); si.chg == nil || err != nil {
			return nil
		}
		si.cend = len(si.chg.ents)
		si.nextChange()
	}
	return si
}

// ckptIter merges a checkpoint's rows with the change list after it, both
// in key order.
type ckptIter struct {
	t     *catalog.Table
	T     int64
	rows  *badger.Iterator
	rp    []byte
	chg   *badger.Iterator // nil: no changes to apply
	cp    []byte
	row   []types.Value
	ts    int64
	err   error
	reuse bool

	// The next changed key at T: its key, and its last version at or
	// before T (cval nil: deleted; cok false: no version at or before T).
	cpk  []byte
	cts  int64
	cval []byte
	cok  bool
}

// nextChange reads the change list up to the next key with a version
// at or before T (or its end: cpk nil).
func (c *ckptIter) nextChange() {
	c.cpk, c.cok = nil, false
	for c.chg.Valid() {
		k := c.chg.Item().Key()[len(c.cp):]
		pk, ts := k[:len(k)-8], int64(binary.BigEndian.Uint64(k[len(k)-8:]))
		if c.cpk != nil && !bytes.Equal(pk, c.cpk) {
			if c.cok {
				return
			}
			c.cpk = nil // no version of that key at or before T
		}
		if c.cpk == nil {
			c.cpk = append(c.cpk[:0:0], pk...)
		}
		if ts <= c.T {
			err := c.chg.Item().Value(func(v []byte) error {
				if len(v) == 0 {
					return fmt.Errorf("%w: empty change entry of table %s", ErrBadKey, c.t.Name)
				}
				c.cval = nil
				if v[0] == 1 {
					c.cval = append(c.cval[:0:0], v[1:]...)
				}
				return nil
			})
			if err != nil {
				c.err = err
				return
			}
			c.cts, c.cok = ts, true
		}
		c.chg.Next()
	}
	if !c.cok {
		c.cpk = nil
	}
}

func (c *ckptIter) Next() bool {
	for c.err == nil {
		var rowPK []byte
		if c.rows.Valid() {
			rowPK = c.rows.Item().Key()[len(c.rp):]
		}
		switch {
		case rowPK == nil && c.cpk == nil:
			return false
		case rowPK != nil && (c.cpk == nil || bytes.Compare(rowPK, c.cpk) < 0):
			// A row not changed since the checkpoint.
			err := c.rows.Item().Value(func(b []byte) error {
				c.ts = int64(binary.BigEndian.Uint64(b[:8]))
				var err error
				c.row, err = DecodeRow(c.dst(), c.t.Columns, b[8:])
				return err
			})
			c.rows.Next()
			if c.err = err; err != nil {
				return false
			}
			return true
		default:
			// A changed key: its state at T replaces the checkpoint's row.
			if rowPK != nil && bytes.Equal(rowPK, c.cpk) {
				c.rows.Next()
			}
			val, ts := c.cval, c.cts
			c.nextChange()
			if val == nil {
				continue
			}
			c.ts = ts
			c.row, c.err = DecodeRow(c.dst(), c.t.Columns, val)
			return c.err == nil
		}
	}
	return false
}

// ReuseRows makes Row's row overwritten by the next Next (RowReuser).
func (c *ckptIter) ReuseRows() { c.reuse = true }

// dst is where the next row is decoded: a new row, or the last one.
func (c *ckptIter) dst() []types.Value {
	if c.reuse {
		return c.row
	}
	return nil
}

func (c *ckptIter) Row() []types.Value { return c.row }
func (c *ckptIter) TS() int64          { return c.ts }
func (c *ckptIter) Err() error         { return c.err }
func (c *ckptIter) Close() {
	c.rows.Close()
	if c.chg != nil {
		c.chg.Close()
	}
}
