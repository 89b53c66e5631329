package query

import (
	"fmt"
	"strings"

	"ttq/types"
)

// joinKind is the algorithm of a join.
type joinKind int

const (
	joinHash   joinKind = iota // build a hash table of the right side, probe with the left
	joinIndex                  // a primary-key Get on the right table per left row
	joinNested                 // no equality: every right row for every left row
)

// joinNode joins left and right. Its rows are a left row followed by a
// right row (NULLs for an unmatched left row of a LEFT JOIN).
type joinNode struct {
	kind     joinKind
	left     node
	right    node
	leftJoin bool
	// hash join: equal keys, computed over the left and the right row
	leftKeys, rightKeys []*expr
	// index join: the right table's primary key computed over the left row
	rscan   *scanNode
	keyOf   []*expr
	keyText text
	// residual ON conditions over the joined row; for a LEFT JOIN they decide
	// matching, they do not filter left rows.
	residual     *expr
	residualText text
	eqText       text
	outCols      []column
}

func (n *joinNode) cols() []column { return n.outCols }

func (n *joinNode) open(x *execCtx) (rowIter, error) { return n.openRows(x, false) }

// openTransient opens n for a consumer that keeps nothing of a row once it
// calls Next again (an aggregate, a projection: they keep values, not
// rows; a join's left side): a join or a table scan below it, seen
// through filters, then returns every row in one buffer instead of a new
// row each.
func openTransient(x *execCtx, n node) (rowIter, error) {
	switch n := n.(type) {
	case *joinNode:
		return n.openRows(x, true)
	case *scanNode:
		return n.openRows(x, true)
	case *filterNode:
		it, err := openTransient(x, n.in)
		if err != nil {
			return nil, err
		}
		return &filterIter{in: it, pred: n.pred, ctx: x.ctx}, nil
	}
	return n.open(x)
}

// openRows opens the join; with transient, every row it returns is built
// in the same buffer (openTransient).
func (n *joinNode) openRows(x *execCtx, transient bool) (rowIter, error) {
	nRight := len(n.right.cols())
	var candidates func(l []types.Value) ([][]types.Value, error)
	switch n.kind {
	case joinIndex:
		r := x.snapshot(n.rscan.ts)
		pk := n.rscan.tbl.PK
		key := make([]types.Value, len(pk))
		candidates = func(l []types.Value) ([][]types.Value, error) {
			for i, k := range n.keyOf {
				v, ok := convertKey(k.eval(l), n.rscan.tbl.Columns[pk[i]].Type)
				if !ok {
					return nil, nil
				}
				key[i] = v
			}
			row, err := n.rscan.readRow(r, key)
			if row == nil || err != nil {
				return nil, err
			}
			return [][]types.Value{row}, nil
		}
	default:
		table, all, err := n.buildTable(x)
		if err != nil {
			return nil, err
		}
		if n.kind == joinHash {
			if parts := scanParts(x, n.left); parts != nil {
				return newParIter(x, n.probeSource(table, parts)), nil
			}
		}
		var kb []byte
		var rows [][]types.Value // the join takes a left row's candidates before asking for the next
		candidates = func(l []types.Value) ([][]types.Value, error) {
			if n.kind == joinNested {
				return all, nil
			}
			var ok bool
			if kb, ok = appendJoinKey(kb[:0], n.leftKeys, l); !ok {
				return nil, nil
			}
			b, ok := table[string(kb)]
			if !ok {
				return nil, nil
			}
			rows = append(append(rows[:0], b.one), b.more...)
			return rows, nil
		}
	}
	// The join keeps a left row only until it asks for the next one.
	lit, err := openTransient(x, n.left)
	if err != nil {
		return nil, err
	}
	return &joinIter{left: lit, candidates: candidates, residual: n.residual, leftJoin: n.leftJoin, nRight: nRight, x: x, transient: transient}, nil
}

// buildTable reads the right side: into a hash table by key (a hash
// join, on every core when the side can be cut into ranges) or all its
// rows (a nested loop join).
func (n *joinNode) buildTable(x *execCtx) (hashTable, [][]types.Value, error) {
	table := hashTable{}
	if n.kind == joinHash {
		if parts := scanParts(x, n.right); parts != nil {
			return table, nil, n.buildParallel(x, parts, table)
		}
	}
	all, err := n.build(x, table)
	return table, all, err
}

// build reads the right side into table by key (a hash join) or returns
// all its rows (a nested loop join).
func (n *joinNode) build(x *execCtx, table hashTable) ([][]types.Value, error) {
	rit, err := n.right.open(x)
	if err != nil {
		return nil, err
	}
	defer rit.Close()
	var all [][]types.Value
	var kb []byte
	for rit.Next() {
		row := rit.Row()
		if err := x.hold(); err != nil {
			return nil, err
		}
		if n.kind == joinNested {
			all = append(all, row)
			continue
		}
		var ok bool
		if kb, ok = appendJoinKey(kb[:0], n.rightKeys, row); ok {
			table.add(string(kb), row)
		}
	}
	return all, rit.Err()
}

// appendJoinKey appends the encoded join key of row to dst; ok is false
// when a key value is NULL, which equals nothing.
func appendJoinKey(dst []byte, keys []*expr, row []types.Value) ([]byte, bool) {
	for _, k := range keys {
		v := k.eval(row)
		if v.IsNull() {
			return dst, false
		}
		dst = appendKey(dst, v)
	}
	return dst, true
}

func (n *joinNode) explain(e *explainer, depth int) {
	name := map[joinKind]string{joinHash: "HashJoin", joinIndex: "IndexJoin", joinNested: "NestedLoopJoin"}[n.kind]
	if n.leftJoin {
		name = "Left" + name
	}
	var parts []string
	switch n.kind {
	case joinHash:
		parts = append(parts, "on "+n.eqText.String())
	case joinIndex:
		parts = append(parts, fmt.Sprintf("key lookup %s (%s)", n.rscan.name, n.keyText.String()))
	}
	if t := n.residualText.String(); t != "" {
		parts = append(parts, "filter "+t)
	}
	if len(parts) > 0 {
		e.line(depth, "%s (%s)", name, strings.Join(parts, "; "))
	} else {
		e.line(depth, "%s", name)
	}
	n.left.explain(e, depth+1)
	n.right.explain(e, depth+1)
}

// hashTable is a hash join's build side: its rows by encoded join key. A
// key's first row sits in the map's slot itself, so probing a key that has
// one row (a join on the build side's primary key, the usual case) reads
// the slot and the row, without a slice of rows between them: one
// dependent cache miss less in a probe that is bound by them.
type hashTable map[string]bucket

type bucket struct {
	one  []types.Value   // the key's first row
	more [][]types.Value // the rest, in build order
}

func (t hashTable) add(key string, row []types.Value) {
	if b, ok := t[key]; ok {
		b.more = append(b.more, row)
		t[key] = b
		return
	}
	t[key] = bucket{one: row}
}

type joinIter struct {
	left       rowIter
	candidates func(l []types.Value) ([][]types.Value, error)
	residual   *expr
	leftJoin   bool
	nRight     int
	x          *execCtx

	lrow    []types.Value
	pending [][]types.Value
	matched bool
	row     []types.Value
	arena   rowArena
	// transient: each row is built in buf, overwritten by the next
	// (openTransient).
	transient bool
	buf       []types.Value
	err       error
	count     int
}

func (j *joinIter) Next() bool {
	for j.err == nil {
		for len(j.pending) > 0 {
			r := j.pending[0]
			j.pending = j.pending[1:]
			n := len(j.lrow) + len(r)
			var row []types.Value
			if j.transient {
				row = append(j.buf[:0], j.lrow...)
				row = append(row, r...)
				j.buf = row
			} else {
				row = j.arena.row(n)
				copy(row[copy(row, j.lrow):], r)
			}
			if passes(j.residual, row) {
				j.matched = true
				j.row = row
				return true
			}
			if !j.transient {
				j.arena.unrow(n)
			}
		}
		if j.lrow != nil && j.leftJoin && !j.matched {
			row := make([]types.Value, len(j.lrow)+j.nRight)
			copy(row, j.lrow)
			j.row = row
			j.lrow = nil
			return true
		}
		if !j.left.Next() {
			j.err = j.left.Err()
			return false
		}
		if j.count++; j.count%1024 == 0 {
			if j.err = j.x.ctx.Err(); j.err != nil {
				return false
			}
		}
		j.lrow = j.left.Row()
		j.matched = false
		j.pending, j.err = j.candidates(j.lrow)
	}
	return false
}
func (j *joinIter) Row() []types.Value { return j.row }
func (j *joinIter) Err() error         { return j.err }
func (j *joinIter) Close()             { j.left.Close() }

// convertKey converts v to the type of a key column without loss; ok=false
// when it cannot be (then no row can match).
func convertKey(v types.Value, t types.Type) (types.Value, bool) {
	if v.T == t {
		return v, true
	}
	switch {
	case v.IsNull():
		return v, false
	case t == types.Double && (v.T == types.BigInt):
		return types.Float(float64(v.I)), true
	case t == types.BigInt && v.T == types.Double:
		if v.F == float64(int64(v.F)) {
			return types.Int(int64(v.F)), true
		}
	case t == types.Timestamp && v.T == types.BigInt:
		return types.Time(v.I), true
	case t == types.BigInt && (v.T == types.Timestamp || v.T == types.Boolean):
		return types.Int(v.I), true
	case t == types.Boolean && v.T == types.BigInt && (v.I == 0 || v.I == 1):
		return types.Bool(v.I == 1), true
	}
	return v, false
}
