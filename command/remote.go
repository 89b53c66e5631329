package command

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"ttq/catalog"
	"ttq/engine"
	"ttq/query"
	"ttq/server"
	"ttq/timeline"
	"ttq/types"
)

// remote runs statements on a ttq server over HTTP. Results travel as Arrow
// IPC streams, so they print exactly as embedded ones.
type remote struct {
	base, token string
	client      *http.Client
	// chunk is how many bytes of whole lines one ingest request carries.
	chunk int
}

var _ backend = (*remote)(nil)

func newRemote(base, token string) *remote {
	base = strings.TrimRight(strings.TrimSpace(base), "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &remote{base: base, token: token, client: &http.Client{}, chunk: 8 << 20}
}

// remoteError is an error answer of the server. It unwraps to the engine's
// or query's sentinel its code stands for, so errors.Is works as embedded.
type remoteError struct {
	Status  int
	Code    string
	Message string
}

func (e *remoteError) Error() string { return e.Message }

func (e *remoteError) Unwrap() error {
	switch e.Code {
	case "not_sealed":
		return engine.ErrNotSealed
	case "before_horizon":
		return engine.ErrBeforeHorizon
	case "shutting_down":
		return engine.ErrClosed
	case "result_too_large":
		return query.ErrTooManyRows
	case "syntax_error":
		return query.ErrSyntax
	case "unknown_table":
		return catalog.ErrUnknownTable
	case "unknown_view":
		return catalog.ErrUnknownView
	case "unknown_source":
		return catalog.ErrUnknownSource
	case "unknown_column":
		return query.ErrUnknownColumn
	case "unsupported":
		return query.ErrUnsupported
	case "already_exists":
		return catalog.ErrExists
	case "invalid_definition":
		return catalog.ErrInvalid
	case "query_timeout":
		return context.DeadlineExceeded
	}
	return nil
}

func (r *remote) post(ctx context.Context, path, contentType, accept string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", r.base, err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", accept)
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", r.base, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readRemoteError(resp)
	}
	return resp, nil
}

// get sends GET path?q with the token; a non-2xx answer becomes the
// server's error. The caller closes the body.
func (r *remote) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", r.base, err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", r.base, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readRemoteError(resp)
	}
	return resp, nil
}

func readRemoteError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &body); err != nil || body.Error.Message == "" {
		return &remoteError{Status: resp.StatusCode, Code: "http", Message: fmt.Sprintf("server answered %s: %s", resp.Status, strings.TrimSpace(string(b)))}
	}
	return &remoteError{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message}
}

// Exec posts one statement to /v1/sql and reads the Arrow stream back.
func (r *remote) Exec(ctx context.Context, sql string) (*query.Result, error) {
	b, err := json.Marshal(map[string]string{"sql": sql})
	if err != nil {
		return nil, err
	}
	resp, err := r.post(ctx, "/v1/sql", "application/json", "application/vnd.apache.arrow.stream", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readArrowResult(resp.Body)
}

// readArrowResult turns the server's Arrow stream into a result: the
// batches as sent, the ttq types and times from the metadata.
func readArrowResult(in io.Reader) (*query.Result, error) {
	rd, err := ipc.NewReader(in)
	if err != nil {
		return nil, fmt.Errorf("read result stream: %w", err)
	}
	defer rd.Release()
	schema := rd.Schema()
	res := &query.Result{AsOf: timeline.None}
	for _, f := range schema.Fields() {
		t := types.Null
		if name, ok := f.Metadata.GetValue(server.MetaType); ok {
			if t, err = types.ParseType(name); err != nil {
				return nil, fmt.Errorf("read result stream: column %s: %w", f.Name, err)
			}
		}
		res.Columns = append(res.Columns, catalog.Column{Name: f.Name, Type: t})
	}
	md := schema.Metadata()
	if v, ok := md.GetValue(server.MetaAsOf); ok {
		if res.AsOf, err = timeline.ParseAbsolute(v); err != nil {
			return nil, fmt.Errorf("read result stream: as_of: %w", err)
		}
	}
	res.Note, _ = md.GetValue(server.MetaNote)
	res.Status, _ = md.GetValue(server.MetaStatus)
	for rd.Next() {
		rec := rd.RecordBatch()
		rec.Retain()
		res.Records = append(res.Records, rec)
	}
	if err := rd.Err(); err != nil {
		res.Release()
		return nil, fmt.Errorf("read result stream: %w", err)
	}
	return res, nil
}

// Load sends the NDJSON input to /v1/ingest in requests of whole lines of
// about r.chunk bytes each, so any file fits the server's body limit; each
// request is durable when answered. Line numbers are the input's.
func (r *remote) Load(ctx context.Context, in io.Reader, name string) (engine.Counts, error) {
	var (
		total     engine.Counts
		buf       bytes.Buffer
		firstLine = 0 // line number of buf's first line, 0 when buf is empty
		lastLine  = 0
	)
	send := func() error {
		if buf.Len() == 0 {
			return nil
		}
		c, err := r.ingest(ctx, &buf, name, firstLine)
		total.Add(c)
		buf.Reset()
		firstLine = 0
		return err
	}
	// A line one byte over the engine's limit is enough for the server to
	// reject it as too large.
	err := engine.ReadLines(in, engine.MaxLine+1, func(n int, line []byte, _ bool) error {
		if firstLine == 0 {
			firstLine = n
		} else {
			for range n - lastLine - 1 { // keep blank lines, so numbers match
				buf.WriteByte('\n')
			}
		}
		lastLine = n
		buf.Write(line)
		buf.WriteByte('\n')
		if buf.Len() >= r.chunk {
			return send()
		}
		return nil
	})
	if err == nil {
		err = send()
	}
	return total, err
}

func (r *remote) ingest(ctx context.Context, body io.Reader, name string, firstLine int) (engine.Counts, error) {
	q := url.Values{"name": {name}, "first_line": {strconv.Itoa(firstLine)}}
	resp, err := r.post(ctx, "/v1/ingest?"+q.Encode(), "application/x-ndjson", "application/json", body)
	if err != nil {
		return engine.Counts{}, err
	}
	defer resp.Body.Close()
	var c engine.Counts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return engine.Counts{}, fmt.Errorf("server %s: read ingest answer: %w", r.base, err)
	}
	return c, nil
}

func (r *remote) Close() error {
	r.client.CloseIdleConnections()
	return nil
}
