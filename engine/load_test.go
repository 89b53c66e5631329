package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"ttq/query"
	"ttq/timeline"
)

func openLoadTest(t *testing.T, opts Options) *Engine {
	t.Helper()
	opts.InMemory = true
	e, err := Open("", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if err := e.ExecScript(context.Background(), `CREATE SOURCE s; CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT) SOURCE s;`,
		query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return e
}

// Records decoded ahead of the writer (Load) against a catalog that DDL
// has since changed are decoded again against the writer's catalog.
func TestDecodeAheadRedecodedAfterDDL(t *testing.T) {
	e := openLoadTest(t, Options{})
	ctx := context.Background()
	recs := []Record{
		{Line: []byte(`{"source":"s","table":"u","op":"upsert","ts":1800000000000000,"data":{"k":1,"v":2}}`), Origin: "a:1"},
		{Line: []byte(`{"source":"s","table":"t","op":"upsert","ts":1800000000000000,"data":{"k":1,"v":2}}`), Origin: "a:2"},
	}
	b := e.decodeAhead(recs)
	if b.dec[0].re == nil || b.dec[1].re != nil {
		t.Fatalf("decoded before CREATE TABLE u: got rejects %v, %v; want the first only", b.dec[0].re, b.dec[1].re)
	}
	if _, err := e.Exec(ctx, `CREATE TABLE u (k BIGINT PRIMARY KEY, v BIGINT) SOURCE s`, query.Options{}); err != nil {
		t.Fatal(err)
	}
	c, errs, err := e.apply(ctx, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Applied != 2 || c.Rejected != 0 {
		t.Fatalf("applied %d, rejected %d (%v); want both applied", c.Applied, c.Rejected, errs)
	}
}

// endless yields upserts forever and cancels its context after n lines.
type endless struct {
	n, i   int
	cancel func()
	buf    []byte
}

func (r *endless) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		r.i++
		if r.i == r.n {
			r.cancel()
		}
		r.buf = fmt.Appendf(nil, `{"source":"s","table":"t","op":"upsert","ts":%d,"data":{"k":%d,"v":1}}`+"\n", 1800000000000000+r.i, r.i%100)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// A cancelled Load stops reading its input and returns, even when the input
// never ends.
func TestLoadStopsWhenCancelled(t *testing.T) {
	e := openLoadTest(t, Options{BatchSize: 16})
	ctx, cancel := context.WithCancel(context.Background())
	in := &endless{n: 100, cancel: cancel}
	c, err := e.Load(ctx, in, "endless")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Load = %v, want context.Canceled", err)
	}
	if c.Applied > 100 {
		t.Fatalf("applied %d records, but the input was cancelled at line 100", c.Applied)
	}
}

// Load commits a batch while the versions of the one before are written.
// A reader must never see a G whose batches are not all durable, G never
// moves back (DDL publishing between a batch's commit and its versions
// included), and every line lands.
func TestLoadPublishesOnlyWrittenBatches(t *testing.T) {
	e, err := Open(t.TempDir(), Options{BatchSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// A slow disk: readers get to look while versions are on their way.
	e.Store().SetWriteHook(func(int) { time.Sleep(2 * time.Millisecond) })
	ctx := context.Background()
	if err := e.ExecScript(ctx, `CREATE SOURCE s; CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT) SOURCE s;`,
		query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
		t.Fatal(err)
	}
	const n, base = 30000, int64(1_800_000_000_000_000)
	var in strings.Builder
	for i := 0; i < n; i++ {
		// one new key a line at ts base+i: at G, base+j has j+1 rows
		fmt.Fprintf(&in, `{"source":"s","table":"t","op":"upsert","ts":%d,"data":{"k":%d,"v":1}}`+"\n", base+int64(i), i)
		if i%50 == 49 {
			fmt.Fprintf(&in, `{"source":"s","op":"watermark","ts":%d}`+"\n", base+int64(i))
		}
	}
	done := make(chan error, 1)
	go func() {
		c, err := e.Load(ctx, strings.NewReader(in.String()), "f")
		if err == nil && c.Applied != n {
			err = fmt.Errorf("applied %d of %d", c.Applied, n)
		}
		done <- err
	}()
	last, checked, ddl := e.Watermark(), 0, 0
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		if ddl%4 == 0 {
			if _, err := e.Exec(ctx, fmt.Sprintf(`CREATE TABLE u%d (k BIGINT PRIMARY KEY) SOURCE s`, ddl), query.Options{}); err != nil {
				t.Fatal(err)
			}
		}
		ddl++
		g := e.Watermark()
		if g < last {
			t.Fatalf("G moved back from %d to %d", last, g)
		}
		last = g
		if g < base {
			continue
		}
		r, err := e.Exec(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM t AS OF '%s'`, timeline.Format(g)), query.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := r.Rows()[0][0].I, g-base+1; got != want {
			t.Fatalf("AS OF G=%s: %d rows, want %d (a batch published before its versions were written)", timeline.Format(g), got, want)
		}
		checked++
	}
	if g := e.Watermark(); g != base+n-1 {
		t.Fatalf("final G %s, want %s", timeline.Format(g), timeline.Format(base+n-1))
	}
	t.Logf("%d reads checked, %d DDL", checked, ddl/4)
}

// A Pipeline reports each batch once it is durable, in order, with the
// caller's tag; each batch is published without waiting for the next.
func TestPipelineReportsBatchesInOrder(t *testing.T) {
	e := openLoadTest(t, Options{})
	ctx := context.Background()
	const base = int64(1_800_000_000_000_000)
	p := e.NewPipeline(ctx)
	var got []string
	for i := 0; i < 5; i++ {
		recs := []Record{
			{Line: []byte(fmt.Sprintf(`{"source":"s","table":"t","op":"upsert","ts":%d,"data":{"k":%d,"v":1}}`, base+int64(i), i)), Origin: "a"},
			{Line: []byte(`{"source":"s","table":"t","op":"upsert","ts":"bad","data":{"k":1,"v":1}}`), Origin: "b"},
			{Line: []byte(fmt.Sprintf(`{"source":"s","op":"watermark","ts":%d}`, base+int64(i))), Origin: "c"},
		}
		done, err := p.Add(recs, i)
		if err != nil {
			t.Fatal(err)
		}
		if (done == nil) != (i == 0) {
			t.Fatalf("batch %d: previous result %v", i, done)
		}
		if done != nil {
			got = append(got, fmt.Sprint(done.Tag, done.Counts.Applied, done.Counts.Rejected, done.Counts.Watermarks, done.Errors[0].Index))
		}
		// published without another Add or Close
		deadline := time.Now().Add(10 * time.Second)
		for e.Watermark() != base+int64(i) {
			if time.Now().After(deadline) {
				t.Fatalf("batch %d not published: G %d", i, e.Watermark())
			}
			time.Sleep(time.Millisecond)
		}
	}
	done, err := p.Close()
	if err != nil || done == nil {
		t.Fatal(done, err)
	}
	got = append(got, fmt.Sprint(done.Tag, done.Counts.Applied, done.Counts.Rejected, done.Counts.Watermarks, done.Errors[0].Index))
	if want := "[0 1 1 1 2 1 1 1 1 2 2 1 1 1 2 3 1 1 1 2 4 1 1 1 2]"; fmt.Sprint(got) != want {
		t.Fatalf("results %v, want %s", got, want)
	}
	if done, err := p.Close(); done != nil || err != nil {
		t.Fatalf("second Close: %v %v", done, err)
	}
}

// An update whose key or row Badger cannot hold is rejected as too_large
// before its batch commits; the rest of the batch and later batches are
// written. (Before, the write of the committed batch failed and stopped the
// store.)
func TestOversizedKeyOrRowRejected(t *testing.T) {
	for _, mem := range []bool{false, true} {
		dir := ""
		if !mem {
			dir = t.TempDir()
		}
		e, err := Open(dir, Options{InMemory: mem})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := e.ExecScript(ctx, `CREATE SOURCE s; CREATE TABLE t (k VARCHAR PRIMARY KEY, v VARCHAR) SOURCE s;`,
			query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
			t.Fatal(err)
		}
		line := func(k, v string, ts int) Record {
			return Record{Line: []byte(fmt.Sprintf(`{"source":"s","table":"t","op":"upsert","ts":%d,"data":{"k":%q,"v":%q}}`, ts, k, v)), Origin: "f"}
		}
		recs := []Record{line("a", "1", 10), line(strings.Repeat("k", 70000), "2", 11), line("b", "3", 12),
			{Line: []byte(fmt.Sprintf(`{"source":"s","table":"t","op":"delete","ts":13,"key":{"k":%q}}`, strings.Repeat("d", 70000)))}}
		wantRejects := []int{2, 4}
		if mem { // in memory Badger holds no row above its value threshold (1 MiB)
			recs = append(recs, line("c", strings.Repeat("v", 2<<20), 14))
			wantRejects = append(wantRejects, 5)
		}
		c, errs, err := e.Apply(ctx, recs)
		if err != nil {
			t.Fatalf("in memory %v: %v", mem, err)
		}
		var got []int
		for _, le := range errs {
			if le.Reason != "too_large" || strings.Contains(le.Message, "\n") {
				t.Errorf("in memory %v: line %d rejected %s: %s", mem, le.Index, le.Reason, le.Message)
			}
			got = append(got, le.Index)
		}
		if c.Applied != 2 || fmt.Sprint(got) != fmt.Sprint(wantRejects) {
			t.Fatalf("in memory %v: applied %d, rejected lines %v; want 2 and %v", mem, c.Applied, got, wantRejects)
		}
		if _, _, err := e.Apply(ctx, []Record{line("e", "4", 20), {Line: []byte(`{"source":"s","op":"watermark","ts":30}`)}}); err != nil {
			t.Fatalf("in memory %v: the batch after: %v", mem, err)
		}
		r, err := e.Exec(ctx, `SELECT COUNT(*) FROM t AS OF 30`, query.Options{})
		if err != nil || fmt.Sprint(r.Rows()[0][0]) != "3" {
			t.Fatalf("in memory %v: COUNT(*) = %v, %v; want 3", mem, r, err)
		}
		r, err = e.Exec(ctx, `SELECT COUNT(*) FROM ttq_rejects WHERE reason = 'too_large'`, query.Options{})
		if err != nil || fmt.Sprint(r.Rows()[0][0]) != fmt.Sprint(len(wantRejects)) {
			t.Fatalf("in memory %v: stored rejects %v, %v; want %d", mem, r, err, len(wantRejects))
		}
		e.Close()
	}
}
