// Package export writes a snapshot of a table or a query result for
// analytics platforms: Parquet, Arrow IPC, CSV or NDJSON, streaming in
// bounded memory, with the snapshot time recorded in the file.
package export

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"ttq/catalog"
	"ttq/query"
	"ttq/timeline"
	"ttq/types"
)

// ErrFormat is returned for an export format ttq does not write.
var ErrFormat = errors.New("export: unknown format")

// MetaAsOf is the metadata key (Arrow schema and Parquet key-value metadata)
// holding the snapshot time as RFC 3339; MetaAsOfMicros holds it as integer
// microseconds.
const (
	MetaAsOf       = "ttq.as_of"
	MetaAsOfMicros = "ttq.as_of_us"
)

// Formats lists the formats Writer accepts.
var Formats = []string{"parquet", "arrow", "csv", "ndjson"}

// BatchRows is how many rows one Arrow batch (and Parquet row group chunk)
// holds; memory is bounded by it.
const BatchRows = 64 * 1024

// Writer writes rows of one schema in one format.
type Writer struct {
	format string
	cols   []catalog.Column
	asOf   int64
	w      io.Writer

	pending [][]types.Value // arrow and parquet: rows of the batch being built

	csvw *csv.Writer
	ipcw *ipc.FileWriter
	pqw  *pqarrow.FileWriter
	rows int64
}

// NewWriter starts an export of cols AS OF asOf to w.
func NewWriter(w io.Writer, format string, cols []catalog.Column, asOf int64) (*Writer, error) {
	x := &Writer{format: format, cols: cols, asOf: asOf, w: w}
	md := arrow.NewMetadata([]string{MetaAsOf, MetaAsOfMicros}, []string{timeline.Format(asOf), strconv.FormatInt(asOf, 10)})
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: c.Type.Arrow(), Nullable: true}
	}
	schema := arrow.NewSchema(fields, &md)
	var err error
	switch format {
	case "csv":
		x.csvw = csv.NewWriter(w)
		header := make([]string, len(cols))
		for i, c := range cols {
			header[i] = c.Name
		}
		err = x.csvw.Write(header)
	case "ndjson":
	case "arrow":
		x.ipcw, err = ipc.NewFileWriter(w, ipc.WithSchema(schema))
	case "parquet":
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy))
		x.pqw, err = pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err == nil {
			// The snapshot time also goes into the file's own key-value
			// metadata, where Parquet tools that ignore Arrow look.
			err = errors.Join(x.pqw.AppendKeyValueMetadata(MetaAsOf, timeline.Format(asOf)),
				x.pqw.AppendKeyValueMetadata(MetaAsOfMicros, strconv.FormatInt(asOf, 10)))
		}
	default:
		return nil, fmt.Errorf("%w %q (use parquet, arrow, csv or ndjson)", ErrFormat, format)
	}
	if err != nil {
		return nil, fmt.Errorf("export: start %s: %w", format, err)
	}
	return x, nil
}

// Rows returns the number of rows written.
func (x *Writer) Rows() int64 { return x.rows }

// WriteRow writes one row; row is not kept after the call.
func (x *Writer) WriteRow(row []types.Value) error {
	x.rows++
	switch x.format {
	case "csv":
		rec := make([]string, len(row))
		for i, v := range row {
			rec[i] = v.Text()
		}
		return x.csvw.Write(rec)
	case "ndjson":
		obj := make(map[string]any, len(row))
		for i, v := range row {
			obj[x.cols[i].Name] = v
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		_, err = x.w.Write(append(b, '\n'))
		return err
	}
	x.pending = append(x.pending, append([]types.Value(nil), row...))
	if len(x.pending) >= BatchRows {
		return x.flush()
	}
	return nil
}

// WriteResult writes every row of a query result.
func (x *Writer) WriteResult(r *query.Result) error {
	for _, row := range r.Rows() {
		if err := x.WriteRow(row); err != nil {
			return err
		}
	}
	return nil
}

func (x *Writer) flush() error {
	if len(x.pending) == 0 {
		return nil
	}
	res := query.NewResult(x.cols, x.pending, x.asOf)
	defer res.Release()
	x.pending = x.pending[:0]
	for _, rec := range res.Records {
		var err error
		if x.ipcw != nil {
			err = x.ipcw.Write(rec)
		} else {
			err = x.pqw.Write(rec)
		}
		if err != nil {
			return fmt.Errorf("export: write %s: %w", x.format, err)
		}
	}
	return nil
}

// Close finishes the file (footers, buffered rows).
func (x *Writer) Close() error {
	switch x.format {
	case "csv":
		x.csvw.Flush()
		return x.csvw.Error()
	case "arrow":
		if err := x.flush(); err != nil {
			return err
		}
		return x.ipcw.Close()
	case "parquet":
		if err := x.flush(); err != nil {
			return err
		}
		return x.pqw.Close()
	}
	return nil
}
