package query

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/xwb1989/sqlparser"
)

// Statements caches parsed SELECT statements by shape: the statement's
// tokens with every literal left out. A serving workload sends the same
// few shapes again and again with other keys and times; a statement whose
// shape is cached skips sqlparser (the bulk of a short query's cost) and
// gets a parsed tree of an earlier statement of its shape with its own
// literals put in.
//
// A cached tree is used by one statement at a time: Parse takes one from
// the shape's free list (or parses anew) and Release puts it back. Only
// shapes whose literals all turn up, in order and unchanged, as the
// tree's literal nodes or as lifted time literals are cached; any other
// (a negative number sqlparser folds into one literal, a literal the
// tree keeps outside its walk) is parsed every time.
type Statements struct {
	mu     sync.Mutex
	shapes map[string]*shape
	max    int
	hits   int // statements given a cached tree (for tests)
}

// shape is the cache entry of one statement shape.
type shape struct {
	cacheable bool
	free      []*parsedTree
}

// parsedTree is a parsed SELECT and the places its literals went.
type parsedTree struct {
	sel   *Select
	vals  []*sqlparser.SQLVal // the literals left in the tree, in text order
	times []timeRef           // the lifted time literals
	lits  []int               // token indexes of the literals vals holds
}

// maxFree bounds the parsed trees kept per shape (one per statement of
// that shape running at once).
const maxFree = 8

// NewStatements returns a cache of at most max shapes.
func NewStatements(max int) *Statements {
	return &Statements{shapes: map[string]*shape{}, max: max}
}

// Parsed is one statement tokenized once, for the point-lookup fast path
// and, if that does not apply, the full parser.
type Parsed struct {
	c    *Statements
	sql  string
	toks []token
	key  string
	tree *parsedTree // checked out of the cache; nil if none
	err  error       // the tokenizer's
}

// Parse tokenizes sql. A tokenizer error is reported by Statement.
func (c *Statements) Parse(sql string) *Parsed {
	p := &Parsed{c: c, sql: sql}
	toks, err := tokenize(sql)
	if err == nil {
		p.sql, p.toks = trimSemicolons(sql, toks)
	}
	p.err = err
	return p
}

// PointGet returns the statement as a primary-key lookup, if it is one.
func (p *Parsed) PointGet() (*PointGet, bool) {
	if len(p.toks) == 0 {
		return nil, false
	}
	return parsePointGet(p.sql, p.toks)
}

// Statement parses the statement, from the cache when its shape is there.
func (p *Parsed) Statement() (st Statement, err error) {
	if len(p.toks) == 0 || p.toks[0].typ != sqlparser.SELECT || p.c == nil {
		return Parse(p.sql)
	}
	defer func() {
		if r := recover(); r != nil {
			st, err = nil, fmt.Errorf("%w: the parser failed on this input (%v); check the statement near its end", ErrSyntax, r)
		}
	}()
	for _, t := range p.toks {
		if t.typ == ';' {
			return parseTokens(p.sql, p.toks) // the error for two statements
		}
	}
	if p.tree != nil {
		return p.tree.sel, nil // a statement run again (a wait for G)
	}
	p.key = shapeKey(p.toks)
	if tree := p.c.take(p.key); tree != nil {
		tree.fill(p.sql, p.toks)
		p.tree = tree
		return tree.sel, nil
	}
	sel, l, err := parseSelectTokens(p.sql, p.toks)
	if err != nil {
		return nil, err
	}
	tree, ok := newParsedTree(sel, l, p.toks)
	p.c.learn(p.key, ok)
	if ok {
		p.tree = tree
	}
	return sel, nil
}

// Release returns the parsed tree to the cache; the statement must not
// be used after it.
func (p *Parsed) Release() {
	if p.tree != nil {
		p.c.put(p.key, p.tree)
		p.tree = nil
	}
}

// isLiteral reports whether a token is a literal a shape leaves out.
func isLiteral(t token) bool {
	switch t.typ {
	case sqlparser.STRING, sqlparser.INTEGRAL, sqlparser.FLOAT, sqlparser.HEXNUM, sqlparser.HEX, sqlparser.BIT_LITERAL:
		return true
	}
	return false
}

// shapeKey is the statement's tokens with literals replaced by their kind.
func shapeKey(toks []token) string {
	b := make([]byte, 0, 256)
	for _, t := range toks {
		b = strconv.AppendInt(b, int64(t.typ), 10)
		switch {
		case isLiteral(t):
			b = append(b, '?')
		case t.quoted:
			b = append(append(b, '`'), t.val...)
		default:
			b = append(append(b, ' '), t.val...)
		}
		b = append(b, 0)
	}
	return string(b)
}

// newParsedTree records where the literals of toks went in sel; ok is
// false when they cannot all be found (the shape is then not cached).
func newParsedTree(sel *Select, l *lifted, toks []token) (*parsedTree, bool) {
	tree := &parsedTree{sel: sel, times: l.times}
	timeTok := map[int]bool{}
	for _, r := range l.times {
		if r.tok >= len(toks) || !isLiteral(toks[r.tok]) {
			return nil, false
		}
		timeTok[r.tok] = true
	}
	for i, t := range toks {
		if isLiteral(t) && !timeTok[i] {
			tree.lits = append(tree.lits, i)
		}
	}
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		if v, ok := n.(*sqlparser.SQLVal); ok {
			tree.vals = append(tree.vals, v)
		}
		return true, nil
	}, sel.AST)
	if len(tree.vals) != len(tree.lits) {
		return nil, false
	}
	for i, v := range tree.vals {
		if !bytes.Equal(v.Val, []byte(toks[tree.lits[i]].val)) || !sameKind(v.Type, toks[tree.lits[i]].typ) {
			return nil, false
		}
	}
	return tree, true
}

// literalToken is the token each kind of literal node is parsed from.
var literalToken = map[sqlparser.ValType]int{
	sqlparser.StrVal: sqlparser.STRING, sqlparser.IntVal: sqlparser.INTEGRAL, sqlparser.FloatVal: sqlparser.FLOAT,
	sqlparser.HexNum: sqlparser.HEXNUM, sqlparser.HexVal: sqlparser.HEX, sqlparser.BitVal: sqlparser.BIT_LITERAL,
}

func sameKind(v sqlparser.ValType, tok int) bool {
	t, ok := literalToken[v]
	return ok && t == tok
}

// fill puts the literals of sql (of the tree's shape) into the tree.
func (t *parsedTree) fill(sql string, toks []token) {
	for i, v := range t.vals {
		// A new slice: the old one may share its array with other literals.
		v.Val = []byte(toks[t.lits[i]].val)
	}
	for _, r := range t.times {
		tok := toks[r.tok]
		lit := TimeLit{Text: tok.val, IsInt: tok.typ == sqlparser.INTEGRAL}
		if r.from {
			r.spec.From = lit
		} else {
			r.spec.To = lit
		}
	}
	t.sel.Text = strings.TrimSpace(sql)
}

// take checks a parsed tree of shape key out of the cache, if one is free.
func (c *Statements) take(key string) *parsedTree {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.shapes[key]
	if s == nil || len(s.free) == 0 {
		return nil
	}
	t := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	c.hits++
	return t
}

// learn records whether shape key can be cached.
func (c *Statements) learn(key string, cacheable bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.shapes[key]; ok {
		return
	}
	if len(c.shapes) >= c.max {
		clear(c.shapes) // a workload of more shapes than max starts over
	}
	c.shapes[key] = &shape{cacheable: cacheable}
}

func (c *Statements) put(key string, t *parsedTree) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.shapes[key]
	if s == nil || !s.cacheable || len(s.free) >= maxFree {
		return
	}
	s.free = append(s.free, t)
}
