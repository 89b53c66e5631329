package query

import (
	"sync"
	"sync/atomic"

	"github.com/xwb1989/sqlparser"
)

// lexFast tokenizes the plain subset of SQL most statements are written
// in — ASCII words, decimal integers, quoted strings without escapes,
// and operators — exactly as sqlparser's tokenizer would, without its
// per-token buffers. It reports false on anything else (comments,
// backquotes, escapes, decimals, hex, bind variables, non-ASCII), and
// the caller then tokenizes with sqlparser. FuzzLexFast holds the two
// equal on every input lexFast accepts.
func lexFast(sql string) ([]token, bool) {
	out := make([]token, 0, len(sql)/5+4)
	i := 0
	for {
		for i < len(sql) && isSpace(sql[i]) {
			i++
		}
		if i == len(sql) {
			return out, true
		}
		start := i
		c := sql[i]
		switch {
		case isWordStart(c):
			if (c == 'x' || c == 'X' || c == 'b' || c == 'B') && i+1 < len(sql) && sql[i+1] == '\'' {
				return nil, false // hex and bit literals
			}
			for i < len(sql) && isWordChar(sql[i]) {
				i++
			}
			if i < len(sql) && sql[i] == '@' {
				return nil, false
			}
			typ, val, ok := word(sql[start:i])
			if !ok {
				return nil, false
			}
			out = append(out, token{typ: typ, val: val, start: start, end: i})
		case c >= '0' && c <= '9':
			if c == '0' && i+1 < len(sql) && (sql[i+1] == 'x' || sql[i+1] == 'X') {
				return nil, false
			}
			for i < len(sql) && sql[i] >= '0' && sql[i] <= '9' {
				i++
			}
			if i < len(sql) && (sql[i] == '.' || isWordChar(sql[i]) || sql[i] == '@') {
				return nil, false // decimals, exponents, and the error of a letter after a number
			}
			out = append(out, token{typ: sqlparser.INTEGRAL, val: sql[start:i], start: start, end: i})
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(sql) && sql[j] != c && sql[j] != '\\' {
				j++
			}
			if j == len(sql) || sql[j] == '\\' || (j+1 < len(sql) && sql[j+1] == c) {
				return nil, false // unterminated, an escape, or a doubled quote
			}
			out = append(out, token{typ: sqlparser.STRING, val: sql[i+1 : j], start: start, end: j + 1})
			i = j + 1
		default:
			typ, n := operator(sql[i:])
			if n == 0 {
				return nil, false
			}
			i += n
			out = append(out, token{typ: typ, start: start, end: i})
		}
	}
}

// operator returns the token of the operator s starts with and its
// length, or a length of 0 for what lexFast leaves to sqlparser.
func operator(s string) (typ, n int) {
	var next byte
	if len(s) > 1 {
		next = s[1]
	}
	switch c := s[0]; c {
	case '=', ',', ';', '(', ')', '+', '*', '%', '^', '~':
		return int(c), 1
	case '&':
		if next == '&' {
			return sqlparser.AND, 2
		}
		return int(c), 1
	case '|':
		if next == '|' {
			return sqlparser.OR, 2
		}
		return int(c), 1
	case '.':
		if next >= '0' && next <= '9' {
			return 0, 0
		}
		return int(c), 1
	case '/':
		if next == '/' || next == '*' {
			return 0, 0
		}
		return int(c), 1
	case '-':
		if next == '-' || next == '>' {
			return 0, 0
		}
		return int(c), 1
	case '<':
		switch next {
		case '>':
			return sqlparser.NE, 2
		case '<':
			return sqlparser.SHIFT_LEFT, 2
		case '=':
			if len(s) > 2 && s[2] == '>' {
				return sqlparser.NULL_SAFE_EQUAL, 3
			}
			return sqlparser.LE, 2
		}
		return int(c), 1
	case '>':
		switch next {
		case '=':
			return sqlparser.GE, 2
		case '>':
			return sqlparser.SHIFT_RIGHT, 2
		}
		return int(c), 1
	case '!':
		if next == '=' {
			return sqlparser.NE, 2
		}
		return int(c), 1
	}
	return 0, 0
}

func isWordStart(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' }

func isWordChar(c byte) bool { return isWordStart(c) || '0' <= c && c <= '9' }

// words maps the lower-case form of each word seen to its token type
// and value as sqlparser's tokenizer gives them (a keyword or "dual"
// comes back lower-cased). It is learnt from the tokenizer itself, one
// word at a time, so it cannot disagree with it; it is copied on write
// and stops growing at maxWords.
var (
	words   atomic.Pointer[map[string]wordInfo]
	wordsMu sync.Mutex
)

const maxWords = 4096

type wordInfo struct {
	typ     int
	lowered string // the value for a keyword or dual; "" keeps the word as written
}

// word returns the token of an ASCII word.
func word(w string) (typ int, val string, ok bool) {
	var buf [64]byte
	if len(w) > len(buf) {
		return 0, "", false
	}
	low := buf[:len(w)]
	lowerCase := true
	for i := 0; i < len(w); i++ {
		c := w[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
			lowerCase = false
		}
		low[i] = c
	}
	if m := words.Load(); m != nil {
		if wi, hit := (*m)[string(low)]; hit {
			return wi.result(w, lowerCase)
		}
	}
	wi, ok := learnWord(string(low))
	if !ok {
		return 0, "", false
	}
	return wi.result(w, lowerCase)
}

func (wi wordInfo) result(w string, lowerCase bool) (int, string, bool) {
	if wi.lowered == "" || lowerCase {
		return wi.typ, w, true
	}
	return wi.typ, wi.lowered, true
}

// learnWord asks sqlparser's tokenizer what the lower-case word low is.
func learnWord(low string) (wordInfo, bool) {
	tkn := sqlparser.NewStringTokenizer(low)
	typ, val := tkn.Scan()
	if next, _ := tkn.Scan(); next != 0 || string(val) != low {
		return wordInfo{}, false
	}
	wi := wordInfo{typ: typ}
	if typ != sqlparser.ID || low == "dual" {
		wi.lowered = low
	}
	wordsMu.Lock()
	defer wordsMu.Unlock()
	old := words.Load()
	if old != nil && len(*old) >= maxWords {
		return wi, true
	}
	m := make(map[string]wordInfo, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[low] = wi
	words.Store(&m)
	return wi, true
}

func lenOf(m *map[string]wordInfo) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
