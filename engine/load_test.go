package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"ttq/query"
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
