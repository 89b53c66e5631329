package kafka

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"ttq/catalog"
	"ttq/types"
)

// Debezium change events (format = 'debezium') are translated into ttq
// envelopes before they are applied:
//
//	op c, u, r  -> upsert of "after"
//	op d        -> delete by the primary key taken from "before" (or the message key)
//	ts          <- payload.source.ts_us, else ts_ns/1000, else ts_ms*1000,
//	               else the same fields of the payload itself
//	table       <- payload.source.table when the source owns a table of that
//	               name, else the source's only table
//
// Events may come with or without the {"schema":...,"payload":...} wrapper.
// With the wrapper, io.debezium.time.{Timestamp,MicroTimestamp,NanoTimestamp,
// Date} fields of "after"/"before" are converted to microseconds.

// dbzEvent is the part of a Debezium change event ttq reads.
type dbzEvent struct {
	Op     string          `json:"op"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Source struct {
		Table string `json:"table"`
		dbzTimes
	} `json:"source"`
	dbzTimes
}

type dbzTimes struct {
	TsUs *int64 `json:"ts_us"`
	TsNs *int64 `json:"ts_ns"`
	TsMs *int64 `json:"ts_ms"`
}

func (t dbzTimes) micros() (int64, bool) {
	switch {
	case t.TsUs != nil:
		return *t.TsUs, true
	case t.TsNs != nil:
		return *t.TsNs / 1000, true
	case t.TsMs != nil:
		return *t.TsMs * 1000, true
	}
	return 0, false
}

// dbzSchema is the Kafka Connect schema of the wrapper, as far as ttq
// needs it: the logical type names of the row's fields.
type dbzSchema struct {
	Fields []struct {
		Field  string `json:"field"`
		Fields []struct {
			Field string `json:"field"`
			Name  string `json:"name"`
		} `json:"fields"`
	} `json:"fields"`
}

// translateDebezium turns one Debezium message value into a ttq envelope
// for source. It returns nil for a tombstone (a null payload). A message
// that cannot be translated becomes a line the engine rejects (bad_op,
// naming the problem) that carries the original event verbatim under
// "debezium"; a value that is not JSON is returned as it is, and is
// rejected as invalid JSON.
func translateDebezium(cat *catalog.Catalog, source string, key, value []byte) []byte {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(value, &top); err != nil || top == nil {
		if bytes.Equal(bytes.TrimSpace(value), []byte("null")) {
			return nil
		}
		return value
	}
	payload := json.RawMessage(value)
	var schema *dbzSchema
	if p, ok := top["payload"]; ok {
		if _, hasOp := top["op"]; !hasOp {
			payload = p
			if s, ok := top["schema"]; ok {
				schema = new(dbzSchema)
				if json.Unmarshal(s, schema) != nil {
					schema = nil
				}
			}
		}
	}
	if bytes.Equal(bytes.TrimSpace(payload), []byte("null")) {
		return nil
	}
	var ev dbzEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return dbzReject(source, "", "payload is not a change event: "+err.Error(), value)
	}
	t := dbzTable(cat, source, ev.Source.Table)
	if t == nil {
		return dbzReject(source, ev.Source.Table, fmt.Sprintf("source %q owns no table for source.table %q", source, ev.Source.Table), value)
	}
	ts, ok := ev.Source.micros()
	if !ok {
		if ts, ok = ev.micros(); !ok {
			return dbzReject(source, t.Name, "no source.ts_us, source.ts_ms or ts_ms", value)
		}
	}
	var b bytes.Buffer
	b.Grow(len(payload) + 64)
	b.WriteString(`{"source":`)
	writeJSONString(&b, source)
	b.WriteString(`,"table":`)
	writeJSONString(&b, t.Name)
	switch ev.Op {
	case "c", "u", "r":
		row, ok := dbzRow(ev.After, schema, "after", t)
		if !ok {
			return dbzReject(source, t.Name, fmt.Sprintf("op %q without an \"after\" row", ev.Op), value)
		}
		b.WriteString(`,"op":"upsert","ts":`)
		b.WriteString(strconv.FormatInt(ts, 10))
		b.WriteString(`,"data":`)
		b.Write(row)
	case "d":
		k, ok := dbzKey(ev.Before, schema, t)
		if !ok {
			k, ok = dbzMessageKey(key, t)
		}
		if !ok {
			return dbzReject(source, t.Name, "op \"d\" without a \"before\" row or message key", value)
		}
		b.WriteString(`,"op":"delete","ts":`)
		b.WriteString(strconv.FormatInt(ts, 10))
		b.WriteString(`,"key":`)
		b.Write(k)
	default:
		return dbzReject(source, t.Name, fmt.Sprintf("op %q is not supported (c, u, r and d are)", ev.Op), value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// dbzTable finds the ttq table an event of source belongs to.
func dbzTable(cat *catalog.Catalog, source, name string) *catalog.Table {
	if t, ok := cat.Tables[catalog.Normalize(name)]; ok && t.Source == source {
		return t
	}
	var only *catalog.Table
	for _, t := range cat.Tables {
		if t.Source == source {
			if only != nil {
				return nil
			}
			only = t
		}
	}
	return only
}

// dbzRow returns the row object of an event, with Debezium's temporal
// encodings turned into microseconds where the schema names them.
func dbzRow(raw json.RawMessage, schema *dbzSchema, field string, t *catalog.Table) (json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	conv := dbzTimeFields(schema, field, t)
	if len(conv) == 0 {
		return raw, true
	}
	var row map[string]json.RawMessage
	if json.Unmarshal(raw, &row) != nil {
		return nil, false
	}
	for name, scale := range conv {
		v, ok := row[name]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			continue // a string (ZonedTimestamp) or null: the engine reads it
		}
		if scale > 0 {
			n *= scale
		} else {
			n /= -scale
		}
		row[name] = json.RawMessage(strconv.FormatInt(n, 10))
	}
	out, err := json.Marshal(row)
	if err != nil {
		return nil, false
	}
	return out, true
}

// dbzTimeFields maps the TIMESTAMP columns of t that the schema gives a
// Debezium temporal type to the factor that turns them into microseconds
// (negative: a divisor).
func dbzTimeFields(schema *dbzSchema, field string, t *catalog.Table) map[string]int64 {
	if schema == nil {
		return nil
	}
	var out map[string]int64
	for _, f := range schema.Fields {
		if f.Field != field {
			continue
		}
		for _, c := range f.Fields {
			i := t.ColumnIndex(c.Field)
			if i < 0 || t.Columns[i].Type != types.Timestamp {
				continue
			}
			var scale int64
			switch c.Name {
			case "io.debezium.time.Timestamp":
				scale = 1000
			case "io.debezium.time.MicroTimestamp":
				scale = 1
			case "io.debezium.time.NanoTimestamp":
				scale = -1000
			case "io.debezium.time.Date", "org.apache.kafka.connect.data.Date":
				scale = 86_400_000_000
			default:
				continue
			}
			if out == nil {
				out = map[string]int64{}
			}
			out[c.Field] = scale
		}
	}
	return out
}

// dbzKey picks t's primary-key columns out of a row object.
func dbzKey(raw json.RawMessage, schema *dbzSchema, t *catalog.Table) (json.RawMessage, bool) {
	row, ok := dbzRow(raw, schema, "before", t)
	if !ok {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(row, &m) != nil {
		return nil, false
	}
	key := map[string]json.RawMessage{}
	for name, v := range m {
		if i := t.ColumnIndex(name); i >= 0 && t.IsKey(i) {
			key[name] = v
		}
	}
	if len(key) != len(t.PK) {
		return nil, false
	}
	out, err := json.Marshal(key)
	return out, err == nil
}

// dbzMessageKey reads the key from the Kafka message key, which Debezium
// writes as the row's key columns, with or without the schema wrapper.
func dbzMessageKey(key []byte, t *catalog.Table) (json.RawMessage, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(key, &top) != nil || top == nil {
		return nil, false
	}
	raw := json.RawMessage(key)
	if p, ok := top["payload"]; ok {
		if _, s := top["schema"]; s {
			raw = p
		}
	}
	return dbzKey(raw, nil, t)
}

// dbzReject builds the line the engine rejects for an event that cannot
// be translated: the source and table it was for, the problem as its op,
// and the original event verbatim.
func dbzReject(source, table, problem string, event []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"source":`)
	writeJSONString(&b, source)
	if table != "" {
		b.WriteString(`,"table":`)
		writeJSONString(&b, table)
	}
	b.WriteString(`,"op":`)
	writeJSONString(&b, "debezium: "+problem)
	b.WriteString(`,"debezium":`)
	b.Write(bytes.TrimSpace(event))
	b.WriteByte('}')
	return b.Bytes()
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s)
	b.Write(q)
}
