package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"ttq/engine"
)

// MaxIngestErrors caps the per-line errors listed in one ingest answer;
// every reject is still stored and counted.
const MaxIngestErrors = 1000

// MaxIngestBatchBytes bounds the lines one ingest commit holds (besides the
// engine's BatchSize records): with at most MaxConcurrentIngest requests
// each holding one batch, the memory ingest takes is bounded whatever
// --max-body allows.
const MaxIngestBatchBytes = 16 << 20

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
	if free, full := s.diskFull(); full {
		s.writeDiskFull(w, free, "ingest is")
		return
	}
	release, ok := s.acquireIngest(w, r)
	if !ok {
		return
	}
	defer release()
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
	batchBytes := 0
	// ctx outlives a failed read of the body: when the body stalls or is
	// cut, the server cancels the request's context, and what was read
	// before is still applied and reported.
	ctx := context.WithoutCancel(r.Context())
	// Each batch commits while the versions of the one before are
	// written; a batch counts in the answer once it is durable.
	pipe := s.e.NewPipeline(ctx)
	account := func(d *engine.BatchResult) {
		if d == nil {
			return
		}
		c, lines := d.Counts, d.Tag.([]int)
		resp.Applied += c.Applied
		resp.Watermarks += c.Watermarks
		resp.Rejected += c.Rejected
		for _, le := range d.Errors {
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
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if free, full := s.diskFull(); full {
			return &diskFullError{free}
		}
		done, err := pipe.Add(batch, lines)
		account(done)
		if err != nil {
			return err
		}
		clear(batch) // let the lines go; the pipeline is done with them
		batch, lines, batchBytes = batch[:0], make([]int, 0, cap(lines)), 0
		return nil
	}
	body := &stallReader{r: http.MaxBytesReader(w, r.Body, s.cfg.MaxIngestBytes), rc: http.NewResponseController(w), d: s.cfg.IngestReadTimeout}
	readErr := engine.ReadLines(body, engine.MaxLine, func(n int, line []byte, tooLarge bool) error {
		n += offset
		batch = append(batch, engine.Record{Line: append([]byte(nil), line...), Origin: origin + strconv.Itoa(n), TooLarge: tooLarge})
		lines = append(lines, n)
		batchBytes += len(line)
		if len(batch) >= batchSize || batchBytes >= MaxIngestBatchBytes {
			return flush()
		}
		return nil
	})
	var mbe *http.MaxBytesError
	err := readErr
	if err == nil || errors.As(err, &mbe) || errors.Is(err, os.ErrDeadlineExceeded) {
		// What was read (before the limit or the stall) is applied.
		if ferr := flush(); ferr != nil {
			err = ferr
		}
	}
	done, cerr := pipe.Close()
	account(done)
	if err == nil {
		err = cerr
	}
	resp.Global = formatTime(s.e.Watermark())
	if err == nil {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	var dfe *diskFullError
	fail := ingestFailure{ingestResponse: resp}
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &dfe):
		status, fail.Error = http.StatusInsufficientStorage, apiError{"disk_full",
			s.diskFullMessage(dfe.free, "ingest is") + "; the lines before were applied (see the counts)"}
	case errors.As(err, &mbe):
		status, fail.Error = http.StatusRequestEntityTooLarge, apiError{"body_too_large",
			fmt.Sprintf("the body is larger than %d bytes (--max-body); the lines before the limit were applied (see the counts), send the rest in another request", s.cfg.MaxIngestBytes)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		status, fail.Error = http.StatusRequestTimeout, apiError{"body_timeout",
			fmt.Sprintf("the request body stalled for more than %s; the lines before were applied (see the counts), send the rest again", s.cfg.IngestReadTimeout)}
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

// acquireIngest waits up to IngestQueueTimeout for an ingest slot, before
// any of the body is read, and answers 429 when none frees up.
func (s *Server) acquireIngest(w http.ResponseWriter, r *http.Request) (func(), bool) {
	select {
	case s.ingestSlots <- struct{}{}:
	default:
		t := time.NewTimer(s.cfg.IngestQueueTimeout)
		defer t.Stop()
		select {
		case s.ingestSlots <- struct{}{}:
		case <-t.C:
			s.metrics.ingestOverloaded.Inc()
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "overloaded", fmt.Sprintf("too many ingest requests at once (limit %d, --max-concurrent-ingest); nothing of this one was read, send it again shortly", s.cfg.MaxConcurrentIngest))
			return nil, false
		case <-r.Context().Done():
			return nil, false
		case <-s.stopping:
			writeError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down; send the updates again after restart")
			return nil, false
		}
	}
	s.metrics.ingestInFlight.Inc()
	return func() {
		s.metrics.ingestInFlight.Dec()
		<-s.ingestSlots
	}, true
}

// stallReader fails a read that waits longer than d for the client to send
// bytes (os.ErrDeadlineExceeded), so a stalled producer cannot hold an
// ingest slot for ever.
type stallReader struct {
	r  io.Reader
	rc *http.ResponseController
	d  time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	if err := s.rc.SetReadDeadline(time.Now().Add(s.d)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	return s.r.Read(p)
}

// diskFullError stops an ingest request when the disk runs low.
type diskFullError struct{ free int64 }

func (e *diskFullError) Error() string { return "server: disk full" }
