package query

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/xwb1989/sqlparser"

	"ttq/catalog"
	"ttq/timeline"
	"ttq/types"
)

// plan is a SELECT ready to run.
type plan struct {
	root     node
	out      []catalog.Column // visible output columns
	asOf     int64
	notes    []string
	scans    []*scanNode
	g        int64
	stmtTime int64
}

// planner turns a parsed SELECT into a tree of operators. env is nil when
// only the output schema is wanted (Analyze); then no time is resolved.
type planner struct {
	cat      *catalog.Catalog
	env      Env
	sel      *Select
	g        int64
	stmtTS   int64
	stmtErr  error
	scans    []*scanNode
	byAlias  map[string]*scanNode
	conds    map[*scanNode][]sqlparser.Expr // pushed conjuncts per scan
	done     map[*scanNode]bool
	nullable map[string]bool
	pending  []sqlparser.Expr // WHERE conjuncts not pushed to one table
	full     *scope
	readable map[int64]error
	maxHeld  int64 // the statement's bound on rows held (0: none)
}

func buildPlan(cat *catalog.Catalog, env Env, sel *Select, maxHeld int64) (*plan, error) {
	if sel == nil || sel.AST == nil {
		return nil, fmt.Errorf("%w: no SELECT to run", ErrInternal)
	}
	p := &planner{cat: cat, env: env, sel: sel, g: timeline.None, byAlias: map[string]*scanNode{},
		conds: map[*scanNode][]sqlparser.Expr{}, done: map[*scanNode]bool{}, nullable: map[string]bool{}, readable: map[int64]error{},
		maxHeld: maxHeld}
	if env != nil {
		p.g = env.Watermark()
	}
	p.stmtTS = p.g
	if sel.AsOf != nil && env != nil {
		ts, err := p.resolve(sel.AsOf.To)
		if err != nil {
			return nil, err
		}
		p.stmtTS = ts
	}
	return p.build()
}

// resolve turns a time literal into an instant.
func (p *planner) resolve(l TimeLit) (int64, error) {
	if l.IsInt {
		n, err := strconv.ParseInt(l.Text, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %s is not a microsecond count", ErrBadTime, l.Text)
		}
		return n, nil
	}
	ts, err := timeline.Parse(l.Text, p.g)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadTime, err)
	}
	return ts, nil
}

// check asks the engine whether ts can be read.
func (p *planner) check(ts int64) error {
	if err, ok := p.readable[ts]; ok {
		return err
	}
	err := p.env.CheckReadable(ts)
	if err == nil && ts == timeline.None {
		err = fmt.Errorf("%w: nothing is sealed yet: no source has sent a watermark", ErrBadTime)
	}
	p.readable[ts] = err
	return err
}

func (p *planner) build() (*plan, error) {
	ast := p.sel.AST
	if ast.Lock != "" {
		return nil, fmt.Errorf("%w: %s; ttq is read-only", ErrUnsupported, strings.TrimSpace(ast.Lock))
	}
	// 1. The FROM items.
	for _, te := range ast.From {
		if err := p.collect(te, false); err != nil {
			return nil, err
		}
	}
	full := &scope{}
	for _, s := range p.scans {
		full.cols = append(full.cols, s.outCols...)
	}
	p.full = full
	// 2. WHERE: push single-table conjuncts into their scan.
	if ast.Where != nil {
		for _, c := range conjuncts(ast.Where.Expr, nil) {
			refs, err := p.refs(c, full)
			if err != nil {
				return nil, fmt.Errorf("%w (in WHERE)", err)
			}
			if len(refs) == 1 && !p.nullable[refs[0]] && !hasAggregate(c) {
				s := p.byAlias[refs[0]]
				p.conds[s] = append(p.conds[s], c)
				continue
			}
			p.pending = append(p.pending, c)
		}
	}
	// 3. The join tree.
	var in node
	for _, te := range ast.From {
		n, err := p.from(te)
		if err != nil {
			return nil, err
		}
		if in == nil {
			in = n
			continue
		}
		if in, err = p.join(in, n, false, nil); err != nil {
			return nil, err
		}
	}
	for _, s := range p.scans {
		if err := p.finish(s); err != nil {
			return nil, err
		}
	}
	// The joins concatenate their inputs in FROM order, so the full scope
	// is the layout of in's rows.
	if len(p.pending) > 0 {
		pred, err := p.predicate(p.pending, full, "WHERE")
		if err != nil {
			return nil, err
		}
		in = &filterNode{in: in, pred: pred, text: exprsText(p.pending), kind: "Filter"}
	}
	// 4. Select list, grouping, HAVING, ORDER BY.
	in, out, err := p.project(in, full)
	if err != nil {
		return nil, err
	}
	pl := &plan{root: in, out: out, scans: p.scans, g: p.g, stmtTime: p.stmtTS, asOf: timeline.None}
	if p.sel.AsOf != nil {
		pl.asOf = p.stmtTS
	}
	for _, s := range p.scans {
		switch s.kind {
		case srcTable, srcView, srcHistory:
			pl.asOf = p.stmtTS
		}
	}
	pl.notes = p.notes()
	return pl, nil
}

func (p *planner) notes() []string {
	var notes []string
	differ := false
	for _, s := range p.scans {
		if (s.kind == srcTable && s.ts != p.stmtTS) || s.kind == srcHistory {
			differ = true
		}
	}
	for _, s := range p.scans {
		switch s.kind {
		case srcView:
			notes = append(notes, fmt.Sprintf("view %s answered at epoch %s", s.name, timeline.Format(s.ts)))
		case srcTable:
			if differ {
				notes = append(notes, fmt.Sprintf("%s as of %s", s.alias, timeline.Format(s.ts)))
			}
		case srcHistory:
			notes = append(notes, fmt.Sprintf("%s history [%s, %s]", s.alias, timeline.Format(s.from), timeline.Format(s.to)))
		}
	}
	return notes
}

// collect creates the scans of a FROM item and records which aliases a
// LEFT JOIN makes nullable.
func (p *planner) collect(te sqlparser.TableExpr, nullable bool) error {
	switch te := te.(type) {
	case *sqlparser.AliasedTableExpr:
		s, err := p.scan(te)
		if err != nil {
			return err
		}
		if _, dup := p.byAlias[s.alias]; dup {
			return fmt.Errorf("%w: table name or alias %s appears twice in FROM; give each an alias", ErrAmbiguous, s.alias)
		}
		p.byAlias[s.alias] = s
		p.scans = append(p.scans, s)
		if nullable {
			p.nullable[s.alias] = true
		}
		return nil
	case *sqlparser.ParenTableExpr:
		for _, t := range te.Exprs {
			if err := p.collect(t, nullable); err != nil {
				return err
			}
		}
		return nil
	case *sqlparser.JoinTableExpr:
		switch te.Join {
		case sqlparser.JoinStr, sqlparser.StraightJoinStr, sqlparser.LeftJoinStr:
		case sqlparser.RightJoinStr:
			return fmt.Errorf("%w: RIGHT JOIN; swap the tables and use LEFT JOIN", ErrUnsupported)
		default:
			return fmt.Errorf("%w: %s; use JOIN ... ON or LEFT JOIN ... ON", ErrUnsupported, strings.ToUpper(te.Join))
		}
		if err := p.collect(te.LeftExpr, nullable); err != nil {
			return err
		}
		return p.collect(te.RightExpr, nullable || te.Join == sqlparser.LeftJoinStr)
	}
	return fmt.Errorf("%w: FROM item %s", ErrUnsupported, sqlparser.String(te))
}

// scan resolves one table, view or system table and its time.
func (p *planner) scan(te *sqlparser.AliasedTableExpr) (*scanNode, error) {
	tn, ok := te.Expr.(sqlparser.TableName)
	if !ok {
		return nil, fmt.Errorf("%w: subquery in FROM (%s); create a VIEW or join the tables directly", ErrUnsupported, sqlparser.String(te.Expr))
	}
	if !tn.Qualifier.IsEmpty() {
		return nil, fmt.Errorf("%w: qualified table name %s; ttq has one namespace", ErrUnsupported, sqlparser.String(tn))
	}
	if te.Hints != nil {
		return nil, fmt.Errorf("%w: index hints on %s", ErrUnsupported, sqlparser.String(tn))
	}
	name := catalog.Normalize(tn.Name.String())
	s := &scanNode{name: name, alias: name, expr: te}
	if !te.As.IsEmpty() {
		s.alias = catalog.Normalize(te.As.String())
		if s.alias == "" {
			return nil, fmt.Errorf("%w: blank alias for table %s", ErrSyntax, name)
		}
	}
	spec := p.sel.tables[te]
	if spec == nil {
		spec = p.sel.AsOf
	}
	var cols []catalog.Column
	if t, ok := p.cat.Tables[name]; ok {
		s.kind, s.tbl, cols = srcTable, t, t.Columns
	} else if v, ok := p.cat.Views[name]; ok {
		s.kind, s.view, s.tbl, cols = srcView, v, ViewTable(v), v.Columns
	} else if name == "dual" {
		s.kind = srcDual
		if p.sel.tables[te] != nil {
			return nil, fmt.Errorf("%w: FOR SYSTEM_TIME without a table", ErrSyntax)
		}
		return s, nil
	} else {
		if p.env == nil {
			if strings.HasPrefix(name, "ttq_") {
				return nil, fmt.Errorf("%w: system table %s cannot be used here (views read base tables and views only)", ErrUnsupported, name)
			}
			return nil, fmt.Errorf("%w %s: not a table, view or system table (SHOW TABLES lists them)", ErrUnknownTable, name)
		}
		scols, rows, ok, err := p.env.SystemTable(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w %s: not a table, view or system table (SHOW TABLES lists them)", ErrUnknownTable, name)
		}
		if p.sel.tables[te] != nil {
			return nil, fmt.Errorf("%w: FOR SYSTEM_TIME on system table %s; it shows the present state", ErrUnsupported, name)
		}
		s.kind, s.sysRows = srcSystem, rows
		for _, c := range scols {
			s.outCols = append(s.outCols, column{table: s.alias, name: catalog.Normalize(c.Name), typ: c.Type})
		}
		return s, nil
	}
	for _, c := range cols {
		s.outCols = append(s.outCols, column{table: s.alias, name: c.Name, typ: c.Type})
	}
	s.outCols = append(s.outCols, column{table: s.alias, name: "_ts", typ: types.Timestamp, hidden: true})
	if spec != nil && spec.Kind != TimeAsOf {
		s.kind = srcHistory
		s.outCols = append(s.outCols,
			column{table: s.alias, name: "_valid_from", typ: types.Timestamp},
			column{table: s.alias, name: "_valid_to", typ: types.Timestamp})
	}
	if p.env == nil {
		return s, nil
	}
	// Resolve the time.
	switch {
	case spec == nil:
		s.ts = p.g
		if err := p.check(s.ts); err != nil {
			return nil, err
		}
	case spec.Kind == TimeAsOf:
		ts, err := p.resolve(spec.To)
		if err != nil {
			return nil, err
		}
		if err := p.check(ts); err != nil {
			return nil, err
		}
		s.ts = ts
	case spec.Kind == TimeAll:
		if err := p.check(p.g); err != nil {
			return nil, err
		}
		s.from, s.to, s.ts = 0, p.g, p.g
	default:
		from, err := p.resolve(spec.From)
		if err != nil {
			return nil, err
		}
		to, err := p.resolve(spec.To)
		if err != nil {
			return nil, err
		}
		if from > to {
			return nil, fmt.Errorf("%w: FOR SYSTEM_TIME range on %s starts at %s after it ends at %s; swap them", ErrBadTime, s.alias, timeline.Format(from), timeline.Format(to))
		}
		if err := p.check(to); err != nil {
			return nil, err
		}
		if err := p.check(from); err != nil {
			return nil, err
		}
		s.from, s.to, s.ts = from, to, to
	}
	if tc, ok := p.env.(TableChecker); ok && s.kind != srcView && s.tbl != nil {
		at := s.ts
		if s.kind == srcHistory && spec.Kind != TimeAll {
			at = s.from
		}
		if err := tc.CheckTable(s.tbl, at); err != nil {
			return nil, err
		}
	}
	if s.kind == srcView {
		s.asked = s.ts
		b, err := p.env.ViewAt(s.view, s.ts)
		if err != nil {
			return nil, err
		}
		s.ts = b
	}
	return s, nil
}

// conjuncts splits e on AND.
func conjuncts(e sqlparser.Expr, out []sqlparser.Expr) []sqlparser.Expr {
	switch x := e.(type) {
	case *sqlparser.AndExpr:
		return conjuncts(x.Right, conjuncts(x.Left, out))
	case *sqlparser.ParenExpr:
		if _, ok := x.Expr.(*sqlparser.AndExpr); ok {
			return conjuncts(x.Expr, out)
		}
	}
	return append(out, e)
}

func hasAggregate(e sqlparser.SQLNode) bool {
	found := false
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		if f, ok := n.(*sqlparser.FuncExpr); ok && aggregateNames[f.Name.Lowered()] {
			found = true
			return false, nil
		}
		if _, ok := n.(*sqlparser.Subquery); ok {
			return false, nil
		}
		return true, nil
	}, e)
	return found
}

// refs returns the aliases of the tables e references, sorted.
func (p *planner) refs(e sqlparser.Expr, sc *scope) ([]string, error) {
	set := map[string]bool{}
	err := sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		switch n := n.(type) {
		case *sqlparser.ColName:
			i, err := sc.resolve(n.Qualifier.Name.String(), n.Name.String())
			if err != nil {
				return false, err
			}
			set[sc.cols[i].table] = true
		case *sqlparser.Subquery:
			return false, fmt.Errorf("%w: subqueries; use a JOIN", ErrUnsupported)
		}
		return true, nil
	}, e)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out, nil
}

func (p *planner) predicate(cs []sqlparser.Expr, sc *scope, where string) (*expr, error) {
	c := &compiler{sc: sc, where: where}
	var pred *expr
	for _, e := range cs {
		x, err := c.boolean(e)
		if err != nil {
			return nil, err
		}
		if pred == nil {
			pred = x
			continue
		}
		a, b := pred, x
		pred = derive(types.Boolean, func(row []types.Value) types.Value {
			v := a.eval(row)
			if !v.IsNull() && !truth(v) {
				return v
			}
			w := b.eval(row)
			if !w.IsNull() && !truth(w) {
				return w
			}
			if v.IsNull() || w.IsNull() {
				return types.NullValue
			}
			return trueV
		}, a, b)
	}
	return pred, nil
}

// text renders part of a plan for EXPLAIN. It runs only when a plan is
// explained: rendering SQL was about a twelfth of a point join's time, for
// plans that are almost never explained.
type text func() string

func (t text) String() string {
	if t == nil {
		return ""
	}
	return t()
}

// exprsText renders conjuncts joined by AND (nil: none).
func exprsText(cs []sqlparser.Expr) text {
	if len(cs) == 0 {
		return nil
	}
	cs = slices.Clone(cs)
	return func() string {
		ts := make([]string, len(cs))
		for i, c := range cs {
			ts[i] = sqlparser.String(c)
		}
		return strings.Join(ts, " AND ")
	}
}

func joinTexts(ts []string) string { return strings.Join(ts, ", ") }

// from builds the operator of a FROM item.
func (p *planner) from(te sqlparser.TableExpr) (node, error) {
	switch te := te.(type) {
	case *sqlparser.AliasedTableExpr:
		for _, s := range p.scans {
			if s.expr == te {
				return s, nil
			}
		}
		return nil, fmt.Errorf("%w: FROM item %s was not planned", ErrInternal, sqlparser.String(te))
	case *sqlparser.ParenTableExpr:
		var in node
		for _, t := range te.Exprs {
			n, err := p.from(t)
			if err != nil {
				return nil, err
			}
			if in == nil {
				in = n
			} else if in, err = p.join(in, n, false, nil); err != nil {
				return nil, err
			}
		}
		return in, nil
	case *sqlparser.JoinTableExpr:
		l, err := p.from(te.LeftExpr)
		if err != nil {
			return nil, err
		}
		r, err := p.from(te.RightExpr)
		if err != nil {
			return nil, err
		}
		var on []sqlparser.Expr
		if te.Condition.On != nil {
			on = conjuncts(te.Condition.On, nil)
		}
		for _, u := range te.Condition.Using {
			lc, err := usingColumn(l, u.Lowered())
			if err != nil {
				return nil, err
			}
			rc, err := usingColumn(r, u.Lowered())
			if err != nil {
				return nil, err
			}
			on = append(on, &sqlparser.ComparisonExpr{Operator: "=", Left: lc, Right: rc})
		}
		return p.join(l, r, te.Join == sqlparser.LeftJoinStr, on)
	}
	return nil, fmt.Errorf("%w: FROM item %s", ErrUnsupported, sqlparser.String(te))
}

func usingColumn(n node, name string) (*sqlparser.ColName, error) {
	sc := &scope{cols: n.cols()}
	i, err := sc.resolve("", name)
	if err != nil {
		return nil, fmt.Errorf("%w (in USING)", err)
	}
	return &sqlparser.ColName{Name: sqlparser.NewColIdent(name), Qualifier: sqlparser.TableName{Name: sqlparser.NewTableIdent(sc.cols[i].table)}}, nil
}

func tableSet(n node) map[string]bool {
	out := map[string]bool{}
	for _, c := range n.cols() {
		out[c.table] = true
	}
	return out
}

func subset(refs []string, set map[string]bool) bool {
	for _, r := range refs {
		if !set[r] {
			return false
		}
	}
	return true
}

type equi struct {
	l, r sqlparser.Expr // over the left and the right input
	on   sqlparser.Expr // the whole equality, for EXPLAIN
}

// join builds the join of l and r with the ON conjuncts on. An inner join
// also takes the WHERE conjuncts that refer to both sides.
func (p *planner) join(l, r node, left bool, on []sqlparser.Expr) (node, error) {
	comb := concatScopes(&scope{cols: l.cols()}, &scope{cols: r.cols()})
	lt, rt := tableSet(l), tableSet(r)
	all := map[string]bool{}
	for t := range lt {
		all[t] = true
	}
	for t := range rt {
		all[t] = true
	}
	if !left {
		var keep []sqlparser.Expr
		for _, c := range p.pending {
			refs, err := p.refs(c, p.full)
			if err != nil {
				return nil, err
			}
			ok := len(refs) > 0 && subset(refs, all) && !hasAggregate(c)
			for _, a := range refs {
				ok = ok && !p.nullable[a]
			}
			if ok {
				on = append(on, c)
			} else {
				keep = append(keep, c)
			}
		}
		p.pending = keep
	}
	rscan, _ := r.(*scanNode)
	var eqs []equi
	var residual []sqlparser.Expr
	for _, c := range on {
		refs, err := p.refs(c, comb)
		if err != nil {
			return nil, fmt.Errorf("%w (in ON)", err)
		}
		if hasAggregate(c) {
			return nil, fmt.Errorf("%w: aggregate in ON (%s)", ErrUnsupported, sqlparser.String(c))
		}
		if rscan != nil && len(refs) > 0 && subset(refs, rt) {
			p.conds[rscan] = append(p.conds[rscan], c)
			continue
		}
		if cmp, ok := c.(*sqlparser.ComparisonExpr); ok && cmp.Operator == "=" {
			lr, err1 := p.refs(cmp.Left, comb)
			rr, err2 := p.refs(cmp.Right, comb)
			if err1 == nil && err2 == nil && len(lr) > 0 && len(rr) > 0 {
				if subset(lr, lt) && subset(rr, rt) {
					eqs = append(eqs, equi{cmp.Left, cmp.Right, c})
					continue
				}
				if subset(lr, rt) && subset(rr, lt) {
					eqs = append(eqs, equi{cmp.Right, cmp.Left, c})
					continue
				}
			}
		}
		residual = append(residual, c)
	}
	if rscan != nil {
		if err := p.finish(rscan); err != nil {
			return nil, err
		}
	}
	j := &joinNode{left: l, right: r, leftJoin: left, outCols: comb.cols, kind: joinNested}
	lsc, rsc := &scope{cols: l.cols()}, &scope{cols: r.cols()}
	// Validate the equalities' types as a whole.
	for _, e := range eqs {
		c := &compiler{sc: comb, where: "ON"}
		if _, err := c.compile(&sqlparser.ComparisonExpr{Operator: "=", Left: e.l, Right: e.r}); err != nil {
			return nil, err
		}
	}
	hash := false
	if rscan != nil && len(eqs) > 0 {
		var err error
		if hash, err = p.hashOverIndex(l, rscan); err != nil {
			return nil, err
		}
	}
	if rscan != nil && (rscan.kind == srcTable || rscan.kind == srcView) && len(eqs) > 0 && !hash {
		if ok, err := p.indexJoin(j, rscan, eqs, lsc, &residual); err != nil {
			return nil, err
		} else if ok {
			return p.finishJoin(j, residual, comb)
		}
	}
	if len(eqs) > 0 {
		j.kind = joinHash
		var ons []sqlparser.Expr
		for _, e := range eqs {
			lc := &compiler{sc: lsc, where: "ON"}
			rc := &compiler{sc: rsc, where: "ON"}
			lx, err := lc.compile(e.l)
			if err != nil {
				return nil, err
			}
			rx, err := rc.compile(e.r)
			if err != nil {
				return nil, err
			}
			lx, rx = sameKeyType(lx, rx)
			j.leftKeys = append(j.leftKeys, lx)
			j.rightKeys = append(j.rightKeys, rx)
			ons = append(ons, e.on)
		}
		j.eqText = exprsText(ons)
	}
	return p.finishJoin(j, residual, comb)
}

// Sizer is implemented by environments that can estimate how many versions
// a table stores (Badger's table statistics; rows still in memory are not
// counted).
type Sizer interface {
	EstimateVersions(t *catalog.Table) int64
}

// hashMinVersions is the size of the left table below which joins keep
// their index lookups: small inputs cost little either way, and their
// plans stay the same however the store happens to be laid out.
const hashMinVersions = 50_000

// hashOverIndex reports whether a hash join (one scan of the right table)
// should replace an index join (one key lookup per left row): the left
// side reads a whole table, and the right table stores at most twice as
// many versions. An AS OF scan walks every version, and a key lookup costs
// about as much as scanning five; so the hash join is cheaper whenever the
// left rows are many, and never costs much more than the left scan the
// statement does anyway. It also must fit the statement's held-rows bound.
func (p *planner) hashOverIndex(l node, r *scanNode) (bool, error) {
	sz, ok := p.env.(Sizer)
	if !ok || r.kind != srcTable || r.keys != nil {
		return false, nil
	}
	ls := leftmostScan(l)
	if ls == nil || ls.kind != srcTable {
		return false, nil
	}
	// The left scan's own WHERE conjuncts are all known by now: settle its
	// access path (a key lookup is no whole-table scan).
	if err := p.finish(ls); err != nil || ls.keys != nil {
		return false, err
	}
	lv, rv := sz.EstimateVersions(ls.tbl), sz.EstimateVersions(r.tbl)
	if lv < hashMinVersions || (p.maxHeld > 0 && rv > p.maxHeld) {
		return false, nil
	}
	return rv <= 2*lv, nil
}

// leftmostScan is the scan that drives n (the first table of a join chain).
func leftmostScan(n node) *scanNode {
	for {
		switch x := n.(type) {
		case *scanNode:
			return x
		case *joinNode:
			n = x.left
		default:
			return nil
		}
	}
}

func (p *planner) finishJoin(j *joinNode, residual []sqlparser.Expr, comb *scope) (node, error) {
	if len(residual) > 0 {
		pred, err := p.predicate(residual, comb, "ON")
		if err != nil {
			return nil, err
		}
		j.residual, j.residualText = pred, exprsText(residual)
	}
	return j, nil
}

// indexJoin turns j into a primary-key lookup join when the equalities (and
// constants pushed into the right scan) bind the right table's whole key.
func (p *planner) indexJoin(j *joinNode, rscan *scanNode, eqs []equi, lsc *scope, residual *[]sqlparser.Expr) (bool, error) {
	pk := rscan.tbl.PK
	keyOf := make([]*expr, len(pk))
	texts := make([]func() string, len(pk))
	used := make([]bool, len(eqs))
	fromLeft := false
	rsc := &scope{cols: rscan.outCols}
	for i, k := range pk {
		col := rscan.tbl.Columns[k]
		for ei, e := range eqs {
			cn, ok := e.r.(*sqlparser.ColName)
			if !ok {
				continue
			}
			idx, err := rsc.resolve(cn.Qualifier.Name.String(), cn.Name.String())
			if err != nil || idx != k {
				continue
			}
			c := &compiler{sc: lsc, where: "ON"}
			x, err := c.compile(e.l)
			if err != nil {
				return false, err
			}
			if !keyCompatible(x.typ, col.Type) {
				continue
			}
			keyOf[i], texts[i], used[ei], fromLeft = x, func() string { return col.Name + " = " + sqlparser.String(e.l) }, true, true
			break
		}
		if keyOf[i] == nil {
			vals := constBinding(p.conds[rscan], rsc, k, col.Type)
			if len(vals) != 1 {
				return false, nil
			}
			keyOf[i], texts[i] = constExpr(vals[0]), func() string { return col.Name + " = " + sqlLiteral(vals[0]) }
		}
	}
	if !fromLeft {
		return false, nil
	}
	for ei, e := range eqs {
		if !used[ei] {
			*residual = append(*residual, &sqlparser.ComparisonExpr{Operator: "=", Left: e.l, Right: e.r})
		}
	}
	j.kind, j.rscan, j.keyOf, j.keyText = joinIndex, rscan, keyOf, func() string {
		ts := make([]string, len(texts))
		for i, t := range texts {
			ts[i] = t()
		}
		return strings.Join(ts, ", ")
	}
	rscan.keys, rscan.point, rscan.keyText = nil, false, nil
	rscan.lookupBy = true
	return true, nil
}

func keyCompatible(v, col types.Type) bool {
	if v == col {
		return true
	}
	return numeric(v) && numeric(col) || (v == types.BigInt && col == types.Timestamp)
}

// sameKeyType makes hash keys of both sides encode alike.
func sameKeyType(a, b *expr) (*expr, *expr) {
	if a.typ == b.typ {
		return a, b
	}
	if numeric(a.typ) && numeric(b.typ) && (a.typ == types.Double || b.typ == types.Double) {
		return toDouble(a), toDouble(b)
	}
	return toInt(a), toInt(b)
}

func toDouble(x *expr) *expr {
	return derive(types.Double, func(row []types.Value) types.Value {
		v := x.eval(row)
		if v.IsNull() || v.T == types.Double {
			return v
		}
		return types.Float(float64(v.I))
	}, x)
}

func toInt(x *expr) *expr {
	if x.typ == types.Varchar || x.typ == types.Double {
		return x
	}
	return derive(types.BigInt, func(row []types.Value) types.Value {
		v := x.eval(row)
		if v.IsNull() {
			return v
		}
		return types.Int(v.I)
	}, x)
}

// finish compiles a scan's pushed conjuncts and picks its access path.
func (p *planner) finish(s *scanNode) error {
	if p.done[s] {
		return nil
	}
	p.done[s] = true
	cs := p.conds[s]
	if s.kind == srcDual && len(cs) > 0 {
		return fmt.Errorf("%w: internal: condition on no table", ErrInternal)
	}
	if len(cs) == 0 {
		return nil
	}
	sc := &scope{cols: s.outCols}
	pred, err := p.predicate(cs, sc, "WHERE")
	if err != nil {
		return err
	}
	s.filter, s.filterText = pred, exprsText(cs)
	if s.tbl == nil || s.lookupBy {
		return nil
	}
	// Access path: leading key columns bound to constants.
	var sets [][]types.Value
	for _, k := range s.tbl.PK {
		vals := constBinding(cs, sc, k, s.tbl.Columns[k].Type)
		if vals == nil {
			break
		}
		sets = append(sets, vals)
	}
	if len(sets) == 0 {
		return nil
	}
	keys := [][]types.Value{nil}
	for _, set := range sets {
		if len(keys)*len(set) > 10000 {
			break
		}
		var next [][]types.Value
		for _, k := range keys {
			for _, v := range set {
				nk := append(append([]types.Value(nil), k...), v)
				next = append(next, nk)
			}
		}
		keys = next
	}
	s.keys = keys
	s.point = len(keys[0]) == len(s.tbl.PK) && s.kind != srcHistory
	tbl, n := s.tbl, len(keys[0])
	s.keyText = func() string {
		texts := make([]string, n)
		for i, vals := range sets[:n] {
			name := tbl.Columns[tbl.PK[i]].Name
			if len(vals) == 1 {
				texts[i] = name + " = " + sqlLiteral(vals[0])
				continue
			}
			ts := make([]string, len(vals))
			for j, v := range vals {
				ts[j] = sqlLiteral(v)
			}
			texts[i] = name + " IN (" + strings.Join(ts, ", ") + ")"
		}
		return strings.Join(texts, " AND ")
	}
	return nil
}

// constBinding returns the sorted distinct constants conjuncts bind column
// col to (col = c or col IN (c, ...)), converted to the column's type, or
// nil when none binds it.
func constBinding(cs []sqlparser.Expr, sc *scope, col int, t types.Type) []types.Value {
	isCol := func(e sqlparser.Expr) bool {
		for {
			p, ok := e.(*sqlparser.ParenExpr)
			if !ok {
				break
			}
			e = p.Expr
		}
		cn, ok := e.(*sqlparser.ColName)
		if !ok {
			return false
		}
		i, err := sc.resolve(cn.Qualifier.Name.String(), cn.Name.String())
		return err == nil && i == col
	}
	constant := func(e sqlparser.Expr) (types.Value, bool) {
		c := &compiler{sc: &scope{}}
		x, err := c.compile(e)
		if err != nil || !x.konst {
			return types.Value{}, false
		}
		x, err = coerce(x, t, nil)
		if err != nil {
			return types.Value{}, false
		}
		return convertKey(x.eval(nil), t)
	}
	for _, e := range cs {
		cmp, ok := e.(*sqlparser.ComparisonExpr)
		if !ok {
			continue
		}
		var vals []types.Value
		switch {
		case cmp.Operator == "=" && isCol(cmp.Left):
			if v, ok := constant(cmp.Right); ok {
				vals = []types.Value{v}
			}
		case cmp.Operator == "=" && isCol(cmp.Right):
			if v, ok := constant(cmp.Left); ok {
				vals = []types.Value{v}
			}
		case cmp.Operator == sqlparser.InStr && isCol(cmp.Left):
			tuple, ok := cmp.Right.(sqlparser.ValTuple)
			if !ok {
				continue
			}
			for _, t := range tuple {
				v, ok := constant(t)
				if !ok {
					vals = nil
					break
				}
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			continue
		}
		sort.Slice(vals, func(i, j int) bool { return compareValues(vals[i], vals[j]) < 0 })
		out := vals[:1]
		for _, v := range vals[1:] {
			if compareValues(v, out[len(out)-1]) != 0 {
				out = append(out, v)
			}
		}
		return out
	}
	return nil
}

// sqlLiteral renders v as SQL.
func sqlLiteral(v types.Value) string {
	switch v.T {
	case types.Varchar:
		return "'" + strings.ReplaceAll(v.S, "'", "''") + "'"
	case types.Timestamp:
		return "'" + timeline.Format(v.I) + "'"
	case types.Null:
		return "NULL"
	}
	return v.Text()
}

var errStop = errors.New("stop")
