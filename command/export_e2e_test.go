package command_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"ttq/export"
	"ttq/timeline"
	"ttq/types"
)

// exportFixture makes a store with history and returns its directory.
func exportFixture(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	ddl := `CREATE SOURCE s; CREATE TABLE items (id BIGINT, part VARCHAR, price DOUBLE, ok BOOLEAN, seen TIMESTAMP, PRIMARY KEY (id, part)) SOURCE s;`
	if r := runTTQ(t, "", "sql", "--data", data, "-e", ddl); r.code != 0 {
		t.Fatal(r.stderr)
	}
	var b strings.Builder
	for i := 0; i < 300; i++ {
		ts := 1_800_000_000_000_000 + int64(i)*1000
		b.WriteString(`{"source":"s","table":"items","op":"upsert","ts":` + itoa(ts) + `,"data":{"id":` + itoa(int64(i%120)) + `,"part":"p,` + itoa(int64(i%3)) + `","price":` + itoa(int64(i)) + `.25,"ok":true,"seen":"2026-11-25T10:00:00Z"}}` + "\n")
	}
	b.WriteString(`{"source":"s","table":"items","op":"upsert","ts":1800000000000001,"data":{"id":999,"part":"x"}}` + "\n")
	b.WriteString(`{"source":"s","op":"watermark","ts":1800000001000000}` + "\n")
	if r := runTTQ(t, b.String(), "load", "--data", data, "-"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	return data
}

func itoa(i int64) string { return types.Int(i).Text() }

func TestExportRoundTrip(t *testing.T) {
	data := exportFixture(t)
	asOf := "1800000000150000"
	ref := runTTQ(t, "", "sql", "--data", data, "--format", "csv", "-e", "SELECT * FROM items AS OF "+asOf+" ORDER BY id, part")
	if ref.code != 0 {
		t.Fatal(ref.stderr)
	}
	want, err := csv.NewReader(strings.NewReader(ref.stdout)).ReadAll()
	if err != nil || len(want) < 100 {
		t.Fatalf("reference answer: %d rows, %v", len(want), err)
	}
	dir := t.TempDir()
	for _, format := range export.Formats {
		for _, how := range [][]string{{"items"}, {"-e", "SELECT * FROM items ORDER BY id, part"}} {
			out := filepath.Join(dir, format+how[0])
			args := append([]string{"export", "--data", data, "--as-of", asOf, "--format", format, "--out", out}, how...)
			if r := runTTQ(t, "", args...); r.code != 0 {
				t.Fatalf("%s %v: %s", format, how, r.stderr)
			}
			got := readExport(t, format, out)
			if strings.Join(flatten(got), "|") != strings.Join(flatten(want), "|") {
				t.Fatalf("%s %v: export differs from the query answer\n got %v\nwant %v", format, how, got[:3], want[:3])
			}
		}
	}
	// The same files over HTTP (GET /v1/export), read back the same way.
	srv := startServe(t, nil, "--data", data)
	for _, format := range export.Formats {
		for _, how := range [][]string{{"items"}, {"-e", "SELECT * FROM items ORDER BY id, part"}} {
			out := filepath.Join(dir, "remote-"+format+how[0])
			args := append([]string{"export", "--server", srv.url, "--as-of", asOf, "--format", format, "--out", out}, how...)
			if r := runTTQ(t, "", args...); r.code != 0 {
				t.Fatalf("over the server, %s %v: %s", format, how, r.stderr)
			}
			if got := readExport(t, format, out); strings.Join(flatten(got), "|") != strings.Join(flatten(want), "|") {
				t.Fatalf("over the server, %s %v: export differs from the query answer", format, how)
			}
		}
	}
	if r := runTTQ(t, "", "export", "--server", srv.url, "--as-of", "1800000002000000", "--format", "csv", "--out", filepath.Join(dir, "y"), "items"); r.code == 0 || !strings.Contains(r.stderr, "not sealed") {
		t.Fatalf("unsealed export over the server: %d %s", r.code, r.stderr)
	}
	srv.stop(syscall.SIGTERM)
	// Exporting an unsealed time fails like a query does.
	if r := runTTQ(t, "", "export", "--data", data, "--as-of", "1800000002000000", "--format", "csv", "--out", filepath.Join(dir, "x"), "items"); r.code == 0 || !strings.Contains(r.stderr, "not sealed") {
		t.Fatalf("unsealed export: %d %s", r.code, r.stderr)
	}
}

func flatten(rows [][]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, strings.Join(r, ","))
	}
	return out
}

// readExport reads an export back into CSV-like rows (header first), using
// arrow-go's readers for the binary formats and checking the snapshot time
// recorded in their metadata.
func readExport(t *testing.T, format, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch format {
	case "csv":
		rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return rows
	case "ndjson":
		header := []string{"id", "part", "price", "ok", "seen"}
		rows := [][]string{header}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		for dec.More() {
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				t.Fatal(err)
			}
			row := make([]string, len(header))
			for i, h := range header {
				if obj[h] != nil {
					row[i] = fmt.Sprint(obj[h])
				}
			}
			rows = append(rows, row)
		}
		return rows
	}
	var recs []arrow.RecordBatch
	var schema *arrow.Schema
	switch format {
	case "arrow":
		r, err := ipc.NewFileReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		schema = r.Schema()
		for i := 0; i < r.NumRecords(); i++ {
			rec, err := r.Record(i)
			if err != nil {
				t.Fatal(err)
			}
			rec.Retain()
			recs = append(recs, rec)
		}
	case "parquet":
		pf, err := file.NewParquetReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		schema = tbl.Schema()
		if v := pf.MetaData().KeyValueMetadata().FindValue(export.MetaAsOf); v == nil || *v != timeline.Format(1800000000150000) {
			t.Fatalf("parquet key-value metadata %s = %v", export.MetaAsOf, v)
		}
		schema = arrow.NewSchema(schema.Fields(), &arrow.Metadata{})
		md := arrow.NewMetadata([]string{export.MetaAsOf}, []string{*pf.MetaData().KeyValueMetadata().FindValue(export.MetaAsOf)})
		schema = arrow.NewSchema(schema.Fields(), &md)
		tr := array.NewTableReader(tbl, 1024)
		for tr.Next() {
			rec := tr.RecordBatch()
			rec.Retain()
			recs = append(recs, rec)
		}
	}
	if v, ok := schema.Metadata().GetValue(export.MetaAsOf); !ok || v != timeline.Format(1800000000150000) {
		t.Fatalf("%s: snapshot time in metadata = %q, %v", format, v, ok)
	}
	header := make([]string, schema.NumFields())
	for i, f := range schema.Fields() {
		header[i] = f.Name
	}
	rows := [][]string{header}
	for _, rec := range recs {
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, rec.NumCols())
			for c := 0; c < int(rec.NumCols()); c++ {
				col := rec.Column(c)
				if col.IsNull(i) {
					continue
				}
				switch a := col.(type) {
				case *array.Int64:
					row[c] = types.Int(a.Value(i)).Text()
				case *array.Float64:
					row[c] = types.Float(a.Value(i)).Text()
				case *array.String:
					row[c] = a.Value(i)
				case *array.Boolean:
					row[c] = types.Bool(a.Value(i)).Text()
				case *array.Timestamp:
					row[c] = timeline.Format(int64(a.Value(i)))
				default:
					t.Fatalf("unexpected column type %T", col)
				}
			}
			rows = append(rows, row)
		}
		rec.Release()
	}
	return rows
}
