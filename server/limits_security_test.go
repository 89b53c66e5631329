package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ttq/engine"
)

// seededWith is seeded with engine options.
func seededWith(t *testing.T, eo engine.Options, cfg Config) *harness {
	t.Helper()
	return seed(openHarness(t, t.TempDir(), eo, cfg))
}

// startIngest posts a body that the test writes through the returned pipe;
// the answer arrives on the channel.
func (h *harness) startIngest() (*io.PipeWriter, <-chan [2]any) {
	pr, pw := io.Pipe()
	done := make(chan [2]any, 1)
	go func() {
		resp, err := http.Post(h.ts.URL+"/v1/ingest", "application/x-ndjson", pr)
		if err != nil {
			done <- [2]any{0, err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- [2]any{resp.StatusCode, string(b)}
	}()
	return pw, done
}

// waitMetric polls /metrics until it has the line want.
func (h *harness) waitMetric(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(h.metricsText(), "\n"+want+"\n") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("metrics never showed %q", want)
}

func pricesAt(id string, sec int) string {
	return fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:%02dZ","data":{"product_id":"%s","price":1}}`+"\n", sec, id)
}

// TestIngestBackpressure: with one ingest slot, a second request waits
// (its body unread) while the first holds the slot, and is applied once the
// slot frees; a request that waits longer than the queue timeout gets 429
// with Retry-After and nothing of it is applied.
func TestIngestBackpressure(t *testing.T) {
	h := seeded(t, Config{MaxConcurrentIngest: 1, IngestQueueTimeout: 300 * time.Millisecond})
	holder, holderDone := h.startIngest()
	io.WriteString(holder, pricesAt("A1", 6))
	h.waitMetric(t, "ttq_ingest_requests_in_flight 1")

	// Refused after the queue timeout; nothing of it is applied.
	start := time.Now()
	resp, b := h.do("POST", "/v1/ingest", "application/x-ndjson", "", strings.NewReader(pricesAt("B1", 6)))
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("refused after %s, before the queue timeout", waited)
	}
	wantError(t, "second ingest", resp.StatusCode, b, http.StatusTooManyRequests, "overloaded", "--max-concurrent-ingest")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}

	// A request that waits less than the timeout goes through.
	h.s.cfg.IngestQueueTimeout = 10 * time.Second
	waiting := make(chan int, 1)
	go func() {
		resp, _ := h.do("POST", "/v1/ingest", "application/x-ndjson", "", strings.NewReader(pricesAt("C1", 8)))
		waiting <- resp.StatusCode
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case code := <-waiting:
		t.Fatalf("the waiting request finished (%d) while the slot was held", code)
	default:
	}
	io.WriteString(holder, `{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:07Z"}`+"\n")
	holder.Close()
	if r := <-holderDone; r[0] != 200 {
		t.Fatalf("holder: %v", r)
	}
	if code := <-waiting; code != 200 {
		t.Fatalf("waiting request: %d", code)
	}
	h.ingest(`{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:09Z"}`+"\n"+`{"source":"inventory","op":"watermark","ts":"2026-11-25T10:00:09Z"}`+"\n", "")
	r := h.mustSQL("SELECT product_id FROM prices WHERE product_id IN ('A1','B1','C1') ORDER BY product_id")
	if fmt.Sprint(r.Rows) != "[[A1] [C1]]" {
		t.Errorf("rows %v, want A1 and C1 (B1 was refused)", r.Rows)
	}
	if r := h.mustSQL("SELECT COUNT(*) FROM ttq_rejects"); fmt.Sprint(r.Rows) != "[[0]]" {
		t.Errorf("rejects %v: the refused request left some", r.Rows)
	}
	if !strings.Contains(h.metricsText(), "ttq_ingest_overloaded_total 1") {
		t.Error("ttq_ingest_overloaded_total is not 1")
	}
}

// TestIngestStreamsBody: a request's first batch is applied and sealed
// while the rest of its body has not been sent yet, so the server holds a
// batch, not the body.
func TestIngestStreamsBody(t *testing.T) {
	h := seededWith(t, engine.Options{BatchSize: 4}, Config{})
	pw, done := h.startIngest()
	io.WriteString(pw, pricesAt("S1", 6)+pricesAt("S2", 6)+pricesAt("S3", 6)+`{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:07Z"}`+"\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, b := h.do("GET", "/v1/watermarks", "", "", nil)
		if strings.Contains(string(b), `"watermark":"2026-11-25T10:00:07Z"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first batch was not applied before the body ended: %s", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	io.WriteString(pw, pricesAt("S4", 8))
	pw.Close()
	if r := <-done; r[0] != 200 || !strings.Contains(r[1].(string), `"applied":4`) {
		t.Fatalf("answer %v", r)
	}
}

// TestIngestStalledBody: a body that stops arriving loses its slot after
// the read timeout with 408; what arrived before is applied, and the next
// request gets the slot at once.
func TestIngestStalledBody(t *testing.T) {
	h := seeded(t, Config{MaxConcurrentIngest: 1, IngestReadTimeout: 300 * time.Millisecond, IngestQueueTimeout: 100 * time.Millisecond})
	pw, done := h.startIngest()
	io.WriteString(pw, pricesAt("T1", 6))
	start := time.Now()
	r := <-done
	pw.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the stall ended after %s", d)
	}
	if r[0] != http.StatusRequestTimeout || !strings.Contains(r[1].(string), `"body_timeout"`) || !strings.Contains(r[1].(string), `"applied":1`) {
		t.Fatalf("stalled request: %v", r)
	}
	if code, b := h.ingest(pricesAt("T2", 6), ""); code != 200 {
		t.Fatalf("next request: %d %s", code, b)
	}
}

// TestIngestBatchBytes: lines of 64 KiB are committed in batches of about
// 16 MiB (MaxIngestBatchBytes), not only every BatchSize (8192) records: a
// watermark after 255 such lines is applied, and G moves, as soon as the
// next line arrives, while the body is still open. Without the byte bound
// the server would hold all 8192 lines (512 MiB) before its first commit.
func TestIngestBatchBytes(t *testing.T) {
	h := seeded(t, Config{MaxIngestBytes: 256 << 20})
	pad := strings.Repeat("x", 64<<10)
	line := func(i int) string {
		return fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:06Z","data":{"product_id":"B%03d","currency":"%s"}}`+"\n", i, pad)
	}
	pw, done := h.startIngest()
	for i := 0; i < 255; i++ {
		io.WriteString(pw, line(i))
	}
	io.WriteString(pw, `{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:07Z"}`+"\n")
	io.WriteString(pw, fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:08Z","data":{"product_id":"B999","currency":"%s"}}`+"\n", pad))
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, b := h.do("GET", "/v1/watermarks", "", "", nil)
		if strings.Contains(string(b), `"watermark":"2026-11-25T10:00:07Z"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no commit after 16 MiB of lines: %s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	pw.Close()
	if r := <-done; r[0] != 200 || !strings.Contains(r[1].(string), `"applied":256`) {
		t.Fatalf("answer %.300v", r)
	}
}

// TestDiskGuard: while the data disk has less than MinFreeDisk free,
// ingest and DDL answer 507 disk_full and reads keep working; a request
// that runs into the limit midway keeps what it applied and says so.
func TestDiskGuard(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 40)
	h := seeded(t, Config{MinFreeDisk: 100 << 20, DiskFree: func() (int64, error) { return free.Load(), nil }})
	free.Store(50 << 20)
	code, b := h.ingest(pricesAt("F1", 6), "")
	wantError(t, "ingest on a full disk", code, b, http.StatusInsufficientStorage, "disk_full", "--min-free-disk", "reads keep working")
	code, b, _ = h.sql("CREATE SOURCE s9", "")
	wantError(t, "DDL on a full disk", code, b, http.StatusInsufficientStorage, "disk_full")
	for _, q := range []string{"SELECT COUNT(*) FROM prices", "SHOW TABLES", "DESCRIBE prices", "SELECT * FROM ttq_watermarks"} {
		if code, b, _ := h.sql(q, ""); code != 200 {
			t.Errorf("%s on a full disk: %d %s", q, code, b)
		}
	}
	if !strings.Contains(h.metricsText(), "ttq_disk_free_bytes 5.24288e+07") {
		t.Error("ttq_disk_free_bytes does not show the free space")
	}

	// Space runs out while a request is being applied, batch by batch.
	free.Store(1 << 40)
	h2 := seededWith(t, engine.Options{BatchSize: 2}, Config{MinFreeDisk: 100 << 20, DiskFree: func() (int64, error) {
		return free.Add(-40 << 20), nil // each check finds 40 MiB less
	}})
	free.Store(190 << 20)
	code, b = h2.ingest(pricesAt("G1", 6)+pricesAt("G2", 6)+pricesAt("G3", 6)+pricesAt("G4", 6)+pricesAt("G5", 6), "")
	wantError(t, "ingest that fills the disk", code, b, http.StatusInsufficientStorage, "disk_full", "lines before were applied")
	if !strings.Contains(string(b), `"applied":2`) {
		t.Errorf("answer %s: want the first batch (2 lines) applied", b)
	}
}
