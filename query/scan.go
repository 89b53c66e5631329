package query

import (
	"fmt"
	"strings"

	"github.com/xwb1989/sqlparser"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/timeline"
	"ttq/types"
)

// sourceKind says what a FROM item reads.
type sourceKind int

const (
	srcTable   sourceKind = iota // a base table at a snapshot
	srcView                      // a view's rows at an epoch boundary
	srcHistory                   // every version of a table (or view) in a range
	srcSystem                    // a system table's rows from the engine
	srcDual                      // SELECT without FROM: one empty row
)

// scanNode reads one FROM item. Its rows are the item's columns followed by
// _ts (and _valid_from, _valid_to for history reads).
type scanNode struct {
	kind    sourceKind
	name    string // table, view or system table name
	alias   string
	expr    *sqlparser.AliasedTableExpr // the FROM item it was planned from
	tbl     *catalog.Table              // the stored table read (a view's pseudo-table for views)
	view    *catalog.View
	ts      int64 // snapshot instant (a view's epoch boundary)
	asked   int64 // the instant asked for, when it differs (views)
	from    int64 // history range
	to      int64
	sysRows [][]types.Value
	outCols []column

	filter     *expr // pushed-down conjuncts, evaluated on every row read
	filterText text  // for EXPLAIN
	// keys is the access path: nil for a full scan; otherwise key prefixes
	// (point lookups when point is set, range scans otherwise), in key order.
	keys    [][]types.Value
	point   bool
	keyText text
	// lookupBy is set when an index join reads this table by key per left row.
	lookupBy bool
}

func (n *scanNode) cols() []column { return n.outCols }

// extra is the number of pseudo-columns after the table's own.
func (n *scanNode) extra() int {
	switch n.kind {
	case srcHistory:
		return 3
	case srcSystem, srcDual:
		return 0
	}
	return 1
}

func (n *scanNode) open(x *execCtx) (rowIter, error) { return n.openRows(x, false) }

// openRows opens the scan; with transient, a full or prefix scan of a
// table returns every row in the same buffer (openTransient).
func (n *scanNode) openRows(x *execCtx, transient bool) (rowIter, error) {
	switch n.kind {
	case srcDual:
		return &sliceIter{rows: [][]types.Value{{}}}, nil
	case srcSystem:
		return &filterIter{in: &sliceIter{rows: n.sysRows}, pred: n.filterOrTrue(), ctx: x.ctx}, nil
	case srcHistory:
		var rows [][]types.Value
		prefixes := n.keys
		if prefixes == nil {
			prefixes = [][]types.Value{nil}
		}
		for _, p := range prefixes {
			err := x.env.History(n.tbl, p, n.from, n.to, func(v mvcc.RowVersion) error {
				row := make([]types.Value, 0, len(v.Row)+3)
				row = append(row, v.Row...)
				row = append(row, types.Time(v.ValidFrom), types.Time(v.ValidFrom))
				if v.ValidTo == timeline.None {
					row = append(row, types.NullValue)
				} else {
					row = append(row, types.Time(v.ValidTo))
				}
				if passes(n.filter, row) {
					rows = append(rows, row)
				}
				if len(rows)%4096 == 0 {
					return x.ctx.Err()
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		return &sliceIter{rows: rows}, nil
	}
	r := x.snapshot(n.ts)
	if n.point {
		return &getIter{r: r, n: n, keys: n.keys}, nil
	}
	prefixes := n.keys
	if prefixes == nil {
		prefixes = [][]types.Value{nil}
	}
	return &scanIter{r: r, n: n, prefixes: prefixes, x: x, transient: transient}, nil
}

func (n *scanNode) filterOrTrue() *expr {
	if n.filter == nil {
		return constExpr(types.Bool(true))
	}
	return n.filter
}

func (n *scanNode) describe() string {
	var b strings.Builder
	b.WriteString(n.name)
	if n.alias != n.name {
		b.WriteString(" AS " + n.alias)
	}
	switch n.kind {
	case srcTable:
		fmt.Fprintf(&b, " as of %s", timeline.Format(n.ts))
	case srcView:
		fmt.Fprintf(&b, " (view) at epoch %s", timeline.Format(n.ts))
		if n.asked != n.ts {
			fmt.Fprintf(&b, " for %s", timeline.Format(n.asked))
		}
	case srcSystem:
		b.WriteString(" (system table)")
	}
	return b.String()
}

func (n *scanNode) access() string {
	switch {
	case n.kind == srcHistory:
		s := fmt.Sprintf("history [%s, %s]", timeline.Format(n.from), timeline.Format(n.to))
		if n.keys != nil {
			s += " " + n.keyText.String()
		}
		return s
	case n.kind == srcSystem:
		return "in-memory rows"
	case n.point:
		return "key lookup (" + n.keyText.String() + ")"
	case n.keys != nil:
		return "range (prefix " + n.keyText.String() + ")"
	}
	return "full scan"
}

func (n *scanNode) explain(e *explainer, depth int) {
	if n.kind == srcDual {
		e.line(depth, "Values (one row)")
		return
	}
	s := "Scan " + n.describe() + ": " + n.access()
	if t := n.filterText.String(); t != "" {
		s += " filter (" + t + ")"
	}
	e.line(depth, "%s", s)
}

// readRow reads one row by full key at the node's snapshot and returns it
// with its pseudo-columns, or nil.
func (n *scanNode) readRow(r mvcc.Reader, key []types.Value) ([]types.Value, error) {
	row, ts, ok, err := r.Get(n.tbl, key, nil)
	if err != nil || !ok {
		return nil, err
	}
	out := make([]types.Value, 0, len(row)+1)
	out = append(out, row...)
	out = append(out, types.Time(ts))
	if !passes(n.filter, out) {
		return nil, nil
	}
	return out, nil
}

// getIter reads rows by full primary key.
type getIter struct {
	r    mvcc.Reader
	n    *scanNode
	keys [][]types.Value
	row  []types.Value
	err  error
}

func (g *getIter) Next() bool {
	for len(g.keys) > 0 && g.err == nil {
		k := g.keys[0]
		g.keys = g.keys[1:]
		g.row, g.err = g.n.readRow(g.r, k)
		if g.row != nil {
			return true
		}
	}
	return false
}
func (g *getIter) Row() []types.Value { return g.row }
func (g *getIter) Err() error         { return g.err }
func (g *getIter) Close()             {}

// scanIter streams rows of key-prefix scans.
type scanIter struct {
	r        mvcc.Reader
	n        *scanNode
	x        *execCtx
	prefixes [][]types.Value
	it       mvcc.RowIter
	row      []types.Value
	arena    rowArena
	// transient: every row is returned in buf (openTransient).
	transient bool
	buf       []types.Value
	err       error
	count     int
}

func (s *scanIter) Next() bool {
	for s.err == nil {
		if s.it == nil {
			if len(s.prefixes) == 0 {
				return false
			}
			s.it = s.r.Scan(s.n.tbl, s.prefixes[0])
			s.prefixes = s.prefixes[1:]
			if r, ok := s.it.(mvcc.RowReuser); ok && s.transient {
				r.ReuseRows()
			}
			if r, ok := s.it.(mvcc.StringSharer); ok {
				r.ShareStrings() // results are copied out of the rows
			}
		}
		for s.it.Next() {
			if s.count++; s.count%1024 == 0 {
				if s.err = s.x.ctx.Err(); s.err != nil {
					return false
				}
			}
			// Rows of mvcc's scans are this scan's own: when one has room
			// for _ts after its columns (mvcc leaves it where it can), it
			// is taken as it is.
			out := s.it.Row()
			if cap(out) > len(out) {
				out = append(out, types.Time(s.it.TS()))
			} else if s.transient {
				s.buf = append(append(s.buf[:0], out...), types.Time(s.it.TS()))
				out = s.buf
			} else {
				out = append(append(s.arena.row(len(out) + 1)[:0], out...), types.Time(s.it.TS()))
			}
			if passes(s.n.filter, out) {
				s.row = out
				return true
			}
		}
		s.err = s.it.Err()
		s.it.Close()
		s.it = nil
	}
	return false
}
func (s *scanIter) Row() []types.Value { return s.row }
func (s *scanIter) Err() error         { return s.err }
func (s *scanIter) Close() {
	if s.it != nil {
		s.it.Close()
		s.it = nil
	}
}
