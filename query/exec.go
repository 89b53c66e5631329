package query

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"ttq/mvcc"
	"ttq/types"
)

// node is an operator of a physical plan. open starts a pull-based
// iteration; only sort, aggregation and hash builds materialize rows.
type node interface {
	cols() []column
	open(x *execCtx) (rowIter, error)
	explain(e *explainer, depth int)
}

// rowIter is the iterator protocol between operators.
type rowIter interface {
	Next() bool
	Row() []types.Value
	Err() error
	Close()
}

// execCtx is the state of one execution: the environment and the
// snapshots opened so far, one per instant, closed at the end.
type execCtx struct {
	ctx   context.Context
	env   Env
	snaps map[int64]mvcc.Reader

	held, maxHeld int64 // rows held by sorts, groups, DISTINCT and hash builds
}

// hold counts one more row kept in memory by an operator and fails once
// the statement holds more than its bound.
func (x *execCtx) hold() error {
	x.held++
	if x.maxHeld > 0 && x.held > x.maxHeld {
		return fmt.Errorf("%w: more than %d rows held for sorting, grouping, DISTINCT or a join; add a WHERE that narrows the input or a LIMIT",
			ErrTooMuchHeld, x.maxHeld)
	}
	return nil
}

func (x *execCtx) snapshot(ts int64) mvcc.Reader {
	if r, ok := x.snaps[ts]; ok {
		return r
	}
	r := x.env.Snapshot(ts)
	x.snaps[ts] = r
	return r
}

func (x *execCtx) close() {
	for _, r := range x.snaps {
		r.Close()
	}
	x.snaps = nil
}

// sliceIter iterates materialized rows.
type sliceIter struct {
	rows [][]types.Value
	i    int
	err  error
}

func (s *sliceIter) Next() bool {
	if s.i >= len(s.rows) {
		return false
	}
	s.i++
	return true
}
func (s *sliceIter) Row() []types.Value { return s.rows[s.i-1] }
func (s *sliceIter) Err() error         { return s.err }
func (s *sliceIter) Close()             {}

// appendKey encodes v so that equal values (of one type) encode equally;
// used for hash keys, groups and DISTINCT.
func appendKey(dst []byte, v types.Value) []byte {
	dst = append(dst, byte(v.T))
	switch v.T {
	case types.Varchar:
		dst = binary.AppendUvarint(dst, uint64(len(v.S)))
		dst = append(dst, v.S...)
	case types.Double:
		f := v.F
		if f == 0 {
			f = 0 // -0 equals 0
		}
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
	case types.Null:
	default:
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.I))
	}
	return dst
}

// filterNode keeps the rows its predicate is TRUE for.
type filterNode struct {
	in   node
	pred *expr
	text text
	kind string // "Filter" or "Having"
}

func (n *filterNode) cols() []column { return n.in.cols() }

func (n *filterNode) open(x *execCtx) (rowIter, error) {
	it, err := n.in.open(x)
	if err != nil {
		return nil, err
	}
	return &filterIter{in: it, pred: n.pred, ctx: x.ctx}, nil
}

func (n *filterNode) explain(e *explainer, depth int) {
	e.line(depth, "%s (%s)", n.kind, n.text.String())
	n.in.explain(e, depth+1)
}

type filterIter struct {
	in   rowIter
	pred *expr
	ctx  context.Context
	n    int
	err  error
}

func (f *filterIter) Next() bool {
	for f.in.Next() {
		if f.n++; f.n%4096 == 0 {
			if f.err = f.ctx.Err(); f.err != nil {
				return false
			}
		}
		if v := f.pred.eval(f.in.Row()); !v.IsNull() && truth(v) {
			return true
		}
	}
	return false
}
func (f *filterIter) Row() []types.Value { return f.in.Row() }
func (f *filterIter) Err() error {
	if f.err != nil {
		return f.err
	}
	return f.in.Err()
}
func (f *filterIter) Close() { f.in.Close() }

// rowArena hands out rows cut from larger allocations, one for every
// arenaRows rows instead of one a row. A row stays valid as long as it is
// referenced (the garbage collector keeps its whole chunk then); a row
// that fails its filter is given back (unrow), so what an operator holds
// is mostly whole chunks.
type rowArena struct {
	chunk []types.Value
	off   int
}

const arenaRows = 128

func (a *rowArena) row(n int) []types.Value {
	if len(a.chunk)-a.off < n {
		a.chunk, a.off = make([]types.Value, arenaRows*n), 0
	}
	r := a.chunk[a.off : a.off+n : a.off+n]
	a.off += n
	return r
}

// unrow gives back the last row, of n values.
func (a *rowArena) unrow(n int) { a.off -= n }

func passes(pred *expr, row []types.Value) bool {
	if pred == nil {
		return true
	}
	v := pred.eval(row)
	return !v.IsNull() && truth(v)
}

// projectNode computes the output expressions.
type projectNode struct {
	in      node
	exprs   []*expr
	outCols []column
	texts   []string
}

func (n *projectNode) cols() []column { return n.outCols }

func (n *projectNode) open(x *execCtx) (rowIter, error) {
	it, err := openTransient(x, n.in)
	if err != nil {
		return nil, err
	}
	return &projectIter{in: it, exprs: n.exprs}, nil
}

func (n *projectNode) explain(e *explainer, depth int) {
	e.line(depth, "Project (%s)", joinTexts(n.texts))
	n.in.explain(e, depth+1)
}

type projectIter struct {
	in    rowIter
	exprs []*expr
	row   []types.Value
	arena rowArena
}

func (p *projectIter) Next() bool {
	if !p.in.Next() {
		return false
	}
	in := p.in.Row()
	p.row = p.arena.row(len(p.exprs))
	for i, e := range p.exprs {
		p.row[i] = e.eval(in)
	}
	return true
}
func (p *projectIter) Row() []types.Value { return p.row }
func (p *projectIter) Err() error         { return p.in.Err() }
func (p *projectIter) Close()             { p.in.Close() }

// sortKey orders by column idx of the input.
type sortKey struct {
	idx  int
	desc bool
	text string
}

// compareNullsFirst orders NULL before every value.
func compareNullsFirst(a, b types.Value) int {
	switch {
	case a.IsNull() && b.IsNull():
		return 0
	case a.IsNull():
		return -1
	case b.IsNull():
		return 1
	}
	return compareValues(a, b)
}

// sortNode sorts stably; NULLs come first ascending and last descending,
// as in MySQL.
type sortNode struct {
	in   node
	keys []sortKey
}

func (n *sortNode) cols() []column { return n.in.cols() }

func (n *sortNode) open(x *execCtx) (rowIter, error) {
	it, err := n.in.open(x)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var rows [][]types.Value
	for it.Next() {
		rows = append(rows, it.Row())
		if err := x.hold(); err != nil {
			return nil, err
		}
		if len(rows)%4096 == 0 {
			if err := x.ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(rows, func(i, j int) bool {
		for _, k := range n.keys {
			c := compareNullsFirst(rows[i][k.idx], rows[j][k.idx])
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return false
	})
	return &sliceIter{rows: rows}, nil
}

func (n *sortNode) explain(e *explainer, depth int) {
	var ts []string
	for _, k := range n.keys {
		t := k.text
		if k.desc {
			t += " DESC"
		}
		ts = append(ts, t)
	}
	e.line(depth, "Sort (%s)", joinTexts(ts))
	n.in.explain(e, depth+1)
}

// distinctNode drops rows equal (on the first n columns) to an earlier one;
// it keeps the first, so it preserves the order of its input.
type distinctNode struct {
	in node
	n  int
}

func (n *distinctNode) cols() []column { return n.in.cols() }

func (n *distinctNode) open(x *execCtx) (rowIter, error) {
	it, err := n.in.open(x)
	if err != nil {
		return nil, err
	}
	return &distinctIter{in: it, x: x, n: n.n, seen: map[string]bool{}}, nil
}

func (n *distinctNode) explain(e *explainer, depth int) {
	e.line(depth, "Distinct")
	n.in.explain(e, depth+1)
}

type distinctIter struct {
	in   rowIter
	x    *execCtx
	n    int
	seen map[string]bool
	kb   []byte
	err  error
}

func (d *distinctIter) Next() bool {
	for d.in.Next() {
		d.kb = d.kb[:0]
		for _, v := range d.in.Row()[:d.n] {
			d.kb = appendKey(d.kb, v)
		}
		if !d.seen[string(d.kb)] {
			if d.err = d.x.hold(); d.err != nil {
				return false
			}
			d.seen[string(d.kb)] = true
			return true
		}
	}
	return false
}
func (d *distinctIter) Row() []types.Value { return d.in.Row() }
func (d *distinctIter) Err() error {
	if d.err != nil {
		return d.err
	}
	return d.in.Err()
}
func (d *distinctIter) Close() { d.in.Close() }

// limitNode skips offset rows and passes at most count (count < 0: all).
type limitNode struct {
	in            node
	offset, count int64
}

func (n *limitNode) cols() []column { return n.in.cols() }

func (n *limitNode) open(x *execCtx) (rowIter, error) {
	it, err := n.in.open(x)
	if err != nil {
		return nil, err
	}
	return &limitIter{in: it, skip: n.offset, left: n.count}, nil
}

func (n *limitNode) explain(e *explainer, depth int) {
	if n.count < 0 {
		e.line(depth, "Limit (offset %d)", n.offset)
	} else {
		e.line(depth, "Limit (%d offset %d)", n.count, n.offset)
	}
	n.in.explain(e, depth+1)
}

type limitIter struct {
	in         rowIter
	skip, left int64
}

func (l *limitIter) Next() bool {
	if l.left == 0 {
		return false
	}
	for l.skip > 0 {
		if !l.in.Next() {
			return false
		}
		l.skip--
	}
	if !l.in.Next() {
		return false
	}
	if l.left > 0 {
		l.left--
	}
	return true
}
func (l *limitIter) Row() []types.Value { return l.in.Row() }
func (l *limitIter) Err() error         { return l.in.Err() }
func (l *limitIter) Close()             { l.in.Close() }
