package server

import (
	"context"
	"net/http"

	"ttq/export"
	"ttq/query"
	"ttq/types"
)

// exportTypes are the content types of the export formats.
var exportTypes = map[string]string{
	"parquet": "application/vnd.apache.parquet",
	"arrow":   "application/vnd.apache.arrow.file",
	"csv":     "text/csv; charset=utf-8",
	"ndjson":  "application/x-ndjson",
}

// handleExport streams a snapshot for analytics:
//
//	GET /v1/export?table=T[&as_of=t][&format=parquet|arrow|csv|ndjson]
//	GET /v1/export?sql=SELECT...[&as_of=t][&format=...]
//
// A table streams in bounded memory; a query's result is built first,
// within the statement limits. The snapshot time is in the file's metadata
// and in the X-Ttq-As-Of header.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "parquet"
	}
	ctype, ok := exportTypes[format]
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_format", "format "+format+": use parquet, arrow, csv or ndjson")
		return
	}
	table, sql := q.Get("table"), q.Get("sql")
	if (table == "") == (sql == "") {
		writeError(w, http.StatusBadRequest, "bad_request", "give table=NAME or sql=SELECT..., not both")
		return
	}
	if sql != "" {
		s.exportQuery(w, r, sql, q.Get("as_of"), format, ctype)
		return
	}
	ts, err := s.e.ResolveTime(q.Get("as_of"))
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	t, err := s.e.Catalog().Table(table)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	// Checks (sealed, retention) happen in ScanTable before the first row;
	// headers go out with the first bytes the writer produces.
	lw := &lazyHeader{w: w, ctype: ctype, asOf: ts}
	xw, err := export.NewWriter(lw, format, t.Columns, ts)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	if _, err := s.e.ScanTable(r.Context(), table, ts, func(row []types.Value) error { return xw.WriteRow(row) }); err != nil {
		if !lw.started {
			s.writeEngineError(w, r, err)
		}
		return // mid-stream: the truncated body tells the client
	}
	if err := xw.Close(); err != nil {
		s.log.Warn("export: finishing the file", "request_id", requestIDOf(r), "err", err)
	}
	lw.start()
}

func (s *Server) exportQuery(w http.ResponseWriter, r *http.Request, sql, asOf, format, ctype string) {
	cl, err := query.Classify(sql)
	if err != nil || cl.Kind != "select" || cl.Statements != 1 {
		writeError(w, http.StatusBadRequest, "bad_request", "sql must be one SELECT")
		return
	}
	if asOf != "" {
		if sql, err = query.WithAsOf(sql, asOf); err != nil {
			s.writeEngineError(w, r, err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	res, err := s.e.Exec(ctx, sql, query.Options{MaxRows: s.cfg.MaxResultRows, MaxHeldRows: s.cfg.MaxHeldRows})
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	defer res.Release()
	lw := &lazyHeader{w: w, ctype: ctype, asOf: res.AsOf}
	xw, err := export.NewWriter(lw, format, res.Columns, res.AsOf)
	if err == nil {
		err = xw.WriteResult(res)
	}
	if err == nil {
		err = xw.Close()
	}
	if err != nil && !lw.started {
		s.writeEngineError(w, r, err)
		return
	}
	lw.start()
}

// lazyHeader sends the status and headers with the first byte, so an error
// before any output can still be a proper JSON error.
type lazyHeader struct {
	w       http.ResponseWriter
	ctype   string
	asOf    int64
	started bool
}

func (l *lazyHeader) start() {
	if l.started {
		return
	}
	l.started = true
	l.w.Header().Set("Content-Type", l.ctype)
	l.w.Header().Set("X-Ttq-As-Of", types.Time(l.asOf).Text())
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyHeader) Write(p []byte) (int, error) {
	l.start()
	return l.w.Write(p)
}
