package precompute

import (
	"fmt"
	"strings"

	"github.com/xwb1989/sqlparser"

	"ttq/catalog"
	"ttq/query"
	"ttq/types"
)

// Def is a view's query analysed for maintenance: the chain of tables it
// joins, the equalities that join them, and which output columns form the
// view's key.
//
// The key of a view (docs/VIEWS.md):
//   - without GROUP BY: the primary key of the first table in FROM (the
//     root), then, for each joined table, its primary-key columns that the
//     ON clause does not equate to a column of an earlier table. A table
//     joined on its whole primary key adds nothing: at most one of its
//     rows joins each earlier row.
//   - with GROUP BY: the grouped columns. An aggregate without GROUP BY
//     has one row and an empty key.
//
// Every key column must be in the select list as a plain column.
type Def struct {
	Name    string
	Query   string
	Rels    []*Rel
	Grouped bool
	// Group holds the grouped columns (grouped views).
	Group []ColRef
	// Out describes each output column: the base column it copies, if it
	// is a plain column reference (Rel = -1 otherwise).
	Out []ColRef
	// Columns is the output schema (from query.Analyze).
	Columns []catalog.Column
	// Key indexes Columns: the view's primary key, in key order. For a
	// view without GROUP BY the first len(Rels[0].Table.PK) of them are the
	// root table's key.
	Key []int
}

// Rel is one table of a view's FROM chain.
type Rel struct {
	Alias string
	Table *catalog.Table
	Left  bool   // joined with LEFT JOIN
	Edges []Edge // ON equalities with columns of earlier tables
}

// Edge is an ON equality: this table's column Col equals column OtherCol
// of the earlier table Other (an index into Def.Rels).
type Edge struct {
	Col      int
	Other    int
	OtherCol int
}

// ColRef names a column of one table of the chain.
type ColRef struct{ Rel, Col int }

func (d *Def) colName(c ColRef) string {
	r := d.Rels[c.Rel]
	return r.Alias + "." + r.Table.Columns[c.Col].Name
}

func unsupported(view, format string, args ...any) error {
	return fmt.Errorf("%w: view %s: %s", ErrUnsupportedView, view, fmt.Sprintf(format, args...))
}

// Analyze checks that text is a query ttq can maintain as view name and
// returns its definition. Errors name what is unsupported and what to do.
func Analyze(cat *catalog.Catalog, name, text string) (*Def, error) {
	sel, err := query.ParseSelect(text)
	if err != nil {
		return nil, err
	}
	if sel.AsOf != nil {
		return nil, unsupported(name, "a view's query cannot have AS OF; it is read AS OF each epoch")
	}
	ast := sel.AST
	d := &Def{Name: catalog.Normalize(name), Query: text}
	switch {
	case ast.Distinct != "":
		return nil, unsupported(name, "DISTINCT; use GROUP BY on the distinct columns")
	case len(ast.OrderBy) > 0:
		return nil, unsupported(name, "ORDER BY; order the rows when you query the view")
	case ast.Limit != nil:
		return nil, unsupported(name, "LIMIT; limit the rows when you query the view")
	case len(ast.From) != 1:
		return nil, unsupported(name, "tables separated by commas in FROM; join them with JOIN ... ON")
	}
	if err := d.chain(cat, ast.From[0]); err != nil {
		return nil, err
	}
	// The output schema and every type check come from the planner.
	cols, err := query.Analyze(cat, sel)
	if err != nil {
		return nil, err
	}
	d.Columns = cols
	seen := map[string]bool{}
	for _, c := range cols {
		n := catalog.Normalize(c.Name)
		if seen[n] {
			return nil, unsupported(name, "two output columns are named %s; give one an alias with AS", n)
		}
		seen[n] = true
	}
	if err := d.outputs(ast.SelectExprs); err != nil {
		return nil, err
	}
	if len(d.Out) != len(cols) {
		return nil, fmt.Errorf("%w: view %s: %d outputs analysed, %d planned (please report this)", query.ErrInternal, name, len(d.Out), len(cols))
	}
	d.Grouped = len(ast.GroupBy) > 0 || ast.Having != nil || hasAggregate(ast.SelectExprs)
	if d.Grouped {
		for _, g := range ast.GroupBy {
			cn, ok := g.(*sqlparser.ColName)
			if !ok {
				return nil, unsupported(name, "GROUP BY %s; group by plain columns", sqlparser.String(g))
			}
			ref, err := d.resolve(cn, len(d.Rels))
			if err != nil {
				return nil, err
			}
			d.Group = append(d.Group, ref)
		}
		if err := d.keyFrom(d.Group, "the view is keyed by its GROUP BY columns"); err != nil {
			return nil, err
		}
		return d, nil
	}
	var key []ColRef
	for _, k := range d.Rels[0].Table.PK {
		key = append(key, ColRef{0, k})
	}
	for i, r := range d.Rels[1:] {
		for _, k := range r.Table.PK {
			bound := false
			for _, e := range r.Edges {
				bound = bound || e.Col == k
			}
			if !bound {
				key = append(key, ColRef{i + 1, k})
			}
		}
	}
	why := "the view is keyed by the primary key of " + d.Rels[0].Table.Name
	if len(key) > len(d.Rels[0].Table.PK) {
		why += " and the key columns of the joined tables that ON does not bind"
	}
	if err := d.keyFrom(key, why); err != nil {
		return nil, err
	}
	return d, nil
}

// keyFrom sets Key to the outputs that copy the base columns refs.
func (d *Def) keyFrom(refs []ColRef, why string) error {
	var missing []string
	for _, ref := range refs {
		found := -1
		for i, o := range d.Out {
			if o == ref {
				found = i
				break
			}
		}
		if found < 0 {
			missing = append(missing, d.colName(ref))
			continue
		}
		d.Key = append(d.Key, found)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: view %s: add %s to the select list (%s)", ErrViewKey, d.Name, strings.Join(missing, ", "), why)
	}
	return nil
}

// chain flattens the FROM clause into a left-deep chain of base tables.
func (d *Def) chain(cat *catalog.Catalog, te sqlparser.TableExpr) error {
	switch te := te.(type) {
	case *sqlparser.AliasedTableExpr:
		return d.table(cat, te, false, nil)
	case *sqlparser.ParenTableExpr:
		if len(te.Exprs) != 1 {
			return unsupported(d.Name, "tables separated by commas in FROM; join them with JOIN ... ON")
		}
		return d.chain(cat, te.Exprs[0])
	case *sqlparser.JoinTableExpr:
		left := false
		switch te.Join {
		case sqlparser.JoinStr, sqlparser.StraightJoinStr:
		case sqlparser.LeftJoinStr:
			left = true
		default:
			return unsupported(d.Name, "%s; use JOIN ... ON or LEFT JOIN ... ON", strings.ToUpper(te.Join))
		}
		if err := d.chain(cat, te.LeftExpr); err != nil {
			return err
		}
		right, ok := te.RightExpr.(*sqlparser.AliasedTableExpr)
		if !ok {
			return unsupported(d.Name, "a parenthesized join on the right of JOIN; write the joins as one chain")
		}
		if len(te.Condition.Using) > 0 {
			return unsupported(d.Name, "JOIN ... USING; write ON a.col = b.col")
		}
		if te.Condition.On == nil {
			return unsupported(d.Name, "a join without ON; join on equal columns")
		}
		return d.table(cat, right, left, te.Condition.On)
	}
	return unsupported(d.Name, "FROM item %s", sqlparser.String(te))
}

func (d *Def) table(cat *catalog.Catalog, te *sqlparser.AliasedTableExpr, left bool, on sqlparser.Expr) error {
	tn, ok := te.Expr.(sqlparser.TableName)
	if !ok {
		return unsupported(d.Name, "a subquery in FROM; join the tables directly")
	}
	name := catalog.Normalize(tn.Name.String())
	t, ok := cat.Tables[name]
	if !ok {
		if _, isView := cat.Views[name]; isView {
			return unsupported(d.Name, "it reads view %s; define it over base tables (views over views are not maintained)", name)
		}
		if strings.HasPrefix(name, "ttq_") {
			return unsupported(d.Name, "system table %s; views read base tables only", name)
		}
		return fmt.Errorf("%w %s: not a table (SHOW TABLES lists them)", query.ErrUnknownTable, name)
	}
	r := &Rel{Alias: name, Table: t, Left: left}
	if !te.As.IsEmpty() {
		r.Alias = catalog.Normalize(te.As.String())
	}
	for _, o := range d.Rels {
		if o.Alias == r.Alias {
			return fmt.Errorf("%w: table name or alias %s appears twice in FROM; give each an alias", query.ErrAmbiguous, r.Alias)
		}
	}
	d.Rels = append(d.Rels, r)
	if on == nil {
		return nil
	}
	me := len(d.Rels) - 1
	for _, c := range conjuncts(on, nil) {
		cmp, ok := c.(*sqlparser.ComparisonExpr)
		if !ok || cmp.Operator != "=" {
			continue
		}
		lc, lok := cmp.Left.(*sqlparser.ColName)
		rc, rok := cmp.Right.(*sqlparser.ColName)
		if !lok || !rok {
			continue
		}
		a, err := d.resolve(lc, me+1)
		if err != nil {
			return fmt.Errorf("%w (in ON)", err)
		}
		b, err := d.resolve(rc, me+1)
		if err != nil {
			return fmt.Errorf("%w (in ON)", err)
		}
		if b.Rel == me {
			a, b = b, a
		}
		if a.Rel != me || b.Rel == me {
			continue
		}
		at, bt := t.Columns[a.Col].Type, d.Rels[b.Rel].Table.Columns[b.Col].Type
		if at != bt {
			return unsupported(d.Name, "ON %s joins %s with %s; a view joins columns of the same type", sqlparser.String(cmp), at, bt)
		}
		r.Edges = append(r.Edges, Edge{Col: a.Col, Other: b.Rel, OtherCol: b.Col})
	}
	if len(r.Edges) == 0 {
		return unsupported(d.Name, "%s is joined without an equality of its column and a column of an earlier table (ON %s); views need equi-joins", r.Alias, sqlparser.String(on))
	}
	return nil
}

// resolve finds a column among the first n tables of the chain.
func (d *Def) resolve(cn *sqlparser.ColName, n int) (ColRef, error) {
	qual := catalog.Normalize(cn.Qualifier.Name.String())
	col := catalog.Normalize(cn.Name.String())
	found := ColRef{-1, -1}
	for i, r := range d.Rels[:n] {
		if qual != "" && r.Alias != qual {
			continue
		}
		if c := r.Table.ColumnIndex(col); c >= 0 {
			if found.Rel >= 0 {
				return found, fmt.Errorf("%w: %s is in both %s and %s; qualify it", query.ErrAmbiguous, col, d.Rels[found.Rel].Alias, r.Alias)
			}
			found = ColRef{i, c}
		}
	}
	if found.Rel < 0 {
		return found, fmt.Errorf("%w %s: not a column of the tables joined so far", query.ErrUnknownColumn, sqlparser.String(cn))
	}
	return found, nil
}

// outputs maps each select item to the base column it copies.
func (d *Def) outputs(items sqlparser.SelectExprs) error {
	for _, it := range items {
		switch it := it.(type) {
		case *sqlparser.StarExpr:
			qual := catalog.Normalize(it.TableName.Name.String())
			for i, r := range d.Rels {
				if qual != "" && r.Alias != qual {
					continue
				}
				for c := range r.Table.Columns {
					d.Out = append(d.Out, ColRef{i, c})
				}
			}
		case *sqlparser.AliasedExpr:
			ref := ColRef{-1, -1}
			if cn, ok := it.Expr.(*sqlparser.ColName); ok {
				if r, err := d.resolve(cn, len(d.Rels)); err == nil {
					ref = r
				}
			}
			d.Out = append(d.Out, ref)
		default:
			return unsupported(d.Name, "select item %s", sqlparser.String(it))
		}
	}
	return nil
}

var aggregateNames = map[string]bool{"count": true, "sum": true, "avg": true, "min": true, "max": true}

func hasAggregate(items sqlparser.SelectExprs) bool {
	found := false
	for _, it := range items {
		_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
			if f, ok := n.(*sqlparser.FuncExpr); ok && aggregateNames[f.Name.Lowered()] {
				found = true
				return false, nil
			}
			return true, nil
		}, it)
	}
	return found
}

func conjuncts(e sqlparser.Expr, out []sqlparser.Expr) []sqlparser.Expr {
	switch x := e.(type) {
	case *sqlparser.AndExpr:
		return conjuncts(x.Right, conjuncts(x.Left, out))
	case *sqlparser.ParenExpr:
		return conjuncts(x.Expr, out)
	}
	return append(out, e)
}

// View returns the catalog entry for the definition (ID and Created are
// set by the engine).
func (d *Def) View(epoch int64) *catalog.View {
	return &catalog.View{Name: d.Name, Query: d.Query, Epoch: epoch, Columns: d.Columns, PK: d.Key}
}

// keyOf returns the values of row at the view's key columns.
func keyOf(row []types.Value, pk []int) []types.Value {
	k := make([]types.Value, len(pk))
	for i, c := range pk {
		k[i] = row[c]
	}
	return k
}
