package precompute

import (
	"context"
	"fmt"

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

// index maps the values of one column of a table to the keys of the rows
// holding them, as of the last boundary processed. It lives in memory and
// is rebuilt from the table when a maintainer starts.
type index struct {
	t    *catalog.Table
	col  int
	rows map[string]map[string][]types.Value // encoded value -> encoded key -> key
}

func encValue(v types.Value) string { return string(mvcc.EncodeKey(nil, 0, []types.Value{v})) }

func (ix *index) add(row []types.Value) {
	v := row[ix.col]
	if v.IsNull() {
		return
	}
	ev := encValue(v)
	m := ix.rows[ev]
	if m == nil {
		m = map[string][]types.Value{}
		ix.rows[ev] = m
	}
	key := keyOf(row, ix.t.PK)
	m[string(mvcc.EncodeKey(nil, ix.t.ID, key))] = key
}

func (ix *index) remove(row []types.Value) {
	v := row[ix.col]
	if v.IsNull() {
		return
	}
	ev := encValue(v)
	key := keyOf(row, ix.t.PK)
	delete(ix.rows[ev], string(mvcc.EncodeKey(nil, ix.t.ID, key)))
	if len(ix.rows[ev]) == 0 {
		delete(ix.rows, ev)
	}
}

// incremental is the per-maintainer state of incremental maintenance.
type incremental struct {
	indexes map[ColRef]*index // by (table id as Rel, column)
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

// buildIndexes reads the indexed tables AS OF b.
func (m *Maintainer) buildIndexes(b int64) error {
	inc := &incremental{indexes: map[ColRef]*index{}, built: b}
	sn := m.Store.At(b)
	defer sn.Close()
	for _, l := range m.lookups() {
		t := m.Def.Rels[l.Rel].Table
		if !needsIndex(t, l.Col) {
			continue
		}
		ix := &index{t: t, col: l.Col, rows: map[string]map[string][]types.Value{}}
		it := sn.Scan(t, nil)
		for it.Next() {
			ix.add(it.Row())
		}
		err := it.Err()
		it.Close()
		if err != nil {
			return err
		}
		inc.indexes[l] = ix
	}
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

// versions holds the old and new versions of the changed rows of a table.
type versions struct {
	keys     map[string][]types.Value
	old, new map[string][]types.Value // encoded key -> row (absent: no row)
}

func (m *Maintainer) readVersions(prev int64, ep *Epoch) (map[uint32]*versions, error) {
	out := map[uint32]*versions{}
	so, sb := m.Store.At(prev), m.Store.At(ep.B)
	defer so.Close()
	defer sb.Close()
	for id, ks := range ep.Keys {
		vs := &versions{keys: ks.keys, old: map[string][]types.Value{}, new: map[string][]types.Value{}}
		for enc, key := range ks.keys {
			if r, _, ok, err := so.Get(ks.t, key, nil); err != nil {
				return nil, err
			} else if ok {
				vs.old[enc] = r
			}
			if r, _, ok, err := sb.Get(ks.t, key, nil); err != nil {
				return nil, err
			} else if ok {
				vs.new[enc] = r
			}
		}
		out[id] = vs
	}
	return out, nil
}

// find returns the rows of rel with column col equal to v AS OF sn. Rows
// whose key is in changed are checked at sn too (the indexes hold B).
func (m *Maintainer) find(sn *mvcc.Snapshot, rel, col int, v types.Value, changed *versions) ([][]types.Value, error) {
	if v.IsNull() {
		return nil, nil
	}
	t := m.Def.Rels[rel].Table
	var out [][]types.Value
	if !needsIndex(t, col) {
		it := sn.Scan(t, []types.Value{v})
		for it.Next() {
			out = append(out, it.Row())
		}
		err := it.Err()
		it.Close()
		return out, err
	}
	ix := m.inc.indexes[ColRef{rel, col}]
	seen := map[string]bool{}
	get := func(enc string, key []types.Value) error {
		if seen[enc] {
			return nil
		}
		seen[enc] = true
		r, _, ok, err := sn.Get(t, key, nil)
		if err != nil || !ok {
			return err
		}
		if types.Compare(r[col], v) == 0 && !r[col].IsNull() {
			out = append(out, r)
		}
		return nil
	}
	for enc, key := range ix.rows[encValue(v)] {
		if err := get(enc, key); err != nil {
			return nil, err
		}
	}
	if changed != nil && sn.TS() != m.inc.built {
		for enc, key := range changed.keys {
			if err := get(enc, key); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// rootsOf walks row of rel up to the roots it joins at sn.
func (m *Maintainer) rootsOf(sn *mvcc.Snapshot, rel int, row []types.Value, roots *rowSet, depth int) error {
	if rel == 0 {
		roots.add(row, 0)
		return nil
	}
	e := parent(m.Def.Rels[rel])
	ups, err := m.find(sn, e.Other, e.OtherCol, row[e.Col], nil)
	if err != nil {
		return err
	}
	for _, u := range ups {
		if err := m.rootsOf(sn, e.Other, u, roots, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// restrict reads the given roots AS OF sn and every row they can join,
// as the tables of a restricted query.
func (m *Maintainer) restrict(sn *mvcc.Snapshot, roots *rowSet, vs map[uint32]*versions) (map[uint32]*rowSet, error) {
	d := m.Def
	sets := make([]*rowSet, len(d.Rels))
	sets[0] = newRowSet(d.Rels[0].Table)
	for _, r := range roots.rows {
		row, ts, ok, err := sn.Get(d.Rels[0].Table, r.key, nil)
		if err != nil {
			return nil, err
		}
		if ok {
			sets[0].add(row, ts)
		}
	}
	for i := 1; i < len(d.Rels); i++ {
		rel := d.Rels[i]
		e := parent(rel)
		sets[i] = newRowSet(rel.Table)
		done := map[string]bool{}
		for _, pr := range sets[e.Other].rows {
			v := pr.val[e.OtherCol]
			if v.IsNull() || done[encValue(v)] {
				continue
			}
			done[encValue(v)] = true
			rows, err := m.find(sn, i, e.Col, v, vs[rel.Table.ID])
			if err != nil {
				return nil, err
			}
			for _, row := range rows {
				// The commit time (_ts) of each row is read again: the
				// query may select it.
				_, ts, _, err := sn.Get(rel.Table, keyOf(row, rel.Table.PK), nil)
				if err != nil {
					return nil, err
				}
				sets[i].add(row, ts)
			}
		}
	}
	only := map[uint32]*rowSet{}
	for i, s := range sets {
		s.sort()
		only[d.Rels[i].Table.ID] = s
	}
	return only, nil
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
	// 1. The indexes move to B.
	for l, ix := range m.inc.indexes {
		v := vs[m.Def.Rels[l.Rel].Table.ID]
		if v == nil {
			continue
		}
		for _, r := range v.old {
			ix.remove(r)
		}
		for _, r := range v.new {
			ix.add(r)
		}
	}
	m.inc.built = ep.B
	// 2. The roots the changed rows reach.
	sb := m.Store.At(ep.B)
	defer sb.Close()
	roots := newRowSet(m.Def.Rels[0].Table)
	for i, rel := range m.Def.Rels {
		v := vs[rel.Table.ID]
		if v == nil {
			continue
		}
		for _, set := range []map[string][]types.Value{v.old, v.new} {
			for _, r := range set {
				if err := m.rootsOf(sb, i, r, roots, 0); err != nil {
					return err
				}
			}
		}
		if i == 0 {
			for _, key := range v.keys {
				row := make([]types.Value, len(rel.Table.Columns))
				for j, k := range rel.Table.PK {
					row[k] = key[j]
				}
				roots.add(row, 0)
			}
		}
	}
	roots.sort()
	if !m.Def.Grouped {
		return m.recomputeRoots(ctx, prev, ep.B, sb, roots, vs, st)
	}
	return m.recomputeGroups(ctx, prev, ep.B, sb, roots, vs, st)
}

func (m *Maintainer) recomputeRoots(ctx context.Context, prev, b int64, sb *mvcc.Snapshot, roots *rowSet, vs map[uint32]*versions, st *Stat) error {
	if len(roots.rows) == 0 {
		return nil
	}
	only, err := m.restrict(sb, roots, vs)
	if err != nil {
		return err
	}
	now, err := m.compute(ctx, b, only)
	if err != nil {
		return err
	}
	prefixes := make([][]types.Value, len(roots.rows))
	for i, r := range roots.rows {
		prefixes[i] = r.key
	}
	old, err := m.scanView(prev, prefixes)
	if err != nil {
		return err
	}
	st.Recomputed = len(now)
	st.Changed, err = m.write(b, now, old, nil)
	return err
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
	for _, key := range groups {
		v := key[0]
		if v.IsNull() {
			return m.stepFull(ctx, prev, b, st) // a NULL group has no index entry
		}
		if done[encValue(v)] {
			continue
		}
		done[encValue(v)] = true
		rows, err := m.find(sb, g.Rel, g.Col, v, nil)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := m.rootsOf(sb, g.Rel, r, groupRoots, 0); err != nil {
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
