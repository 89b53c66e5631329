package precompute

import (
	"bytes"
	"hash/maphash"
	"math"
	"sync"

	"ttq/mvcc"
	"ttq/types"
)

// viewDir is an in-memory directory of the stored rows of a view without
// GROUP BY, as of the boundary the indexes reflect: for each root, the
// encoded keys of its view rows and a 128-bit digest of each row's
// encoding. An epoch takes the old rows of the roots it recomputes from
// it (which keys to delete, which rows are unchanged) instead of reading
// them from the view table, a Badger seek per root that cost about a
// quarter of an epoch's CPU.
//
// Like index, it holds one entry per view row and no pointer the
// collector follows: keys in one byte arena, entries in one slice,
// chained from a map of root hashes. About 80 bytes a view row (82 MiB
// measured for 1M rows).
//
// A digest stands for a row only to decide that a recomputed row equals
// the stored one and need not be written again: two different rows with
// the same digest (probability 2^-128 per comparison, with seeds chosen
// per process) would leave the older row in place.
type viewDir struct {
	// mu lets the chunks of an epoch, whose roots are disjoint, compare
	// their roots' rows side by side and apply the differences in turn.
	mu     sync.RWMutex
	s1, s2 maphash.Seed
	mask   uint64           // of root hashes: all ones (tests make them collide)
	byRoot map[uint64]int32 // hash of a root's key prefix -> first entry (chained by next)
	ents   []dirEnt
	free   int32  // first unused entry (chained by next), or noEnt
	arena  []byte // each entry's encoded view key
	dead   int    // arena bytes of removed entries
	n      int    // entries in use
}

// digest identifies a view row's encoding.
type digest [2]uint64

type dirEnt struct {
	next      int32
	off, klen uint32
	d         digest
}

// dirRow is one view row for the directory: the encoded key of its root
// (the prefix of its own key), its encoded key and its digest.
type dirRow struct {
	root, key string
	d         digest
}

func newViewDir() *viewDir {
	return &viewDir{s1: maphash.MakeSeed(), s2: maphash.MakeSeed(), byRoot: map[uint64]int32{}, free: noEnt, mask: math.MaxUint64}
}

func (d *viewDir) rootHash(root []byte) uint64 { return maphash.Bytes(d.s1, root) & d.mask }

// digestOf returns the digest of an encoded row.
func (d *viewDir) digestOf(enc []byte) digest {
	return digest{maphash.Bytes(d.s1, enc), maphash.Bytes(d.s2, enc)}
}

func (d *viewDir) key(e *dirEnt) []byte { return d.arena[e.off : e.off+e.klen] }

// each calls fn with the entry, key and digest of every row of the root
// whose encoded key (as a view-key prefix) is root.
func (d *viewDir) each(root []byte, fn func(i int32, key []byte, dg digest)) {
	i, ok := d.byRoot[d.rootHash(root)]
	if !ok {
		return
	}
	for ; i != noEnt; i = d.ents[i].next {
		e := &d.ents[i]
		// Encoded keys are prefix-free value by value, so only this
		// root's rows start with its prefix; other roots on the chain
		// share its hash only.
		if k := d.key(e); bytes.HasPrefix(k, root) {
			fn(i, k, e.d)
		}
	}
}

// add records a row; the caller removed any row with the same key.
func (d *viewDir) add(r dirRow) {
	h := maphash.String(d.s1, r.root) & d.mask
	i := d.free
	if i == noEnt {
		i = int32(len(d.ents))
		d.ents = append(d.ents, dirEnt{})
	} else {
		d.free = d.ents[i].next
	}
	next := int32(noEnt)
	if f, ok := d.byRoot[h]; ok {
		next = f
	}
	d.ents[i] = dirEnt{next: next, off: uint32(len(d.arena)), klen: uint32(len(r.key)), d: r.d}
	d.arena = append(d.arena, r.key...)
	d.byRoot[h] = i
	d.n++
}

// remove removes entry i, on the chain of root hash h.
func (d *viewDir) remove(h uint64, i int32) {
	e := &d.ents[i]
	if head := d.byRoot[h]; head == i {
		if e.next == noEnt {
			delete(d.byRoot, h)
		} else {
			d.byRoot[h] = e.next
		}
	} else {
		p := head
		for d.ents[p].next != i {
			p = d.ents[p].next
		}
		d.ents[p].next = e.next
	}
	d.dead += int(e.klen)
	*e = dirEnt{next: d.free, off: freeOff}
	d.free = i
	d.n--
}

// compact drops the bytes of removed entries from the arena.
func (d *viewDir) compact() { d.arena, d.dead = compactArena(d.arena, d.dead, d.ents), 0 }

func (e *dirEnt) span() (off, n uint32) { return e.off, e.klen }
func (e *dirEnt) moveTo(off uint32)     { e.off = off }

// dirDiff compares the rows the directory holds for some roots with their
// recomputed rows, and records what the directory must change to hold the
// recomputed ones. A recomputed row whose key the directory holds (the
// common case: a root's rows keep their keys) changes the digest of its
// entry in place; only rows that appear or vanish touch the chains.
type dirDiff struct {
	old  map[string]oldDirRow // rows of the roots not matched yet
	set  []dirSet             // entries whose digest changes
	adds []dirRow             // rows to add
	gone []oldDirRow          // entries to remove
	rows int                  // recomputed rows matched
}

type oldDirRow struct {
	h uint64 // root hash: the chain the entry is on
	i int32
	d digest
}

type dirSet struct {
	i int32
	d digest
}

// diff starts a comparison of the rows of n roots, root(i, buf) returning
// the encoded key of the i-th (it may append to buf and return it). The
// entries of those roots are the caller's until it applies the diff: the
// roots an epoch recomputes side by side are disjoint.
func (d *viewDir) diff(n int, root func(i int, buf []byte) []byte) *dirDiff {
	x := &dirDiff{old: make(map[string]oldDirRow, n)}
	var kb []byte
	d.mu.RLock()
	defer d.mu.RUnlock()
	for i := 0; i < n; i++ {
		kb = root(i, kb[:0])
		h := d.rootHash(kb)
		d.each(kb, func(i int32, key []byte, dg digest) { x.old[string(key)] = oldDirRow{h: h, i: i, d: dg} })
	}
	return x
}

// row matches a recomputed row and reports whether it differs from the
// stored one (or is new): whether it must be written.
func (x *dirDiff) row(r dirRow) bool {
	x.rows++
	o, ok := x.old[r.key]
	if !ok {
		x.adds = append(x.adds, r)
		return true
	}
	delete(x.old, r.key)
	if o.d == r.d {
		return false
	}
	x.set = append(x.set, dirSet{o.i, r.d})
	return true
}

// removed calls fn with the encoded key of every stored row of the roots
// that no recomputed row matched: the rows to delete. Call it once, after
// the last row.
func (x *dirDiff) removed(fn func(key string) error) error {
	for k, o := range x.old {
		if err := fn(k); err != nil {
			return err
		}
		x.gone = append(x.gone, o)
	}
	x.old = nil
	return nil
}

// apply makes the directory hold the recomputed rows of x's roots.
func (d *viewDir) apply(x *dirDiff) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range x.set {
		d.ents[s.i].d = s.d
	}
	for _, o := range x.gone {
		d.remove(o.h, o.i)
	}
	for _, r := range x.adds {
		d.add(r)
	}
	if d.dead > compactMin && d.dead > len(d.arena)/2 {
		d.compact()
	}
}

// len returns the number of rows held.
func (d *viewDir) len() int { return d.n }

// dirRowOf returns the directory entry of view row r, whose encoded key
// is key.
func (m *Maintainer) dirRowOf(d *viewDir, key string, r []types.Value, scratch *[]byte) dirRow {
	// The root's encoded key is a prefix of the row's.
	nroot := len(m.Def.Rels[0].Table.PK)
	*scratch = mvcc.EncodeRowKey((*scratch)[:0], m.View.ID, r, m.View.PK[:nroot])
	root := key[:len(*scratch)]
	*scratch = mvcc.EncodeRow((*scratch)[:0], m.table().Columns, r)
	return dirRow{root: root, key: key, d: d.digestOf(*scratch)}
}

// buildDir reads the stored view rows AS OF b into a new directory.
func (m *Maintainer) buildDir(b int64) (*viewDir, error) {
	d := newViewDir()
	sn := m.Store.At(b)
	defer sn.Close()
	it := sn.Scan(m.table(), nil)
	defer it.Close()
	var scratch []byte
	for it.Next() {
		r := it.Row()
		d.add(m.dirRowOf(d, m.encKey(r), r, &scratch))
	}
	return d, it.Err()
}

// dirFrom returns a new directory of the rows of a whole view.
func (m *Maintainer) dirFrom(rows viewRows) *viewDir {
	d := newViewDir()
	var scratch []byte
	for k, r := range rows {
		d.add(m.dirRowOf(d, k, r, &scratch))
	}
	return d
}
