package query

import (
	"fmt"
	"slices"
	"strings"

	"github.com/xwb1989/sqlparser"

	"ttq/mvcc"
	"ttq/types"
)

// aggBuilder collects the grouping keys and aggregate calls of a grouped
// SELECT while its select list, HAVING and ORDER BY are compiled. The
// aggregate operator's output row is the group keys followed by the
// aggregate values.
type aggBuilder struct {
	in        *scope
	groups    []*expr
	groupText []string
	groupCols map[int]int    // input column -> group slot, for grouped columns
	groupStr  map[string]int // expression text -> group slot
	aggs      []*aggSpec
	aggStr    map[string]int
}

type aggSpec struct {
	fn       string // count, sum, avg, min, max
	distinct bool
	arg      *expr // nil for COUNT(*)
	typ      types.Type
	text     string
}

func newAggBuilder(in *scope) *aggBuilder {
	return &aggBuilder{in: in, groupCols: map[int]int{}, groupStr: map[string]int{}, aggStr: map[string]int{}}
}

func (b *aggBuilder) addGroup(e sqlparser.Expr) error {
	c := &compiler{sc: b.in, where: "GROUP BY"}
	x, err := c.compile(e)
	if err != nil {
		return err
	}
	slot := len(b.groups)
	b.groups = append(b.groups, x)
	text := sqlparser.String(e)
	b.groupText = append(b.groupText, text)
	if _, ok := b.groupStr[text]; !ok {
		b.groupStr[text] = slot
	}
	if col, ok := e.(*sqlparser.ColName); ok {
		if i, err := b.in.resolve(col.Qualifier.Name.String(), col.Name.String()); err == nil {
			if _, ok := b.groupCols[i]; !ok {
				b.groupCols[i] = slot
			}
		}
	}
	return nil
}

func slotRef(slot int, t types.Type) *expr {
	return &expr{typ: t, eval: func(row []types.Value) types.Value { return row[slot] }}
}

// lookup compiles e when it is a grouped expression, an aggregate or a
// column; ok=false lets the compiler descend into e.
func (b *aggBuilder) lookup(e sqlparser.Expr, c *compiler) (*expr, bool, error) {
	if p, ok := e.(*sqlparser.ParenExpr); ok {
		return b.lookup(p.Expr, c)
	}
	if slot, ok := b.groupStr[sqlparser.String(e)]; ok {
		return slotRef(slot, b.groups[slot].typ), true, nil
	}
	switch e := e.(type) {
	case *sqlparser.ColName:
		i, err := b.in.resolve(e.Qualifier.Name.String(), e.Name.String())
		if err != nil {
			if c.aliases != nil && e.Qualifier.IsEmpty() {
				if a, ok := c.aliases[e.Name.Lowered()]; ok {
					x, err := c.compile(a)
					return x, true, err
				}
			}
			return nil, true, err
		}
		if slot, ok := b.groupCols[i]; ok {
			return slotRef(slot, b.groups[slot].typ), true, nil
		}
		return nil, true, fmt.Errorf("%w: %s is neither grouped nor aggregated; add it to GROUP BY or wrap it in an aggregate such as MAX(%s)", ErrGroupBy, sqlparser.String(e), sqlparser.String(e))
	case *sqlparser.FuncExpr:
		name := e.Name.Lowered()
		if !aggregateNames[name] {
			return nil, false, nil
		}
		text := strings.ToLower(sqlparser.String(e))
		if k, ok := b.aggStr[text]; ok {
			return slotRef(len(b.groups)+k, b.aggs[k].typ), true, nil
		}
		spec, err := b.aggregate(e, name)
		if err != nil {
			return nil, true, err
		}
		k := len(b.aggs)
		b.aggs = append(b.aggs, spec)
		b.aggStr[text] = k
		return &expr{typ: spec.typ, eval: func(row []types.Value) types.Value { return row[len(b.groups)+k] }}, true, nil
	}
	return nil, false, nil
}

func (b *aggBuilder) aggregate(e *sqlparser.FuncExpr, name string) (*aggSpec, error) {
	spec := &aggSpec{fn: name, distinct: e.Distinct, text: sqlparser.String(e)}
	if len(e.Exprs) != 1 {
		return nil, fmt.Errorf("%w: %s takes one argument", ErrSyntax, spec.text)
	}
	switch a := e.Exprs[0].(type) {
	case *sqlparser.StarExpr:
		if name != "count" || e.Distinct || !a.TableName.IsEmpty() {
			return nil, fmt.Errorf("%w: %s; only COUNT(*) takes *", ErrSyntax, spec.text)
		}
	case *sqlparser.AliasedExpr:
		c := &compiler{sc: b.in, where: "an aggregate's argument"}
		x, err := c.compile(a.Expr)
		if err != nil {
			return nil, err
		}
		spec.arg = x
	default:
		return nil, fmt.Errorf("%w: %s", ErrSyntax, spec.text)
	}
	switch name {
	case "count":
		spec.typ = types.BigInt
	case "avg":
		spec.typ = types.Double
	case "sum":
		spec.typ = types.BigInt
		if spec.arg.typ == types.Double {
			spec.typ = types.Double
		}
	default:
		spec.typ = spec.arg.typ
		if spec.typ == types.Null {
			spec.typ = types.Varchar
		}
	}
	if (name == "sum" || name == "avg") && !numeric(spec.arg.typ) {
		return nil, fmt.Errorf("%w: %s of a %s; SUM and AVG need numbers", ErrType, spec.text, spec.arg.typ)
	}
	return spec, nil
}

// aggState accumulates one aggregate for one group.
type aggState struct {
	count int64
	isum  int64
	fsum  float64
	best  types.Value
	seen  map[string]bool // DISTINCT
}

func (s *aggState) add(spec *aggSpec, row []types.Value, kb *[]byte) {
	if spec.arg == nil {
		s.count++
		return
	}
	s.addValue(spec, spec.arg.eval(row), kb)
}

// addValue adds v, the aggregate's argument for one row.
func (s *aggState) addValue(spec *aggSpec, v types.Value, kb *[]byte) {
	if v.IsNull() {
		return
	}
	if spec.distinct {
		*kb = appendKey((*kb)[:0], v)
		if s.seen == nil {
			s.seen = map[string]bool{}
		}
		if s.seen[string(*kb)] {
			return
		}
		s.seen[string(*kb)] = true
	}
	s.count++
	switch spec.fn {
	case "sum", "avg":
		if v.T == types.Double {
			s.fsum += v.F
		} else {
			s.isum += v.I
		}
	case "min":
		if s.count == 1 || compareValues(v, s.best) < 0 {
			s.best = v
		}
	case "max":
		if s.count == 1 || compareValues(v, s.best) > 0 {
			s.best = v
		}
	}
}

func (s *aggState) result(spec *aggSpec) types.Value {
	switch spec.fn {
	case "count":
		return types.Int(s.count)
	case "sum":
		if s.count == 0 {
			return types.NullValue
		}
		if spec.typ == types.Double {
			return types.Float(s.fsum + float64(s.isum))
		}
		return types.Int(s.isum)
	case "avg":
		if s.count == 0 {
			return types.NullValue
		}
		return types.Float((s.fsum + float64(s.isum)) / float64(s.count))
	}
	if s.count == 0 {
		return types.NullValue
	}
	return s.best
}

// aggNode groups its input and computes the aggregates.
type aggNode struct {
	in      node
	b       *aggBuilder
	scalar  bool // no GROUP BY: one row even for no input
	outCols []column
}

func (n *aggNode) cols() []column { return n.outCols }

func (n *aggNode) open(x *execCtx) (rowIter, error) {
	src, err := parRows(x, n.in)
	if err != nil {
		return nil, err
	}
	g := &grouper{x: x, index: map[string]int{}}
	if src != nil {
		err = n.addParallel(x, src, g)
	} else {
		err = n.addSerial(x, g)
	}
	if err != nil {
		return nil, err
	}
	if len(g.groups) == 0 && n.scalar {
		g.groups = append(g.groups, &group{states: make([]aggState, len(n.b.aggs))})
	}
	out := make([][]types.Value, len(g.groups))
	for i, g := range g.groups {
		row := make([]types.Value, 0, len(g.keys)+len(g.states))
		row = append(row, g.keys...)
		for j := range g.states {
			row = append(row, g.states[j].result(n.b.aggs[j]))
		}
		out[i] = row
	}
	return &sliceIter{rows: out}, nil
}

// group is one group's keys and aggregate states.
type group struct {
	keys   []types.Value
	states []aggState
}

// grouper finds or adds groups by encoded key, in order of first
// appearance.
type grouper struct {
	x      *execCtx
	index  map[string]int
	groups []*group
}

// get returns the group of encoded key kb, adding it with keys (copied).
func (g *grouper) get(kb []byte, keys []types.Value, aggs int) (*group, error) {
	if i, ok := g.index[string(kb)]; ok {
		return g.groups[i], nil
	}
	return g.add(string(kb), keys, aggs)
}

// getString is get with the key as a string.
func (g *grouper) getString(kb string, keys []types.Value, aggs int) (*group, error) {
	if i, ok := g.index[kb]; ok {
		return g.groups[i], nil
	}
	return g.add(kb, keys, aggs)
}

func (g *grouper) add(kb string, keys []types.Value, aggs int) (*group, error) {
	if err := g.x.hold(); err != nil {
		return nil, err
	}
	g.index[kb] = len(g.groups)
	gr := &group{keys: slices.Clone(keys), states: make([]aggState, aggs)}
	g.groups = append(g.groups, gr)
	return gr, nil
}

// groupKey evaluates the group keys of row into keys and appends their
// encoding to kb.
func (n *aggNode) groupKey(kb []byte, keys, row []types.Value) []byte {
	for i, g := range n.b.groups {
		keys[i] = g.eval(row)
		kb = appendKey(kb, keys[i])
	}
	return kb
}

func (n *aggNode) addSerial(x *execCtx, g *grouper) error {
	it, err := openTransient(x, n.in)
	if err != nil {
		return err
	}
	defer it.Close()
	var kb, ab []byte
	keys := make([]types.Value, len(n.b.groups))
	rows := 0
	for it.Next() {
		if rows++; rows%1024 == 0 {
			if err := x.ctx.Err(); err != nil {
				return err
			}
		}
		row := it.Row()
		kb = n.groupKey(kb[:0], keys, row)
		gr, err := g.get(kb, keys, len(n.b.aggs))
		if err != nil {
			return err
		}
		for i, spec := range n.b.aggs {
			gr.states[i].add(spec, row, &ab)
		}
	}
	return it.Err()
}

// aggPart is one key range of the input, grouped by a worker: its groups
// in order of first appearance, and for each row its group and the
// arguments of the aggregates that take one.
type aggPart struct {
	groups [][]types.Value // keys of each group
	kbs    []string        // encoded keys of each group
	rowGrp []int32
	args   []types.Value // len(rowGrp) x the aggregates with an argument
}

// addParallel groups on every core and aggregates in input order: workers
// evaluate group keys and arguments per range, and the aggregates add
// them here, row by row, as the serial path would (sums of doubles
// depend on the order of their terms).
func (n *aggNode) addParallel(x *execCtx, src *parSource, g *grouper) error {
	var withArg []int // the aggregates with an argument
	for i, spec := range n.b.aggs {
		if spec.arg != nil {
			withArg = append(withArg, i)
		}
	}
	pr := runParts(x.ctx, src.parts, func(w *parWorker, it mvcc.RowIter) (aggPart, error) {
		var (
			p     aggPart
			local = map[string]int32{}
			keys  = make([]types.Value, len(n.b.groups))
			kb    []byte // not w.kb: a join's probe is using it
		)
		err := src.rows(w, it, func(row []types.Value) {
			kb = n.groupKey(kb[:0], keys, row)
			li, ok := local[string(kb)]
			if !ok {
				li = int32(len(p.groups))
				kb := string(kb)
				local[kb] = li
				p.groups, p.kbs = append(p.groups, slices.Clone(keys)), append(p.kbs, kb)
			}
			p.rowGrp = append(p.rowGrp, li)
			for _, i := range withArg {
				p.args = append(p.args, n.b.aggs[i].arg.eval(row))
			}
		})
		return p, err
	})
	defer pr.close()
	var ab []byte
	var grs []*group
	for {
		p, ok, err := pr.next()
		if err != nil || !ok {
			return err
		}
		grs = grs[:0]
		for i, kb := range p.kbs {
			gr, err := g.getString(kb, p.groups[i], len(n.b.aggs))
			if err != nil {
				return err
			}
			grs = append(grs, gr)
		}
		args := p.args
		for _, li := range p.rowGrp {
			gr := grs[li]
			for i, spec := range n.b.aggs {
				if spec.arg == nil {
					gr.states[i].count++
					continue
				}
				gr.states[i].addValue(spec, args[0], &ab)
				args = args[1:]
			}
		}
	}
}

func (n *aggNode) explain(e *explainer, depth int) {
	var parts []string
	if len(n.b.groupText) > 0 {
		parts = append(parts, "group by "+strings.Join(n.b.groupText, ", "))
	}
	var as []string
	for _, a := range n.b.aggs {
		as = append(as, a.text)
	}
	if len(as) > 0 {
		parts = append(parts, strings.Join(as, ", "))
	}
	e.line(depth, "Aggregate (%s)", strings.Join(parts, "; "))
	n.in.explain(e, depth+1)
}
