package ingest

// scanEnvelope reads the plain envelope most producers write — one flat
// object of the known fields, scalar values, strings without escapes or
// control characters, data and key as flat objects — in one pass without
// the JSON library's maps and copies. It reports false for anything else,
// valid or not, and the caller decodes that with the library;
// FuzzScanEnvelope holds the two equal wherever the scan accepts.
func scanEnvelope(line []byte) (rawEnvelope, bool) {
	var env rawEnvelope
	s := scanner{b: line}
	if !s.byte('{') {
		return env, false
	}
	if s.byte('}') {
		return env, s.end()
	}
	var seen uint8
	for {
		name, ok := s.str()
		if !ok || !s.byte(':') {
			return env, false
		}
		var bit uint8
		switch string(name) {
		case "source":
			bit, env.source, ok = 1, s.scalar(), true
		case "table":
			bit, env.table, ok = 2, s.scalar(), true
		case "op":
			bit, env.op, ok = 4, s.scalar(), true
		case "ts":
			bit, env.ts, ok = 8, s.scalar(), true
		case "data":
			bit = 16
			env.data, ok = s.members()
			env.hasData = true
		case "key":
			bit = 32
			env.key, ok = s.members()
			env.hasKey = true
		default:
			return env, false
		}
		if !ok || s.bad || seen&bit != 0 {
			return env, false
		}
		seen |= bit
		if s.byte(',') {
			continue
		}
		if s.byte('}') {
			return env, s.end()
		}
		return env, false
	}
}

type scanner struct {
	b   []byte
	i   int
	bad bool // a value outside the plain subset
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c (after white space) if it is next.
func (s *scanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b) && !s.bad
}

// str reads a string without escapes and returns its contents.
func (s *scanner) str() ([]byte, bool) {
	raw := s.strRaw()
	if raw == nil {
		return nil, false
	}
	return raw[1 : len(raw)-1], true
}

// strRaw reads a string without escapes and returns it with its quotes.
func (s *scanner) strRaw() []byte {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			raw := s.b[s.i : j+1]
			s.i = j + 1
			return raw
		case c == '\\' || c < 0x20:
			return nil
		}
	}
	return nil
}

// scalar reads a string, number, true, false or null and returns its
// text; anything else marks the scan bad.
func (s *scanner) scalar() []byte {
	s.space()
	if s.i >= len(s.b) {
		s.bad = true
		return nil
	}
	start := s.i
	switch c := s.b[s.i]; {
	case c == '"':
		if raw := s.strRaw(); raw != nil {
			return raw
		}
	case c == '-' || c >= '0' && c <= '9':
		if s.number() {
			return s.b[start:s.i]
		}
	default:
		for _, w := range [...]string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
				s.i += len(w)
				if s.i == len(s.b) || !isAlnum(s.b[s.i]) {
					return s.b[start:s.i]
				}
			}
		}
	}
	s.bad = true
	return nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	b := s.b
	i := s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (isAlnum(b[i]) || b[i] == '.' || b[i] == '-' || b[i] == '+') {
		return false
	}
	s.i = i
	return true
}

// members reads a flat object of scalars, its members in the order
// written; repeated names and nested values are left to the JSON library.
func (s *scanner) members() ([]member, bool) {
	if !s.byte('{') {
		return nil, false
	}
	out := make([]member, 0, 8)
	if s.byte('}') {
		return out, true
	}
	for {
		name, ok := s.str()
		if !ok || !s.byte(':') {
			return nil, false
		}
		raw := s.scalar()
		if s.bad {
			return nil, false
		}
		for _, m := range out {
			if m.name == string(name) {
				return nil, false
			}
		}
		out = append(out, member{string(name), raw})
		if s.byte(',') {
			continue
		}
		if s.byte('}') {
			return out, true
		}
		return nil, false
	}
}
