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
		// Length-prefixed: a name may hold any byte.
		key = append(key, byte(c.Type))
		key = binary.AppendUvarint(key, uint64(len(c.Name)))
		key = append(key, c.Name...)
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

// NewResult builds a result from rows (for SHOW, DESCRIBE, system tables).
func NewResult(cols []catalog.Column, rows [][]types.Value, asOf int64) *Result {
	b := newResultBuilder(cols, 0)
	for _, r := range rows {
		b.add(r)
	}
	return b.finish(asOf)
}

// resultBuilder gathers rows and turns each batch of them into an Arrow
// record, one column at a time: the values of a column are laid out in
// their buffers directly, without Arrow's builders, whose set-up was most
// of a point lookup's result cost.
type resultBuilder struct {
	cols  []catalog.Column
	size  int           // rows a record holds
	buf   []types.Value // the pending rows, row after row
	n     int           // pending rows
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
	return &resultBuilder{cols: out, size: size}
}

// add appends a row; values beyond the columns (hidden sort keys) are
// ignored, missing ones are NULL.
func (b *resultBuilder) add(row []types.Value) {
	if len(row) >= len(b.cols) {
		b.buf = append(b.buf, row[:len(b.cols)]...)
	} else {
		b.buf = append(b.buf, row...)
		for range len(b.cols) - len(row) {
			b.buf = append(b.buf, types.NullValue)
		}
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
	arrs := make([]arrow.Array, len(b.cols))
	for i, c := range b.cols {
		arrs[i] = columnOf(c.Type, b.buf, i, len(b.cols), b.n)
	}
	b.recs = append(b.recs, array.NewRecordBatch(schemaOf(b.cols), arrs, int64(b.n)))
	for _, a := range arrs {
		a.Release()
	}
	clear(b.buf) // drop the strings the values point to
	b.buf, b.n = b.buf[:0], 0
}

func (b *resultBuilder) finish(asOf int64) *Result {
	b.flush()
	b.taken = true
	return &Result{Columns: b.cols, Records: b.recs, AsOf: asOf}
}

// release frees what an unfinished builder holds.
func (b *resultBuilder) release() {
	if b.taken {
		return
	}
	b.taken = true
	for _, r := range b.recs {
		r.Release()
	}
}

// columnOf returns the Arrow array of column col of the n rows in buf,
// each stride values long.
func columnOf(t types.Type, buf []types.Value, col, stride, n int) arrow.Array {
	nulls := 0
	for r := 0; r < n; r++ {
		if buf[r*stride+col].IsNull() {
			nulls++
		}
	}
	bufs := make([]*memory.Buffer, 2, 3)
	if nulls > 0 {
		valid := make([]byte, (n+7)/8)
		for r := 0; r < n; r++ {
			if !buf[r*stride+col].IsNull() {
				valid[r/8] |= 1 << (r % 8)
			}
		}
		bufs[0] = memory.NewBufferBytes(valid)
	}
	switch t {
	case types.BigInt, types.Timestamp, types.Double:
		b := make([]byte, 8*n)
		for r := 0; r < n; r++ {
			v := buf[r*stride+col]
			if v.IsNull() {
				continue
			}
			var x uint64
			switch t {
			case types.BigInt:
				x = uint64(castInt(v))
			case types.Timestamp:
				x = uint64(v.I)
			default:
				x = math.Float64bits(v.AsFloat())
			}
			binary.LittleEndian.PutUint64(b[8*r:], x)
		}
		bufs[1] = memory.NewBufferBytes(b)
	case types.Boolean:
		b := make([]byte, (n+7)/8)
		for r := 0; r < n; r++ {
			if v := buf[r*stride+col]; !v.IsNull() && v.I != 0 {
				b[r/8] |= 1 << (r % 8)
			}
		}
		bufs[1] = memory.NewBufferBytes(b)
	default:
		size := 0
		for r := 0; r < n; r++ {
			if v := buf[r*stride+col]; !v.IsNull() {
				size += len(v.Text())
			}
		}
		b := make([]byte, 4*(n+1)+size)
		offs, data := b[:4*(n+1)], b[4*(n+1):4*(n+1)]
		for r := 0; r < n; r++ {
			if v := buf[r*stride+col]; !v.IsNull() {
				data = append(data, v.Text()...)
			}
			binary.LittleEndian.PutUint32(offs[4*(r+1):], uint32(len(data)))
		}
		bufs[1] = memory.NewBufferBytes(offs)
		bufs = append(bufs, memory.NewBufferBytes(data))
	}
	d := array.NewData(t.Arrow(), n, bufs, nil, nulls, 0)
	a := array.MakeFromData(d)
	d.Release()
	return a
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
