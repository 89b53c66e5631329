package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ttq/engine"
)

// schema is the test store: two sources, one table with every column type.
var schema = []string{
	"CREATE SOURCE pricing",
	"CREATE SOURCE inventory",
	`CREATE TABLE prices (
	   product_id VARCHAR PRIMARY KEY,
	   price      DOUBLE,
	   currency   VARCHAR,
	   on_sale    BOOLEAN,
	   qty        BIGINT,
	   changed    TIMESTAMP
	 ) SOURCE pricing`,
	`CREATE TABLE stock (
	   product_id VARCHAR,
	   warehouse  VARCHAR,
	   qty        BIGINT,
	   PRIMARY KEY (product_id, warehouse)
	 ) SOURCE inventory`,
}

// updates seal 10:00:05: pricing's watermark is 10:00:05, inventory's 10:00:10.
const updates = `{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:00Z","data":{"product_id":"P1","price":129.5,"currency":"EUR","on_sale":true,"qty":3,"changed":"2026-11-25T09:00:00.5Z"}}
{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:01Z","data":{"product_id":"P2","price":89,"currency":"EUR","on_sale":false,"qty":-7}}
{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:02Z","data":{"product_id":"P3","price":null,"currency":"a \"quoted\", comma","qty":9007199254740993}}
{"source":"inventory","table":"stock","op":"upsert","ts":"2026-11-25T10:00:00Z","data":{"product_id":"P1","warehouse":"W1","qty":5}}

{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:05Z"}
{"source":"inventory","op":"watermark","ts":"2026-11-25T10:00:10Z"}
`

type harness struct {
	t   *testing.T
	e   *engine.Engine
	s   *Server
	ts  *httptest.Server
	tok string
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return openHarness(t, t.TempDir(), engine.Options{}, cfg)
}

// openHarness serves the store in dir, opened with eo, through an httptest
// server; both close when the test ends.
func openHarness(t *testing.T, dir string, eo engine.Options, cfg Config) *harness {
	t.Helper()
	e, err := engine.Open(dir, eo)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	s := New(e, cfg)
	ts := httptest.NewServer(s.Handler())
	h := &harness{t: t, e: e, s: s, ts: ts, tok: cfg.AuthToken}
	t.Cleanup(func() {
		ts.Close()
		e.Close()
	})
	return h
}

// seeded is a harness with the schema and the updates loaded over HTTP.
func seeded(t *testing.T, cfg Config) *harness {
	return seed(newHarness(t, cfg))
}

// seed loads the schema and the updates over HTTP.
func seed(h *harness) *harness {
	h.t.Helper()
	for _, stmt := range schema {
		h.mustSQL(stmt)
	}
	if code, body := h.ingest(updates, ""); code != 200 {
		h.t.Fatalf("ingest: %d %s", code, body)
	}
	return h
}

func (h *harness) do(method, path, contentType, accept string, body io.Reader) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.ts.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if h.tok != "" {
		req.Header.Set("Authorization", "Bearer "+h.tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, b
}

func sqlBody(sql string, extra ...string) io.Reader {
	m := map[string]string{"sql": sql}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	b, _ := json.Marshal(m)
	return bytes.NewReader(b)
}

// sql posts a statement and returns the status and body.
func (h *harness) sql(sql, accept string, extra ...string) (int, []byte, http.Header) {
	h.t.Helper()
	resp, b := h.do("POST", "/v1/sql", "application/json", accept, sqlBody(sql, extra...))
	return resp.StatusCode, b, resp.Header
}

type jsonResult struct {
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	Rows      [][]any `json:"rows"`
	AsOf      *string `json:"as_of"`
	Watermark *string `json:"watermark"`
	Note      string  `json:"note"`
}

func (h *harness) mustSQL(sql string) jsonResult {
	h.t.Helper()
	code, b, _ := h.sql(sql, "")
	if code != 200 {
		h.t.Fatalf("%s: %d %s", sql, code, b)
	}
	var r jsonResult
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		h.t.Fatalf("%s: decode %s: %v", sql, b, err)
	}
	return r
}

func (h *harness) ingest(body, query string) (int, []byte) {
	h.t.Helper()
	resp, b := h.do("POST", "/v1/ingest"+query, "application/x-ndjson", "", strings.NewReader(body))
	return resp.StatusCode, b
}

type errResp struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// wantError checks an error answer's status, code and message.
func wantError(t *testing.T, what string, code int, body []byte, wantCode int, wantErrCode string, msgHas ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: status %d, want %d (%s)", what, code, wantCode, body)
		return
	}
	var e errResp
	if err := json.Unmarshal(body, &e); err != nil {
		t.Errorf("%s: error body is not JSON: %s", what, body)
		return
	}
	if e.Error.Code != wantErrCode {
		t.Errorf("%s: code %q, want %q (%s)", what, e.Error.Code, wantErrCode, e.Error.Message)
	}
	for _, m := range msgHas {
		if !strings.Contains(e.Error.Message, m) {
			t.Errorf("%s: message %q lacks %q", what, e.Error.Message, m)
		}
	}
	if strings.Contains(string(body), "goroutine ") || strings.Contains(string(body), ".go:") {
		t.Errorf("%s: body looks like a stack trace: %s", what, body)
	}
}

func TestQueryJSON(t *testing.T) {
	h := seeded(t, Config{})
	r := h.mustSQL("SELECT product_id, price, currency, on_sale, qty, changed FROM prices ORDER BY product_id")
	wantCols := "product_id VARCHAR,price DOUBLE,currency VARCHAR,on_sale BOOLEAN,qty BIGINT,changed TIMESTAMP"
	var cols []string
	for _, c := range r.Columns {
		cols = append(cols, c.Name+" "+c.Type)
	}
	if got := strings.Join(cols, ","); got != wantCols {
		t.Errorf("columns %s, want %s", got, wantCols)
	}
	got := fmt.Sprint(r.Rows)
	want := "[[P1 129.5 EUR true 3 2026-11-25T09:00:00.5Z] [P2 89 EUR false -7 <nil>] [P3 <nil> a \"quoted\", comma <nil> 9007199254740993 <nil>]]"
	if got != want {
		t.Errorf("rows\n got %s\nwant %s", got, want)
	}
	if r.AsOf == nil || *r.AsOf != "2026-11-25T10:00:05Z" {
		t.Errorf("as_of %v, want 2026-11-25T10:00:05Z", r.AsOf)
	}
	if r.Watermark == nil || *r.Watermark != "2026-11-25T10:00:05Z" {
		t.Errorf("watermark %v, want 2026-11-25T10:00:05Z", r.Watermark)
	}
	// AS OF an earlier sealed time sees only what was there.
	r = h.mustSQL("SELECT product_id FROM prices AS OF '2026-11-25T10:00:00Z'")
	if got := fmt.Sprint(r.Rows); got != "[[P1]]" {
		t.Errorf("AS OF 10:00:00: %s", got)
	}
	if *r.AsOf != "2026-11-25T10:00:00Z" {
		t.Errorf("as_of %s", *r.AsOf)
	}
	// A bare SQL body works too, and SHOW has no snapshot.
	resp, b := h.do("POST", "/v1/sql", "text/plain", "", strings.NewReader("SHOW TABLES"))
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"as_of":null`) || !strings.Contains(string(b), `"prices"`) {
		t.Errorf("SHOW TABLES as text: %d %s", resp.StatusCode, b)
	}
}

func TestQueryCSV(t *testing.T) {
	h := seeded(t, Config{})
	code, b, hdr := h.sql("SELECT product_id, price, currency, on_sale, qty, changed FROM prices ORDER BY product_id", "text/csv")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type %q", ct)
	}
	want := `product_id,price,currency,on_sale,qty,changed
P1,129.5,EUR,true,3,2026-11-25T09:00:00.5Z
P2,89,EUR,false,-7,
P3,,"a ""quoted"", comma",,9007199254740993,
`
	if string(b) != want {
		t.Errorf("CSV\n got %q\nwant %q", b, want)
	}
}

func TestAcceptAndMethods(t *testing.T) {
	h := seeded(t, Config{})
	code, b, _ := h.sql("SELECT 1", "text/html")
	wantError(t, "Accept text/html", code, b, 406, "not_acceptable", "text/csv")
	code, b, hdr := h.sql("SELECT product_id FROM prices", "text/html, text/csv;q=0.5, application/json;q=0.9")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Errorf("q-values: %d %s %s", code, hdr.Get("Content-Type"), b)
	}
	resp, b := h.do("GET", "/v1/sql", "", "", nil)
	wantError(t, "GET /v1/sql", resp.StatusCode, b, 405, "method_not_allowed")
	if resp.Header.Get("Allow") != "POST" {
		t.Errorf("Allow %q", resp.Header.Get("Allow"))
	}
	resp, b = h.do("POST", "/v1/watermarks", "", "", nil)
	wantError(t, "POST /v1/watermarks", resp.StatusCode, b, 405, "method_not_allowed")
	resp, b = h.do("GET", "/v1/nope", "", "", nil)
	wantError(t, "unknown route", resp.StatusCode, b, 404, "not_found", "/v1/nope")
	resp, b = h.do("GET", "/", "", "", nil)
	wantError(t, "root", resp.StatusCode, b, 404, "not_found")
}

// TestBadRequests sends one bad request of each kind: none is a 500.
func TestBadRequests(t *testing.T) {
	h := seeded(t, Config{})
	cases := []struct {
		what        string
		body        string
		status      int
		code        string
		msgContains string
	}{
		{"syntax", `{"sql":"SELEKT * FROM prices"}`, 400, "syntax_error", ""},
		{"unknown table", `{"sql":"SELECT * FROM nope"}`, 404, "unknown_table", "nope"},
		{"unknown column", `{"sql":"SELECT nope FROM prices"}`, 400, "unknown_column", "nope"},
		{"bad time", `{"sql":"SELECT * FROM prices AS OF 'yesterday-ish'"}`, 400, "bad_time", ""},
		{"two statements", `{"sql":"SELECT 1; SELECT 2"}`, 400, "one_statement", "one statement per request"},
		{"empty", `{"sql":"  "}`, 400, "empty", ""},
		{"empty body", ``, 400, "empty", ""},
		{"not JSON", `{"sql": SELECT}`, 400, "bad_json", ""},
		{"unknown field", `{"sql":"SELECT 1","tiemout":"1s"}`, 400, "bad_json", "tiemout"},
		{"two JSON values", `{"sql":"SELECT 1"}{"sql":"SELECT 2"}`, 400, "bad_json", ""},
		{"bad wait", `{"sql":"SELECT 1","wait":"soon"}`, 400, "bad_wait", "soon"},
		{"bad timeout", `{"sql":"SELECT 1","timeout":"-1s"}`, 400, "bad_timeout", ""},
		{"wait too long", `{"sql":"SELECT 1","wait":"1h"}`, 400, "bad_wait", ""},
		{"duplicate source", `{"sql":"CREATE SOURCE pricing"}`, 409, "already_exists", "pricing"},
		{"table of unknown source", `{"sql":"CREATE TABLE t (a BIGINT PRIMARY KEY) SOURCE nope"}`, 404, "unknown_source", "nope"},
		{"drop unknown", `{"sql":"DROP TABLE nope"}`, 404, "unknown_table", "nope"},
		{"bad type", `{"sql":"CREATE TABLE t (a BLOB PRIMARY KEY) SOURCE pricing"}`, 400, "", ""},
	}
	for _, c := range cases {
		resp, b := h.do("POST", "/v1/sql", "application/json", "", strings.NewReader(c.body))
		if c.code == "" { // any 4xx with a JSON error
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("%s: status %d (%s)", c.what, resp.StatusCode, b)
			}
			continue
		}
		var msg []string
		if c.msgContains != "" {
			msg = append(msg, c.msgContains)
		}
		wantError(t, c.what, resp.StatusCode, b, c.status, c.code, msg...)
	}
}

func TestNotSealedAndWait(t *testing.T) {
	h := seeded(t, Config{})
	code, b, _ := h.sql("SELECT product_id FROM prices AS OF '2026-11-25T10:00:07Z'", "")
	wantError(t, "after G", code, b, 409, "not_sealed", "2026-11-25T10:00:05Z", "pricing")

	// A wait that runs out still fails with not_sealed, and says it waited.
	start := time.Now()
	code, b, _ = h.sql("SELECT product_id FROM prices AS OF '2026-11-25T10:00:07Z'", "", "wait", "150ms")
	wantError(t, "wait expired", code, b, 409, "not_sealed", "waited 150ms")
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("gave up after %s, before the wait", d)
	}

	// A wait that a later ingest satisfies answers as soon as G passes.
	type answer struct {
		code int
		body []byte
	}
	done := make(chan answer, 1)
	go func() {
		resp, b := h.do("POST", "/v1/sql", "application/json", "", sqlBody("SELECT product_id, price FROM prices AS OF '2026-11-25T10:00:07Z' ORDER BY product_id", "wait", "10s"))
		done <- answer{resp.StatusCode, b}
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case a := <-done:
		t.Fatalf("answered before G moved: %d %s", a.code, a.body)
	default:
	}
	// A first move of G that is not far enough keeps it waiting.
	if code, b := h.ingest(`{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:06Z","data":{"product_id":"P1","price":1}}
{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:06Z"}`, ""); code != 200 {
		t.Fatalf("ingest: %d %s", code, b)
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case a := <-done:
		t.Fatalf("answered at G=10:00:06: %d %s", a.code, a.body)
	default:
	}
	if code, b := h.ingest(`{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:08Z"}`, ""); code != 200 {
		t.Fatalf("ingest: %d %s", code, b)
	}
	select {
	case a := <-done:
		if a.code != 200 || !strings.Contains(string(a.body), `"rows":[["P1",1],["P2",89],["P3",null]]`) || !strings.Contains(string(a.body), `"as_of":"2026-11-25T10:00:07Z"`) {
			t.Errorf("after wait: %d %s", a.code, a.body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wait did not end when G passed the AS OF")
	}
}

func TestAuth(t *testing.T) {
	h := seeded(t, Config{AuthToken: "s3cret"})
	for _, c := range []struct {
		header string
		status int
		code   string
	}{
		{"", 401, "unauthorized"},
		{"Basic czNjcmV0", 401, "unauthorized"},
		{"Bearer wrong", 403, "forbidden"},
		{"Bearer s3cre", 403, "forbidden"},
		{"Bearer s3cret", 200, ""},
		{"bearer s3cret", 200, ""},
	} {
		for _, route := range []struct{ method, path, body string }{
			{"POST", "/v1/sql", `{"sql":"SHOW TABLES"}`},
			{"POST", "/v1/ingest", ``},
			{"GET", "/v1/watermarks", ``},
		} {
			req, _ := http.NewRequest(route.method, h.ts.URL+route.path, strings.NewReader(route.body))
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			what := route.path + " with " + fmt.Sprintf("%q", c.header)
			if c.status == 200 {
				if resp.StatusCode != 200 {
					t.Errorf("%s: %d %s", what, resp.StatusCode, b)
				}
				continue
			}
			wantError(t, what, resp.StatusCode, b, c.status, c.code)
			if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: no WWW-Authenticate", what)
			}
		}
	}
	// Health, readiness and metrics stay open.
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(h.ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s without token: %d", p, resp.StatusCode)
		}
	}
	// Unknown /v1 routes do not tell a stranger what exists.
	resp, err := http.Get(h.ts.URL + "/v1/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("unknown /v1 route without token: %d", resp.StatusCode)
	}
}

func TestAuthOffByDefault(t *testing.T) {
	h := seeded(t, Config{})
	req, _ := http.NewRequest("GET", h.ts.URL+"/v1/watermarks", nil)
	req.Header.Set("Authorization", "Bearer anything")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("no token configured: %d", resp.StatusCode)
	}
}

func TestPanicIsA500WithoutStack(t *testing.T) {
	h := seeded(t, Config{})
	h.s.beforeExec = func(context.Context) { panic("boom at secret/place.go:12") }
	code, b, hdr := h.sql("SELECT * FROM prices", "")
	wantError(t, "panic", code, b, 500, "internal", hdr.Get("X-Request-Id"))
	if strings.Contains(string(b), "boom") {
		t.Errorf("panic value leaked: %s", b)
	}
	// The slot taken by the panicking statement was given back.
	h.s.beforeExec = nil
	for range h.s.cfg.MaxConcurrentQueries + 1 {
		if code, b, _ := h.sql("SELECT * FROM prices", ""); code != 200 {
			t.Fatalf("after panic: %d %s", code, b)
		}
	}
}
