package precompute

import (
	"sort"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/types"
)

// BaseChange is one base-table version accepted by the writer: an upsert (Row
// set) or a delete (Key set) of a row of Table at TS.
type BaseChange struct {
	Table *catalog.Table
	Row   []types.Value
	Key   []types.Value
	TS    int64
}

// DefaultLogCap bounds the versions a ChangeLog holds (each costs about
// 100 bytes plus its row, which the log keeps so the epoch need not read
// it back): beyond it the log is dropped and epochs scan the store until
// it is seeded again.
const DefaultLogCap = 1 << 20

// ChangeLog remembers, in memory, the base versions the writer committed,
// so that an epoch's changed keys are found without scanning the store
// (Changed walks every Badger version newer than the previous boundary,
// memtables included, which costs with the size of the unflushed data).
//
// It is complete per table: a table is in the log only from a point
// (from) after which every committed version of it is in the log. A table
// gets there by Seed, from a scan of the store (ChangedScan), and leaves
// (the whole log is cleared) when the log overflows its cap or a commit
// failed half-way. Epochs that the log cannot answer fall back to the
// scan, which seeds the log again. The writer owns it (calls under wmu).
type ChangeLog struct {
	Cap    int
	tables map[uint32]*tableLog
	total  int
}

type tableLog struct {
	from  int64 // every version with ts > from is in ents
	minTS int64 // smallest ts in ents
	ents  []logEntry
}

type logEntry struct {
	enc  string // encoded key
	key  []types.Value
	ts   int64
	row  []types.Value // the upserted row; nil for a delete
	full bool          // row is known (entries from Add, not from Seed)
}

// NewChangeLog returns an empty log: no table is complete in it yet.
func NewChangeLog() *ChangeLog {
	return &ChangeLog{Cap: DefaultLogCap, tables: map[uint32]*tableLog{}}
}

// Add records committed versions. Versions of tables not in the log are
// dropped (a later Seed replaces what the log held for a table).
func (l *ChangeLog) Add(cs []BaseChange) {
	for i := range cs {
		c := &cs[i]
		tl := l.tables[c.Table.ID]
		if tl == nil {
			continue
		}
		key := c.Key
		if key == nil {
			key = keyOf(c.Row, c.Table.PK)
		}
		if l.total >= l.Cap {
			l.Clear()
			return
		}
		tl.ents = append(tl.ents, logEntry{enc: string(mvcc.EncodeKey(nil, c.Table.ID, key)), key: key, ts: c.TS, row: c.Row, full: true})
		tl.minTS = min(tl.minTS, c.TS)
		l.total++
	}
}

// Clear forgets everything: every epoch falls back to the scan until the
// tables are seeded again. Used on overflow and when a commit failed in a
// way that may have stored versions the log did not see.
func (l *ChangeLog) Clear() {
	l.tables = map[uint32]*tableLog{}
	l.total = 0
}

// Seed makes the log complete for t from from, given every stored version
// of t with ts > from (as returned by ChangedScan). It does nothing when
// that would overflow the log.
func (l *ChangeLog) Seed(t *catalog.Table, from int64, vs []Version) {
	if old := l.tables[t.ID]; old != nil {
		if old.from <= from {
			return // already complete from an earlier instant
		}
		l.total -= len(old.ents)
		delete(l.tables, t.ID)
	}
	if l.total+len(vs) > l.Cap {
		return
	}
	tl := &tableLog{from: from, minTS: maxTS, ents: make([]logEntry, len(vs))}
	for i, v := range vs {
		tl.ents[i] = logEntry{enc: v.enc, key: v.Key, ts: v.TS}
		tl.minTS = min(tl.minTS, v.TS)
	}
	l.tables[t.ID] = tl
	l.total += len(vs)
}

const maxTS = int64(^uint64(0) >> 1)

// Prune drops the versions of table id at or before upTo (no view needs
// them any more); the table stays complete from upTo.
func (l *ChangeLog) Prune(id uint32, upTo int64) {
	tl := l.tables[id]
	if tl == nil || upTo <= tl.from {
		return
	}
	tl.from = upTo
	if tl.minTS > upTo {
		return
	}
	kept := tl.ents[:0]
	m := maxTS
	for _, e := range tl.ents {
		if e.ts > upTo {
			kept = append(kept, e)
			m = min(m, e.ts)
		}
	}
	clear(tl.ents[len(kept):])
	l.total -= len(tl.ents) - len(kept)
	tl.ents, tl.minTS = kept, m
}

// Drop removes table id from the log (no view reads it).
func (l *ChangeLog) Drop(id uint32) {
	if tl := l.tables[id]; tl != nil {
		l.total -= len(tl.ents)
		delete(l.tables, id)
	}
}

// Tables lists the ids of the tables the log is complete for.
func (l *ChangeLog) Tables() []uint32 {
	out := make([]uint32, 0, len(l.tables))
	for id := range l.tables {
		out = append(out, id)
	}
	return out
}

// Len returns the number of versions held.
func (l *ChangeLog) Len() int { return l.total }

// Changed is precompute.Changed answered from the log; ok is false when
// the log is not complete for every table from from.
func (l *ChangeLog) Changed(tables []*catalog.Table, from, to, epoch int64) (eps []*Epoch, ok bool) {
	if to <= from {
		return nil, true
	}
	for _, t := range tables {
		tl := l.tables[t.ID]
		if tl == nil || tl.from > from {
			return nil, false
		}
	}
	g := grouper{byB: map[int64]*Epoch{}, epoch: epoch}
	for _, t := range tables {
		tl := l.tables[t.ID]
		for _, e := range tl.ents {
			if e.ts > from && e.ts <= to {
				g.add(t, e.enc, e.key, e.ts, e.row, e.full)
			}
		}
	}
	return g.sorted(), true
}

// Version is one stored version of a base row (key and commit time).
type Version struct {
	enc string
	Key []types.Value
	TS  int64
}

// grouper groups changed keys by the boundary they fall before.
type grouper struct {
	byB   map[int64]*Epoch
	epoch int64
}

// add records a version of key at ts; row and full are what the change
// log knows of it (full: row is the version, nil for a delete).
func (g *grouper) add(t *catalog.Table, enc string, key []types.Value, ts int64, row []types.Value, full bool) {
	b := Ceil(ts, g.epoch)
	ep := g.byB[b]
	if ep == nil {
		ep = &Epoch{B: b, Keys: map[uint32]*keySet{}}
		g.byB[b] = ep
	}
	ks := ep.Keys[t.ID]
	if ks == nil {
		ks = &keySet{t: t, keys: map[string][]types.Value{}, at: map[string]logged{}}
		ep.Keys[t.ID] = ks
	}
	if _, ok := ks.keys[enc]; !ok {
		ks.keys[enc] = key
		ks.at[enc] = logged{row: row, ts: ts, ok: full}
		return
	}
	// Versions come in the order they were applied: a later one at the
	// same ts replaced the earlier one.
	if l := ks.at[enc]; l.ok && full && ts >= l.ts {
		ks.at[enc] = logged{row: row, ts: ts, ok: true}
	} else if !full {
		ks.at[enc] = logged{}
	}
}

func (g *grouper) sorted() []*Epoch {
	out := make([]*Epoch, 0, len(g.byB))
	for _, ep := range g.byB {
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].B < out[j].B })
	return out
}
