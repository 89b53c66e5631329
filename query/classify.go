package query

import "github.com/xwb1989/sqlparser"

// Class describes a statement text from its tokens, without parsing it:
// enough for a server to route, authorise and count statements cheaply.
type Class struct {
	// Statements is the number of non-empty statements separated by ';'.
	Statements int
	// Kind is "select", "meta" (SHOW, DESCRIBE, EXPLAIN), "ddl" (CREATE,
	// DROP, ALTER), "write" (INSERT, UPDATE, DELETE, REPLACE) or "other",
	// for the first statement.
	Kind string
	// ReadOnly is true only for statements known to read (select, meta);
	// Parse dispatches on the same first token, so a statement classed
	// read-only can never run as DDL. An empty text reads nothing.
	ReadOnly bool
}

// Classify tokenises sql (comments and strings are never mistaken for
// keywords) and classes its first statement.
func Classify(sql string) (Class, error) {
	toks, err := tokenize(sql)
	if err != nil {
		return Class{}, err
	}
	return classify(toks), nil
}

// Class classes the statement from the tokens Parse read (one pass of the
// tokenizer serves both), or returns the tokenizer's error.
func (p *Parsed) Class() (Class, error) {
	if p.err != nil {
		return Class{}, p.err
	}
	return classify(p.toks), nil
}

func classify(toks []token) Class {
	c := Class{Kind: "other"}
	inStmt := false
	for _, t := range toks {
		if t.typ == ';' {
			inStmt = false
			continue
		}
		if inStmt {
			continue
		}
		inStmt = true
		c.Statements++
		if c.Statements > 1 {
			continue
		}
		switch t.typ {
		case sqlparser.SELECT, '(':
			c.Kind, c.ReadOnly = "select", true
		case sqlparser.SHOW, sqlparser.DESCRIBE, sqlparser.DESC, sqlparser.EXPLAIN:
			c.Kind, c.ReadOnly = "meta", true
		case sqlparser.CREATE, sqlparser.DROP, sqlparser.ALTER:
			c.Kind, c.ReadOnly = "ddl", false
		case sqlparser.INSERT, sqlparser.UPDATE, sqlparser.DELETE, sqlparser.REPLACE:
			c.Kind, c.ReadOnly = "write", false
		}
	}
	return c
}
