package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"ttq/query"
	"ttq/timeline"
	"ttq/types"
)

// Metadata keys of the Arrow stream: the schema carries the snapshot that
// answered, each field its ttq column type.
const (
	MetaAsOf      = "ttq.as_of"     // RFC 3339, absent when the result has no snapshot
	MetaWatermark = "ttq.watermark" // RFC 3339 of G when the statement ran, absent when nothing is sealed
	MetaNote      = "ttq.note"      // the result's note, absent when empty
	MetaStatus    = "ttq.status"    // the confirmation of a statement that returns no data (DDL)
	MetaType      = "ttq.type"      // field metadata: BIGINT, DOUBLE, VARCHAR, BOOLEAN or TIMESTAMP
)

// writeResultJSON writes {"columns":[...],"rows":[[...]],"as_of":...,"watermark":...,"note":...,"status":...}
// straight from the result's Arrow batches.
func writeResultJSON(w io.Writer, r *query.Result, g int64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(`{"columns":[`)
	for i, c := range r.Columns {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString(`{"name":`)
		writeJSONString(bw, c.Name)
		bw.WriteString(`,"type":`)
		writeJSONString(bw, c.Type.String())
		bw.WriteByte('}')
	}
	bw.WriteString(`],"rows":[`)
	first := true
	for _, rec := range r.Records {
		cols := rec.Columns()
		for row := 0; row < int(rec.NumRows()); row++ {
			if !first {
				bw.WriteByte(',')
			}
			first = false
			bw.WriteByte('[')
			for i, col := range cols {
				if i > 0 {
					bw.WriteByte(',')
				}
				if err := writeJSONValue(bw, col, row); err != nil {
					return err
				}
			}
			bw.WriteByte(']')
		}
	}
	bw.WriteString(`],"as_of":`)
	writeJSONTime(bw, r.AsOf)
	bw.WriteString(`,"watermark":`)
	writeJSONTime(bw, g)
	if r.Note != "" {
		bw.WriteString(`,"note":`)
		writeJSONString(bw, r.Note)
	}
	if r.Status != "" {
		bw.WriteString(`,"status":`)
		writeJSONString(bw, r.Status)
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

func writeJSONTime(bw *bufio.Writer, ts int64) {
	if ts == timeline.None {
		bw.WriteString("null")
		return
	}
	writeJSONString(bw, timeline.Format(ts))
}

func writeJSONString(bw *bufio.Writer, s string) {
	b, _ := json.Marshal(s)
	bw.Write(b)
}

// writeJSONValue writes one cell: numbers as numbers (NaN and infinities
// as strings), times as RFC 3339 strings, NULL as null.
func writeJSONValue(bw *bufio.Writer, col arrow.Array, row int) error {
	if col.IsNull(row) {
		bw.WriteString("null")
		return nil
	}
	switch a := col.(type) {
	case *array.Int64:
		bw.WriteString(strconv.FormatInt(a.Value(row), 10))
	case *array.Float64:
		f := a.Value(row)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			writeJSONString(bw, types.FormatFloat(f))
		} else {
			bw.WriteString(types.FormatFloat(f))
		}
	case *array.String:
		writeJSONString(bw, a.Value(row))
	case *array.LargeString:
		writeJSONString(bw, a.Value(row))
	case *array.Boolean:
		bw.WriteString(strconv.FormatBool(a.Value(row)))
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		writeJSONString(bw, timeline.Format(toMicros(int64(a.Value(row)), unit)))
	case *array.Null:
		bw.WriteString("null")
	default:
		return fmt.Errorf("server: no JSON form for Arrow type %s", col.DataType())
	}
	return nil
}

func toMicros(v int64, unit arrow.TimeUnit) int64 {
	switch unit {
	case arrow.Second:
		return v * 1_000_000
	case arrow.Millisecond:
		return v * 1_000
	case arrow.Nanosecond:
		return v / 1_000
	}
	return v
}

// arrowSchema is the schema of the stream: the batches' own column types,
// named as the result names them, with ttq's types and times as metadata.
func arrowSchema(r *query.Result, g int64) *arrow.Schema {
	fields := make([]arrow.Field, len(r.Columns))
	for i, c := range r.Columns {
		var dt arrow.DataType
		if len(r.Records) > 0 && i < int(r.Records[0].NumCols()) {
			dt = r.Records[0].Column(i).DataType()
		} else {
			dt = c.Type.Arrow()
		}
		if dt == nil {
			dt = arrow.Null
		}
		fields[i] = arrow.Field{Name: c.Name, Type: dt, Nullable: true,
			Metadata: arrow.NewMetadata([]string{MetaType}, []string{c.Type.String()})}
	}
	var keys, vals []string
	if r.AsOf != timeline.None {
		keys, vals = append(keys, MetaAsOf), append(vals, timeline.Format(r.AsOf))
	}
	if g != timeline.None {
		keys, vals = append(keys, MetaWatermark), append(vals, timeline.Format(g))
	}
	if r.Note != "" {
		keys, vals = append(keys, MetaNote), append(vals, r.Note)
	}
	if r.Status != "" {
		keys, vals = append(keys, MetaStatus), append(vals, r.Status)
	}
	md := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(fields, &md)
}

// writeArrow writes the result as an Arrow IPC stream: the result's own
// batches, re-labelled with the stream's schema (no copy of the data).
func writeArrow(w io.Writer, r *query.Result, g int64) error {
	schema := arrowSchema(r, g)
	iw := ipc.NewWriter(w, ipc.WithSchema(schema))
	for _, rec := range r.Records {
		if int(rec.NumCols()) != len(schema.Fields()) {
			iw.Close()
			return fmt.Errorf("server: batch has %d columns, result %d", rec.NumCols(), len(schema.Fields()))
		}
		out := array.NewRecordBatch(schema, rec.Columns(), rec.NumRows())
		err := iw.Write(out)
		out.Release()
		if err != nil {
			iw.Close()
			return err
		}
	}
	return iw.Close()
}
