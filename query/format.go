package query

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"ttq/timeline"
	"ttq/types"
)

// forEachRow calls fn with every row of r.
func forEachRow(r *Result, fn func(row []types.Value) error) error {
	row := make([]types.Value, len(r.Columns))
	for _, rec := range r.Records {
		for i := 0; i < int(rec.NumRows()); i++ {
			for c := range r.Columns {
				row[c] = valueAt(rec.Column(c), r.Columns[c].Type, i)
			}
			if err := fn(row); err != nil {
				return err
			}
		}
	}
	return nil
}

// csvText renders a value for CSV and the table view: floats in Go's
// shortest round-trip form, booleans true/false, times RFC 3339 UTC.
func csvText(v types.Value) string {
	if v.IsNull() {
		return ""
	}
	return v.Text()
}

// WriteCSV writes r as RFC 4180 CSV with a header row; NULL is an empty field.
func WriteCSV(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = false
	rec := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		rec[i] = c.Name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	err := forEachRow(r, func(row []types.Value) error {
		for i, v := range row {
			rec[i] = csvText(v)
		}
		return cw.Write(rec)
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

type jsonColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// WriteJSON writes r as {"columns":[{"name","type"}],"rows":[[...]],"as_of":...}:
// numbers as JSON numbers (non-finite floats as strings), NULL as null,
// times as RFC 3339 strings.
func WriteJSON(w io.Writer, r *Result) error {
	bw := bufio.NewWriter(w)
	cols := make([]jsonColumn, len(r.Columns))
	for i, c := range r.Columns {
		cols[i] = jsonColumn{Name: c.Name, Type: c.Type.String()}
	}
	cb, err := json.Marshal(cols)
	if err != nil {
		return err
	}
	bw.WriteString(`{"columns":`)
	bw.Write(cb)
	bw.WriteString(`,"rows":[`)
	first := true
	err = forEachRow(r, func(row []types.Value) error {
		if !first {
			bw.WriteByte(',')
		}
		first = false
		bw.WriteByte('[')
		for i, v := range row {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString(jsonValue(v))
		}
		bw.WriteByte(']')
		return nil
	})
	if err != nil {
		return err
	}
	bw.WriteString(`],"as_of":`)
	if r.AsOf == timeline.None {
		bw.WriteString("null")
	} else {
		bw.WriteString(strconv.Quote(timeline.Format(r.AsOf)))
	}
	if r.Note != "" {
		nb, _ := json.Marshal(r.Note)
		bw.WriteString(`,"note":`)
		bw.Write(nb)
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

func jsonValue(v types.Value) string {
	b, _ := v.MarshalJSON()
	return string(b)
}

// WriteTable writes r as an aligned text table, NULL shown as NULL,
// followed by "(N rows)" and the note, if any.
func WriteTable(w io.Writer, r *Result) error {
	bw := bufio.NewWriter(w)
	widths := make([]int, len(r.Columns))
	right := make([]bool, len(r.Columns))
	for i, c := range r.Columns {
		widths[i] = utf8.RuneCountInString(c.Name)
		right[i] = c.Type == types.BigInt || c.Type == types.Double
	}
	var cells [][]string
	err := forEachRow(r, func(row []types.Value) error {
		line := make([]string, len(row))
		for i, v := range row {
			s := v.String()
			s = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
			line[i] = s
			if n := utf8.RuneCountInString(s); n > widths[i] {
				widths[i] = n
			}
		}
		cells = append(cells, line)
		return nil
	})
	if err != nil {
		return err
	}
	pad := func(s string, i int, alignRight bool) string {
		gap := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(s))
		if alignRight {
			return gap + s
		}
		return s + gap
	}
	writeLine := func(vals []string, isHeader bool) {
		for i, s := range vals {
			if i > 0 {
				bw.WriteString(" | ")
			}
			last := i == len(vals)-1
			cell := pad(s, i, right[i] && !isHeader)
			if last && !(right[i] && !isHeader) {
				cell = strings.TrimRight(cell, " ")
			}
			bw.WriteString(cell)
		}
		bw.WriteByte('\n')
	}
	if len(r.Columns) > 0 {
		hdr := make([]string, len(r.Columns))
		for i, c := range r.Columns {
			hdr[i] = c.Name
		}
		writeLine(hdr, true)
		for i := range r.Columns {
			if i > 0 {
				bw.WriteString("-+-")
			}
			bw.WriteString(strings.Repeat("-", widths[i]))
		}
		bw.WriteByte('\n')
	}
	for _, line := range cells {
		writeLine(line, false)
	}
	n := len(cells)
	if n == 1 {
		fmt.Fprintf(bw, "(1 row)\n")
	} else {
		fmt.Fprintf(bw, "(%d rows)\n", n)
	}
	if r.Note != "" {
		fmt.Fprintf(bw, "note: %s\n", r.Note)
	}
	return bw.Flush()
}
