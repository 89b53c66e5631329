package query

import (
	"fmt"
	"strings"

	"github.com/xwb1989/sqlparser"

	"ttq/catalog"
	"ttq/types"
)

// ddlParser is a small recursive-descent parser over sqlparser's tokens for
// the statements sqlparser's grammar does not know (CREATE TABLE ... SOURCE).
type ddlParser struct {
	sql  string
	toks []token
	i    int
}

func (p *ddlParser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return token{start: len(p.sql), end: len(p.sql)}
}

func (p *ddlParser) next() token {
	t := p.peek()
	if p.i < len(p.toks) {
		p.i++
	}
	return t
}

func (p *ddlParser) errorf(t token, format string, args ...any) error {
	near := "end of statement"
	if t.typ != 0 {
		near = fmt.Sprintf("%q", p.sql[t.start:t.end])
	}
	return fmt.Errorf("%w at offset %d near %s: %s", ErrSyntax, t.start, near, fmt.Sprintf(format, args...))
}

// accept consumes the next token if it is the bare word w.
func (p *ddlParser) accept(w string) bool {
	if p.peek().word(w) {
		p.i++
		return true
	}
	return false
}

func (p *ddlParser) expect(w string) error {
	if !p.accept(w) {
		return p.errorf(p.peek(), "expected %s", strings.ToUpper(w))
	}
	return nil
}

func (p *ddlParser) expectChar(c int) error {
	if p.peek().typ != c {
		return p.errorf(p.peek(), "expected '%c'", rune(c))
	}
	p.i++
	return nil
}

// isName reports whether t can be an identifier: a plain or quoted
// identifier, or a keyword used as one.
func isName(t token) bool {
	switch t.typ {
	case 0, sqlparser.STRING, sqlparser.INTEGRAL, sqlparser.FLOAT, sqlparser.HEXNUM, sqlparser.HEX,
		sqlparser.BIT_LITERAL, sqlparser.VALUE_ARG, sqlparser.LIST_ARG, sqlparser.LEX_ERROR:
		return false
	case sqlparser.ID:
		return t.val != ""
	}
	if t.typ < 256 || t.val == "" {
		return false
	}
	for _, c := range t.val {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (p *ddlParser) name(what string) (string, error) {
	t := p.peek()
	if !isName(t) {
		return "", p.errorf(t, "expected a %s name", what)
	}
	p.i++
	return catalog.Normalize(t.val), nil
}

func (p *ddlParser) end() error {
	if t := p.peek(); t.typ != 0 {
		return p.errorf(t, "unexpected text after the end of the statement")
	}
	return nil
}

func (p *ddlParser) statement() (Statement, error) {
	t := p.next()
	switch t.typ {
	case sqlparser.CREATE:
		return p.create()
	case sqlparser.DROP:
		return p.drop()
	case sqlparser.SHOW:
		w := p.next()
		for _, k := range []string{"tables", "sources", "views"} {
			if w.word(k) {
				return &Show{What: k}, p.end()
			}
		}
		return nil, p.errorf(w, "expected SHOW TABLES, SHOW SOURCES or SHOW VIEWS")
	case sqlparser.DESCRIBE, sqlparser.DESC:
		p.accept("table")
		n, err := p.name("table or view")
		if err != nil {
			return nil, err
		}
		return &Describe{Name: n}, p.end()
	case sqlparser.EXPLAIN:
		if p.peek().typ == sqlparser.VIEW {
			p.i++
			n, err := p.name("view")
			if err != nil {
				return nil, err
			}
			return &Explain{View: n}, p.end()
		}
		ts := false
		if p.peek().word("timestamp") {
			ts = true
			p.i++
		}
		rest := p.peek()
		if rest.typ != sqlparser.SELECT && rest.typ != '(' {
			return nil, p.errorf(rest, "EXPLAIN takes a SELECT statement (or VIEW name for a view's maintenance plan)")
		}
		s, err := ParseSelect(p.sql[rest.start:])
		if err != nil {
			return nil, err
		}
		return &Explain{Select: s, Timestamp: ts}, nil
	}
	return nil, p.errorf(t, "unexpected statement")
}

func (p *ddlParser) create() (Statement, error) {
	switch w := p.next(); {
	case w.word("source"):
		n, err := p.name("source")
		if err != nil {
			return nil, err
		}
		opts, err := p.withOptions()
		if err != nil {
			return nil, err
		}
		return &CreateSource{Name: n, Options: opts}, p.end()
	case w.word("table"):
		return p.createTable()
	case w.word("view"):
		n, err := p.name("view")
		if err != nil {
			return nil, err
		}
		opts, err := p.withOptions()
		if err != nil {
			return nil, err
		}
		if err := p.expect("as"); err != nil {
			return nil, err
		}
		q := p.peek()
		if q.typ != sqlparser.SELECT && q.typ != '(' {
			return nil, p.errorf(q, "CREATE VIEW %s AS needs a SELECT", n)
		}
		text := strings.TrimSpace(p.sql[q.start:])
		s, err := ParseSelect(text)
		if err != nil {
			return nil, fmt.Errorf("view %s: %w", n, err)
		}
		if s.AsOf != nil || len(s.tables) > 0 {
			return nil, fmt.Errorf("%w: view %s: a view's query cannot have AS OF or FOR SYSTEM_TIME; it is read AS OF each epoch", ErrUnsupported, n)
		}
		return &CreateView{Name: n, Query: text, Options: opts}, nil
	default:
		return nil, p.errorf(w, "expected CREATE SOURCE, CREATE TABLE or CREATE VIEW")
	}
}

func (p *ddlParser) createTable() (Statement, error) {
	ct := &CreateTable{}
	if p.peek().typ == sqlparser.IF {
		p.i++
		if err := p.expect("not"); err != nil {
			return nil, err
		}
		if err := p.expect("exists"); err != nil {
			return nil, err
		}
		ct.IfNotExists = true
	}
	n, err := p.name("table")
	if err != nil {
		return nil, err
	}
	ct.Name = n
	if err := p.expectChar('('); err != nil {
		return nil, err
	}
	var tablePK []string
	pkAt := token{}
	for {
		t := p.peek()
		if t.word("primary") {
			p.i++
			if err := p.expect("key"); err != nil {
				return nil, err
			}
			if tablePK != nil {
				return nil, p.errorf(t, "a second PRIMARY KEY")
			}
			pkAt = t
			if err := p.expectChar('('); err != nil {
				return nil, err
			}
			for {
				c, err := p.name("key column")
				if err != nil {
					return nil, err
				}
				tablePK = append(tablePK, c)
				if p.peek().typ == ',' {
					p.i++
					continue
				}
				break
			}
			if err := p.expectChar(')'); err != nil {
				return nil, err
			}
		} else {
			if err := p.column(ct); err != nil {
				return nil, err
			}
		}
		if p.peek().typ == ',' {
			p.i++
			continue
		}
		if err := p.expectChar(')'); err != nil {
			return nil, err
		}
		break
	}
	if tablePK != nil {
		if len(ct.PK) > 0 {
			return nil, p.errorf(pkAt, "PRIMARY KEY given both on a column and as a constraint; keep one")
		}
		for _, c := range tablePK {
			i := -1
			for j, col := range ct.Columns {
				if col.Name == c {
					i = j
				}
			}
			if i < 0 {
				return nil, fmt.Errorf("%w: PRIMARY KEY column %q is not a column of table %s", ErrUnknownColumn, c, ct.Name)
			}
			for _, k := range ct.PK {
				if k == i {
					return nil, p.errorf(pkAt, "column %s appears twice in the PRIMARY KEY", c)
				}
			}
			ct.PK = append(ct.PK, i)
		}
	}
	if len(ct.PK) == 0 {
		return nil, fmt.Errorf("%w: table %s has no PRIMARY KEY; declare one on a column or as PRIMARY KEY (a, b)", ErrSyntax, ct.Name)
	}
	if err := p.expect("source"); err != nil {
		return nil, fmt.Errorf("%w (every table is owned by a source: ... ) SOURCE name)", err)
	}
	if ct.Source, err = p.name("source"); err != nil {
		return nil, err
	}
	if ct.Options, err = p.withOptions(); err != nil {
		return nil, err
	}
	return ct, p.end()
}

func (p *ddlParser) column(ct *CreateTable) error {
	n, err := p.name("column")
	if err != nil {
		return err
	}
	tt := p.peek()
	if !isName(tt) {
		return p.errorf(tt, "expected a type for column %s (BIGINT, DOUBLE, VARCHAR, BOOLEAN or TIMESTAMP)", n)
	}
	p.i++
	typ, err := types.ParseType(p.sql[tt.start:tt.end])
	if err != nil {
		return fmt.Errorf("%w at offset %d: column %s: %w", ErrSyntax, tt.start, n, err)
	}
	if p.peek().typ == '(' { // VARCHAR(64), DOUBLE(10, 2): accepted and ignored
		p.i++
		for p.peek().typ == sqlparser.INTEGRAL || p.peek().typ == ',' {
			p.i++
		}
		if err := p.expectChar(')'); err != nil {
			return err
		}
	}
	for _, c := range ct.Columns {
		if c.Name == n {
			return fmt.Errorf("%w: column %s appears twice in table %s", ErrSyntax, n, ct.Name)
		}
	}
	ct.Columns = append(ct.Columns, catalog.Column{Name: n, Type: typ})
	for {
		switch t := p.peek(); {
		case t.word("primary"):
			p.i++
			if err := p.expect("key"); err != nil {
				return err
			}
			if len(ct.PK) > 0 {
				return p.errorf(t, "a second PRIMARY KEY column; use PRIMARY KEY (a, b) for a composite key")
			}
			ct.PK = []int{len(ct.Columns) - 1}
		case t.word("not"):
			p.i++
			if err := p.expect("null"); err != nil {
				return err
			}
		case t.word("null"):
			p.i++
		default:
			return nil
		}
	}
}

// withOptions parses an optional WITH (key = value, ...).
func (p *ddlParser) withOptions() (map[string]string, error) {
	opts := map[string]string{}
	if !p.accept("with") {
		return opts, nil
	}
	if err := p.expectChar('('); err != nil {
		return nil, err
	}
	if p.peek().typ == ')' {
		p.i++
		return opts, nil
	}
	for {
		k, err := p.name("option")
		if err != nil {
			return nil, err
		}
		if err := p.expectChar('='); err != nil {
			return nil, err
		}
		if _, dup := opts[k]; dup {
			return nil, p.errorf(p.toks[p.i-2], "option %s given twice", k)
		}
		v := p.next()
		switch {
		case v.typ == sqlparser.STRING || v.typ == sqlparser.INTEGRAL || v.typ == sqlparser.FLOAT:
			opts[k] = v.val
		case isName(v):
			opts[k] = v.val
		default:
			return nil, p.errorf(v, "expected a value for option %s, such as '5s'", k)
		}
		if p.peek().typ == ',' {
			p.i++
			continue
		}
		if err := p.expectChar(')'); err != nil {
			return nil, err
		}
		return opts, nil
	}
}

func (p *ddlParser) drop() (Statement, error) {
	w := p.next()
	kind := ""
	for _, k := range []string{"table", "view", "source"} {
		if w.word(k) {
			kind = k
		}
	}
	if kind == "" {
		return nil, p.errorf(w, "expected DROP TABLE, DROP VIEW or DROP SOURCE")
	}
	d := &Drop{Kind: kind}
	if p.peek().typ == sqlparser.IF {
		p.i++
		if err := p.expect("exists"); err != nil {
			return nil, err
		}
		d.IfExists = true
	}
	n, err := p.name(kind)
	if err != nil {
		return nil, err
	}
	d.Name = n
	return d, p.end()
}
