package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"ttq/engine"
)

// MaxIngestErrors caps the per-line errors listed in one ingest answer;
// every reject is still stored and counted.
const MaxIngestErrors = 1000

// ingestResponse is the answer of POST /v1/ingest.
type ingestResponse struct {
	Applied    int64       `json:"applied"`
	Watermarks int64       `json:"watermarks"`
	Rejected   int64       `json:"rejected"`
	Errors     []lineError `json:"errors"`
	// ErrorsTruncated is set when more lines were rejected than listed.
	ErrorsTruncated bool `json:"errors_truncated,omitempty"`
	// Global is G after the ingest, RFC 3339 or null.
	Global *string `json:"global_watermark"`
}

type lineError struct {
	Line    int    `json:"line"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// ingestFailure is an error answer that also says what was applied
// before the failure (it is durable and stays applied).
type ingestFailure struct {
	Error apiError `json:"error"`
	ingestResponse
}

// handleIngest streams NDJSON envelopes from the body and applies them in
// batches. It answers once everything applied is durable. The query
// parameter name labels the origin of each line (http:<request>:<name>:<line>),
// and first_line numbers the body's first line (default 1), so a client
// that sends a file in parts keeps the file's line numbers.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.stopping:
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down; send the updates again after restart")
		return
	default:
	}
	q := r.URL.Query()
	origin := "http:" + requestIDOf(r) + ":"
	if name := q.Get("name"); name != "" {
		if len(name) > 256 || strings.ContainsAny(name, "\n\r") {
			writeError(w, http.StatusBadRequest, "bad_name", "name: at most 256 characters on one line")
			return
		}
		origin += name + ":"
	}
	offset := 0
	if v := q.Get("first_line"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "bad_first_line", fmt.Sprintf("first_line %q: give a positive line number", v))
			return
		}
		offset = n - 1
	}

	var resp ingestResponse
	resp.Errors = []lineError{}
	batchSize := s.e.Options().BatchSize
	batch := make([]engine.Record, 0, min(batchSize, 1024))
	lines := make([]int, 0, cap(batch))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		c, errs, err := s.e.Apply(r.Context(), batch)
		if err != nil {
			return err
		}
		resp.Applied += c.Applied
		resp.Watermarks += c.Watermarks
		resp.Rejected += c.Rejected
		for _, le := range errs {
			s.metrics.httpRejects.WithLabelValues(le.Reason).Inc()
			if len(resp.Errors) >= MaxIngestErrors {
				resp.ErrorsTruncated = true
				continue
			}
			line := 0
			if le.Index >= 1 && le.Index <= len(lines) {
				line = lines[le.Index-1]
			}
			resp.Errors = append(resp.Errors, lineError{Line: line, Reason: le.Reason, Message: le.Message})
		}
		s.metrics.httpRecords.WithLabelValues("applied").Add(float64(c.Applied))
		s.metrics.httpRecords.WithLabelValues("watermark").Add(float64(c.Watermarks))
		s.metrics.httpRecords.WithLabelValues("rejected").Add(float64(c.Rejected))
		batch, lines = batch[:0], lines[:0]
		return nil
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxIngestBytes)
	err := engine.ReadLines(body, engine.MaxLine, func(n int, line []byte, tooLarge bool) error {
		n += offset
		batch = append(batch, engine.Record{Line: append([]byte(nil), line...), Origin: origin + strconv.Itoa(n), TooLarge: tooLarge})
		lines = append(lines, n)
		if len(batch) >= batchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	resp.Global = formatTime(s.e.Watermark())
	if err == nil {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	var mbe *http.MaxBytesError
	fail := ingestFailure{ingestResponse: resp}
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &mbe):
		// What was read before the limit is applied; the rest is not.
		if ferr := flush(); ferr == nil {
			fail.ingestResponse = resp
		}
		status, fail.Error = http.StatusRequestEntityTooLarge, apiError{"body_too_large",
			fmt.Sprintf("the body is larger than %d bytes (--max-body); the lines before the limit were applied (see the counts), send the rest in another request", s.cfg.MaxIngestBytes)}
	case errors.Is(err, engine.ErrClosed):
		status, fail.Error = http.StatusServiceUnavailable, apiError{"shutting_down", "the server is shutting down; the counts say what was applied"}
	case r.Context().Err() != nil:
		status, fail.Error = 499, apiError{"cancelled", "the request was cancelled; the counts say what was applied"}
	default:
		s.log.Error("ingest failed", "request_id", requestIDOf(r), "err", err)
		fail.Error = apiError{"internal", "ingest failed (request " + requestIDOf(r) + "); the counts say what was applied, the server log has the details"}
	}
	writeJSON(w, status, fail)
}
