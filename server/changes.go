package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"ttq/precompute"
	"ttq/timeline"
)

// handleViewChanges streams a view's change feed as NDJSON:
//
//	GET /v1/views/{name}/changes?from=B1[&to=B2]
//
// For each epoch boundary after from: every changed row (upsert with the
// whole row, delete with the key), then a progress record. Without to it
// follows new epochs until the client goes away or the server stops.
func (s *Server) handleViewChanges(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/views/"), "/changes")
	v, err := s.e.Catalog().View(name)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	g := s.e.Watermark()
	from := timeline.None
	if f := r.URL.Query().Get("from"); f != "" {
		if from, err = timeline.Parse(f, g); err != nil {
			writeError(w, http.StatusBadRequest, "bad_time", "from: "+err.Error())
			return
		}
	}
	to := precompute.Follow
	if t := r.URL.Query().Get("to"); t != "" {
		if to, err = timeline.Parse(t, g); err != nil {
			writeError(w, http.StatusBadRequest, "bad_time", "to: "+err.Error())
			return
		}
		if to < from {
			writeError(w, http.StatusBadRequest, "bad_time", "to is before from")
			return
		}
	}
	hold := from
	if hold == timeline.None {
		hold = 0
	}
	release := s.e.Hold(hold)
	defer release()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	// Headers go out at once: a follower may wait a long time for the next
	// epoch and must know the feed is open.
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	err = precompute.Changes(ctx, s.e, v.Name, from, to, func(c precompute.Change) error {
		b, err := precompute.EncodeChange(v, c)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		if c.Kind == precompute.Progress && flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		// The status is sent: end with an error record so the client
		// knows the feed did not complete.
		fmt.Fprintf(w, "{\"op\":\"error\",\"message\":%q}\n", err.Error())
	}
}
