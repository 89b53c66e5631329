package precompute

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/xwb1989/sqlparser"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/query"
	"ttq/types"
)

// Incremental maintenance of one epoch (prev, B].
//
// A row of a view without GROUP BY descends from exactly one row of the
// first table in FROM, its root; the view's key starts with the root's key.
// The rows of a root can only change if the root changed or a row joined
// to it (at prev or at B) changed. So the epoch:
//
//  1. reads the old (prev) and new (B) version of every changed base row
//     and updates the join-column indexes to B;
//  2. walks from each version of each changed row up the join chain (each
//     table's first ON equality leads to its parent table) to the roots
//     it reaches — through primary-key prefixes or the indexes, never a
//     table scan;
//  3. walks down from those roots to the rows they can join, and runs the
//     view's own query over base tables restricted to exactly those rows;
//  4. diffs the result with the stored view rows of those roots at prev and
//     writes the differences at B.
//
// A GROUP BY view finds the groups the affected roots fall into at prev
// and at B (the query without aggregation, restricted as in 3), then
// recomputes those groups whole (walking from the group column's rows to
// their roots), which also handles MIN and MAX after deletes.

func encValue(v types.Value) string { return string(mvcc.EncodeKey(nil, 0, []types.Value{v})) }

// incremental is the per-maintainer state of incremental maintenance.
type incremental struct {
	indexes map[ColRef]*index // by (table id as Rel, column)
	dir     *viewDir          // views without GROUP BY: the stored rows by root
	built   int64             // the boundary the indexes reflect
	keyText string            // grouped views: the query of the group keys
}

// needsIndex reports whether looking up col of t needs an index: only
// the leading primary-key column can be read by key prefix.
func needsIndex(t *catalog.Table, col int) bool { return t.PK[0] != col }

// canIncrement reports whether the view can be maintained incrementally;
// otherwise every epoch with changes recomputes it whole.
func (m *Maintainer) canIncrement() bool {
	d := m.Def
	seen := map[uint32]bool{}
	for _, r := range d.Rels {
		if seen[r.Table.ID] {
			return false // a self-join: restricting a table would restrict both uses
		}
		seen[r.Table.ID] = true
	}
	return !d.Grouped || len(d.Group) > 0
}

// parent is the edge a table's rows are walked up (and down) through.
func parent(r *Rel) Edge { return r.Edges[0] }

// lookups lists the (table, column) pairs the walks read by value.
func (m *Maintainer) lookups() []ColRef {
	var out []ColRef
	add := func(rel, col int) {
		c := ColRef{rel, col}
		for _, o := range out {
			if o == c {
				return
			}
		}
		out = append(out, c)
	}
	for i, r := range m.Def.Rels[1:] {
		e := parent(r)
		add(e.Other, e.OtherCol)
		add(i+1, e.Col)
	}
	if m.Def.Grouped && len(m.Def.Group) > 0 {
		add(m.Def.Group[0].Rel, m.Def.Group[0].Col)
	}
	return out
}

// indexed lists the (table, column) pairs kept in memory as indexes: the
// columns the walks read by value that are not a leading key column, and
// every joined table by the column it joins its parent on (restrict reads
// the rows each root joins from them, at the boundary the indexes hold).
func (m *Maintainer) indexed() []ColRef {
	var out []ColRef
	add := func(c ColRef) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	for _, l := range m.lookups() {
		if needsIndex(m.Def.Rels[l.Rel].Table, l.Col) {
			add(l)
		}
	}
	for i, r := range m.Def.Rels[1:] {
		add(ColRef{i + 1, parent(r).Col})
	}
	return out
}

// buildIndexes reads the indexed tables AS OF b.
func (m *Maintainer) buildIndexes(b int64) error {
	inc := &incremental{indexes: map[ColRef]*index{}, built: b}
	// Each index (and the directory) is one scan of its table, built side
	// by side: at start-up they cost a scan of every table the view reads.
	ixs := m.indexed()
	built := make([]*index, len(ixs))
	var dir *viewDir
	jobs := make([]func() error, 0, len(ixs)+1)
	for i, l := range ixs {
		jobs = append(jobs, func() error {
			t := m.Def.Rels[l.Rel].Table
			ix := newIndex(t, l.Col)
			sn := m.Store.At(b)
			defer sn.Close()
			it := sn.Scan(t, nil)
			defer it.Close()
			for it.Next() {
				ix.add(it.Row(), it.TS())
			}
			built[i] = ix
			return it.Err()
		})
	}
	if !m.Def.Grouped {
		jobs = append(jobs, func() error {
			var err error
			dir, err = m.buildDir(b)
			return err
		})
	}
	if err := runAll(jobs); err != nil {
		return err
	}
	for i, l := range ixs {
		inc.indexes[l] = built[i]
	}
	inc.dir = dir
	if m.Def.Grouped {
		sel, err := query.ParseSelect(m.View.Query)
		if err != nil {
			return err
		}
		ast := sel.AST
		ast.SelectExprs = nil
		for _, g := range m.Def.Group {
			r := m.Def.Rels[g.Rel]
			ast.SelectExprs = append(ast.SelectExprs, &sqlparser.AliasedExpr{Expr: &sqlparser.ColName{
				Name: sqlparser.NewColIdent(r.Table.Columns[g.Col].Name), Qualifier: sqlparser.TableName{Name: sqlparser.NewTableIdent(r.Alias)}}})
		}
		ast.GroupBy, ast.Having = nil, nil
		inc.keyText = sqlparser.String(ast)
	}
	m.inc = inc
	return nil
}

// Advance records that the base tables did not change in (from, to]: the
// indexes, valid at from, are valid at to.
func (m *Maintainer) Advance(from, to int64) {
	if m.inc != nil && m.inc.built == from {
		m.inc.built = to
	}
}

// versions holds the old and new versions of the changed rows of a table.
// When the walks need only the rows' keys (keyOnly: the table has no
// index on a non-key column and joins its parent on a key column), the
// old rows are not read (moveIndex takes the new ones from the change log
// or the store).
type versions struct {
	keys     map[string][]types.Value
	at       map[string]logged // the rows at b known from the change log
	b        int64
	old, new map[string][]types.Value // encoded key -> row (absent: no row)
	newTS    map[string]int64         // commit time of each new row's version
	keyOnly  bool
}

// needRows reports whether the changed rows of rel must be read: to move
// an index on one of its non-key columns (an index on a key column moves
// by key), or to walk up through a parent column that is not part of its
// key.
func (m *Maintainer) needRows(rel int) bool {
	for l := range m.inc.indexes {
		if l.Rel == rel && !inKey(m.Def.Rels[rel].Table, l.Col) {
			return true
		}
	}
	if rel == 0 {
		return false
	}
	r := m.Def.Rels[rel]
	return !inKey(r.Table, parent(r).Col)
}

// tableIndex returns an index on table id, or nil.
func (m *Maintainer) tableIndex(id uint32) *index {
	for l, ix := range m.inc.indexes {
		if m.Def.Rels[l.Rel].Table.ID == id {
			return ix
		}
	}
	return nil
}

func (m *Maintainer) relOf(id uint32) int {
	for i, r := range m.Def.Rels {
		if r.Table.ID == id {
			return i
		}
	}
	return -1
}

func (m *Maintainer) readVersions(prev int64, ep *Epoch) (map[uint32]*versions, error) {
	out := map[uint32]*versions{}
	for id, ks := range ep.Keys {
		vs := &versions{keys: ks.keys, at: ks.at, b: ep.B}
		out[id] = vs
		if rel := m.relOf(id); rel >= 0 && !m.needRows(rel) {
			vs.keyOnly = true
			continue
		}
		vs.old, vs.new, vs.newTS = map[string][]types.Value{}, map[string][]types.Value{}, map[string]int64{}
		// The reads are independent point lookups: split among the cores,
		// each part in key order.
		encs := make([]string, 0, len(ks.keys))
		for enc := range ks.keys {
			encs = append(encs, enc)
		}
		sort.Strings(encs)
		type read struct {
			enc            string
			old, new       []types.Value
			newTS          int64
			hasOld, hasNew bool
		}
		// An index on the table holds its rows at prev: the old rows
		// come from memory.
		ix := m.tableIndex(id)
		if m.inc.built != prev {
			ix = nil
		}
		parts, err := parallel(len(encs), func(lo, hi int, out *[]read) error {
			var so *mvcc.Snapshot
			if ix == nil {
				so = m.Store.At(prev)
				defer so.Close()
			}
			sb := m.Store.At(ep.B)
			defer sb.Close()
			for _, enc := range encs[lo:hi] {
				key, rd := ks.keys[enc], read{enc: enc}
				var err error
				if ix != nil {
					rd.old, _, rd.hasOld, err = ix.get([]byte(enc))
				} else {
					rd.old, _, rd.hasOld, err = so.Get(ks.t, key, nil)
				}
				if err != nil {
					return err
				}
				if l := ks.at[enc]; l.ok {
					rd.new, rd.newTS, rd.hasNew = l.row, l.ts, l.row != nil
				} else if rd.new, rd.newTS, rd.hasNew, err = sb.Get(ks.t, key, nil); err != nil {
					return err
				}
				*out = append(*out, rd)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			for _, rd := range p {
				if rd.hasOld {
					vs.old[rd.enc] = rd.old
				}
				if rd.hasNew {
					vs.new[rd.enc], vs.newTS[rd.enc] = rd.new, rd.newTS
				}
			}
		}
	}
	return out, nil
}

// walkIndexes returns the indexes the walks up from changed rows to their
// roots read: those on the column each table's parent joins it by.
func (m *Maintainer) walkIndexes() map[ColRef]bool {
	out := map[ColRef]bool{}
	for _, r := range m.Def.Rels[1:] {
		e := parent(r)
		out[ColRef{e.Other, e.OtherCol}] = true
	}
	return out
}

// moveIndexes brings the indexes that which selects from the previous
// boundary to b, given the changed rows of the epoch, each index on its
// own goroutine.
func (m *Maintainer) moveIndexes(b int64, vs map[uint32]*versions, which func(ColRef) bool) error {
	var jobs []func() error
	for l, ix := range m.inc.indexes {
		if v := vs[m.Def.Rels[l.Rel].Table.ID]; v != nil && which(l) {
			jobs = append(jobs, func() error { return m.moveIndex(b, l, ix, v) })
		}
	}
	return runAll(jobs)
}

// moveIndex brings one index to b.
func (m *Maintainer) moveIndex(b int64, l ColRef, ix *index, v *versions) error {
	t := m.Def.Rels[l.Rel].Table
	if !v.keyOnly {
		for enc, r := range v.old {
			if n, ok := v.new[enc]; ok && sameValue(n[l.Col], r[l.Col]) {
				continue // the new version replaces it in place
			}
			ix.remove(r)
		}
		for enc, r := range v.new {
			ix.add(r, v.newTS[enc])
		}
		return nil
	}
	// Only the keys were read (the index is on a key column, so a key
	// alone says which entry to drop, and a new version replaces the old
	// one in place); the rows at b come from the change log, or the store.
	var sb *mvcc.Snapshot
	defer func() {
		if sb != nil {
			sb.Close()
		}
	}()
	for enc, key := range v.keys {
		if lg := v.at[enc]; lg.ok {
			if lg.row != nil {
				ix.add(lg.row, lg.ts)
			} else {
				ix.remove(keyRow(t, key))
			}
			continue
		}
		if sb == nil {
			sb = m.Store.At(b)
		}
		r, ts, ok, err := sb.Get(t, key, nil)
		if err != nil {
			return err
		}
		if ok {
			ix.add(r, ts)
		} else {
			ix.remove(keyRow(t, key))
		}
	}
	return nil
}

// find calls fn with the rows of rel with column col equal to v AS OF sn
// (and the commit time of each): from the index on (rel, col) when sn is
// at the boundary the indexes hold, else from the store, through the
// index's keys (rows whose key is in changed are checked at sn too).
func (m *Maintainer) find(sn *mvcc.Snapshot, rel, col int, v types.Value, changed *versions, fn func(row []types.Value, ts int64)) error {
	if v.IsNull() {
		return nil
	}
	t := m.Def.Rels[rel].Table
	if ix := m.inc.indexes[ColRef{rel, col}]; ix != nil && sn.TS() == m.inc.built {
		// The index holds the table at this very boundary.
		return ix.eachRow(v, fn)
	}
	if isWholeKey(t, col) {
		if changed != nil && changed.b == sn.TS() {
			// A changed row: its version at b is known from the log.
			if l := changed.at[string(mvcc.EncodeKey(nil, t.ID, []types.Value{v}))]; l.ok {
				if l.row != nil {
					fn(l.row, l.ts)
				}
				return nil
			}
		}
		r, ts, ok, err := sn.Get(t, []types.Value{v}, nil)
		if ok {
			fn(r, ts)
		}
		return err
	}
	if !needsIndex(t, col) {
		it := sn.Scan(t, []types.Value{v})
		for it.Next() {
			fn(it.Row(), it.TS())
		}
		err := it.Err()
		it.Close()
		return err
	}
	ix := m.inc.indexes[ColRef{rel, col}]
	seen := map[string]bool{}
	get := func(enc string, key []types.Value) error {
		if seen[enc] {
			return nil
		}
		seen[enc] = true
		r, ts, ok, err := sn.Get(t, key, nil)
		if err != nil || !ok {
			return err
		}
		if types.Compare(r[col], v) == 0 && !r[col].IsNull() {
			fn(r, ts)
		}
		return nil
	}
	var err error
	if eerr := ix.each(v, func(enc string, key []types.Value) {
		if err == nil {
			err = get(enc, key)
		}
	}); eerr != nil {
		return eerr
	}
	if err != nil {
		return err
	}
	if changed != nil { // sn is not at built: the index may miss them
		for enc, key := range changed.keys {
			if err := get(enc, key); err != nil {
				return err
			}
		}
	}
	return nil
}

// rootsOf walks row of rel up to the roots it joins at sn. seen holds the
// (table, value) lookups already walked in this epoch: the roots they
// reach are already in roots.
func (m *Maintainer) rootsOf(sn *mvcc.Snapshot, rel int, row []types.Value, roots *rowSet, seen map[string]bool) error {
	if rel == 0 {
		roots.add(row, 0)
		return nil
	}
	e := parent(m.Def.Rels[rel])
	v := row[e.Col]
	if v.IsNull() {
		return nil
	}
	if e.Other == 0 {
		// The walk ends at the root table: its keys are enough. A root
		// key that does not exist at sn is harmless (it has no rows, and
		// its stored rows, if any, are deleted).
		up := m.Def.Rels[0].Table
		if isWholeKey(up, e.OtherCol) {
			key := []types.Value{v}
			roots.addKey(string(mvcc.EncodeKey(nil, up.ID, key)), key)
			return nil
		}
		if needsIndex(up, e.OtherCol) && sn.TS() == m.inc.built {
			// The index has the root rows at B too: restrict reads them
			// from here, not from the store.
			return m.inc.indexes[ColRef{0, e.OtherCol}].eachRow(v, roots.addAt)
		}
	}
	memo := strconv.Itoa(rel) + "/" + encValue(v)
	if seen[memo] {
		return nil
	}
	seen[memo] = true
	var ups [][]types.Value
	if err := m.find(sn, e.Other, e.OtherCol, v, nil, func(r []types.Value, _ int64) { ups = append(ups, r) }); err != nil {
		return err
	}
	for _, u := range ups {
		if err := m.rootsOf(sn, e.Other, u, roots, seen); err != nil {
			return err
		}
	}
	return nil
}

// restrict reads the given roots AS OF sn and every row they can join,
// as the tables of a restricted query. The reads of each table are split
// among the cores.
func (m *Maintainer) restrict(sn *mvcc.Snapshot, roots *rowSet, vs map[uint32]*versions) (map[uint32]*rowSet, error) {
	d := m.Def
	ts := sn.TS()
	sets := make([]*rowSet, len(d.Rels))
	root := d.Rels[0].Table
	sets[0] = newRowSet(root)
	// The epoch's changed roots are known at B already: read from the
	// change log or the store by readVersions (absent: deleted).
	changed := vs[root.ID]
	if changed != nil && (changed.keyOnly || changed.b != ts) {
		changed = nil
	}
	parts, err := parallel(len(roots.rows), func(lo, hi int, out *[]found) error {
		s := m.Store.At(ts)
		defer s.Close()
		for _, r := range roots.rows[lo:hi] {
			if r.at && ts == m.inc.built {
				*out = append(*out, found{row: r.val, ts: r.ts, enc: r.enc})
				continue
			}
			if changed != nil {
				if _, ok := changed.keys[r.enc]; ok {
					if row, ok := changed.new[r.enc]; ok {
						*out = append(*out, found{row: row, ts: changed.newTS[r.enc], enc: r.enc})
					}
					continue
				}
			}
			row, ts, ok, err := s.Get(root, r.key, nil)
			if err != nil {
				return err
			}
			if ok {
				*out = append(*out, newFound(root, row, ts))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	addAll(sets[0], parts)
	for i := 1; i < len(d.Rels); i++ {
		rel := d.Rels[i]
		e := parent(rel)
		set := newRowSet(rel.Table)
		sets[i] = set
		// The distinct join values, in key order (the prefix reads move
		// forward through the table).
		vals := map[string]types.Value{}
		for _, pr := range sets[e.Other].rows {
			if v := pr.val[e.OtherCol]; !v.IsNull() {
				vals[encValue(v)] = v
			}
		}
		encs := make([]string, 0, len(vals))
		for enc := range vals {
			encs = append(encs, enc)
		}
		sort.Strings(encs)
		_, covered := m.inc.indexes[ColRef{i, e.Col}]
		covered = covered && ts == m.inc.built
		prefix := !covered && !isWholeKey(rel.Table, e.Col) && !needsIndex(rel.Table, e.Col)
		parts, err := parallel(len(encs), func(lo, hi int, out *[]found) error {
			add := func(row []types.Value, ts int64) { *out = append(*out, newFound(rel.Table, row, ts)) }
			if prefix {
				sk := newSeeker(m.Store, rel.Table, ts)
				defer sk.close()
				for _, enc := range encs[lo:hi] {
					if err := sk.scan([]types.Value{vals[enc]}, add); err != nil {
						return err
					}
				}
				return nil
			}
			s := m.Store.At(ts)
			defer s.Close()
			for _, enc := range encs[lo:hi] {
				if err := m.find(s, i, e.Col, vals[enc], vs[rel.Table.ID], add); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		addAll(set, parts)
	}
	only := map[uint32]*rowSet{}
	for i, s := range sets {
		s.sort()
		only[d.Rels[i].Table.ID] = s
	}
	return only, nil
}

// found is a row read, with the commit time of its version and its
// encoded key (computed by the reading worker).
type found struct {
	row []types.Value
	ts  int64
	enc string
}

func newFound(t *catalog.Table, row []types.Value, ts int64) found {
	return found{row: row, ts: ts, enc: string(mvcc.EncodeRowKey(nil, t.ID, row, t.PK))}
}

func addAll(s *rowSet, parts [][]found) {
	n := len(s.rows)
	for _, p := range parts {
		n += len(p)
	}
	s.rows = slices.Grow(s.rows, n-len(s.rows))
	for _, p := range parts {
		for _, f := range p {
			s.addEnc(f.enc, f.row, f.ts)
		}
	}
}

// minParallel is the smallest number of reads split among the cores.
const minParallel = 1024

// parallel runs fn over [0, n) in pieces, on up to GOMAXPROCS goroutines
// that take the next piece as they finish one (the cost of an item varies:
// a changed root is one map entry, a changed joined row may reach many
// roots), each piece with its own output, and returns the outputs in piece
// order. Small inputs run on the caller's goroutine.
func parallel[T any](n int, fn func(lo, hi int, out *[]T) error) ([][]T, error) {
	w := runtime.GOMAXPROCS(0)
	if n < minParallel || w < 2 {
		var out []T
		err := fn(0, n, &out)
		return [][]T{out}, err
	}
	pieces := min(piecesPerCore*w, n/(minParallel/piecesPerCore))
	size := (n + pieces - 1) / pieces
	pieces = (n + size - 1) / size
	outs := make([][]T, pieces)
	errs := make([]error, pieces)
	var (
		next atomic.Int32
		wg   sync.WaitGroup
	)
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := int(next.Add(1)) - 1; p < pieces; p = int(next.Add(1)) - 1 {
				if errs[p] = fn(p*size, min((p+1)*size, n), &outs[p]); errs[p] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return outs, errors.Join(errs...)
}

// piecesPerCore is how many pieces parallel cuts an input into per core.
const piecesPerCore = 4

// runAll runs jobs, up to GOMAXPROCS at a time, and returns their errors.
func runAll(jobs []func() error) error {
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = job()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stepIncremental is Step for views that canIncrement.
func (m *Maintainer) stepIncremental(ctx context.Context, prev int64, ep *Epoch, st *Stat) error {
	if m.inc == nil || m.inc.built != prev {
		if err := m.buildIndexes(prev); err != nil {
			return err
		}
	}
	vs, err := m.readVersions(prev, ep)
	if err != nil {
		return err
	}
	// 1. The indexes move to B: first those the walks up read, then the
	// others (read by restrict only) while the walks run.
	walk := m.walkIndexes()
	if err := m.moveIndexes(ep.B, vs, func(l ColRef) bool { return walk[l] }); err != nil {
		return err
	}
	m.inc.built = ep.B
	moved := make(chan error, 1)
	go func() { moved <- m.moveIndexes(ep.B, vs, func(l ColRef) bool { return !walk[l] }) }()
	sb := m.Store.At(ep.B)
	defer sb.Close()
	// An epoch that reaches most of the view is cheaper recomputed whole
	// (scans and hash joins) than root by root (a lookup per row).
	est := m.Store.EstimateVersions(m.Def.Rels[0].Table)
	whole := func(roots int) bool { return est >= fullMinVersions && int64(roots)*fullDivisor >= est }
	// 2. The changed roots themselves are known already: a view without
	// GROUP BY starts recomputing them while the walks below look for the
	// others, so that its writes (the serial part of an epoch: Badger's
	// write goroutine) start early. They wait for the other indexes only.
	var (
		rc    *recompute
		early map[string][]types.Value // their encoded keys
		sent  = moved                  // the other indexes moved (and the changed roots handed out)
	)
	if v := vs[m.Def.Rels[0].Table.ID]; v != nil && !m.Def.Grouped && !whole(len(v.keys)) {
		early = v.keys
		rows := make([]row, 0, len(early))
		for enc, key := range early {
			rows = append(rows, row{enc: enc, key: key, val: keyRow(m.Def.Rels[0].Table, key)})
		}
		slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.enc, b.enc) })
		rc = m.startRecompute(ctx, prev, ep.B, sb, vs, st)
		sent = make(chan error, 1)
		go func() {
			err := <-moved
			if err == nil {
				rc.add(rows)
			}
			sent <- err
		}()
	}
	// 3. The roots the changed rows reach.
	type start struct {
		rel int
		row []types.Value
	}
	var starts []start
	for i, rel := range m.Def.Rels {
		v := vs[rel.Table.ID]
		if v == nil || i == 0 && early != nil {
			continue
		}
		if i == 0 || v.keyOnly {
			// The root's own keys, or the key columns the walk goes up by.
			for _, key := range v.keys {
				starts = append(starts, start{i, keyRow(rel.Table, key)})
			}
		}
		for _, set := range []map[string][]types.Value{v.old, v.new} {
			for _, r := range set {
				starts = append(starts, start{i, r})
			}
		}
	}
	// The walks are independent lookups in large maps and tables (bound by
	// memory latency), so they are split among the cores.
	parts, err := parallel(len(starts), func(lo, hi int, out *[]row) error {
		sn := sb
		if lo > 0 || hi < len(starts) {
			sn = m.Store.At(ep.B)
			defer sn.Close()
		}
		local, seen := newRowSet(m.Def.Rels[0].Table), map[string]bool{}
		for _, s := range starts[lo:hi] {
			if err := m.rootsOf(sn, s.rel, s.row, local, seen); err != nil {
				return err
			}
		}
		*out = local.rows
		return nil
	})
	if err := errors.Join(err, <-sent); err != nil {
		if rc != nil {
			err = errors.Join(err, rc.wait())
		}
		return err
	}
	roots := newRowSet(m.Def.Rels[0].Table)
	for _, p := range parts {
		for _, r := range p {
			if _, ok := early[r.enc]; !ok {
				roots.addRow(r)
			}
		}
	}
	if whole(len(early) + len(roots.rows)) {
		if rc != nil {
			// The changed roots recomputed meanwhile are written again,
			// the same versions, by the whole recompute.
			if err := rc.wait(); err != nil {
				return err
			}
			st.Recomputed, st.Changed = 0, 0
		}
		return m.stepFull(ctx, prev, ep.B, st)
	}
	// Roots read from the store are read in key order, after those whose
	// rows came from an index (they need no order).
	rs, n := roots.rows, 0
	for i := range rs {
		if rs[i].at {
			rs[i], rs[n] = rs[n], rs[i]
			n++
		}
	}
	slices.SortFunc(rs[n:], func(a, b row) int { return strings.Compare(a.enc, b.enc) })
	roots.keys = nil // stale now, and not needed
	if m.Def.Grouped {
		return m.recomputeGroups(ctx, prev, ep.B, sb, roots, vs, st)
	}
	if rc == nil {
		rc = m.startRecompute(ctx, prev, ep.B, sb, vs, st)
	}
	rc.add(roots.rows)
	return rc.wait()
}

// fullDivisor: an epoch whose roots number at least 1/fullDivisor of the
// root table's stored versions recomputes the view whole. The estimate
// counts versions, not rows, so a table with a long history switches
// later than one without.
// Small tables (below fullMinVersions) stay incremental: either way is
// cheap there.
const (
	fullDivisor     = 3
	fullMinVersions = 10_000
)

// rootChunk bounds how many roots are recomputed together: the view rows
// of different roots are independent, so the roots are processed in
// chunks, one per core at a time, and the chunks' writes overlap the
// others' reads (memory stays bounded by the chunks in flight).
const rootChunk = 4096

// recompute recomputes the view rows of roots chunk by chunk, on up to
// GOMAXPROCS goroutines, and writes their differences through one writer.
// Roots are added in one or more sets (add), disjoint, and wait returns
// once every chunk is written.
type recompute struct {
	m       *Maintainer
	ctx     context.Context
	prev, b int64
	sb      *mvcc.Snapshot
	vs      map[uint32]*versions
	sem     chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex // guards errs and st
	errs    []error
	st      *Stat
	batches chan *mvcc.Batch
	written chan error
}

func (m *Maintainer) startRecompute(ctx context.Context, prev, b int64, sb *mvcc.Snapshot, vs map[uint32]*versions, st *Stat) *recompute {
	r := &recompute{m: m, ctx: ctx, prev: prev, b: b, sb: sb, vs: vs, st: st,
		sem: make(chan struct{}, runtime.GOMAXPROCS(0)), batches: make(chan *mvcc.Batch, 64), written: make(chan error, 1)}
	// One writer takes the chunks' batches: the batches of the chunks
	// that finished while it wrote go out together, as one write (and one
	// sync) instead of one each, and a chunk never waits for its write.
	go func() {
		var err error
		for batch := range r.batches {
		more:
			for {
				select {
				case o, ok := <-r.batches:
					if !ok {
						break more
					}
					batch.Append(o)
				default:
					break more
				}
			}
			if err == nil {
				err = batch.Flush()
			}
		}
		r.written <- err
	}()
	return r
}

// add recomputes rows (roots disjoint from those of earlier adds), in
// chunks; it returns once the last chunk has started.
func (r *recompute) add(rows []row) {
	n := len(rows)
	if n == 0 {
		return
	}
	w := cap(r.sem)
	chunks := (n + rootChunk - 1) / rootChunk
	if n >= minParallel {
		chunks = (chunks + w - 1) / w * w
	}
	size := (n + chunks - 1) / chunks
	for lo := 0; lo < n; lo += size {
		chunk := &rowSet{t: r.m.Def.Rels[0].Table, rows: rows[lo:min(lo+size, n)]}
		r.sem <- struct{}{}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() { <-r.sem }()
			batch, changed, x, err := r.m.recomputeChunk(r.ctx, r.prev, r.b, r.sb, chunk, r.vs)
			if err == nil {
				// Sorted here, side by side; the writer merges them.
				batch.Sort()
				r.batches <- batch
				// The chunk's roots are its own: the other chunks read
				// and change the directory entries of theirs meanwhile.
				// It moves before its rows are written: if the write
				// fails, Step drops the directory.
				r.m.inc.dir.apply(x)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if err != nil {
				r.errs = append(r.errs, err)
				return
			}
			r.st.Recomputed += x.rows
			r.st.Changed += changed
		}()
	}
}

// wait waits for every chunk added and its write.
func (r *recompute) wait() error {
	r.wg.Wait()
	close(r.batches)
	return errors.Join(append(r.errs, <-r.written)...) // on an error Step drops the directory
}

// recomputeChunk recomputes the view rows of roots at b and returns the
// batch of their differences with the stored rows at prev (from the
// directory; not flushed), its number of versions and the directory's
// changes.
func (m *Maintainer) recomputeChunk(ctx context.Context, prev, b int64, sb *mvcc.Snapshot, roots *rowSet, vs map[uint32]*versions) (*mvcc.Batch, int, *dirDiff, error) {
	only, err := m.restrict(sb, roots, vs)
	if err != nil {
		return nil, 0, nil, err
	}
	now, err := m.compute(ctx, b, only)
	if err != nil {
		return nil, 0, nil, err
	}
	return m.diffDir(b, now, roots, m.inc.dir)
}

// diffDir is diff with the stored rows of roots taken from the directory:
// it returns the batch, its number of versions and the directory's
// changes.
func (m *Maintainer) diffDir(b int64, now viewRows, roots *rowSet, d *viewDir) (*mvcc.Batch, int, *dirDiff, error) {
	t := m.table()
	x := d.diff(len(roots.rows), func(i int, buf []byte) []byte { return mvcc.EncodeKey(buf, m.View.ID, roots.rows[i].key) })
	batch := m.Store.NewBatch()
	n := 0
	var scratch []byte
	for k, r := range now {
		if !x.row(m.dirRowOf(d, k, r, &scratch)) {
			continue
		}
		if err := batch.Put(t, r, b); err != nil {
			batch.Cancel()
			return nil, 0, nil, err
		}
		n++
	}
	kinds := make([]types.Type, len(m.View.PK))
	for i, c := range m.View.PK {
		kinds[i] = t.Columns[c].Type
	}
	err := x.removed(func(k string) error {
		_, key, err := mvcc.DecodeKey([]byte(k), kinds)
		if err == nil {
			err = batch.Delete(t, key, b)
		}
		n++
		return err
	})
	if err != nil {
		batch.Cancel()
		return nil, 0, nil, err
	}
	return batch, n, x, nil
}

func (m *Maintainer) recomputeGroups(ctx context.Context, prev, b int64, sb *mvcc.Snapshot, roots *rowSet, vs map[uint32]*versions, st *Stat) error {
	if len(roots.rows) == 0 {
		return nil
	}
	// The groups the affected roots fall into, at prev and at B.
	groups := map[string][]types.Value{}
	so := m.Store.At(prev)
	defer so.Close()
	for _, at := range []struct {
		sn *mvcc.Snapshot
		ts int64
	}{{so, prev}, {sb, b}} {
		only, err := m.restrict(at.sn, roots, vs)
		if err != nil {
			return err
		}
		sel, err := query.ParseSelect(m.inc.keyText)
		if err != nil {
			return err
		}
		res, err := query.Run(ctx, &asOf{cat: m.Cat, store: m.Store, ts: at.ts, only: only}, sel, query.Options{})
		if err != nil {
			return fmt.Errorf("view %s groups at %d: %w", m.View.Name, at.ts, err)
		}
		for _, key := range res.Rows() {
			groups[string(mvcc.EncodeKey(nil, m.View.ID, key))] = key
		}
		res.Release()
	}
	if len(groups) == 0 {
		return nil
	}
	// Every root of those groups, through the first grouped column.
	g := m.Def.Group[0]
	groupRoots := newRowSet(m.Def.Rels[0].Table)
	done := map[string]bool{}
	gseen := map[string]bool{}
	for _, key := range groups {
		v := key[0]
		if v.IsNull() {
			return m.stepFull(ctx, prev, b, st) // a NULL group has no index entry
		}
		if done[encValue(v)] {
			continue
		}
		done[encValue(v)] = true
		var rows [][]types.Value
		if err := m.find(sb, g.Rel, g.Col, v, nil, func(r []types.Value, _ int64) { rows = append(rows, r) }); err != nil {
			return err
		}
		for _, r := range rows {
			if err := m.rootsOf(sb, g.Rel, r, groupRoots, gseen); err != nil {
				return err
			}
		}
	}
	groupRoots.sort()
	only, err := m.restrict(sb, groupRoots, vs)
	if err != nil {
		return err
	}
	now, err := m.compute(ctx, b, only)
	if err != nil {
		return err
	}
	scope := map[string]bool{}
	old := viewRows{}
	t := m.table()
	for enc, key := range groups {
		scope[enc] = true
		r, _, ok, err := so.Get(t, key, nil)
		if err != nil {
			return err
		}
		if ok {
			old[enc] = r
		}
	}
	st.Recomputed = len(groups)
	st.Changed, err = m.write(b, now, old, scope)
	return err
}
