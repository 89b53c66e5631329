package precompute

import (
	"bytes"
	"hash/maphash"
	"math"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/types"
)

// index maps the values of one column of a table to the rows holding
// them (key, encoded row and the commit time of its version), as of the
// last boundary processed: an in-memory arrangement of the table by that
// column, so that an epoch reads the rows it joins at the boundary from
// memory instead of by one Badger lookup each. It lives in memory and is
// rebuilt from the table when a maintainer starts.
//
// It holds one entry per row of a table of perhaps millions, for as long
// as the view lives, so it is laid out for the garbage collector: the
// encoded values, keys and rows sit in one byte arena, the entries in one slice
// of plain integers, and the two maps go from hashes to entry numbers. No
// part of it holds a pointer the collector has to follow, so a large
// index costs a collection nothing.
type index struct {
	t     *catalog.Table
	col   int
	kinds []types.Type // of t's key columns, to decode keys

	hash   func([]byte) uint64 // maphash with a seed of the index's own; tests weaken it
	byVal  map[uint64]int32    // hash of a value -> first entry (chained by vnext)
	byPair map[uint64]int32    // hash of (value, key) -> an entry (chained by pnext)
	ents   []ixEnt
	free   int32  // first unused entry (chained by vnext), or -1
	arena  []byte // for each entry: its encoded value, key and row
	dead   int    // arena bytes of removed entries
	n      int    // entries in use

	vb, kb, rb []byte // scratch encodings
}

// ixEnt is one row of an index.
type ixEnt struct {
	vprev, vnext     int32 // entries whose value has the same hash
	pnext            int32 // entries whose (value, key) has the same hash
	off              uint32
	vlen, klen, rlen uint32
	ts               int64 // commit time of the row's version
}

const noEnt = -1

// compactMin is the arena bytes of removed entries below which the arena
// is not compacted.
var compactMin = 1 << 20

// freeOff marks an entry on the free list.
const freeOff = math.MaxUint32

func newIndex(t *catalog.Table, col int) *index {
	kinds := make([]types.Type, len(t.PK))
	for i, c := range t.PK {
		kinds[i] = t.Columns[c].Type
	}
	seed := maphash.MakeSeed()
	return &index{t: t, col: col, kinds: kinds, hash: func(b []byte) uint64 { return maphash.Bytes(seed, b) },
		byVal: map[uint64]int32{}, byPair: map[uint64]int32{}, free: noEnt}
}

func (ix *index) value(e *ixEnt) []byte { return ix.arena[e.off : e.off+e.vlen] }
func (ix *index) key(e *ixEnt) []byte {
	return ix.arena[e.off+e.vlen : e.off+e.vlen+e.klen]
}
func (ix *index) row(e *ixEnt) []byte {
	o := e.off + e.vlen + e.klen
	return ix.arena[o : o+e.rlen]
}

// encode sets ix.vb and ix.kb to row's encoded value and key and returns
// their hashes; ok is false for a NULL value (never indexed).
func (ix *index) encode(row []types.Value) (vh, ph uint64, ok bool) {
	v := row[ix.col]
	if v.IsNull() {
		return 0, 0, false
	}
	ix.vb = mvcc.EncodeKey(ix.vb[:0], 0, []types.Value{v})
	ix.kb = mvcc.EncodeKey(ix.kb[:0], ix.t.ID, keyOf(row, ix.t.PK))
	vh = ix.hash(ix.vb)
	return vh, vh*0x9e3779b97f4a7c15 ^ ix.hash(ix.kb), true
}

// lookup returns the entry holding ix.vb and ix.kb, and the entry before
// it on its pair chain (noEnt: it heads the chain).
func (ix *index) lookup(ph uint64) (at, before int32) {
	i, ok := ix.byPair[ph]
	if !ok {
		return noEnt, noEnt
	}
	before = noEnt
	for ; i != noEnt; before, i = i, ix.ents[i].pnext {
		e := &ix.ents[i]
		if bytes.Equal(ix.value(e), ix.vb) && bytes.Equal(ix.key(e), ix.kb) {
			return i, before
		}
	}
	return noEnt, noEnt
}

// add records row (a version committed at ts), replacing the row with
// the same key and value if there is one.
func (ix *index) add(row []types.Value, ts int64) {
	vh, ph, ok := ix.encode(row)
	if !ok {
		return
	}
	ix.rb = mvcc.EncodeRow(ix.rb[:0], ix.t.Columns, row)
	if at, _ := ix.lookup(ph); at != noEnt {
		// A new version of a row held: its chains stay, its row moves.
		e := &ix.ents[at]
		e.ts = ts
		if int(e.rlen) == len(ix.rb) {
			copy(ix.row(e), ix.rb)
			return
		}
		ix.dead += int(e.vlen + e.klen + e.rlen)
		e.off, e.rlen = uint32(len(ix.arena)), uint32(len(ix.rb))
		ix.arena = append(append(append(ix.arena, ix.vb...), ix.kb...), ix.rb...)
		ix.maybeCompact()
		return
	}
	i := ix.free
	if i == noEnt {
		i = int32(len(ix.ents))
		ix.ents = append(ix.ents, ixEnt{})
	} else {
		ix.free = ix.ents[i].vnext
	}
	e := &ix.ents[i]
	*e = ixEnt{vprev: noEnt, vnext: noEnt, pnext: noEnt, off: uint32(len(ix.arena)),
		vlen: uint32(len(ix.vb)), klen: uint32(len(ix.kb)), rlen: uint32(len(ix.rb)), ts: ts}
	ix.arena = append(append(append(ix.arena, ix.vb...), ix.kb...), ix.rb...)
	if h, ok := ix.byVal[vh]; ok {
		e.vnext = h
		ix.ents[h].vprev = i
	}
	ix.byVal[vh] = i
	if h, ok := ix.byPair[ph]; ok {
		e.pnext = h
	}
	ix.byPair[ph] = i
	ix.n++
}

func (ix *index) remove(row []types.Value) {
	vh, ph, ok := ix.encode(row)
	if !ok {
		return
	}
	i, before := ix.lookup(ph)
	if i == noEnt {
		return
	}
	e := &ix.ents[i]
	switch {
	case before != noEnt:
		ix.ents[before].pnext = e.pnext
	case e.pnext != noEnt:
		ix.byPair[ph] = e.pnext
	default:
		delete(ix.byPair, ph)
	}
	switch {
	case e.vprev != noEnt:
		ix.ents[e.vprev].vnext = e.vnext
	case e.vnext != noEnt:
		ix.byVal[vh] = e.vnext
	default:
		delete(ix.byVal, vh)
	}
	if e.vnext != noEnt {
		ix.ents[e.vnext].vprev = e.vprev
	}
	ix.dead += int(e.vlen + e.klen + e.rlen)
	*e = ixEnt{vnext: ix.free, off: freeOff}
	ix.free = i
	ix.n--
	ix.maybeCompact()
}

func (ix *index) maybeCompact() {
	if ix.dead > compactMin && ix.dead > len(ix.arena)/2 {
		ix.compact()
	}
}

// compact drops the bytes of removed entries from the arena.
func (ix *index) compact() { ix.arena, ix.dead = compactArena(ix.arena, ix.dead, ix.ents), 0 }

func (e *ixEnt) span() (off, n uint32) { return e.off, e.vlen + e.klen + e.rlen }
func (e *ixEnt) moveTo(off uint32)     { e.off = off }

// arenaEnt is an entry whose bytes sit in an arena, at an offset that is
// freeOff for a removed entry.
type arenaEnt[E any] interface {
	*E
	span() (off, n uint32)
	moveTo(off uint32)
}

// compactArena returns a copy of arena with only the bytes of the
// entries in use, and moves their offsets to it.
func compactArena[E any, P arenaEnt[E]](arena []byte, dead int, ents []E) []byte {
	out := make([]byte, 0, len(arena)-dead)
	for i := range ents {
		off, n := P(&ents[i]).span()
		if off == freeOff {
			continue
		}
		P(&ents[i]).moveTo(uint32(len(out)))
		out = append(out, arena[off:off+n]...)
	}
	return out
}

// each calls fn with the encoded and decoded key of every row holding v.
func (ix *index) each(v types.Value, fn func(enc string, key []types.Value)) error {
	return ix.scan(v, func(e *ixEnt) error {
		kb := ix.key(e)
		_, key, err := mvcc.DecodeKey(kb, ix.kinds)
		if err == nil {
			fn(string(kb), key)
		}
		return err
	})
}

// eachRow calls fn with every row holding v and the commit time of its
// version.
func (ix *index) eachRow(v types.Value, fn func(row []types.Value, ts int64)) error {
	return ix.scan(v, func(e *ixEnt) error {
		row, err := mvcc.DecodeRow(nil, ix.t.Columns, ix.row(e))
		if err == nil {
			fn(row, e.ts)
		}
		return err
	})
}

// scan calls fn with every entry holding v.
func (ix *index) scan(v types.Value, fn func(e *ixEnt) error) error {
	if v.IsNull() {
		return nil
	}
	var buf [64]byte
	vb := mvcc.EncodeKey(buf[:0], 0, []types.Value{v})
	i, ok := ix.byVal[ix.hash(vb)]
	if !ok {
		return nil
	}
	for ; i != noEnt; i = ix.ents[i].vnext {
		e := &ix.ents[i]
		if !bytes.Equal(ix.value(e), vb) {
			continue // another value with the same hash
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// len returns the number of rows held.
func (ix *index) len() int { return ix.n }

// sameValue reports whether a and b index the same: equal, or both NULL.
func sameValue(a, b types.Value) bool {
	if a.IsNull() || b.IsNull() {
		return a.IsNull() && b.IsNull()
	}
	return types.Compare(a, b) == 0
}
