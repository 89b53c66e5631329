package query

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/xwb1989/sqlparser"
)

// token is one token of the sqlparser tokenizer with its byte span in the
// source text.
type token struct {
	typ        int
	val        string
	start, end int  // [start, end) in the source
	quoted     bool // a `backtick` identifier: never a keyword
}

// tokenize splits sql with sqlparser's own tokenizer, so strings, comments
// and quoted identifiers are never mistaken for keywords. Comments are
// dropped. Plain statements take lexFast, which gives the same tokens.
func tokenize(sql string) ([]token, error) {
	if toks, ok := lexFast(sql); ok {
		return toks, nil
	}
	return tokenizeSQL(sql)
}

// tokenizeSQL is tokenize through sqlparser's tokenizer.
func tokenizeSQL(sql string) (toks []token, err error) {
	defer func() {
		// sqlparser's tokenizer panics on some malformed input, such as an
		// empty MySQL-specific comment /*!*/.
		if r := recover(); r != nil {
			toks = nil
			if at := strings.Index(sql, "/*!"); at >= 0 {
				err = fmt.Errorf("%w: MySQL-specific comments /*! ... */ at offset %d; remove them", ErrUnsupported, at)
			} else {
				err = fmt.Errorf("%w: the tokenizer failed on this statement (%v)", ErrSyntax, r)
			}
		}
	}()
	tkn := sqlparser.NewStringTokenizer(sql)
	var out []token
	prevEnd := 0
	for {
		typ, val := tkn.Scan()
		end := tkn.Position - 1
		if end > len(sql) {
			end = len(sql)
		}
		if typ == 0 {
			return out, nil
		}
		start := prevEnd
		for start < end && isSpace(sql[start]) {
			start++
		}
		if strings.HasPrefix(sql[start:], "/*!") || end < prevEnd {
			return nil, fmt.Errorf("%w: MySQL-specific comments /*! ... */ at offset %d; remove them", ErrUnsupported, start)
		}
		prevEnd = end
		switch typ {
		case sqlparser.LEX_ERROR:
			return nil, fmt.Errorf("%w at offset %d near %q: unterminated string or unexpected character", ErrSyntax, start, snippet(sql, start))
		case sqlparser.COMMENT:
			continue
		}
		out = append(out, token{typ: typ, val: string(val), start: start, end: end, quoted: start < len(sql) && sql[start] == '`'})
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func snippet(s string, at int) string {
	if at >= len(s) {
		return "end of statement"
	}
	s = s[at:]
	if len(s) > 20 {
		s = s[:20]
	}
	return s
}

// word reports whether t is the bare (unquoted) word w, keyword or not.
func (t token) word(w string) bool {
	return !t.quoted && t.typ != sqlparser.STRING && strings.EqualFold(t.val, w) && t.val != ""
}

// TimeKind is the form of a time clause.
type TimeKind int

// Forms of time clauses.
const (
	// TimeAsOf reads one snapshot (AS OF t, FOR SYSTEM_TIME AS OF t).
	TimeAsOf TimeKind = iota
	// TimeBetween reads every version visible in [From, To] (BETWEEN, FROM ... TO).
	TimeBetween
	// TimeAll reads every version visible in [0, G].
	TimeAll
)

// TimeLit is a time literal as written: a string or an integer of microseconds.
type TimeLit struct {
	Text  string
	IsInt bool
}

func (l TimeLit) String() string {
	if l.IsInt {
		return l.Text
	}
	return "'" + l.Text + "'"
}

// TimeSpec is a lifted time clause.
type TimeSpec struct {
	Kind     TimeKind
	From, To TimeLit // AS OF uses To
}

func (s *TimeSpec) String() string {
	switch s.Kind {
	case TimeBetween:
		return "FOR SYSTEM_TIME BETWEEN " + s.From.String() + " AND " + s.To.String()
	case TimeAll:
		return "FOR SYSTEM_TIME ALL"
	}
	return "AS OF " + s.To.String()
}

// markerPrefix names the PARTITION (...) placeholder a lifted per-table time
// clause is replaced with, so the parsed AST still says which table it
// belonged to.
const markerPrefix = "ttq_systime_"

// lifted is a SELECT text with its time clauses taken out.
type lifted struct {
	text   string
	asOf   *TimeSpec
	tables []*TimeSpec // by marker number
	// times lists the time literals taken out, by token index.
	times []timeRef
}

// timeRef is a time literal of a lifted clause: toks[tok] is spec's From
// (from) or To.
type timeRef struct {
	tok  int
	spec *TimeSpec
	from bool
}

type span struct {
	from, to int
	repl     string
}

// lift removes the time clauses sqlparser has no grammar for:
//
//	... FROM <tables> AS OF [SYSTEM TIME] <t> [WHERE ...]
//	<table> FOR SYSTEM_TIME AS OF <t> | BETWEEN <t1> AND <t2> | FROM <t1> TO <t2> | ALL [alias]
//
// FROM t1 TO t2 means the same as BETWEEN t1 AND t2 (closed range): the
// versions visible at some instant of [t1, t2].
func lift(sql string) (*lifted, error) {
	toks, err := tokenize(sql)
	if err != nil {
		return nil, err
	}
	return liftTokens(sql, toks)
}

// liftTokens is lift of sql already tokenized.
func liftTokens(sql string, toks []token) (*lifted, error) {
	out := &lifted{}
	var spans []span
	depth, sawFrom := 0, false
	at := func(i int) token {
		if i < len(toks) {
			return toks[i]
		}
		return token{start: len(sql), end: len(sql)}
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.typ == '(':
			depth++
		case t.typ == ')':
			depth--
		case t.typ == sqlparser.FROM && depth == 0:
			sawFrom = true
		case t.typ == sqlparser.FOR && at(i+1).word("system_time"):
			if i == 0 {
				return nil, fmt.Errorf("%w at offset %d: FOR SYSTEM_TIME must follow a table name", ErrSyntax, t.start)
			}
			spec, last, err := timeClause(sql, toks, i+2, true)
			if err != nil {
				return nil, err
			}
			switch spec.Kind {
			case TimeAsOf:
				out.times = append(out.times, timeRef{last, spec, false})
			case TimeBetween:
				out.times = append(out.times, timeRef{last - 2, spec, true}, timeRef{last, spec, false})
			}
			spans = append(spans, span{toks[i-1].end, toks[last].end, fmt.Sprintf(" PARTITION (%s%d) ", markerPrefix, len(out.tables))})
			out.tables = append(out.tables, spec)
			i = last
		case t.typ == sqlparser.AS && at(i+1).word("of"):
			if depth != 0 {
				return nil, fmt.Errorf("%w at offset %d: AS OF inside a subquery; put it after the outer FROM clause", ErrUnsupported, t.start)
			}
			if !sawFrom {
				return nil, fmt.Errorf("%w at offset %d: AS OF must follow a FROM clause", ErrSyntax, t.start)
			}
			if out.asOf != nil {
				return nil, fmt.Errorf("%w at offset %d: a second AS OF; a statement has one (use FOR SYSTEM_TIME AS OF per table)", ErrSyntax, t.start)
			}
			j := i + 2
			if at(j).word("system") && at(j+1).word("time") {
				j += 2
			}
			lit, err := timeLit(sql, toks, j)
			if err != nil {
				return nil, err
			}
			next := at(j + 1)
			if !endsFrom(next) {
				return nil, fmt.Errorf("%w at offset %d near %q: AS OF must come right after the whole FROM clause (before WHERE, GROUP BY, ORDER BY, LIMIT); for one table use FOR SYSTEM_TIME AS OF", ErrSyntax, next.start, snippet(sql, next.start))
			}
			spans = append(spans, span{toks[i-1].end, toks[j].end, " "})
			out.asOf = &TimeSpec{Kind: TimeAsOf, To: lit}
			out.times = append(out.times, timeRef{j, out.asOf, false})
			i = j
		}
	}
	var b strings.Builder
	pos := 0
	for _, s := range spans {
		b.WriteString(sql[pos:s.from])
		b.WriteString(s.repl)
		pos = s.to
	}
	b.WriteString(sql[pos:])
	out.text = b.String()
	return out, nil
}

// endsFrom reports whether t may follow a FROM clause.
func endsFrom(t token) bool {
	if t.typ == 0 || t.quoted {
		return t.typ == 0
	}
	switch t.typ {
	case sqlparser.WHERE, sqlparser.GROUP, sqlparser.HAVING, sqlparser.ORDER, sqlparser.LIMIT, sqlparser.UNION, ';', ')', sqlparser.FOR, sqlparser.LOCK:
		return true
	}
	return false
}

// timeClause parses the part of a FOR SYSTEM_TIME clause starting at toks[i]
// and returns the index of its last token.
func timeClause(sql string, toks []token, i int, _ bool) (*TimeSpec, int, error) {
	if i >= len(toks) {
		return nil, 0, fmt.Errorf("%w at end of statement: FOR SYSTEM_TIME needs AS OF <t>, BETWEEN <t1> AND <t2>, FROM <t1> TO <t2> or ALL", ErrSyntax)
	}
	t := toks[i]
	switch {
	case t.typ == sqlparser.ALL:
		return &TimeSpec{Kind: TimeAll}, i, nil
	case t.typ == sqlparser.AS && i+1 < len(toks) && toks[i+1].word("of"):
		lit, err := timeLit(sql, toks, i+2)
		if err != nil {
			return nil, 0, err
		}
		return &TimeSpec{Kind: TimeAsOf, To: lit}, i + 2, nil
	case t.typ == sqlparser.BETWEEN || t.typ == sqlparser.FROM:
		sep, name := sqlparser.AND, "AND"
		if t.typ == sqlparser.FROM {
			sep, name = sqlparser.TO, "TO"
		}
		from, err := timeLit(sql, toks, i+1)
		if err != nil {
			return nil, 0, err
		}
		if i+2 >= len(toks) || toks[i+2].typ != sep {
			at := len(sql)
			if i+2 < len(toks) {
				at = toks[i+2].start
			}
			return nil, 0, fmt.Errorf("%w at offset %d: expected %s in FOR SYSTEM_TIME %s <t1> %s <t2>", ErrSyntax, at, name, strings.ToUpper(t.val), name)
		}
		to, err := timeLit(sql, toks, i+3)
		if err != nil {
			return nil, 0, err
		}
		return &TimeSpec{Kind: TimeBetween, From: from, To: to}, i + 3, nil
	}
	return nil, 0, fmt.Errorf("%w at offset %d near %q: FOR SYSTEM_TIME needs AS OF <t>, BETWEEN <t1> AND <t2>, FROM <t1> TO <t2> or ALL", ErrSyntax, t.start, snippet(sql, t.start))
}

// timeLit reads the time literal at toks[i].
func timeLit(sql string, toks []token, i int) (TimeLit, error) {
	if i >= len(toks) {
		return TimeLit{}, fmt.Errorf("%w at end of statement: expected a time literal such as '2026-11-25T10:00:00Z', '-30s' or microseconds", ErrSyntax)
	}
	t := toks[i]
	switch t.typ {
	case sqlparser.STRING:
		return TimeLit{Text: t.val}, nil
	case sqlparser.INTEGRAL:
		if _, err := strconv.ParseInt(t.val, 10, 64); err != nil {
			return TimeLit{}, fmt.Errorf("%w at offset %d: %s is not a microsecond count", ErrBadTime, t.start, t.val)
		}
		return TimeLit{Text: t.val, IsInt: true}, nil
	case '-':
		return TimeLit{}, fmt.Errorf("%w at offset %d: write a relative time as a string, e.g. '-30s'", ErrBadTime, t.start)
	}
	return TimeLit{}, fmt.Errorf("%w at offset %d near %q: expected a time literal such as '2026-11-25T10:00:00Z', '-30s' or microseconds", ErrSyntax, t.start, snippet(sql, t.start))
}
