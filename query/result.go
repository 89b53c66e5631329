package query

import (
	"encoding/binary"
	"math"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"ttq/catalog"
	"ttq/types"
)

// Result is the answer of a statement as Arrow record batches.
type Result struct {
	// Columns are the output names and types.
	Columns []catalog.Column
	// Records hold the rows; Release frees them.
	Records []arrow.RecordBatch
	// AsOf is the statement's effective snapshot time (timeline.None for
	// system tables, SHOW and the like).
	AsOf int64
	// Note says which epoch answered a view or the time of each table when
	// they differ; "" if none.
	Note string
	// Status is set for statements that return no data (DDL): a one-line
	// confirmation such as "CREATE TABLE prices". Such a result has one
	// column, "result", holding the same text, for callers that only print
	// rows; CSV and JSON writers in the CLI print nothing for it.
	Status string
}

// Release frees the record batches.
func (r *Result) Release() {
	if r == nil {
		return
	}
	for _, rec := range r.Records {
		rec.Release()
	}
	r.Records = nil
}

// NumRows returns the number of rows.
func (r *Result) NumRows() int64 {
	var n int64
	for _, rec := range r.Records {
		n += rec.NumRows()
	}
	return n
}

// Rows returns the rows as values (for tests and small results).
func (r *Result) Rows() [][]types.Value {
	var out [][]types.Value
	for _, rec := range r.Records {
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]types.Value, len(r.Columns))
			for c := range r.Columns {
				row[c] = valueAt(rec.Column(c), r.Columns[c].Type, i)
			}
			out = append(out, row)
		}
	}
	return out
}

// Schema returns the Arrow schema of the result.
func (r *Result) Schema() *arrow.Schema { return schemaOf(r.Columns) }

// schemaOf returns the Arrow schema of cols. Schemas are immutable and
// the same few are asked for again and again (one per statement shape),
// so they are kept, up to maxSchemas, by their columns' names and types.
func schemaOf(cols []catalog.Column) *arrow.Schema {
	var buf [256]byte
	key := buf[:0]
	for _, c := range cols {
		key = append(key, byte(c.Type))
		key = append(key, c.Name...)
		key = append(key, 0)
	}
	schemas.RLock()
	s := schemas.m[string(key)]
	schemas.RUnlock()
	if s != nil {
		return s
	}
	fs := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fs[i] = arrow.Field{Name: c.Name, Type: c.Type.Arrow(), Nullable: true}
	}
	s = arrow.NewSchema(fs, nil)
	schemas.Lock()
	if len(schemas.m) >= maxSchemas {
		clear(schemas.m)
	}
	schemas.m[string(key)] = s
	schemas.Unlock()
	return s
}

const maxSchemas = 1024

var schemas = struct {
	sync.RWMutex
	m map[string]*arrow.Schema
}{m: map[string]*arrow.Schema{}}

// oneRow returns the result of one row, its arrays built directly
// rather than through builders (a point lookup's answer).
func oneRow(cols []catalog.Column, row []types.Value, asOf int64) *Result {
	arrs := make([]arrow.Array, len(cols))
	for i, c := range cols {
		arrs[i] = oneValue(c.Type, row[i])
	}
	rec := array.NewRecordBatch(schemaOf(cols), arrs, 1)
	for _, a := range arrs {
		a.Release()
	}
	return &Result{Columns: cols, Records: []arrow.RecordBatch{rec}, AsOf: asOf}
}

// oneValue returns an array of the one value v of type t.
func oneValue(t types.Type, v types.Value) arrow.Array {
	dt := t.Arrow()
	if v.IsNull() {
		return array.MakeArrayOfNull(memory.DefaultAllocator, dt, 1)
	}
	var bufs []*memory.Buffer
	switch t {
	case types.BigInt, types.Timestamp, types.Double:
		b := make([]byte, 8)
		switch t {
		case types.BigInt:
			binary.LittleEndian.PutUint64(b, uint64(castInt(v)))
		case types.Timestamp:
			binary.LittleEndian.PutUint64(b, uint64(v.I))
		default:
			binary.LittleEndian.PutUint64(b, math.Float64bits(v.AsFloat()))
		}
		bufs = []*memory.Buffer{nil, memory.NewBufferBytes(b)}
	case types.Boolean:
		b := []byte{0}
		if v.I != 0 {
			b[0] = 1
		}
		bufs = []*memory.Buffer{nil, memory.NewBufferBytes(b)}
	default:
		s := v.Text()
		b := make([]byte, 8+len(s))
		binary.LittleEndian.PutUint32(b[4:], uint32(len(s)))
		copy(b[8:], s)
		bufs = []*memory.Buffer{nil, memory.NewBufferBytes(b[:8]), memory.NewBufferBytes(b[8:])}
	}
	data := array.NewData(dt, 1, bufs, nil, 0, 0)
	a := array.MakeFromData(data)
	data.Release()
	return a
}

// NewResult builds a result from rows (for SHOW, DESCRIBE, system tables).
func NewResult(cols []catalog.Column, rows [][]types.Value, asOf int64) *Result {
	b := newResultBuilder(cols, 0)
	for _, r := range rows {
		b.add(r)
	}
	return b.finish(asOf)
}

type resultBuilder struct {
	cols  []catalog.Column
	size  int
	rb    *array.RecordBuilder
	n     int
	rows  int64
	recs  []arrow.RecordBatch
	taken bool
}

func newResultBuilder(cols []catalog.Column, size int) *resultBuilder {
	if size <= 0 {
		size = 1024
	}
	out := make([]catalog.Column, len(cols))
	for i, c := range cols {
		if c.Type == types.Null {
			c.Type = types.Varchar
		}
		out[i] = c
	}
	return &resultBuilder{cols: out, size: size, rb: array.NewRecordBuilder(memory.DefaultAllocator, schemaOf(out))}
}

// add appends a row; values beyond the columns (hidden sort keys) are ignored.
func (b *resultBuilder) add(row []types.Value) {
	for i, c := range b.cols {
		var v types.Value
		if i < len(row) {
			v = row[i]
		}
		appendValue(b.rb.Field(i), c.Type, v)
	}
	b.n++
	b.rows++
	if b.n >= b.size {
		b.flush()
	}
}

func (b *resultBuilder) flush() {
	if b.n == 0 {
		return
	}
	b.recs = append(b.recs, b.rb.NewRecordBatch())
	b.n = 0
}

func (b *resultBuilder) finish(asOf int64) *Result {
	b.flush()
	b.taken = true
	b.rb.Release()
	return &Result{Columns: b.cols, Records: b.recs, AsOf: asOf}
}

// release frees what an unfinished builder holds.
func (b *resultBuilder) release() {
	if b.taken {
		return
	}
	b.taken = true
	b.rb.Release()
	for _, r := range b.recs {
		r.Release()
	}
}

func appendValue(bld array.Builder, t types.Type, v types.Value) {
	if v.IsNull() {
		bld.AppendNull()
		return
	}
	switch t {
	case types.BigInt:
		bld.(*array.Int64Builder).Append(castInt(v))
	case types.Double:
		bld.(*array.Float64Builder).Append(v.AsFloat())
	case types.Boolean:
		bld.(*array.BooleanBuilder).Append(v.I != 0)
	case types.Timestamp:
		bld.(*array.TimestampBuilder).Append(arrow.Timestamp(v.I))
	default:
		bld.(*array.StringBuilder).Append(v.Text())
	}
}

func castInt(v types.Value) int64 {
	if v.T == types.Double {
		return int64(v.F)
	}
	return v.I
}

// valueAt reads row i of an Arrow column as a value.
func valueAt(a arrow.Array, t types.Type, i int) types.Value {
	if a.IsNull(i) {
		return types.NullValue
	}
	switch a := a.(type) {
	case *array.Int64:
		return types.Int(a.Value(i))
	case *array.Float64:
		return types.Float(a.Value(i))
	case *array.Boolean:
		return types.Bool(a.Value(i))
	case *array.Timestamp:
		return types.Time(int64(a.Value(i)))
	case *array.String:
		return types.String(a.Value(i))
	}
	return types.NullValue
}
