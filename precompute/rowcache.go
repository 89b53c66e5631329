package precompute

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"sync"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/types"
)

// rowCache holds the stored rows of a view without GROUP BY as of the last
// boundary processed, grouped by the root row they descend from. An epoch
// diffs the rows it recomputes for a root against these instead of
// seeking them in the store: one LSM seek less per affected root.
//
// Like the join indexes it is kept for the life of the maintainer and laid
// out for the garbage collector: each root's encoded key and its rows'
// encodings in one byte arena, entries of plain integers, a map from
// hashes to entry numbers. It is rebuilt from the stored view (one scan)
// when maintenance starts, and dropped on any failure.
type rowCache struct {
	mu    sync.Mutex
	hash  func([]byte) uint64
	heads map[uint64]int32 // hash of a root's encoded key -> first entry
	ents  []rcEnt
	free  int32
	arena []byte
	dead  int
}

// rcEnt is one root: its encoded key, then its rows, each a uvarint length
// and an encoded row. A free entry has klen 0.
type rcEnt struct {
	next       int32 // entries whose root key has the same hash
	off        uint32
	klen, blen uint32
}

func newRowCache() *rowCache {
	seed := maphash.MakeSeed()
	return &rowCache{hash: func(b []byte) uint64 { return maphash.Bytes(seed, b) }, heads: map[uint64]int32{}, free: noEnt}
}

// find returns the entry of root (and the one before it on its chain).
func (c *rowCache) find(root []byte, h uint64) (at, before int32) {
	i, ok := c.heads[h]
	if !ok {
		return noEnt, noEnt
	}
	before = noEnt
	for ; i != noEnt; before, i = i, c.ents[i].next {
		e := &c.ents[i]
		if bytes.Equal(c.arena[e.off:e.off+e.klen], root) {
			return i, before
		}
	}
	return noEnt, noEnt
}

// rows calls fn with each stored row of root, decoded.
func (c *rowCache) rows(t *catalog.Table, root string, fn func([]types.Value)) error {
	c.mu.Lock()
	i, _ := c.find([]byte(root), c.hash([]byte(root)))
	var blob []byte
	if i != noEnt {
		e := c.ents[i]
		blob = bytes.Clone(c.arena[e.off+e.klen : e.off+e.klen+e.blen])
	}
	c.mu.Unlock()
	for len(blob) > 0 {
		n, k := binary.Uvarint(blob)
		if k <= 0 || uint64(len(blob)-k) < n {
			return mvcc.ErrBadRow
		}
		row, err := mvcc.DecodeRow(nil, t.Columns, blob[k:k+int(n)])
		if err != nil {
			return err
		}
		fn(row)
		blob = blob[k+int(n):]
	}
	return nil
}

// set replaces root's rows with those encoded in blob (none: the root has
// no rows).
func (c *rowCache) set(root string, blob []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.hash([]byte(root))
	if i, before := c.find([]byte(root), h); i != noEnt {
		e := &c.ents[i]
		switch {
		case before != noEnt:
			c.ents[before].next = e.next
		case e.next != noEnt:
			c.heads[h] = e.next
		default:
			delete(c.heads, h)
		}
		c.dead += int(e.klen + e.blen)
		*e = rcEnt{next: c.free}
		c.free = i
	}
	if len(blob) == 0 {
		c.compactIfWasteful()
		return
	}
	i := c.free
	if i == noEnt {
		i = int32(len(c.ents))
		c.ents = append(c.ents, rcEnt{})
	} else {
		c.free = c.ents[i].next
	}
	c.ents[i] = rcEnt{next: noEnt, off: uint32(len(c.arena)), klen: uint32(len(root)), blen: uint32(len(blob))}
	c.arena = append(append(c.arena, root...), blob...)
	if h0, ok := c.heads[h]; ok {
		c.ents[i].next = h0
	}
	c.heads[h] = i
	c.compactIfWasteful()
}

// compactIfWasteful drops the bytes of replaced entries from the arena
// once they are most of it.
func (c *rowCache) compactIfWasteful() {
	if c.dead <= compactMin || c.dead <= len(c.arena)/2 {
		return
	}
	arena := make([]byte, 0, len(c.arena)-c.dead)
	for i := range c.ents {
		e := &c.ents[i]
		if e.klen == 0 {
			continue // free (a live entry's root key is never empty)
		}
		off := uint32(len(arena))
		arena = append(arena, c.arena[e.off:e.off+e.klen+e.blen]...)
		e.off = off
	}
	c.arena, c.dead = arena, 0
}

// appendRow appends an encoded row to a blob of set.
func appendRow(blob []byte, t *catalog.Table, row []types.Value) []byte {
	enc := mvcc.EncodeRow(nil, t.Columns, row)
	return append(binary.AppendUvarint(blob, uint64(len(enc))), enc...)
}
