package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"ttq/catalog"
	"ttq/engine"
	"ttq/precompute"
	"ttq/query"
	"ttq/timeline"
	"ttq/types"
)

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{apiError{Code: code, Message: msg}})
}

// errorKind maps a sentinel error to a status and a code.
type errorKind struct {
	err    error
	status int
	code   string
}

// errorKinds is searched in order with errors.Is; the first match wins.
var errorKinds = []errorKind{
	{engine.ErrNotSealed, http.StatusConflict, "not_sealed"},
	{engine.ErrBeforeHorizon, http.StatusUnprocessableEntity, "before_horizon"},
	{engine.ErrClosed, http.StatusServiceUnavailable, "shutting_down"},
	{query.ErrTooManyRows, http.StatusRequestEntityTooLarge, "result_too_large"},
	{query.ErrTooMuchHeld, http.StatusRequestEntityTooLarge, "query_too_large"},
	{query.ErrSyntax, http.StatusBadRequest, "syntax_error"},
	{query.ErrUnknownTable, http.StatusNotFound, "unknown_table"},
	{catalog.ErrUnknownTable, http.StatusNotFound, "unknown_table"},
	{catalog.ErrUnknownView, http.StatusNotFound, "unknown_view"},
	{catalog.ErrUnknownSource, http.StatusNotFound, "unknown_source"},
	{query.ErrUnknownColumn, http.StatusBadRequest, "unknown_column"},
	{query.ErrAmbiguous, http.StatusBadRequest, "ambiguous_column"},
	{query.ErrType, http.StatusBadRequest, "type_mismatch"},
	{query.ErrGroupBy, http.StatusBadRequest, "group_by"},
	{query.ErrBadTime, http.StatusBadRequest, "bad_time"},
	{timeline.ErrBadTime, http.StatusBadRequest, "bad_time"},
	{types.ErrUnknownType, http.StatusBadRequest, "unknown_type"},
	{query.ErrUnsupported, http.StatusBadRequest, "unsupported"},
	{catalog.ErrExists, http.StatusConflict, "already_exists"},
	{catalog.ErrInUse, http.StatusConflict, "in_use"},
	{catalog.ErrInvalid, http.StatusBadRequest, "invalid_definition"},
	{precompute.ErrBeforeView, http.StatusUnprocessableEntity, "before_view"},
	{precompute.ErrUnsupportedView, http.StatusBadRequest, "unsupported_view"},
	{precompute.ErrViewKey, http.StatusBadRequest, "view_key"},
	{precompute.ErrNotMaintained, http.StatusServiceUnavailable, "view_not_maintained"},
	{context.DeadlineExceeded, http.StatusGatewayTimeout, "query_timeout"},
}

// classify returns the status and code of err; ok is false for errors
// that are not the client's doing (a 500).
func classify(err error) (status int, code string, ok bool) {
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.status, k.code, true
		}
	}
	return http.StatusInternalServerError, "internal", false
}

// writeEngineError answers err; unexpected errors are logged and answered
// with a generic message.
func (s *Server) writeEngineError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, ok := classify(err)
	if !ok {
		s.log.Error("request failed", "request_id", requestIDOf(r), "path", r.URL.Path, "err", err)
		msg := "internal error (request " + requestIDOf(r) + "); the server log has the details"
		if errors.Is(err, query.ErrInternal) {
			msg = err.Error() + " (request " + requestIDOf(r) + ")"
		}
		writeError(w, status, code, msg)
		return
	}
	writeError(w, status, code, err.Error())
}
