package query

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/xwb1989/sqlparser"

	"ttq/catalog"
	"ttq/types"
)

// output is one select-list item after * expansion.
type output struct {
	ast  sqlparser.Expr
	name string
}

// project adds grouping, HAVING, the select list, ORDER BY, DISTINCT and
// LIMIT on top of in, whose rows have the layout of sc.
func (p *planner) project(in node, sc *scope) (node, []catalog.Column, error) {
	ast := p.sel.AST
	// Expand * and name the outputs.
	var outs []output
	aliases := map[string]sqlparser.Expr{}
	for _, se := range ast.SelectExprs {
		switch se := se.(type) {
		case *sqlparser.StarExpr:
			qual := catalog.Normalize(se.TableName.Name.String())
			found := false
			for _, c := range sc.cols {
				if c.hidden || (qual != "" && c.table != qual) {
					continue
				}
				found = true
				outs = append(outs, output{ast: &sqlparser.ColName{Name: sqlparser.NewColIdent(c.name), Qualifier: sqlparser.TableName{Name: sqlparser.NewTableIdent(c.table)}}, name: c.name})
			}
			if qual != "" && !found {
				return nil, nil, fmt.Errorf("%w %s.*: no table or alias %s in FROM", ErrUnknownColumn, qual, qual)
			}
		case *sqlparser.AliasedExpr:
			name := ""
			switch {
			case !se.As.IsEmpty():
				name = se.As.String()
				aliases[strings.ToLower(name)] = se.Expr
			default:
				if cn, ok := se.Expr.(*sqlparser.ColName); ok {
					name = cn.Name.String()
				} else {
					name = sqlparser.String(se.Expr)
				}
			}
			outs = append(outs, output{ast: se.Expr, name: name})
		default:
			return nil, nil, fmt.Errorf("%w: select item %s", ErrUnsupported, sqlparser.String(se))
		}
	}
	grouped := len(ast.GroupBy) > 0 || (ast.Having != nil)
	for _, o := range outs {
		grouped = grouped || hasAggregate(o.ast)
	}
	for _, o := range ast.OrderBy {
		grouped = grouped || hasAggregate(o.Expr)
	}
	c := &compiler{sc: sc}
	var ab *aggBuilder
	if grouped {
		ab = newAggBuilder(sc)
		for _, g := range ast.GroupBy {
			e, err := groupTarget(g, outs, aliases, sc)
			if err != nil {
				return nil, nil, err
			}
			if err := ab.addGroup(e); err != nil {
				return nil, nil, err
			}
		}
		c = &compiler{sc: sc, agg: ab}
	}
	var exprs []*expr
	var texts []string
	var cols []column
	var outCols []catalog.Column
	for _, o := range outs {
		c.where = "the select list"
		x, err := c.compile(o.ast)
		if err != nil {
			return nil, nil, err
		}
		exprs = append(exprs, x)
		texts = append(texts, o.name)
		t := x.typ
		if t == types.Null {
			t = types.Varchar
		}
		cols = append(cols, column{name: o.name, typ: t})
		outCols = append(outCols, catalog.Column{Name: o.name, Type: t})
	}
	var having *expr
	if ast.Having != nil {
		hc := &compiler{sc: sc, agg: ab, aliases: aliases, where: "HAVING"}
		x, err := hc.boolean(ast.Having.Expr)
		if err != nil {
			return nil, nil, err
		}
		having = x
	}
	// ORDER BY: an output (by position, alias or same text) or a hidden column.
	var keys []sortKey
	for _, o := range ast.OrderBy {
		k := sortKey{idx: -1, desc: o.Direction == sqlparser.DescScr, text: sqlparser.String(o.Expr)}
		if v, ok := o.Expr.(*sqlparser.SQLVal); ok && v.Type == sqlparser.IntVal {
			n, err := strconv.Atoi(string(v.Val))
			if err != nil || n < 1 || n > len(outs) {
				return nil, nil, fmt.Errorf("%w: ORDER BY %s: position out of range 1..%d", ErrUnknownColumn, v.Val, len(outs))
			}
			k.idx = n - 1
		} else if cn, ok := o.Expr.(*sqlparser.ColName); ok && cn.Qualifier.IsEmpty() {
			for i, out := range outs {
				if strings.EqualFold(out.name, cn.Name.String()) {
					if _, aliased := aliases[strings.ToLower(out.name)]; aliased || outIsColumn(out, cn, sc) {
						k.idx = i
						break
					}
				}
			}
		}
		if k.idx < 0 {
			text := sqlparser.String(o.Expr)
			for i, out := range outs {
				if sqlparser.String(out.ast) == text {
					k.idx = i
					break
				}
			}
		}
		if k.idx < 0 {
			oc := &compiler{sc: sc, agg: ab, aliases: aliases, where: "ORDER BY"}
			x, err := oc.compile(o.Expr)
			if err != nil {
				return nil, nil, err
			}
			k.idx = len(exprs)
			exprs = append(exprs, x)
			cols = append(cols, column{name: k.text, typ: x.typ, hidden: true})
		}
		keys = append(keys, k)
	}
	if grouped {
		var aggCols []column
		for i, g := range ab.groups {
			aggCols = append(aggCols, column{name: ab.groupText[i], typ: g.typ})
		}
		for _, a := range ab.aggs {
			aggCols = append(aggCols, column{name: a.text, typ: a.typ})
		}
		in = &aggNode{in: in, b: ab, scalar: len(ab.groups) == 0, outCols: aggCols}
		if having != nil {
			in = &filterNode{in: in, pred: having, text: exprsText([]sqlparser.Expr{ast.Having.Expr}), kind: "Having"}
		}
	}
	in = &projectNode{in: in, exprs: exprs, outCols: cols, texts: texts}
	if len(keys) > 0 {
		in = &sortNode{in: in, keys: keys}
	}
	if ast.Distinct != "" {
		in = &distinctNode{in: in, n: len(outs)}
	}
	if ast.Limit != nil {
		off, err := limitValue(ast.Limit.Offset, 0)
		if err != nil {
			return nil, nil, err
		}
		cnt, err := limitValue(ast.Limit.Rowcount, -1)
		if err != nil {
			return nil, nil, err
		}
		in = &limitNode{in: in, offset: off, count: cnt}
	}
	return in, outCols, nil
}

func outIsColumn(out output, cn *sqlparser.ColName, sc *scope) bool {
	oc, ok := out.ast.(*sqlparser.ColName)
	if !ok {
		return false
	}
	i, err1 := sc.resolve(oc.Qualifier.Name.String(), oc.Name.String())
	j, err2 := sc.resolve("", cn.Name.String())
	return err1 == nil && (err2 != nil || i == j)
}

// groupTarget resolves a GROUP BY item: a position, a select alias (when no
// column has that name) or an expression.
func groupTarget(g sqlparser.Expr, outs []output, aliases map[string]sqlparser.Expr, sc *scope) (sqlparser.Expr, error) {
	if v, ok := g.(*sqlparser.SQLVal); ok && v.Type == sqlparser.IntVal {
		n, err := strconv.Atoi(string(v.Val))
		if err != nil || n < 1 || n > len(outs) {
			return nil, fmt.Errorf("%w: GROUP BY %s: position out of range 1..%d", ErrUnknownColumn, v.Val, len(outs))
		}
		e := outs[n-1].ast
		if hasAggregate(e) {
			return nil, fmt.Errorf("%w: GROUP BY %s refers to an aggregate", ErrGroupBy, v.Val)
		}
		return e, nil
	}
	if cn, ok := g.(*sqlparser.ColName); ok && cn.Qualifier.IsEmpty() {
		if _, err := sc.resolve("", cn.Name.String()); err != nil {
			if a, ok := aliases[cn.Name.Lowered()]; ok {
				if hasAggregate(a) {
					return nil, fmt.Errorf("%w: GROUP BY %s refers to an aggregate", ErrGroupBy, cn.Name.String())
				}
				return a, nil
			}
		}
	}
	return g, nil
}

func limitValue(e sqlparser.Expr, def int64) (int64, error) {
	if e == nil {
		return def, nil
	}
	v, ok := e.(*sqlparser.SQLVal)
	if !ok || v.Type != sqlparser.IntVal {
		return 0, fmt.Errorf("%w: LIMIT and OFFSET take non-negative integers, not %s", ErrSyntax, sqlparser.String(e))
	}
	n, err := strconv.ParseInt(string(v.Val), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: LIMIT and OFFSET take non-negative integers, not %s", ErrSyntax, v.Val)
	}
	return n, nil
}
