package mvcc

import (
	"bytes"
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
// history. A scan before the first checkpoint or after the last reads the
// versions as before.
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
	mu sync.Mutex
	m  map[uint32]*tableCkpts
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
	s.ckpts.m = map[uint32]*tableCkpts{}
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

// Checkpoints returns the instants t has checkpoints at, ascending.
func (s *Store) Checkpoints(t *catalog.Table) []int64 {
	s.ckpts.mu.Lock()
	defer s.ckpts.mu.Unlock()
	if tc := s.ckpts.m[t.ID]; tc != nil {
		return slices.Clone(tc.At)
	}
	return nil
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

// Checkpoint takes a checkpoint of t at c, which must be sealed: no
// version at or before c may be written after this starts. It returns the
// rows visible at c.
func (s *Store) Checkpoint(t *catalog.Table, c int64) (int64, error) {
	if c < 0 {
		return 0, fmt.Errorf("mvcc: checkpoint of %s at %d: %w", t.Name, c, ErrNegativeTime)
	}
	s.ckpts.mu.Lock()
	prev := int64(-1)
	if tc := s.ckpts.m[t.ID]; tc != nil && len(tc.At) > 0 {
		prev = tc.At[len(tc.At)-1]
	}
	s.ckpts.mu.Unlock()
	if c <= prev {
		return 0, nil // already covered
	}
	last := prev
	if prev >= 0 && prev < s.Horizon() {
		prev = -1 // no change list since last (see tableCkpts.Changes)
	}
	s.sizes.mu.Lock()
	sinceAtStart := s.sizes.since[t.ID]
	s.sizes.mu.Unlock()

	txn := s.db.NewTransactionAt(Version(c), false)
	defer txn.Discard()
	p := tablePrefix(nil, t.ID)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, AllVersions: true})
	defer it.Close()
	wb := s.db.NewManagedWriteBatch()
	defer wb.Cancel()
	rowsP, chgP := ckPrefix(t.ID, ckRows, c), ckPrefix(t.ID, ckChanges, c)
	var (
		rows    int64
		lastKey []byte
	)
	for it.Seek(p); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		first := lastKey == nil || !bytes.Equal(k, lastKey)
		if first {
			lastKey = append(lastKey[:0], k...)
		}
		ts := TS(item.Version())
		if !first && ts <= prev {
			continue // older than the previous checkpoint and not visible at c
		}
		pk := k[len(p):]
		var val []byte
		if !item.IsDeletedOrExpired() {
			var err error
			if val, err = item.ValueCopy(nil); err != nil {
				return 0, fmt.Errorf("mvcc: checkpoint of %s: %w", t.Name, err)
			}
		}
		if first && val != nil {
			v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(val)), uint64(ts))
			if err := wb.SetEntryAt(badger.NewEntry(append(slices.Clone(rowsP), pk...), append(v, val...)), ckVersion); err != nil {
				return 0, fmt.Errorf("mvcc: checkpoint of %s: %w", t.Name, err)
			}
			rows++
		}
		if prev >= 0 && ts > prev {
			key := binary.BigEndian.AppendUint64(append(slices.Clone(chgP), pk...), uint64(ts))
			v := []byte{0}
			if val != nil {
				v = append([]byte{1}, val...)
			}
			if err := wb.SetEntryAt(badger.NewEntry(key, v), ckVersion); err != nil {
				return 0, fmt.Errorf("mvcc: checkpoint of %s: %w", t.Name, err)
			}
		}
	}
	if err := wb.Flush(); err != nil {
		return 0, fmt.Errorf("mvcc: checkpoint of %s: %w", t.Name, err)
	}
	s.ckpts.mu.Lock()
	defer s.ckpts.mu.Unlock()
	tc := &tableCkpts{Rows: rows}
	if old := s.ckpts.m[t.ID]; old != nil {
		tc.At, tc.Changes = slices.Clone(old.At), slices.Clone(old.Changes)
	}
	if n := len(tc.At); (n == 0 && last >= 0) || (n > 0 && tc.At[n-1] != last) {
		return 0, fmt.Errorf("mvcc: checkpoint of %s: another checkpoint was taken meanwhile", t.Name)
	}
	tc.At, tc.Changes = append(tc.At, c), append(tc.Changes, prev >= 0)
	b, err := json.Marshal(tc)
	if err != nil {
		return 0, err
	}
	if err := s.CommitMeta(MetaWrite{Puts: map[string][]byte{ckptMeta(t.ID): b}, Aside: true}, 0); err != nil {
		return 0, err
	}
	s.ckpts.m[t.ID] = tc
	s.sizes.mu.Lock()
	if s.sizes.since != nil {
		s.sizes.since[t.ID] -= sinceAtStart
	}
	s.sizes.mu.Unlock()
	return rows, nil
}

// dropCheckpoints removes table id's checkpoints (DROP TABLE).
func (s *Store) dropCheckpoints(id uint32) error {
	s.ckpts.mu.Lock()
	defer s.ckpts.mu.Unlock()
	if _, ok := s.ckpts.m[id]; !ok {
		return nil
	}
	if err := s.CommitMeta(MetaWrite{Deletes: []string{ckptMeta(id)}, Aside: true}, 0); err != nil {
		return err
	}
	delete(s.ckpts.m, id)
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
	if i < 0 || (at[i] != T && (i+1 >= len(at) || !changes[i+1])) {
		return nil
	}
	ci := &ckptIter{t: t, T: T, rp: ckPrefix(t.ID, ckRows, at[i])}
	ci.rows = sn.txn.NewIterator(badger.IteratorOptions{Prefix: ci.rp})
	ci.rows.Seek(ci.rp)
	if at[i] != T {
		ci.cp = ckPrefix(t.ID, ckChanges, at[i+1])
		ci.chg = sn.txn.NewIterator(badger.IteratorOptions{Prefix: ci.cp})
		ci.chg.Seek(ci.cp)
		ci.nextChange()
	}
	return ci
}

// ckptIter merges a checkpoint's rows with the change list after it, both
// in key order.
type ckptIter struct {
	t    *catalog.Table
	T    int64
	rows *badger.Iterator
	rp   []byte
	chg  *badger.Iterator // nil: no changes to apply
	cp   []byte
	row  []types.Value
	ts   int64
	err  error

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
				c.row, err = DecodeRow(nil, c.t.Columns, b[8:])
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
			c.row, c.err = DecodeRow(nil, c.t.Columns, val)
			return c.err == nil
		}
	}
	return false
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
