package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"ttq/engine"
	"ttq/timeline"
)

// TestQueryArrow reads the Arrow stream back with arrow-go's IPC reader and
// compares it value by value with the JSON answer of the same statement.
func TestQueryArrow(t *testing.T) {
	h := seeded(t, Config{})
	const stmt = "SELECT product_id, price, currency, on_sale, qty, changed FROM prices ORDER BY product_id"
	js := h.mustSQL(stmt)
	code, b, hdr := h.sql(stmt, mimeArrow)
	if code != 200 || hdr.Get("Content-Type") != mimeArrow {
		t.Fatalf("%d %s %s", code, hdr.Get("Content-Type"), b)
	}
	rd, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	schema := rd.Schema()
	if len(schema.Fields()) != len(js.Columns) {
		t.Fatalf("fields %v, JSON columns %v", schema, js.Columns)
	}
	for i, f := range schema.Fields() {
		typ, _ := f.Metadata.GetValue(MetaType)
		if f.Name != js.Columns[i].Name || typ != js.Columns[i].Type {
			t.Errorf("field %d: %s %s, JSON %s %s", i, f.Name, typ, js.Columns[i].Name, js.Columns[i].Type)
		}
	}
	if v, _ := schema.Metadata().GetValue(MetaAsOf); v != *js.AsOf {
		t.Errorf("as_of metadata %q, JSON %q", v, *js.AsOf)
	}
	if v, _ := schema.Metadata().GetValue(MetaWatermark); v != *js.Watermark {
		t.Errorf("watermark metadata %q, JSON %q", v, *js.Watermark)
	}
	row := 0
	for rd.Next() {
		rec := rd.RecordBatch()
		for r := 0; r < int(rec.NumRows()); r++ {
			if row >= len(js.Rows) {
				t.Fatalf("Arrow has more rows than JSON (%d)", len(js.Rows))
			}
			for c := 0; c < int(rec.NumCols()); c++ {
				got := arrowCell(t, rec.Column(c), r)
				want := fmt.Sprint(js.Rows[row][c])
				if got != want {
					t.Errorf("row %d col %s: Arrow %s, JSON %s", row, schema.Field(c).Name, got, want)
				}
			}
			row++
		}
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	if row != len(js.Rows) || row != 3 {
		t.Errorf("Arrow rows %d, JSON rows %d, want 3", row, len(js.Rows))
	}

	// An empty result is still a stream with its schema.
	code, b, _ = h.sql("SELECT product_id FROM prices WHERE product_id = 'nope'", mimeArrow)
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	rd2, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer rd2.Release()
	if rd2.Schema().NumFields() != 1 || rd2.Schema().Field(0).Name != "product_id" {
		t.Errorf("empty result schema %v", rd2.Schema())
	}
	for rd2.Next() {
		if rd2.RecordBatch().NumRows() != 0 {
			t.Errorf("rows in an empty result")
		}
	}
}

// arrowCell renders one Arrow value the way encoding/json with UseNumber
// prints the JSON answer's value.
func arrowCell(t *testing.T, col arrow.Array, i int) string {
	if col.IsNull(i) {
		return "<nil>"
	}
	switch a := col.(type) {
	case *array.Int64:
		return fmt.Sprint(a.Value(i))
	case *array.Float64:
		return json.Number(fmt.Sprint(a.Value(i))).String()
	case *array.String:
		return a.Value(i)
	case *array.Boolean:
		return fmt.Sprint(a.Value(i))
	case *array.Timestamp:
		return timeline.Format(int64(a.Value(i)))
	}
	t.Fatalf("unexpected Arrow type %s", col.DataType())
	return ""
}

func TestIngestErrorsAndRejects(t *testing.T) {
	h := seeded(t, Config{})
	body := `{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:06Z","data":{"product_id":"P9","price":1}}
not json

{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:01Z","data":{"product_id":"P9","price":2}}
{"source":"pricing","table":"nope","op":"upsert","ts":"2026-11-25T10:00:07Z","data":{"product_id":"P9"}}
{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:08Z"}
`
	code, b := h.ingest(body, "?name=feed.ndjson&first_line=100")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	var resp ingestResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Applied != 1 || resp.Watermarks != 1 || resp.Rejected != 3 {
		t.Errorf("counts %+v", resp)
	}
	var got []string
	for _, e := range resp.Errors {
		got = append(got, fmt.Sprintf("%d %s", e.Line, e.Reason))
	}
	// Lines are numbered from first_line and count the blank line.
	if want := "101 invalid_json,103 late,104 unknown_table"; strings.Join(got, ",") != want {
		t.Errorf("errors %v, want %s (%s)", got, want, b)
	}
	if resp.Global == nil || *resp.Global != "2026-11-25T10:00:08Z" {
		t.Errorf("global %v", resp.Global)
	}
	// The rejects are stored with their origin, as ttq load stores them.
	r := h.mustSQL("SELECT reason, origin FROM ttq_rejects ORDER BY id")
	var rej []string
	for _, row := range r.Rows {
		rej = append(rej, fmt.Sprintln(row...))
	}
	if len(rej) != 3 || !strings.HasPrefix(rej[0], "invalid_json http:") || !strings.HasSuffix(rej[0], ":feed.ndjson:101\n") {
		t.Errorf("stored rejects %q", rej)
	}
	// The applied record is durable and visible once sealed.
	r = h.mustSQL("SELECT price FROM prices WHERE product_id = 'P9'")
	if fmt.Sprint(r.Rows) != "[[1]]" {
		t.Errorf("P9: %v", r.Rows)
	}
	// Bad parameters are 400s.
	code, b = h.ingest("", "?first_line=zero")
	wantError(t, "first_line", code, b, 400, "bad_first_line")
}

func TestIngestErrorListIsCapped(t *testing.T) {
	h := seeded(t, Config{})
	var sb strings.Builder
	for range MaxIngestErrors + 5 {
		sb.WriteString("{nope\n")
	}
	code, b := h.ingest(sb.String(), "")
	var resp ingestResponse
	if err := json.Unmarshal(b, &resp); err != nil || code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	if resp.Rejected != MaxIngestErrors+5 || len(resp.Errors) != MaxIngestErrors || !resp.ErrorsTruncated {
		t.Errorf("rejected %d, listed %d, truncated %v", resp.Rejected, len(resp.Errors), resp.ErrorsTruncated)
	}
}

func TestBodyLimits(t *testing.T) {
	h := seeded(t, Config{})
	h.s.cfg.MaxIngestBytes, h.s.cfg.MaxSQLBytes = 1000, 100
	code, b, _ := h.sql("SELECT product_id FROM prices WHERE currency = '"+strings.Repeat("x", 200)+"'", "")
	wantError(t, "sql body", code, b, 413, "body_too_large", "100 bytes")

	line := `{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:06Z","data":{"product_id":"PX%03d","price":1}}` + "\n"
	var sb strings.Builder
	for i := range 20 {
		fmt.Fprintf(&sb, line, i)
	}
	code, b = h.ingest(sb.String(), "")
	wantError(t, "ingest body", code, b, 413, "body_too_large", "1000 bytes")
	var fail ingestFailure
	if err := json.Unmarshal(b, &fail); err != nil {
		t.Fatal(err)
	}
	// The whole lines before the limit were applied and are reported.
	perLine := int64(len(line) - 2 + 1)
	if fail.Applied < 1 || fail.Applied > 1000/perLine {
		t.Errorf("applied before the limit: %d", fail.Applied)
	}
	if c := h.e.Watermark(); c == timeline.None {
		t.Fatal("nothing sealed")
	}
}

func TestResultLimits(t *testing.T) {
	h := seeded(t, Config{MaxResultRows: 2})
	code, b, _ := h.sql("SELECT product_id FROM prices", "")
	wantError(t, "rows", code, b, 413, "result_too_large", "--max-rows")
	if code, b, _ := h.sql("SELECT product_id FROM prices LIMIT 2", ""); code != 200 {
		t.Errorf("within the row limit: %d %s", code, b)
	}

	h.s.cfg.MaxResultRows, h.s.cfg.MaxResultBytes = DefaultMaxResultRows, 140
	code, b, _ = h.sql("SELECT * FROM prices", "")
	wantError(t, "bytes", code, b, 413, "result_too_large", "140 bytes")
	code, b, _ = h.sql("SELECT * FROM prices", "text/csv")
	wantError(t, "bytes as CSV", code, b, 413, "result_too_large")
	if code, b, _ := h.sql("SELECT qty FROM stock", ""); code != 200 {
		t.Errorf("small result: %d %s", code, b)
	}
}

func TestQueryTimeout(t *testing.T) {
	h := seeded(t, Config{QueryTimeout: 100 * time.Millisecond})
	var sawDeadline bool
	h.s.beforeExec = func(ctx context.Context) {
		_, sawDeadline = ctx.Deadline()
		<-ctx.Done() // a statement that runs past its limit
	}
	start := time.Now()
	code, b, _ := h.sql("SELECT * FROM prices", "")
	wantError(t, "timeout", code, b, 504, "query_timeout", "100ms")
	if !sawDeadline || time.Since(start) > 5*time.Second {
		t.Errorf("deadline %v, took %s", sawDeadline, time.Since(start))
	}
	// A request may ask for less time than the server allows.
	code, b, _ = h.sql("SELECT * FROM prices", "", "timeout", "20ms")
	wantError(t, "request timeout", code, b, 504, "query_timeout", "20ms")
}

func TestConcurrencyLimit(t *testing.T) {
	h := seeded(t, Config{MaxConcurrentQueries: 1, QueueTimeout: 50 * time.Millisecond})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.s.beforeExec = func(ctx context.Context) {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	done := make(chan int)
	go func() {
		resp, _ := h.do("POST", "/v1/sql", "application/json", "", sqlBody("SELECT * FROM prices"))
		done <- resp.StatusCode
	}()
	<-entered
	code, b, hdr := h.sql("SELECT * FROM prices", "")
	wantError(t, "second query", code, b, 429, "overloaded", "--max-concurrent-queries")
	if hdr.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	// Ingest is not a query: it never waits for a slot.
	if code, b := h.ingest(`{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:09Z"}`, ""); code != 200 {
		t.Errorf("ingest while the slot is busy: %d %s", code, b)
	}
	close(release)
	if c := <-done; c != 200 {
		t.Errorf("first query: %d", c)
	}
	if code, b, _ := h.sql("SELECT * FROM prices", ""); code != 200 {
		t.Errorf("after the slot freed: %d %s", code, b)
	}
	if !strings.Contains(h.metricsText(), "ttq_queries_overloaded_total 1") {
		t.Error("overload not counted")
	}
}

func (h *harness) metricsText() string {
	resp, err := http.Get(h.ts.URL + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestWatermarksAndMetrics(t *testing.T) {
	h := seeded(t, Config{})
	h.ingest(`{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:09Z","data":{"product_id":"P1","price":1}}
{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:01Z","data":{"product_id":"P1","price":1}}`, "")
	resp, b := h.do("GET", "/v1/watermarks", "", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var wm watermarksResponse
	if err := json.Unmarshal(b, &wm); err != nil {
		t.Fatal(err)
	}
	if wm.Global == nil || *wm.Global != "2026-11-25T10:00:05Z" || len(wm.Sources) != 2 {
		t.Fatalf("%s", b)
	}
	inv, pr := wm.Sources[0], wm.Sources[1]
	if inv.Source != "inventory" || pr.Source != "pricing" {
		t.Fatalf("order: %s", b)
	}
	if !pr.HoldsGlobal || inv.HoldsGlobal || *pr.TrailsUS != 5_000_000 || *inv.TrailsUS != 0 || *pr.LagUS != 4_000_000 {
		t.Errorf("sources: %s", b)
	}
	if pr.Applied != 4 || pr.Rejected != 1 {
		t.Errorf("pricing counts: %s", b)
	}

	h.sql("SELECT * FROM prices", "")
	h.sql("SELECT nope FROM prices", "")
	text := h.metricsText()
	for _, want := range []string{
		`ttq_global_watermark_seconds 1.795600805e+09`,
		`ttq_source_watermark_seconds{source="pricing"} 1.795600805e+09`,
		`ttq_source_watermark_lag_seconds{source="pricing"} 4`,
		`ttq_source_holds_global{source="pricing"} 1`,
		`ttq_ingest_records_total{result="applied",source="pricing"} 4`,
		`ttq_ingest_rejects_total{reason="late",source="pricing"} 1`,
		`ttq_http_ingest_records_total{result="watermark"} 2`,
		`ttq_query_duration_seconds_count{code="ok",kind="select"} 1`,
		`ttq_query_duration_seconds_count{code="unknown_column",kind="select"} 1`,
		`ttq_query_duration_seconds_count{code="ok",kind="ddl"} 4`,
		`ttq_queries_in_flight 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestConcurrentIngestAndQueries runs writers and readers at many AS OF
// times at once (run it with -race). A sealed answer never changes, and a
// reader never sees half a batch: every batch writes the same value to
// every row.
func TestConcurrentIngestAndQueries(t *testing.T) {
	h := newHarness(t, Config{})
	h.mustSQL("CREATE SOURCE s")
	h.mustSQL("CREATE TABLE kv (k BIGINT PRIMARY KEY, v BIGINT) SOURCE s")
	const rows, batches = 20, 30
	base := int64(1_795_600_800_000_000)
	batch := func(i int) string {
		var sb strings.Builder
		for k := range rows {
			fmt.Fprintf(&sb, `{"source":"s","table":"kv","op":"upsert","ts":%d,"data":{"k":%d,"v":%d}}`+"\n", base+int64(i)*1000, k, i)
		}
		fmt.Fprintf(&sb, `{"source":"s","op":"watermark","ts":%d}`+"\n", base+int64(i)*1000)
		return sb.String()
	}
	if code, b := h.ingest(batch(0), ""); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	wg.Go(func() {
		for i := 1; i < batches; i++ {
			if code, b := h.ingest(batch(i), ""); code != 200 {
				errs <- fmt.Sprintf("ingest %d: %d %s", i, code, b)
				return
			}
		}
	})
	for r := range 4 {
		wg.Go(func() {
			for q := range 15 {
				i := (q*7 + r) % batches
				stmt := fmt.Sprintf("SELECT COUNT(*), MIN(v), MAX(v) FROM kv AS OF %d", base+int64(i)*1000)
				resp, b := h.do("POST", "/v1/sql", "application/json", "", sqlBody(stmt, "wait", "10s"))
				if resp.StatusCode != 200 {
					errs <- fmt.Sprintf("%s: %d %s", stmt, resp.StatusCode, b)
					return
				}
				if want := fmt.Sprintf(`"rows":[[%d,%d,%d]]`, rows, i, i); !strings.Contains(string(b), want) {
					errs <- fmt.Sprintf("%s: %s, want %s", stmt, b, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestServeAndShutdown(t *testing.T) {
	h := seeded(t, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.s.Serve(ctx, ln) }()

	entered, release := make(chan struct{}), make(chan struct{})
	h.s.beforeExec = func(context.Context) {
		close(entered)
		<-release
	}
	inflight := make(chan int, 1)
	go func() {
		resp, err := http.Post(url+"/v1/sql", "application/json", sqlBody("SELECT product_id FROM prices"))
		if err != nil {
			inflight <- -1
			return
		}
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	<-entered
	cancel() // as SIGTERM does
	time.Sleep(50 * time.Millisecond)
	resp, err := http.Get(h.ts.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("readyz while shutting down: %d", resp.StatusCode)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("still accepting connections after shutdown began")
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	default:
	}
	close(release)
	if c := <-inflight; c != 200 {
		t.Errorf("in-flight request: %d", c)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestBeforeHorizon(t *testing.T) {
	e, err := engine.Open(t.TempDir(), engine.Options{Retention: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ts := httptest.NewServer(New(e, Config{}).Handler())
	defer ts.Close()
	h := &harness{t: t, e: e, ts: ts}
	for _, stmt := range schema {
		h.mustSQL(stmt)
	}
	if code, b := h.ingest(updates, ""); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	code, b, _ := h.sql("SELECT * FROM prices AS OF '2026-11-25T10:00:00Z'", "")
	wantError(t, "behind retention", code, b, 422, "before_horizon", "2026-11-25T10:00:04Z")
}

// TestSegmentCacheMetrics: a scan through a checkpoint reads its segment
// into the cache once; the next finds it there.
func TestSegmentCacheMetrics(t *testing.T) {
	h := seeded(t, Config{})
	h.sql("CHECKPOINT", "")
	for range 2 {
		h.sql("SELECT * FROM prices", "")
	}
	text := h.metricsText()
	for _, want := range []string{
		`ttq_segment_cache_budget_bytes 5.36870912e+08`,
		`ttq_segment_cache_loads_total 1`,
		`ttq_segment_cache_hits_total 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, "ttq_segment_cache_bytes 0\n") {
		t.Errorf("segment cache empty after two scans:\n%s", text)
	}
}
