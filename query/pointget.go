package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/xwb1989/sqlparser"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/timeline"
	"ttq/types"
)

// ErrNotPointGet is returned by RunPointGet when a statement shaped like a
// primary-key lookup needs the general planner after all (a view, a type
// conversion, an error to report); the caller runs it through Parse and
// Run, which give the canonical answer or error.
var ErrNotPointGet = errors.New("query: not a plain primary-key lookup")

// PointGet is the most common statement of a serving workload,
//
//	SELECT cols | * FROM table [alias] [AS OF t] WHERE key = literal [AND ...]
//
// the same row joined with the row of a second table whose whole key one of
// its columns holds,
//
//	SELECT a.col, b.col FROM table a [INNER] JOIN other b ON a.col = b.key [AS OF t]
//	    WHERE a.key = literal [AND ...]
//
// and the history of one row,
//
//	SELECT cols FROM table FOR SYSTEM_TIME BETWEEN t1 AND t2 WHERE key = literal [AND ...]
//	    [ORDER BY _valid_from [ASC]]
//
// recognised from its tokens without the SQL parser, whose per-statement
// cost (tens of microseconds and allocations) would dominate a lookup that
// is one Badger read. Like a point-get fast plan in other SQL engines, it
// answers exactly what the general path answers; anything it is unsure of
// goes to the general path.
type PointGet struct {
	asOf  *TimeSpec
	hist  *TimeSpec // FOR SYSTEM_TIME BETWEEN: the row's versions
	order bool      // ORDER BY _valid_from
	table string
	alias string
	join  *pgJoin
	items []pgItem
	conds []pgCond
}

// pgJoin is the second table of a point lookup and its ON condition.
type pgJoin struct {
	table, alias string
	on           [2]pgItem // qualified columns: the two sides of ON
}

type pgItem struct {
	star       bool
	qual, name string
}

type pgCond struct {
	qual, col string
	lit       token
	neg       bool
}

// ParsePointGet recognises a point lookup; ok is false for any other
// statement.
func ParsePointGet(sql string) (pg *PointGet, ok bool) {
	toks, err := tokenize(sql)
	if err != nil {
		return nil, false
	}
	sql, toks = trimSemicolons(sql, toks)
	return parsePointGet(sql, toks)
}

// parsePointGet is ParsePointGet of sql already tokenized, without
// trailing semicolons.
func parsePointGet(sql string, toks []token) (pg *PointGet, ok bool) {
	p := &pgParser{sql: sql, toks: toks}
	pg = &PointGet{}
	if !p.take(sqlparser.SELECT) {
		return nil, false
	}
	for {
		var it pgItem
		switch {
		case p.take('*'):
			it.star = true
		case p.ident(&it.name):
			if p.take('.') {
				it.qual = it.name
				if !p.ident(&it.name) {
					return nil, false
				}
			}
		default:
			return nil, false
		}
		pg.items = append(pg.items, it)
		if !p.take(',') {
			break
		}
	}
	if !p.take(sqlparser.FROM) || !p.ident(&pg.table) {
		return nil, false
	}
	if p.at(sqlparser.FOR) && p.peekWord(1, "system_time") {
		spec, last, err := timeClause(sql, toks, p.i+2, true)
		if err != nil || spec.Kind != TimeBetween {
			return nil, false
		}
		pg.hist, p.i = spec, last+1
	} else if p.at(sqlparser.AS) && !p.peekWord(1, "of") {
		p.i++
		if !p.ident(&pg.alias) {
			return nil, false
		}
	} else if p.peekIdent() {
		p.ident(&pg.alias)
	}
	if pg.hist == nil && (p.at(sqlparser.JOIN) || p.at(sqlparser.INNER)) {
		if pg.join = p.join(); pg.join == nil {
			return nil, false
		}
	}
	if pg.hist == nil && p.at(sqlparser.AS) && p.peekWord(1, "of") {
		p.i += 2
		if p.peekWord(0, "system") && p.peekWord(1, "time") {
			p.i += 2
		}
		lit, err := timeLit(sql, toks, p.i)
		if err != nil {
			return nil, false
		}
		p.i++
		pg.asOf = &TimeSpec{Kind: TimeAsOf, To: lit}
	}
	if !p.take(sqlparser.WHERE) {
		return nil, false
	}
	for {
		var c pgCond
		if p.ident(&c.col) {
			if p.take('.') {
				c.qual = c.col
				if !p.ident(&c.col) {
					return nil, false
				}
			}
			if !p.take('=') || !p.literal(&c) {
				return nil, false
			}
		} else if !p.literal(&c) || !p.take('=') || !p.ident(&c.col) {
			return nil, false
		} else if p.take('.') {
			c.qual = c.col
			if !p.ident(&c.col) {
				return nil, false
			}
		}
		pg.conds = append(pg.conds, c)
		if !p.take(sqlparser.AND) {
			break
		}
	}
	if pg.hist != nil && p.take(sqlparser.ORDER) {
		var col string
		if !p.take(sqlparser.BY) || !p.ident(&col) || !strings.EqualFold(col, "_valid_from") {
			return nil, false
		}
		p.take(sqlparser.ASC)
		pg.order = true
	}
	return pg, p.i == len(toks)
}

// join parses [INNER] JOIN table [[AS] alias] ON q.col = q.col.
func (p *pgParser) join() *pgJoin {
	p.take(sqlparser.INNER)
	j := &pgJoin{}
	if !p.take(sqlparser.JOIN) || !p.ident(&j.table) {
		return nil
	}
	if p.at(sqlparser.AS) && !p.peekWord(1, "of") {
		p.i++
		if !p.ident(&j.alias) {
			return nil
		}
	} else if p.peekIdent() {
		p.ident(&j.alias)
	}
	if !p.take(sqlparser.ON) {
		return nil
	}
	for k := range j.on {
		if k == 1 && !p.take('=') {
			return nil
		}
		if !p.ident(&j.on[k].qual) || !p.take('.') || !p.ident(&j.on[k].name) {
			return nil
		}
	}
	return j
}

type pgParser struct {
	sql  string
	toks []token
	i    int
}

func (p *pgParser) at(typ int) bool { return p.i < len(p.toks) && p.toks[p.i].typ == typ }

func (p *pgParser) take(typ int) bool {
	if p.at(typ) {
		p.i++
		return true
	}
	return false
}

func (p *pgParser) peekWord(off int, w string) bool {
	return p.i+off < len(p.toks) && p.toks[p.i+off].word(w)
}

func (p *pgParser) peekIdent() bool {
	return p.at(sqlparser.ID) && p.toks[p.i].val != ""
}

func (p *pgParser) ident(dst *string) bool {
	if !p.peekIdent() {
		return false
	}
	*dst = p.toks[p.i].val
	p.i++
	return true
}

func (p *pgParser) literal(c *pgCond) bool {
	if p.take('-') {
		c.neg = true
	}
	if p.i >= len(p.toks) {
		return false
	}
	switch t := p.toks[p.i]; t.typ {
	case sqlparser.STRING:
		if c.neg {
			return false
		}
	case sqlparser.INTEGRAL, sqlparser.FLOAT:
	default:
		return false
	}
	c.lit = p.toks[p.i]
	p.i++
	return true
}

// RunPointGet answers a point lookup with one snapshot read. It returns
// ErrNotPointGet whenever the general path must decide.
func RunPointGet(ctx context.Context, env Env, pg *PointGet, opts Options) (*Result, error) {
	cat := env.Catalog()
	t, err := cat.Table(pg.table)
	if err != nil {
		return nil, ErrNotPointGet // a view, a system table or an error to report
	}
	// The tables by name or alias: t, and the joined table t2.
	names := [2]string{pg.alias, ""}
	if names[0] == "" {
		names[0] = t.Name
	}
	var t2 *catalog.Table
	if pg.join != nil {
		if t2, err = cat.Table(pg.join.table); err != nil {
			return nil, ErrNotPointGet
		}
		if names[1] = pg.join.alias; names[1] == "" {
			names[1] = t2.Name
		}
		if strings.EqualFold(names[0], names[1]) {
			return nil, ErrNotPointGet
		}
	}
	// side is the table q names: 0 for t, 1 for t2; unqualified names
	// are t's when there is no join.
	side := func(q string) int {
		switch {
		case q == "" && t2 == nil, strings.EqualFold(q, names[0]):
			return 0
		case t2 != nil && strings.EqualFold(q, names[1]):
			return 1
		}
		return -1
	}
	tables := [2]*catalog.Table{t, t2}
	// The ON condition: a column of t equal to t2's whole key, of the
	// same type (anything else needs the general path's judgement).
	var via int
	if pg.join != nil {
		a, b := pg.join.on[0], pg.join.on[1]
		if side(a.qual) == 1 {
			a, b = b, a
		}
		if side(a.qual) != 0 || side(b.qual) != 1 {
			return nil, ErrNotPointGet
		}
		via = t.ColumnIndex(a.name)
		k := t2.ColumnIndex(b.name)
		if via < 0 || len(t2.PK) != 1 || t2.PK[0] != k || t.Columns[via].Type != t2.Columns[k].Type {
			return nil, ErrNotPointGet
		}
	}
	// The projection: which table, and a column index or a pseudo-column.
	var cols []catalog.Column
	var idx, from []int
	for _, it := range pg.items {
		sd := side(it.qual)
		if sd < 0 {
			return nil, ErrNotPointGet
		}
		tb := tables[sd]
		if it.star {
			if it.qual != "" || pg.hist != nil || t2 != nil {
				return nil, ErrNotPointGet
			}
			for i, c := range t.Columns {
				cols, idx, from = append(cols, c), append(idx, i), append(from, 0)
			}
			continue
		}
		if pc := pseudoColumn(it.name, pg.hist != nil); pc != 0 {
			cols, idx, from = append(cols, catalog.Column{Name: it.name, Type: types.Timestamp}), append(idx, pc), append(from, sd)
			continue
		}
		i := tb.ColumnIndex(it.name)
		if i < 0 {
			return nil, ErrNotPointGet
		}
		cols, idx, from = append(cols, catalog.Column{Name: it.name, Type: tb.Columns[i].Type}), append(idx, i), append(from, sd)
	}
	// The key: every key column of t bound exactly once to a literal of
	// its type.
	key := make([]types.Value, len(t.PK))
	for _, c := range pg.conds {
		if side(c.qual) != 0 {
			return nil, ErrNotPointGet
		}
		i := t.ColumnIndex(c.col)
		pos := -1
		for j, k := range t.PK {
			if k == i {
				pos = j
			}
		}
		if i < 0 || pos < 0 || !key[pos].IsNull() {
			return nil, ErrNotPointGet
		}
		v, ok := pgValue(c, t.Columns[i].Type)
		if !ok {
			return nil, ErrNotPointGet
		}
		key[pos] = v
	}
	for _, v := range key {
		if v.IsNull() {
			return nil, ErrNotPointGet
		}
	}
	if pg.hist != nil {
		return runPointHistory(ctx, env, pg, t, key, cols, idx, opts)
	}
	// The time, checked as the planner checks it.
	ts := env.Watermark()
	if pg.asOf != nil {
		pl := &planner{env: env, g: ts}
		if ts, err = pl.resolve(pg.asOf.To); err != nil {
			return nil, ErrNotPointGet
		}
	}
	if ts == timeline.None || env.CheckReadable(ts) != nil {
		return nil, ErrNotPointGet
	}
	if tc, ok := env.(TableChecker); ok {
		for _, tb := range tables {
			if tb != nil && tc.CheckTable(tb, ts) != nil {
				return nil, ErrNotPointGet
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The rows: t's by its key, then t2's by the key t's row holds.
	snap := env.Snapshot(ts)
	defer snap.Close()
	var rows [2][]types.Value
	var rts [2]int64
	row, rt, found, err := snap.Get(t, key, nil)
	if err != nil {
		return nil, err
	}
	rows[0], rts[0] = row, rt
	if found && t2 != nil {
		v := row[via]
		found = !v.IsNull()
		if found {
			if rows[1], rts[1], found, err = snap.Get(t2, []types.Value{v}, nil); err != nil {
				return nil, err
			}
		}
	}
	if !found {
		return &Result{Columns: cols, AsOf: ts}, nil
	}
	out := make([]types.Value, len(idx))
	for j, i := range idx {
		if i < 0 {
			out[j] = types.Time(rts[from[j]]) // _ts
		} else {
			out[j] = rows[from[j]][i]
		}
	}
	b := newResultBuilder(cols, 1)
	b.add(out)
	return b.finish(ts), nil
}

// pgValue converts a literal to a key column's type when that needs no
// judgement; anything else goes to the general path.
func pgValue(c pgCond, typ types.Type) (types.Value, bool) {
	switch {
	case typ == types.Varchar && c.lit.typ == sqlparser.STRING:
		return types.String(c.lit.val), true
	case typ == types.BigInt && c.lit.typ == sqlparser.INTEGRAL:
		n, err := strconv.ParseInt(c.lit.val, 10, 64)
		if err != nil {
			return types.Value{}, false
		}
		if c.neg {
			if n == 0 {
				return types.Int(0), true
			}
			n = -n
		}
		return types.Int(n), true
	case typ == types.Double && (c.lit.typ == sqlparser.INTEGRAL || c.lit.typ == sqlparser.FLOAT):
		f, err := strconv.ParseFloat(c.lit.val, 64)
		if err != nil {
			return types.Value{}, false
		}
		if c.neg {
			f = -f
		}
		return types.Float(f), true
	}
	return types.Value{}, false
}

// The pseudo-columns a point lookup reads, as negative column indexes.
const (
	pcTS        = -1
	pcValidFrom = -2
	pcValidTo   = -3
)

// pseudoColumn returns the pseudo-column name is, or 0; _valid_from and
// _valid_to only in a history.
func pseudoColumn(name string, hist bool) int {
	switch {
	case strings.EqualFold(name, "_ts"):
		return pcTS
	case hist && strings.EqualFold(name, "_valid_from"):
		return pcValidFrom
	case hist && strings.EqualFold(name, "_valid_to"):
		return pcValidTo
	}
	return 0
}

// runPointHistory answers the versions of one row in [from, to] with one
// history read, as the general path's history scan of the key does.
func runPointHistory(ctx context.Context, env Env, pg *PointGet, t *catalog.Table, key []types.Value, cols []catalog.Column, idx []int, opts Options) (*Result, error) {
	g := env.Watermark()
	pl := &planner{env: env, g: g, readable: map[int64]error{}}
	from, err := pl.resolve(pg.hist.From)
	if err != nil {
		return nil, ErrNotPointGet
	}
	to, err := pl.resolve(pg.hist.To)
	if err != nil || from > to || pl.check(to) != nil || pl.check(from) != nil {
		return nil, ErrNotPointGet
	}
	if tc, ok := env.(TableChecker); ok && tc.CheckTable(t, from) != nil {
		return nil, ErrNotPointGet
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type version struct {
		from int64
		row  []types.Value
	}
	var vs []version
	err = env.History(t, key, from, to, func(v mvcc.RowVersion) error {
		out := make([]types.Value, len(idx))
		for j, i := range idx {
			switch i {
			case pcTS, pcValidFrom:
				out[j] = types.Time(v.ValidFrom)
			case pcValidTo:
				if v.ValidTo != timeline.None {
					out[j] = types.Time(v.ValidTo)
				}
			default:
				out[j] = v.Row[i]
			}
		}
		vs = append(vs, version{v.ValidFrom, out})
		if n := int64(len(vs)); (opts.MaxRows > 0 && n > opts.MaxRows) || (opts.MaxHeldRows > 0 && n > opts.MaxHeldRows) {
			return ErrNotPointGet // the general path reports the limit
		}
		if len(vs)%4096 == 0 {
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if pg.order {
		// One row's versions: no two start at the same instant.
		slices.SortFunc(vs, func(a, b version) int { return cmp.Compare(a.from, b.from) })
	}
	b := newResultBuilder(cols, opts.BatchSize)
	defer b.release()
	for _, v := range vs {
		b.add(v.row)
	}
	res := b.finish(g)
	name := catalog.Normalize(pg.table)
	res.Note = fmt.Sprintf("%s history [%s, %s]", name, timeline.Format(from), timeline.Format(to))
	return res, nil
}
