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
// memory instead of by one Badger lookup each. It holds every row of the
// table, those whose value is NULL too (they are found by key, never by
// value), so it also answers what a key's row was at the boundary. It
// lives in memory and is rebuilt from the table when a maintainer starts.
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

	hash  func([]byte) uint64 // maphash with a seed of the index's own; tests weaken it
	byVal map[uint64]int32    // hash of a value -> first entry (chained by vnext)
	byKey map[uint64]int32    // hash of a key -> an entry (chained by knext)
	ents  []ixEnt
	free  int32  // first unused entry (chained by vnext), or -1
	arena []byte // for each entry: its encoded value (none for NULL), key and row
	dead  int    // arena bytes of removed entries
	n     int    // entries in use

	vb, kb, rb []byte // scratch encodings
}

// ixEnt is one row of an index. An entry with vlen 0 has a NULL value and
// is on no value chain.
type ixEnt struct {
	vprev, vnext     int32 // entries whose value has the same hash
	knext            int32 // entries whose key has the same hash
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
		byVal: map[uint64]int32{}, byKey: map[uint64]int32{}, free: noEnt}
}

func (ix *index) value(e *ixEnt) []byte { return ix.arena[e.off : e.off+e.vlen] }
func (ix *index) key(e *ixEnt) []byte {
	return ix.arena[e.off+e.vlen : e.off+e.vlen+e.klen]
}
func (ix *index) row(e *ixEnt) []byte {
	o := e.off + e.vlen + e.klen
	return ix.arena[o : o+e.rlen]
}

// encode sets ix.kb to row's encoded key and ix.vb to its encoded value
// (empty for NULL) and returns the hashes of both (vh is 0 for NULL).
func (ix *index) encode(row []types.Value) (vh, kh uint64) {
	ix.kb = mvcc.EncodeRowKey(ix.kb[:0], ix.t.ID, row, ix.t.PK)
	ix.vb = ix.vb[:0]
	if v := row[ix.col]; !v.IsNull() {
		ix.vb = mvcc.EncodeKey(ix.vb, 0, []types.Value{v})
		vh = ix.hash(ix.vb)
	}
	return vh, ix.hash(ix.kb)
}

// lookup returns the entry of encoded key kb, whose hash is kh, and the
// entry before it on its key chain (noEnt: it heads the chain).
func (ix *index) lookup(kb []byte, kh uint64) (at, before int32) {
	i, ok := ix.byKey[kh]
	if !ok {
		return noEnt, noEnt
	}
	before = noEnt
	for ; i != noEnt; before, i = i, ix.ents[i].knext {
		if bytes.Equal(ix.key(&ix.ents[i]), kb) {
			return i, before
		}
	}
	return noEnt, noEnt
}

// add records row (a version committed at ts), replacing the row with
// the same key if there is one.
func (ix *index) add(row []types.Value, ts int64) {
	vh, kh := ix.encode(row)
	ix.rb = mvcc.EncodeRow(ix.rb[:0], ix.t.Columns, row)
	if at, before := ix.lookup(ix.kb, kh); at != noEnt {
		e := &ix.ents[at]
		if !bytes.Equal(ix.value(e), ix.vb) {
			ix.unlink(at, before, kh) // the row moves to another value
		} else {
			// A new version with the same value: its chains stay, its
			// row moves.
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
	}
	i := ix.free
	if i == noEnt {
		i = int32(len(ix.ents))
		ix.ents = append(ix.ents, ixEnt{})
	} else {
		ix.free = ix.ents[i].vnext
	}
	e := &ix.ents[i]
	*e = ixEnt{vprev: noEnt, vnext: noEnt, knext: noEnt, off: uint32(len(ix.arena)),
		vlen: uint32(len(ix.vb)), klen: uint32(len(ix.kb)), rlen: uint32(len(ix.rb)), ts: ts}
	ix.arena = append(append(append(ix.arena, ix.vb...), ix.kb...), ix.rb...)
	if e.vlen > 0 {
		if h, ok := ix.byVal[vh]; ok {
			e.vnext = h
			ix.ents[h].vprev = i
		}
		ix.byVal[vh] = i
	}
	if h, ok := ix.byKey[kh]; ok {
		e.knext = h
	}
	ix.byKey[kh] = i
	ix.n++
	ix.maybeCompact()
}

// remove removes the row with row's key, if held.
func (ix *index) remove(row []types.Value) {
	_, kh := ix.encode(row)
	if i, before := ix.lookup(ix.kb, kh); i != noEnt {
		ix.unlink(i, before, kh)
		ix.maybeCompact()
	}
}

// unlink removes entry i, after before on the chain of key hash kh.
func (ix *index) unlink(i, before int32, kh uint64) {
	e := &ix.ents[i]
	switch {
	case before != noEnt:
		ix.ents[before].knext = e.knext
	case e.knext != noEnt:
		ix.byKey[kh] = e.knext
	default:
		delete(ix.byKey, kh)
	}
	if e.vlen > 0 {
		switch {
		case e.vprev != noEnt:
			ix.ents[e.vprev].vnext = e.vnext
		case e.vnext != noEnt:
			ix.byVal[ix.hash(ix.value(e))] = e.vnext
		default:
			delete(ix.byVal, ix.hash(ix.value(e)))
		}
		if e.vnext != noEnt {
			ix.ents[e.vnext].vprev = e.vprev
		}
	}
	ix.dead += int(e.vlen + e.klen + e.rlen)
	*e = ixEnt{vnext: ix.free, off: freeOff}
	ix.free = i
	ix.n--
}

// get returns the row held for the encoded key kb and the commit time of
// its version; ok is false when the table had no row with that key.
func (ix *index) get(kb []byte) (row []types.Value, ts int64, ok bool, err error) {
	i, _ := ix.lookup(kb, ix.hash(kb))
	if i == noEnt {
		return nil, 0, false, nil
	}
	e := &ix.ents[i]
	row, err = mvcc.DecodeRow(nil, ix.t.Columns, ix.row(e))
	return row, e.ts, err == nil, err
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
