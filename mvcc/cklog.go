package mvcc

import (
	"bytes"
	"cmp"
	"slices"

	"ttq/catalog"
)

// A scan AS OF an instant after a table's last checkpoint c reads c's rows
// and the versions written since. The store logs those versions in memory
// as they are written (ckLog), so the scan merges c's cached rows with the
// log, sorted by key, instead of stepping a Badger iterator through every
// version of every key. The sorted log is kept as change list segments (a
// base and a tail, logSorted) and brought up to date by the next scan that
// finds the log longer, so a scan costs the table's rows plus the versions
// since c, whatever the depth of the history. The log exists once this
// process has checkpointed the table (it is what the next checkpoint is
// built from); before that, such scans read Badger. Starting a log for a
// scan (a walk of the versions since c) was tried: the logs it started held
// memory that the soak test (crashtest) saw grow.

// logDepth is how many versions a row a table must store, about, for scans
// after its last checkpoint to read the log.
const logDepth = 3

// logSorted is the first n entries of a table's log (of generation gen),
// sorted as two change lists: base, its first baseN entries, and tail, the
// rest. A scan that finds the log longer sorts the entries after baseN
// again into a new tail, and merges them into a new base only once they
// outgrow maxTail(baseN): each entry is copied into a base a bounded
// number of times, so frequent scans of the newest instants do not copy
// the whole log each.
type logSorted struct {
	gen        uint64
	baseN, n   int
	base, tail *segment
}

// maxTail is how many entries a tail may hold over a base of n.
func maxTail(n int) int { return n/8 + tailMin }

// tailMin is the tail a small base may have (a variable for tests).
var tailMin = 4096

// scanLogged is scanFrom's scan AS OF T after t's last checkpoint c, over
// the segment cache and the log, or nil when either cannot serve it.
func (s *Store) scanLogged(t *catalog.Table, T, c int64) RowIter {
	// The log pays (in memory: it and its sorted copy) when the history is
	// deep: a Badger scan steps over every version, the log's over the
	// rows and the versions since c. A shallow one is scanned in Badger.
	s.ckpts.mu.Lock()
	visible := int64(0)
	if tc := s.ckpts.m[t.ID]; tc != nil {
		visible = tc.Rows
	}
	s.ckpts.mu.Unlock()
	if s.EstimateVersions(t) < logDepth*max(visible, 1) {
		return nil
	}
	ls := s.logSegment(t.ID, c)
	if ls == nil {
		return nil
	}
	rows, err := s.segs.get(s, segKey{t.ID, ckRows, c})
	if rows == nil || err != nil {
		return nil
	}
	si := &segIter{t: t, T: T, rows: rows, rend: len(rows.ents), chg: ls.base, cend: len(ls.base.ents)}
	if len(ls.tail.ents) > 0 {
		si.chg2, si.cend2 = ls.tail, len(ls.tail.ents)
	}
	si.nextChange()
	return si
}

// logSegment returns the versions of table id logged since its checkpoint
// c, sorted by key and, within a key, in the order they were written, or
// nil when the log does not hold them all (this process has not taken a
// checkpoint of the table yet, or the log outgrew maxLogged), the segment
// cache is off, or they take more than the cache gives one segment. The
// segments' memory is the log's, not the cache's: it is dropped with the
// log's entries at the next checkpoint.
func (s *Store) logSegment(id uint32, c int64) *logSorted {
	if s.segs.budget < 0 {
		return nil
	}
	s.ckpts.mu.Lock()
	lg := s.ckpts.logs[id]
	s.ckpts.mu.Unlock()
	if lg == nil {
		return nil
	}
	lg.sortMu.Lock()
	defer lg.sortMu.Unlock()
	s.ckpts.mu.Lock()
	ok := s.ckpts.logs[id] == lg && lg.complete && lg.after == c
	ents, gen, old := lg.ents, lg.gen, lg.sorted
	s.ckpts.mu.Unlock()
	if !ok {
		return nil
	}
	// ents is a prefix no writer changes: the log is appended to, or
	// replaced (gen moves on).
	if old == nil || old.gen != gen {
		old = &logSorted{gen: gen, base: &segment{}, tail: &segment{}}
	}
	if old.n == len(ents) {
		return old
	}
	limit := s.segs.budget / 2
	ls := &logSorted{gen: gen, baseN: old.baseN, n: len(ents), base: old.base}
	var err error
	if len(ents)-old.baseN <= maxTail(old.baseN) {
		ls.tail, err = mergeLog(&segment{}, ents[old.baseN:], limit)
	} else {
		ls.base, err = mergeLog(old.base, ents[old.baseN:], limit)
		ls.baseN, ls.tail = len(ents), &segment{}
	}
	if err != nil || ls.base.size()+ls.tail.size() > limit {
		return nil // too big
	}
	s.ckpts.mu.Lock()
	if lg.gen == gen {
		lg.sorted = ls
	}
	s.ckpts.mu.Unlock()
	return ls
}

// mergeLog returns a new segment with old's entries and the versions add
// (written after them), by key and, within a key, by time; versions of one
// key at one time stay in the order they were written, so the last one
// wins as in Badger.
func mergeLog(old *segment, add []logEnt, limit int64) (*segment, error) {
	add = slices.Clone(add)
	slices.SortStableFunc(add, func(a, b logEnt) int {
		if c := bytes.Compare(a.pk, b.pk); c != 0 {
			return c
		}
		return cmp.Compare(a.ts, b.ts)
	})
	n := len(old.buf)
	for _, e := range add {
		n += len(e.pk) + len(e.val)
	}
	g := &segment{buf: make([]byte, 0, n), ents: make([]segEnt, 0, len(old.ents)+len(add))}
	i, j := 0, 0
	for i < len(old.ents) || j < len(add) {
		var err error
		if j == len(add) || i < len(old.ents) && cmpLogged(old, i, &add[j]) <= 0 {
			e := &old.ents[i]
			err = g.add(old.entKey(i), old.entVal(i), e.ts, e.del, limit)
			i++
		} else {
			e := &add[j]
			err = g.add(e.pk, e.val, e.ts, e.val == nil, limit)
			j++
		}
		if err != nil {
			return nil, err
		}
	}
	for k := 1; k < len(g.ents); k++ {
		g.ents[k].same = bytes.Equal(g.entKey(k), g.entKey(k-1))
	}
	return g, nil
}

// cmpLogged orders entry i of g against a logged version by key and time.
func cmpLogged(g *segment, i int, e *logEnt) int {
	if c := bytes.Compare(g.entKey(i), e.pk); c != 0 {
		return c
	}
	return cmp.Compare(g.ents[i].ts, e.ts)
}
