// Package ingest decodes and validates update envelopes (SPEC §3) into
// typed updates, or into rejects that say why.
package ingest

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"ttq/catalog"
	"ttq/timeline"
	"ttq/types"
)

// Op is the kind of an update.
type Op uint8

const (
	OpUpsert Op = iota + 1
	OpDelete
	OpWatermark
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	case OpWatermark:
		return "watermark"
	}
	return "unknown"
}

// Reasons a record is rejected. They are stable codes: ttq_rejects and the
// metrics count by them.
const (
	ReasonInvalidJSON   = "invalid_json"
	ReasonBadOp         = "bad_op"
	ReasonBadTS         = "bad_ts"
	ReasonUnknownSource = "unknown_source"
	ReasonUnknownTable  = "unknown_table"
	ReasonWrongSource   = "wrong_source"
	ReasonMissingKey    = "missing_key"
	ReasonUnknownColumn = "unknown_column"
	ReasonBadValue      = "bad_value"
	ReasonLate          = "late"
	ReasonTooLarge      = "too_large"
)

// ErrRejected marks every validation failure; errors.As to *RejectError
// gives the reason.
var ErrRejected = errors.New("ingest: record rejected")

// RejectError says why one record was rejected.
type RejectError struct {
	Reason  string
	Source  string // the source the record named, if any
	Table   string
	Message string
}

func (e *RejectError) Error() string { return e.Reason + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrRejected) hold.
func (e *RejectError) Unwrap() error { return ErrRejected }

func reject(reason, source, table, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Source: source, Table: table, Message: fmt.Sprintf(format, args...)}
}

// Update is one validated record.
type Update struct {
	Op     Op
	Source string
	Table  *catalog.Table // nil for watermarks
	TS     int64
	Row    []types.Value // upsert: every column of Table, NULL where absent
	Key    []types.Value // delete: the primary key, in key order
}

type envelope struct {
	Source json.RawMessage            `json:"source"`
	Table  json.RawMessage            `json:"table"`
	Op     json.RawMessage            `json:"op"`
	TS     json.RawMessage            `json:"ts"`
	Data   map[string]json.RawMessage `json:"data"`
	Key    map[string]json.RawMessage `json:"key"`
}

// rawEnvelope is an envelope's fields as JSON text, its data and key
// members in the order the line writes them (so a line with two bad
// columns is always rejected for the first).
type rawEnvelope struct {
	source, table, op, ts []byte
	data, key             []member
	hasData, hasKey       bool // the object was there (possibly empty)
}

type member struct {
	name string
	raw  []byte
}

// Decode validates one envelope against the catalog. It does not judge
// lateness: that needs the watermark state, which the writer owns.
func Decode(line []byte, cat *catalog.Catalog) (Update, *RejectError) {
	line = bytes.TrimSpace(line)
	if !utf8.Valid(line) {
		return Update{}, reject(ReasonInvalidJSON, "", "", "not valid UTF-8")
	}
	env, ok := scanEnvelope(line)
	if !ok {
		var err error
		if env, err = unmarshalEnvelope(line); err != nil {
			return Update{}, reject(ReasonInvalidJSON, "", "", "not a JSON object: %v", oneLine(err))
		}
	}
	return env.validate(cat)
}

// unmarshalEnvelope decodes any JSON envelope with the JSON library.
func unmarshalEnvelope(line []byte) (rawEnvelope, error) {
	var e envelope
	if err := json.Unmarshal(padded(line), &e); err != nil {
		return rawEnvelope{}, err
	}
	return rawEnvelope{source: e.Source, table: e.Table, op: e.Op, ts: e.TS,
		data: membersOf(line, "data", e.Data), key: membersOf(line, "key", e.Key), hasData: e.Data != nil, hasKey: e.Key != nil}, nil
}

// membersOf returns the members of the object the JSON library decoded
// into m from field of line, in the order line writes them (the order a
// reader of the line sees, and the one rejects report in), each name once.
func membersOf(line []byte, field string, m map[string]json.RawMessage) []member {
	if len(m) == 0 {
		return nil
	}
	out := make([]member, 0, len(m))
	for _, name := range memberOrder(line, field) {
		if raw, ok := m[name]; ok && !slices.ContainsFunc(out, func(x member) bool { return x.name == name }) {
			out = append(out, member{name, raw})
		}
	}
	if len(out) == len(m) {
		return out
	}
	// Names the order scan did not see (a field written twice in different
	// cases, which the library merges): after the others, by name.
	var rest []string
	for name := range m {
		if !slices.ContainsFunc(out, func(x member) bool { return x.name == name }) {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	for _, name := range rest {
		out = append(out, member{name, m[name]})
	}
	return out
}

// memberOrder returns the member names of the object at field of the JSON
// object line, in the order written. Field names match as the JSON
// library matches struct fields (exactly or ignoring case); the last
// matching field is the one it decoded.
func memberOrder(line []byte, field string) []string {
	dec := stdjson.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != stdjson.Delim('{') {
		return nil
	}
	var names []string
	for dec.More() {
		t, err := dec.Token()
		k, ok := t.(string)
		if err != nil || !ok {
			return names
		}
		if !strings.EqualFold(k, field) {
			var skip stdjson.RawMessage
			if dec.Decode(&skip) != nil {
				return names
			}
			continue
		}
		names = names[:0]
		if t, err := dec.Token(); err != nil || t != stdjson.Delim('{') {
			if t == nil && err == nil {
				continue // null
			}
			return names
		}
		for dec.More() {
			t, err := dec.Token()
			k, ok := t.(string)
			var skip stdjson.RawMessage
			if err != nil || !ok || dec.Decode(&skip) != nil {
				return names
			}
			names = append(names, k)
		}
		if _, err := dec.Token(); err != nil {
			return names
		}
	}
	return names
}

// validate checks an envelope against the catalog and types its values.
func (env *rawEnvelope) validate(cat *catalog.Catalog) (Update, *RejectError) {
	src, ok := jsonString(env.source)
	if !ok {
		return Update{}, reject(ReasonUnknownSource, "", "", "missing or non-string \"source\"")
	}
	src = catalog.Normalize(src)
	tableName, _ := jsonString(env.table)
	tableName = catalog.Normalize(tableName)
	opName, ok := jsonString(env.op)
	if !ok {
		return Update{}, reject(ReasonBadOp, src, tableName, "missing or non-string \"op\" (use upsert, delete or watermark)")
	}
	var op Op
	switch opName {
	case "upsert":
		op = OpUpsert
	case "delete":
		op = OpDelete
	case "watermark":
		op = OpWatermark
	default:
		return Update{}, reject(ReasonBadOp, src, tableName, "unknown op %q (use upsert, delete or watermark)", opName)
	}
	ts, err := decodeTime(env.ts)
	if err != nil {
		return Update{}, reject(ReasonBadTS, src, tableName, "\"ts\": %v", err)
	}
	if _, err := cat.Source(src); err != nil {
		return Update{}, reject(ReasonUnknownSource, src, tableName, "source %q is not declared (declare it with CREATE SOURCE)", src)
	}
	u := Update{Op: op, Source: src, TS: ts}
	if op == OpWatermark {
		return u, nil
	}
	if tableName == "" {
		return Update{}, reject(ReasonUnknownTable, src, "", "missing \"table\"")
	}
	t, err := cat.Table(tableName)
	if err != nil {
		return Update{}, reject(ReasonUnknownTable, src, tableName, "table %q is not declared", tableName)
	}
	if t.Source != src {
		return Update{}, reject(ReasonWrongSource, src, tableName, "table %q is owned by source %q, not %q", t.Name, t.Source, src)
	}
	u.Table = t
	if op == OpUpsert {
		if !env.hasData {
			return Update{}, reject(ReasonMissingKey, src, t.Name, "upsert without a \"data\" object")
		}
		row := make([]types.Value, len(t.Columns))
		for _, m := range env.data {
			name, raw := m.name, m.raw
			i := t.ColumnIndex(name)
			if i < 0 {
				return Update{}, reject(ReasonUnknownColumn, src, t.Name, "unknown column %q in table %q", name, t.Name)
			}
			v, err := decodeValue(raw, t.Columns[i].Type)
			if err != nil {
				return Update{}, reject(ReasonBadValue, src, t.Name, "column %q: %v", t.Columns[i].Name, err)
			}
			row[i] = v
		}
		for _, k := range t.PK {
			if row[k].IsNull() {
				return Update{}, reject(ReasonMissingKey, src, t.Name, "key column %q is missing or null", t.Columns[k].Name)
			}
		}
		u.Row = row
		return u, nil
	}
	if !env.hasKey {
		return Update{}, reject(ReasonMissingKey, src, t.Name, "delete without a \"key\" object")
	}
	key := make([]types.Value, len(t.PK))
	for _, m := range env.key {
		name, raw := m.name, m.raw
		i := t.ColumnIndex(name)
		if i < 0 {
			return Update{}, reject(ReasonUnknownColumn, src, t.Name, "unknown column %q in table %q", name, t.Name)
		}
		pos := -1
		for j, k := range t.PK {
			if k == i {
				pos = j
			}
		}
		if pos < 0 {
			return Update{}, reject(ReasonUnknownColumn, src, t.Name, "column %q is not part of the primary key of %q", name, t.Name)
		}
		v, err := decodeValue(raw, t.Columns[i].Type)
		if err != nil {
			return Update{}, reject(ReasonBadValue, src, t.Name, "key column %q: %v", name, err)
		}
		key[pos] = v
	}
	for j, k := range t.PK {
		if key[j].IsNull() {
			return Update{}, reject(ReasonMissingKey, src, t.Name, "key column %q is missing or null", t.Columns[k].Name)
		}
	}
	u.Key = key
	return u, nil
}

func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		// A raw value the decoder already validated: without escapes, the
		// string is the bytes between the quotes.
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(padded(raw), &s); err != nil {
		return "", false
	}
	return s, true
}

// padded returns b followed by a few spaces. goccy/go-json computes
// pointers past the end of its input when the input ends inside a string
// escape (goccy/go-json issues 575 and 577): a fatal checkptr error under
// -race, a read past the buffer otherwise. Trailing whitespace, which JSON
// ignores, keeps every escape inside the buffer.
func padded(b []byte) []byte {
	const pad = 8
	out := make([]byte, len(b)+pad)
	copy(out, b)
	for i := len(b); i < len(out); i++ {
		out[i] = ' '
	}
	return out
}

// decodeTime reads a time literal: a JSON integer of microseconds, or a
// string holding RFC 3339 or an integer. Times before 1970 are refused.
func decodeTime(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("missing")
	}
	var ts int64
	if raw[0] == '"' {
		s, _ := jsonString(raw)
		t, err := timeline.ParseAbsolute(s)
		if err != nil {
			return 0, err
		}
		ts = t
	} else {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s is not an integer of microseconds or an RFC 3339 string", truncate(string(raw), 40))
		}
		ts = n
	}
	if ts < 0 {
		return 0, fmt.Errorf("%s is before 1970-01-01T00:00:00Z", truncate(string(raw), 40))
	}
	return ts, nil
}

// decodeValue converts a JSON value to a column type without loss.
func decodeValue(raw json.RawMessage, t types.Type) (types.Value, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return types.NullValue, nil
	}
	c := raw[0]
	switch t {
	case types.BigInt:
		if c != '-' && (c < '0' || c > '9') {
			return types.Value{}, fmt.Errorf("want an integer for BIGINT, got %s", truncate(string(raw), 40))
		}
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return types.Int(n), nil
		}
		// 5.0 or 1e3: integral values written as floats are exact.
		f, _, err := big.ParseFloat(string(raw), 10, 256, big.ToNearestEven)
		if err != nil || !f.IsInt() {
			return types.Value{}, fmt.Errorf("%s is not an integer (BIGINT)", truncate(string(raw), 40))
		}
		i, acc := f.Int64()
		if acc != big.Exact {
			return types.Value{}, fmt.Errorf("%s is out of range for BIGINT", truncate(string(raw), 40))
		}
		return types.Int(i), nil
	case types.Double:
		if c != '-' && (c < '0' || c > '9') {
			return types.Value{}, fmt.Errorf("want a number for DOUBLE, got %s", truncate(string(raw), 40))
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) {
			return types.Value{}, fmt.Errorf("%s is out of range for DOUBLE", truncate(string(raw), 40))
		}
		return types.Float(f), nil
	case types.Varchar:
		s, ok := jsonString(raw)
		if !ok {
			return types.Value{}, fmt.Errorf("want a string for VARCHAR, got %s", truncate(string(raw), 40))
		}
		return types.String(s), nil
	case types.Boolean:
		switch string(raw) {
		case "true":
			return types.Bool(true), nil
		case "false":
			return types.Bool(false), nil
		}
		return types.Value{}, fmt.Errorf("want true or false for BOOLEAN, got %s", truncate(string(raw), 40))
	case types.Timestamp:
		ts, err := decodeTimeValue(raw)
		if err != nil {
			return types.Value{}, err
		}
		return types.Time(ts), nil
	}
	return types.Value{}, fmt.Errorf("unsupported column type %s", t)
}

func decodeTimeValue(raw json.RawMessage) (int64, error) {
	if raw[0] == '"' {
		s, _ := jsonString(raw)
		return timeline.ParseAbsolute(s)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a time literal for TIMESTAMP, got %s", truncate(string(raw), 40))
	}
	return n, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
