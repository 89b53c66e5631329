package query

import (
	"fmt"
	"strings"

	"github.com/xwb1989/sqlparser"

	"ttq/catalog"
)

// Statement is one parsed statement: *CreateSource, *CreateTable,
// *CreateView, *Drop, *Show, *Describe, *Select or *Explain.
type Statement interface{ statement() }

// CreateSource is CREATE SOURCE name [WITH (k = v, ...)].
type CreateSource struct {
	Name string
	// Options has lower-cased keys and unquoted values: topic, format,
	// watermark, max_delay, ...
	Options map[string]string
}

// CreateTable is CREATE TABLE [IF NOT EXISTS] name (...) SOURCE s [WITH (...)].
type CreateTable struct {
	Name        string
	Columns     []catalog.Column
	PK          []int
	Source      string
	Options     map[string]string
	IfNotExists bool
}

// CreateView is CREATE VIEW name [WITH (...)] AS <select>.
type CreateView struct {
	Name    string
	Query   string // the SELECT text as written
	Options map[string]string
}

// Drop is DROP TABLE|VIEW|SOURCE [IF EXISTS] name.
type Drop struct {
	Kind     string // "table", "view" or "source"
	Name     string
	IfExists bool
}

// Show is SHOW TABLES|SOURCES|VIEWS.
type Show struct {
	What string // "tables", "sources" or "views"
}

// Describe is DESCRIBE name.
type Describe struct {
	Name string
}

// Select is a parsed SELECT with its time clauses lifted out.
type Select struct {
	// Text is the statement as written.
	Text string
	// AST is sqlparser's tree of the text without time clauses.
	AST *sqlparser.Select
	// AsOf is the statement-level AS OF, nil to read at the global watermark.
	AsOf *TimeSpec
	// tables maps a FROM item to its FOR SYSTEM_TIME clause.
	tables map[*sqlparser.AliasedTableExpr]*TimeSpec
}

// Checkpoint is CHECKPOINT: take a checkpoint of every table now
// (docs/STORAGE.md).
type Checkpoint struct{}

// Explain is EXPLAIN [TIMESTAMP] <select>.
type Explain struct {
	Select    *Select
	Timestamp bool
	// View, for EXPLAIN VIEW name, names a view whose maintenance plan
	// is asked for (Select is nil then).
	View string
}

func (*CreateSource) statement() {}
func (*CreateTable) statement()  {}
func (*CreateView) statement()   {}
func (*Drop) statement()         {}
func (*Show) statement()         {}
func (*Describe) statement()     {}
func (*Select) statement()       {}
func (*Explain) statement()      {}
func (*Checkpoint) statement()   {}

// Parse parses one statement; a trailing ';' is fine.
func Parse(sql string) (st Statement, err error) {
	defer func() {
		if r := recover(); r != nil {
			st, err = nil, fmt.Errorf("%w: the parser failed on this input (%v); check the statement near its end", ErrSyntax, r)
		}
	}()
	toks, err := tokenize(sql)
	if err != nil {
		return nil, err
	}
	sql, toks = trimSemicolons(sql, toks)
	return parseTokens(sql, toks)
}

// trimSemicolons drops trailing semicolons; one in the middle is two
// statements.
func trimSemicolons(sql string, toks []token) (string, []token) {
	for len(toks) > 0 && toks[len(toks)-1].typ == ';' {
		sql = sql[:toks[len(toks)-1].start]
		toks = toks[:len(toks)-1]
	}
	return sql, toks
}

// parseTokens is Parse of sql already tokenized, without trailing
// semicolons.
func parseTokens(sql string, toks []token) (Statement, error) {
	if len(toks) == 0 {
		return nil, fmt.Errorf("%w: empty statement", ErrSyntax)
	}
	for _, t := range toks {
		if t.typ == ';' {
			return nil, fmt.Errorf("%w at offset %d: more than one statement; run them one at a time or as a script", ErrSyntax, t.start)
		}
	}
	switch toks[0].typ {
	case sqlparser.SELECT, '(':
		s, _, err := parseSelectTokens(sql, toks)
		if err != nil {
			return nil, err
		}
		return s, nil
	case sqlparser.CREATE, sqlparser.DROP, sqlparser.SHOW, sqlparser.DESCRIBE, sqlparser.DESC, sqlparser.EXPLAIN:
		p := &ddlParser{sql: sql, toks: toks}
		return p.statement()
	case sqlparser.INSERT, sqlparser.UPDATE, sqlparser.DELETE, sqlparser.REPLACE:
		return nil, fmt.Errorf("%w: %s; ttq tables change only through ingest (ttq load, POST /v1/ingest or Kafka)", ErrUnsupported, strings.ToUpper(toks[0].val))
	}
	if toks[0].word("checkpoint") {
		if len(toks) > 1 {
			return nil, fmt.Errorf("%w at offset %d: CHECKPOINT takes no arguments", ErrSyntax, toks[1].start)
		}
		return &Checkpoint{}, nil
	}
	return nil, fmt.Errorf("%w at offset 0 near %q: expected SELECT, CREATE, DROP, SHOW, DESCRIBE, EXPLAIN or CHECKPOINT", ErrSyntax, snippet(sql, toks[0].start))
}

// ParseSelect parses a SELECT statement, lifting its time clauses.
func ParseSelect(sql string) (s *Select, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%w: the parser failed on this input (%v)", ErrSyntax, r)
		}
	}()
	toks, err := tokenize(sql)
	if err != nil {
		return nil, err
	}
	s, _, err = parseSelectTokens(sql, toks)
	return s, err
}

// parseSelectTokens is ParseSelect of sql already tokenized; it also
// returns the lifted time clauses.
func parseSelectTokens(sql string, toks []token) (s *Select, l *lifted, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, l, err = nil, nil, fmt.Errorf("%w: the parser failed on this input (%v)", ErrSyntax, r)
		}
	}()
	l, err = liftTokens(sql, toks)
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlparser.Parse(l.text)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	for {
		p, ok := st.(*sqlparser.ParenSelect)
		if !ok {
			break
		}
		st = p.Select
	}
	sel, ok := st.(*sqlparser.Select)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %T statements; ttq runs single SELECT statements (no UNION)", ErrUnsupported, st)
	}
	out := &Select{Text: strings.TrimSpace(sql), AST: sel, AsOf: l.asOf, tables: map[*sqlparser.AliasedTableExpr]*TimeSpec{}}
	// Find the placeholders of per-table time clauses.
	used := 0
	err = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		at, ok := n.(*sqlparser.AliasedTableExpr)
		if !ok || len(at.Partitions) == 0 {
			return true, nil
		}
		if len(at.Partitions) != 1 || !strings.HasPrefix(at.Partitions[0].Lowered(), markerPrefix) {
			return false, fmt.Errorf("%w: PARTITION (...) on %s", ErrUnsupported, sqlparser.String(at.Expr))
		}
		var n2 int
		if _, err := fmt.Sscanf(at.Partitions[0].Lowered()[len(markerPrefix):], "%d", &n2); err != nil || n2 < 0 || n2 >= len(l.tables) {
			return false, fmt.Errorf("%w: PARTITION (...) on %s", ErrUnsupported, sqlparser.String(at.Expr))
		}
		out.tables[at] = l.tables[n2]
		at.Partitions = nil
		used++
		return true, nil
	}, sel)
	if err != nil {
		return nil, nil, err
	}
	if used != len(l.tables) {
		return nil, nil, fmt.Errorf("%w: FOR SYSTEM_TIME must directly follow a table name in FROM", ErrSyntax)
	}
	return out, l, nil
}

// Split splits a script into statements on ';' outside strings and
// comments, skipping empty ones.
func Split(script string) (out []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: the tokenizer failed on this script (%v)", ErrSyntax, r)
		}
	}()
	toks, err := tokenize(script)
	if err != nil {
		return nil, err
	}
	start, last := 0, 0
	any := false
	flush := func(end int) {
		if any {
			out = append(out, strings.TrimSpace(script[start:end]))
		}
		any = false
	}
	for _, t := range toks {
		if t.typ == ';' {
			flush(last)
			start = t.end
			continue
		}
		if !any {
			start = t.start
		}
		any = true
		last = t.end
	}
	flush(last)
	return out, nil
}
