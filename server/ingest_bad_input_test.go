package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ttq/engine"
)

// seededAt is seeded with the store in dir.
func seededAt(t *testing.T, dir string, cfg Config) *harness {
	t.Helper()
	return seed(openHarness(t, dir, engine.Options{}, cfg))
}

// reopen closes the harness's server and store and opens the store in dir
// again behind a new server.
func (h *harness) reopen(t *testing.T, dir string) *harness {
	t.Helper()
	h.ts.Close()
	if err := h.e.Close(); err != nil {
		t.Fatal(err)
	}
	return openHarness(t, dir, engine.Options{}, h.s.cfg)
}

// ingestAnswer decodes an ingest answer.
type ingestAnswer struct {
	Applied  int64       `json:"applied"`
	Rejected int64       `json:"rejected"`
	Errors   []lineError `json:"errors"`
}

func decodeIngest(t *testing.T, code int, b []byte) ingestAnswer {
	t.Helper()
	if code != 200 {
		t.Fatalf("ingest: %d %s", code, b)
	}
	var a ingestAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("ingest answer %s: %v", b, err)
	}
	return a
}

// up is an upsert of prices at 10:00:06 (after pricing's watermark) with
// the given data object.
func up(data string) string {
	return `{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:06Z","data":` + data + `}`
}

// TestBadIngestLines sends one line of every kind of bad input in one
// request: each bad line is rejected with its reason, every other line is
// applied, and the values that are accepted are stored as documented in
// docs/BAD_INPUT.md.
func TestBadIngestLines(t *testing.T) {
	h := seeded(t, Config{})
	cases := []struct {
		name, line, reason string // reason "" means applied
	}{
		{"truncated JSON", `{"source":`, "invalid_json"},
		{"not JSON", `not json`, "invalid_json"},
		{"JSON array", `[1,2,3]`, "invalid_json"},
		{"JSON string", `"just a string"`, "invalid_json"},
		{"empty object", `{}`, "unknown_source"},
		{"trailing garbage", up(`{"product_id":"T1"}`) + ` trailing`, "invalid_json"},
		{"two objects on a line", up(`{"product_id":"T2"}`) + `{"x":1}`, "invalid_json"},
		{"byte order mark", "\ufeff" + up(`{"product_id":"T3"}`), "invalid_json"},
		{"string for DOUBLE", up(`{"product_id":"W1","price":"abc"}`), "bad_value"},
		{"fraction for BIGINT", up(`{"product_id":"W2","qty":1.5}`), "bad_value"},
		{"string for BIGINT", up(`{"product_id":"W3","qty":"7"}`), "bad_value"},
		{"number for VARCHAR key", up(`{"product_id":7}`), "bad_value"},
		{"string for BOOLEAN", up(`{"product_id":"W4","on_sale":"yes"}`), "bad_value"},
		{"number for TIMESTAMP", up(`{"product_id":"W5","changed":12.5}`), "bad_value"},
		{"object for VARCHAR", up(`{"product_id":"W6","currency":{"nested":1}}`), "bad_value"},
		{"array as data", up(`[1,2]`), "invalid_json"},
		{"NaN literal", up(`{"product_id":"N1","price":NaN}`), "invalid_json"},
		{"NaN string", up(`{"product_id":"N2","price":"NaN"}`), "bad_value"},
		{"Infinity literal", up(`{"product_id":"N3","price":Infinity}`), "invalid_json"},
		{"1e400", up(`{"product_id":"N4","price":1e400}`), "bad_value"},
		{"-1e400", up(`{"product_id":"N5","price":-1e400}`), "bad_value"},
		{"2^63", up(`{"product_id":"H1","qty":9223372036854775808}`), "bad_value"},
		{"-2^63-1", up(`{"product_id":"H2","qty":-9223372036854775809}`), "bad_value"},
		{"1e20 for BIGINT", up(`{"product_id":"H3","qty":1e20}`), "bad_value"},
		{"max BIGINT", up(`{"product_id":"H4","qty":9223372036854775807}`), ""},
		{"min BIGINT", up(`{"product_id":"H5","qty":-9223372036854775808}`), ""},
		{"2^53+1 exact", up(`{"product_id":"H6","qty":9007199254740993}`), ""},
		{"ts 1e30", `{"source":"pricing","table":"prices","op":"upsert","ts":1e30,"data":{"product_id":"S1"}}`, "bad_ts"},
		{"ts before 1970", `{"source":"pricing","table":"prices","op":"upsert","ts":-5,"data":{"product_id":"S2"}}`, "bad_ts"},
		{"ts garbage", `{"source":"pricing","table":"prices","op":"upsert","ts":"yesterday","data":{"product_id":"S3"}}`, "bad_ts"},
		{"ts boolean", `{"source":"pricing","table":"prices","op":"upsert","ts":true,"data":{"product_id":"S4"}}`, "bad_ts"},
		{"ts missing", `{"source":"pricing","table":"prices","op":"upsert","data":{"product_id":"S5"}}`, "bad_ts"},
		{"key missing", up(`{"price":1}`), "missing_key"},
		{"key null", up(`{"product_id":null}`), "missing_key"},
		{"data empty", up(`{}`), "missing_key"},
		{"delete with empty key", `{"source":"pricing","table":"prices","op":"delete","ts":"2026-11-25T10:00:06Z","key":{}}`, "missing_key"},
		{"delete without key", `{"source":"pricing","table":"prices","op":"delete","ts":"2026-11-25T10:00:06Z"}`, "missing_key"},
		{"empty string key", up(`{"product_id":"","price":1}`), ""},
		{"empty source", `{"source":"","table":"prices","op":"upsert","ts":"2026-11-25T10:00:06Z","data":{"product_id":"E1"}}`, "unknown_source"},
		{"empty table", `{"source":"pricing","table":"","op":"upsert","ts":"2026-11-25T10:00:06Z","data":{"product_id":"E2"}}`, "unknown_table"},
		{"empty op", `{"source":"pricing","table":"prices","op":"","ts":"2026-11-25T10:00:06Z","data":{"product_id":"E3"}}`, "bad_op"},
		{"op in capitals", `{"source":"pricing","table":"prices","op":"UPSERT","ts":"2026-11-25T10:00:06Z","data":{"product_id":"E4"}}`, "bad_op"},
		{"unknown column", up(`{"product_id":"E5","nope":1}`), "unknown_column"},
		{"table of another source", `{"source":"pricing","table":"stock","op":"upsert","ts":"2026-11-25T10:00:06Z","data":{"product_id":"E6","warehouse":"W"}}`, "wrong_source"},
		{"late", `{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:05Z","data":{"product_id":"E7"}}`, "late"},
		{"duplicate data", up(`{"product_id":"D1","price":1}`)[:len(up(`{"product_id":"D1","price":1}`))-1] + `,"data":{"product_id":"D1","price":2}}`, ""},
		{"duplicate column", up(`{"product_id":"D2","price":1,"price":2}`), ""},
		{"NUL in a string", up(`{"product_id":"U1","currency":"a\u0000b"}`), ""},
		{"lone surrogate", up(`{"product_id":"U2","currency":"\ud800"}`), ""},
		{"invalid UTF-8 in a value", up(`{"product_id":"U3","currency":"bad` + "\xff\xfe" + `"}`), "invalid_json"},
		{"invalid UTF-8 outside strings", "\xff\xfe garbage", "invalid_json"},
		{"invalid UTF-8 in a key", up(`{"product_id":"U4` + "\xc3\x28" + `"}`), "invalid_json"},
		{"SQL in a value", up(`{"product_id":"Q1","currency":"'; DROP TABLE prices; --"}`), ""},
		{"CRLF line end", up(`{"product_id":"C1"}`) + "\r", ""},
		{"field names in capitals", `{"SOURCE":"pricing","Table":"prices","OP":"upsert","TS":"2026-11-25T10:00:06Z","DATA":{"PRODUCT_ID":"C2"}}`, ""},
	}
	var body strings.Builder
	for _, c := range cases {
		body.WriteString(c.line + "\n")
	}
	body.WriteString("   \n\n") // blank lines are skipped, not counted
	code, b := h.ingest(body.String(), "")
	a := decodeIngest(t, code, b)
	got := map[int]string{}
	for _, e := range a.Errors {
		got[e.Line] = e.Reason
		if e.Message == "" {
			t.Errorf("line %d: rejected without a message", e.Line)
		}
	}
	applied := int64(0)
	for i, c := range cases {
		if c.reason == "" {
			applied++
		}
		if got[i+1] != c.reason {
			t.Errorf("%s (line %d): reason %q, want %q", c.name, i+1, got[i+1], c.reason)
		}
	}
	if a.Applied != applied || a.Rejected != int64(len(cases))-applied {
		t.Errorf("applied %d rejected %d, want %d and %d", a.Applied, a.Rejected, applied, int64(len(cases))-applied)
	}
	if code, b := h.ingest(`{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:07Z"}`+"\n"+`{"source":"inventory","op":"watermark","ts":"2026-11-25T10:00:07Z"}`+"\n", ""); code != 200 {
		t.Fatal(string(b))
	}
	r := h.mustSQL("SELECT product_id, price, currency, qty FROM prices WHERE product_id IN ('H4','H5','H6','','D1','D2','U1','U2','Q1','C1','C2') ORDER BY product_id")
	want := `[["",1,null,null],["C1",null,null,null],["C2",null,null,null],["D1",2,null,null],["D2",2,null,null],["H4",null,null,9223372036854775807],["H5",null,null,-9223372036854775808],["H6",null,null,9007199254740993],["Q1",null,"'; DROP TABLE prices; --",null],["U1",null,"a\u0000b",null],["U2",null,"\ufffd",null]]`
	want = strings.ReplaceAll(want, `\ufffd`, "\ufffd") // the replacement character, as json.Marshal writes it
	if b, _ := json.Marshal(r.Rows); string(b) != want {
		t.Errorf("stored values:\n got %s\nwant %s", b, want)
	}
	// Every reject is stored with its reason.
	r = h.mustSQL("SELECT COUNT(*) FROM ttq_rejects")
	if fmt.Sprint(r.Rows[0][0]) != fmt.Sprint(a.Rejected) {
		t.Errorf("ttq_rejects has %v rows, want %d", r.Rows[0][0], a.Rejected)
	}
}

// repeatReader yields n copies of c.
type repeatReader struct {
	c byte
	n int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), r.n)
	for i := range p[:k] {
		p[i] = r.c
	}
	r.n -= k
	return int(k), nil
}

// heapPeak samples the live Go heap (after a collection, so garbage does
// not count) until stop is closed and returns the largest seen.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// TestHugeLine streams a body whose first line is 100 MB (engine.MaxLine
// is 16 MiB): the line is rejected as too_large, the reader goes on and
// applies the next line, and the server never holds the whole line.
func TestHugeLine(t *testing.T) {
	h := seeded(t, Config{MaxIngestBytes: 256 << 20})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peak := heapPeak(stop)
	body := io.MultiReader(
		strings.NewReader(`{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:06Z","data":{"product_id":"BIG","currency":"`),
		&repeatReader{c: 'x', n: 100 << 20},
		strings.NewReader(`"}}`+"\n"+up(`{"product_id":"AFTER","price":1}`)+"\n"),
	)
	resp, b := h.do("POST", "/v1/ingest", "application/x-ndjson", "", body)
	close(stop)
	a := decodeIngest(t, resp.StatusCode, b)
	if a.Applied != 1 || a.Rejected != 1 || len(a.Errors) != 1 || a.Errors[0].Line != 1 || a.Errors[0].Reason != "too_large" {
		t.Fatalf("answer %s", b)
	}
	grew := int64(<-peak) - int64(before.HeapAlloc)
	t.Logf("heap grew by at most %d MiB while a 100 MiB line streamed through", grew>>20)
	if grew > 90<<20 {
		t.Errorf("heap grew by %d MiB: the line was buffered", grew>>20)
	}
	h.ingest(`{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:07Z"}`+"\n", "")
	if r := h.mustSQL("SELECT product_id FROM prices WHERE product_id IN ('BIG', 'AFTER')"); len(r.Rows) != 1 || r.Rows[0][0] != "AFTER" {
		t.Errorf("rows %v, want only AFTER", r.Rows)
	}
}

// TestDeeplyNestedJSON: nesting a million levels deep, in a value, in an
// unknown field and at the top level, is rejected (the decoder has a depth
// limit) without a crash, and the next line is applied.
func TestDeeplyNestedJSON(t *testing.T) {
	h := seeded(t, Config{})
	const d = 1_000_000
	lines := []string{
		up(`{"product_id":"X1","currency":` + strings.Repeat("[", d) + strings.Repeat("]", d) + `}`),
		`{"source":"pricing","extra":` + strings.Repeat(`{"a":`, d) + `1` + strings.Repeat("}", d) + `}`,
		strings.Repeat("[", d) + strings.Repeat("]", d),
		up(`{"product_id":"X2","price":1}`),
	}
	code, b := h.ingest(strings.Join(lines, "\n")+"\n", "")
	a := decodeIngest(t, code, b)
	if a.Applied != 1 || a.Rejected != 3 {
		t.Fatalf("applied %d rejected %d: %+v", a.Applied, a.Rejected, a.Errors)
	}
	for _, e := range a.Errors {
		if e.Reason != "invalid_json" {
			t.Errorf("line %d: %s %s", e.Line, e.Reason, e.Message)
		}
	}
}

// TestDDLRacingIngest runs CREATE TABLE / DROP TABLE in a loop while other
// clients ingest into the tables being created and dropped and into a
// stable one, and others query them. Nothing crashes or answers 5xx; every
// acknowledged row of the stable table is there; a count of a table being
// dropped is either whole or "unknown table", never partial; a re-created
// table starts empty; and the store reopens with the same answers.
func TestDDLRacingIngest(t *testing.T) {
	dir := t.TempDir()
	h := seededAt(t, dir, Config{})
	const filled = 200 // rows of each temporary table before it is raced
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		acked    int64 // rows of prices acknowledged
		ts       atomic.Int64
		round    atomic.Int64
		order    sync.Mutex // ingest to pricing takes a time and sends in that order, or it is late
	)
	ts.Store(1795600806000000) // 10:00:06
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	post := func(path, body string) (int, []byte) {
		resp, err := http.Post(h.ts.URL+path, "text/plain", strings.NewReader(body))
		if err != nil {
			fail("%s: %v", path, err)
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			fail("%s %.80q: %d %s", path, body, resp.StatusCode, b)
		}
		return resp.StatusCode, b
	}
	// DDL: create tmp, fill it, seal it, let it be raced, drop it.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			name := fmt.Sprintf("tmp%d", i%3)
			if code, b := post("/v1/sql", "CREATE TABLE "+name+" (k BIGINT PRIMARY KEY, v VARCHAR) SOURCE pricing"); code != 200 {
				fail("create %s: %d %s", name, code, b)
				continue
			}
			// A re-created table starts empty.
			if code, b := post("/v1/sql", "SELECT COUNT(*) FROM "+name+" WHERE v <> 'late'"); code == 200 && !bytes.Contains(b, []byte(`"rows":[[0]]`)) {
				fail("re-created %s is not empty: %s", name, b)
			}
			var fill strings.Builder
			order.Lock()
			at := ts.Add(1)
			for k := 0; k < filled; k++ {
				fmt.Fprintf(&fill, `{"source":"pricing","table":"%s","op":"upsert","ts":%d,"data":{"k":%d,"v":"r%d"}}`+"\n", name, at, k, i)
			}
			fmt.Fprintf(&fill, `{"source":"pricing","op":"watermark","ts":%d}`+"\n", at)
			post("/v1/ingest", fill.String())
			order.Unlock()
			round.Store(int64(i))
			time.Sleep(20 * time.Millisecond)
			if code, b := post("/v1/sql", "DROP TABLE "+name); code != 200 {
				fail("drop %s: %d %s", name, code, b)
			}
		}
	}()
	// Ingest into the stable table and into whatever tmp table exists.
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				order.Lock()
				at := ts.Add(1)
				key := fmt.Sprintf("R%d-%d", w, n)
				body := fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"product_id":"%s","price":1}}`+"\n", at, key) +
					fmt.Sprintf(`{"source":"pricing","table":"tmp%d","op":"upsert","ts":%d,"data":{"k":%d,"v":"late"}}`+"\n", n%3, at, 1000+n) +
					fmt.Sprintf(`{"source":"pricing","op":"watermark","ts":%d}`+"\n", at)
				code, b := post("/v1/ingest", body)
				order.Unlock()
				if code != 200 {
					continue
				}
				var a ingestAnswer
				json.Unmarshal(b, &a)
				stableOK := true
				for _, e := range a.Errors {
					if e.Line == 1 {
						fail("stable row %s rejected: %s %s", key, e.Reason, e.Message)
						stableOK = false
					}
					if e.Line == 2 && e.Reason != "unknown_table" {
						fail("tmp row rejected as %s: %s", e.Reason, e.Message)
					}
				}
				if stableOK {
					mu.Lock()
					acked++
					mu.Unlock()
				}
			}
		}()
	}
	// Count the tmp tables while they are dropped: whole or unknown.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			name := fmt.Sprintf("tmp%d", round.Load()%3)
			code, b := post("/v1/sql", "SELECT COUNT(*) FROM "+name+" WHERE v <> 'late'")
			if code == 200 && !bytes.Contains(b, []byte(fmt.Sprintf(`"rows":[[%d]]`, filled))) && !bytes.Contains(b, []byte(`"rows":[[0]]`)) {
				fail("count of %s while it is raced: %s", name, b)
			}
			if code != 200 && code != 404 {
				fail("count of %s: %d %s", name, code, b)
			}
		}
	}()
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("%d stable rows acknowledged, %d DDL rounds", acked, round.Load()+1)
	if acked < 20 || round.Load() < 5 {
		t.Fatalf("the race did not run: %d rows, %d rounds", acked, round.Load()+1)
	}
	want := fmt.Sprint(acked)
	if r := h.mustSQL("SELECT COUNT(*) FROM prices WHERE product_id LIKE 'R%'"); fmt.Sprint(r.Rows[0][0]) != want {
		t.Errorf("stable rows %v, want %s", r.Rows[0][0], want)
	}
	tables := h.mustSQL("SHOW TABLES")
	// Reopen: the same answers.
	h2 := h.reopen(t, dir)
	if r := h2.mustSQL("SELECT COUNT(*) FROM prices WHERE product_id LIKE 'R%'"); fmt.Sprint(r.Rows[0][0]) != want {
		t.Errorf("after reopen: stable rows %v, want %s", r.Rows[0][0], want)
	}
	if r := h2.mustSQL("SHOW TABLES"); fmt.Sprint(r.Rows) != fmt.Sprint(tables.Rows) {
		t.Errorf("tables after reopen %v, before %v", r.Rows, tables.Rows)
	}
}
