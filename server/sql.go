package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"ttq/engine"
	"ttq/query"
	"ttq/timeline"
)

// sqlRequest is the JSON body of POST /v1/sql.
type sqlRequest struct {
	SQL string `json:"sql"`
	// Wait, a Go duration, waits up to that long for the global watermark
	// to pass the statement's AS OF instead of failing with not_sealed.
	Wait string `json:"wait,omitempty"`
	// Timeout, a Go duration, lowers the server's query timeout for this
	// statement.
	Timeout string `json:"timeout,omitempty"`
}

// Result formats of POST /v1/sql, chosen by the Accept header.
const (
	mimeJSON  = "application/json"
	mimeCSV   = "text/csv"
	mimeArrow = "application/vnd.apache.arrow.stream"
)

func (s *Server) handleSQL(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req, ok := s.readSQLRequest(w, r)
	if !ok {
		return
	}
	format, ok := negotiate(r.Header.Get("Accept"))
	if !ok {
		writeError(w, http.StatusNotAcceptable, "not_acceptable", "Accept "+r.Header.Get("Accept")+": this route answers "+mimeJSON+", "+mimeCSV+" or "+mimeArrow)
		return
	}
	// One pass of the tokenizer routes, counts and authorises the
	// statement, and serves the engine's parse of it.
	p := s.e.Parse(req.SQL)
	defer func() { p.Release() }()
	cl, err := p.Class()
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	switch cl.Statements {
	case 0:
		writeError(w, http.StatusBadRequest, "empty", `no statement: send {"sql":"SELECT ..."}`)
		return
	case 1:
	default:
		writeError(w, http.StatusBadRequest, "one_statement", fmt.Sprintf("got %d statements: send one statement per request", cl.Statements))
		return
	}
	if strings.HasPrefix(strings.TrimSpace(req.SQL), ";") {
		parts, err := query.Split(req.SQL) // leading empty statements
		if err != nil || len(parts) != 1 {
			s.writeEngineError(w, r, err)
			return
		}
		p.Release()
		p = s.e.Parse(parts[0])
	}
	// The read-only token runs what is known to read, nothing else: a
	// statement of an unknown kind is refused, so a writing statement added
	// to the engine later is never open to it by default.
	if roleOf(r) < roleAdmin && cl.Kind != "select" && cl.Kind != "meta" {
		s.log.Warn("read-only token refused", "request_id", requestIDOf(r), "remote", r.RemoteAddr, "kind", cl.Kind)
		writeError(w, http.StatusForbidden, "forbidden", "this token may only read: run SELECT, SHOW, DESCRIBE or EXPLAIN, or use the admin token for DDL")
		return
	}
	if !cl.ReadOnly {
		if free, full := s.diskFull(); full {
			s.writeDiskFull(w, free, "DDL is")
			return
		}
	}
	timeout, wait, ok := s.limits(w, req)
	if !ok {
		return
	}
	kind := cl.Kind
	ctx, cancel := context.WithTimeout(r.Context(), timeout+wait)
	defer cancel()
	code := "ok"
	defer func() { s.metrics.observeQuery(kind, code, time.Since(start)) }()

	body, contentType, err := s.run(ctx, p, format, wait)
	if err != nil {
		_, code = s.sqlFailure(w, r, err, timeout, wait)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(body.Len()))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body.Bytes())
	}
}

// errOverloaded, errStopping and errWaitExpired are the server's own
// reasons to refuse a statement.
var (
	errOverloaded  = errors.New("server: too many concurrent queries")
	errStopping    = errors.New("server: shutting down")
	errWaitExpired = errors.New("server: waited for the watermark until the deadline")
)

// sqlFailure writes the answer of a failed statement and returns its
// status and code for the metrics.
func (s *Server) sqlFailure(w http.ResponseWriter, r *http.Request, err error, timeout, wait time.Duration) (int, string) {
	switch {
	case errors.Is(err, errOverloaded):
		w.Header().Set("Retry-After", "1")
		msg := fmt.Sprintf("too many concurrent queries (limit %d, --max-concurrent-queries); retry shortly", s.cfg.MaxConcurrentQueries)
		writeError(w, http.StatusTooManyRequests, "overloaded", msg)
		return http.StatusTooManyRequests, "overloaded"
	case errors.Is(err, errStopping):
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down; retry on another replica or after restart")
		return http.StatusServiceUnavailable, "shutting_down"
	case errors.Is(err, errWaitExpired):
		msg := fmt.Sprintf("waited %s for the global watermark and it did not pass: %v", wait, err)
		writeError(w, http.StatusConflict, "not_sealed", msg)
		return http.StatusConflict, "not_sealed"
	case errors.Is(err, context.DeadlineExceeded):
		msg := fmt.Sprintf("query ran longer than its time limit of %s (--query-timeout); narrow it or ask for less", timeout)
		writeError(w, http.StatusGatewayTimeout, "query_timeout", msg)
		return http.StatusGatewayTimeout, "query_timeout"
	case errors.Is(err, context.Canceled):
		if s.base.Err() != nil {
			writeError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down; the query was cancelled")
			return http.StatusServiceUnavailable, "shutting_down"
		}
		// The client went away; nobody reads the answer.
		writeError(w, 499, "cancelled", "the request was cancelled")
		return 499, "cancelled"
	case errors.Is(err, errResultTooLarge):
		msg := fmt.Sprintf("the encoded result is larger than %d bytes (--max-result-bytes); add a LIMIT or select fewer columns", s.cfg.MaxResultBytes)
		writeError(w, http.StatusRequestEntityTooLarge, "result_too_large", msg)
		return http.StatusRequestEntityTooLarge, "result_too_large"
	}
	if errors.Is(err, query.ErrTooManyRows) {
		msg := fmt.Sprintf("%v (the server's --max-rows)", err)
		writeError(w, http.StatusRequestEntityTooLarge, "result_too_large", msg)
		return http.StatusRequestEntityTooLarge, "result_too_large"
	}
	status, code, _ := classify(err)
	s.writeEngineError(w, r, err)
	return status, code
}

// readSQLRequest reads the body: a JSON object, or the bare SQL text.
// Query parameters wait and timeout may stand in for the JSON fields.
func (s *Server) readSQLRequest(w http.ResponseWriter, r *http.Request) (sqlRequest, bool) {
	var req sqlRequest
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxSQLBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the SQL request is larger than %d bytes", s.cfg.MaxSQLBytes))
		} else {
			writeError(w, http.StatusBadRequest, "bad_body", "read the request body: "+err.Error())
		}
		return req, false
	}
	trimmed := bytes.TrimSpace(b)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if len(trimmed) == 0 {
		writeError(w, http.StatusBadRequest, "empty", `no statement: send {"sql":"SELECT ..."}`)
		return req, false
	}
	if ct == mimeJSON || bytes.HasPrefix(trimmed, []byte("{")) {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad_json", `the body is not a valid request: `+err.Error()+` (want {"sql":"...","wait":"5s"})`)
			return req, false
		}
		if dec.More() {
			writeError(w, http.StatusBadRequest, "bad_json", "the body holds more than one JSON value")
			return req, false
		}
	} else {
		req.SQL = string(trimmed)
	}
	q := r.URL.Query()
	if v := q.Get("wait"); v != "" && req.Wait == "" {
		req.Wait = v
	}
	if v := q.Get("timeout"); v != "" && req.Timeout == "" {
		req.Timeout = v
	}
	if strings.TrimSpace(req.SQL) == "" {
		writeError(w, http.StatusBadRequest, "empty", `no statement: send {"sql":"SELECT ..."}`)
		return req, false
	}
	return req, true
}

// limits resolves the statement's time limit and its wait for sealing.
func (s *Server) limits(w http.ResponseWriter, req sqlRequest) (timeout, wait time.Duration, ok bool) {
	timeout = s.cfg.QueryTimeout
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "bad_timeout", fmt.Sprintf("timeout %q: give a positive Go duration such as 500ms or 5s", req.Timeout))
			return 0, 0, false
		}
		timeout = min(d, timeout)
	}
	if req.Wait != "" {
		d, err := time.ParseDuration(req.Wait)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, "bad_wait", fmt.Sprintf("wait %q: give a Go duration such as 5s", req.Wait))
			return 0, 0, false
		}
		if d > s.cfg.MaxWait {
			writeError(w, http.StatusBadRequest, "bad_wait", fmt.Sprintf("wait %s is longer than this server allows (%s)", d, s.cfg.MaxWait))
			return 0, 0, false
		}
		wait = d
	}
	return timeout, wait, true
}

// negotiate picks the result format from an Accept header.
func negotiate(accept string) (string, bool) {
	if strings.TrimSpace(accept) == "" {
		return mimeJSON, true
	}
	best, bestQ := "", -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		var f string
		switch mt {
		case mimeJSON, "*/*", "application/*":
			f = mimeJSON
		case mimeCSV, "text/*":
			f = mimeCSV
		case mimeArrow:
			f = mimeArrow
		default:
			continue
		}
		if q > 0 && q > bestQ {
			best, bestQ = f, q
		}
	}
	return best, best != ""
}

// run executes one statement and encodes its result. With a wait, a
// statement whose time is not sealed yet waits for the global watermark to
// move and tries again, until the wait is over.
func (s *Server) run(ctx context.Context, stmt *query.Parsed, format string, wait time.Duration) (*bytes.Buffer, string, error) {
	until := time.Now().Add(wait)
	for {
		sealed := s.e.Sealed() // taken before Exec, so no move of G is missed
		body, ct, err := s.runOnce(ctx, stmt, format)
		if wait <= 0 || !errors.Is(err, engine.ErrNotSealed) {
			return body, ct, err
		}
		left := time.Until(until)
		if left <= 0 {
			return nil, "", &waitError{err}
		}
		t := time.NewTimer(left)
		select {
		case <-sealed:
			t.Stop()
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, "", ctx.Err()
		case <-s.stopping:
			t.Stop()
			return nil, "", errStopping
		}
	}
}

// waitError is a not_sealed failure after waiting; it unwraps to both the
// wait marker and the engine's error.
type waitError struct{ err error }

func (e *waitError) Error() string   { return e.err.Error() }
func (e *waitError) Unwrap() []error { return []error{errWaitExpired, e.err} }

// runOnce takes a slot, runs the statement and encodes its result.
func (s *Server) runOnce(ctx context.Context, stmt *query.Parsed, format string) (*bytes.Buffer, string, error) {
	release, err := s.acquire(ctx)
	if err != nil {
		return nil, "", err
	}
	defer release()
	if s.beforeExec != nil {
		s.beforeExec(ctx)
	}
	res, err := s.e.ExecParsed(ctx, stmt, query.Options{MaxRows: s.cfg.MaxResultRows, MaxHeldRows: s.cfg.MaxHeldRows})
	if cerr := ctx.Err(); cerr != nil {
		if res != nil {
			res.Release()
		}
		return nil, "", cerr
	}
	if err != nil {
		return nil, "", err
	}
	defer res.Release()
	g := s.e.Watermark()
	buf := &bytes.Buffer{}
	lw := &limitWriter{w: buf, left: s.cfg.MaxResultBytes}
	switch format {
	case mimeCSV:
		err = query.WriteCSV(lw, res)
		format = "text/csv; charset=utf-8"
	case mimeArrow:
		err = writeArrow(lw, res, g)
	default:
		err = writeResultJSON(lw, res, g)
	}
	if lw.over {
		return nil, "", errResultTooLarge
	}
	if err != nil {
		return nil, "", fmt.Errorf("encode result: %w", err)
	}
	return buf, format, nil
}

// acquire waits for a statement slot, at most QueueTimeout.
func (s *Server) acquire(ctx context.Context) (func(), error) {
	select {
	case s.slots <- struct{}{}:
	default:
		t := time.NewTimer(s.cfg.QueueTimeout)
		defer t.Stop()
		select {
		case s.slots <- struct{}{}:
		case <-t.C:
			s.metrics.overloaded.Inc()
			return nil, errOverloaded
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stopping:
			return nil, errStopping
		}
	}
	s.metrics.inFlight.Inc()
	return func() {
		s.metrics.inFlight.Dec()
		<-s.slots
	}, nil
}

var errResultTooLarge = errors.New("server: result too large")

// limitWriter fails once more than left bytes were written.
type limitWriter struct {
	w    io.Writer
	left int64
	over bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		l.over = true
		return 0, errResultTooLarge
	}
	l.left -= int64(len(p))
	return l.w.Write(p)
}

// formatTime renders a timeline instant for JSON: RFC 3339 or null.
func formatTime(ts int64) *string {
	if ts == timeline.None {
		return nil
	}
	s := timeline.Format(ts)
	return &s
}
