package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ttq/engine"
	"ttq/query"
)

// TestQuietCheckpoints: a process that only reads never checkpoints in the
// background; one that wrote checkpoints what it wrote once G stands still.
func TestQuietCheckpoints(t *testing.T) {
	dir := t.TempDir()
	opts := engine.Options{CheckpointPoll: 10 * time.Millisecond}
	e, err := engine.Open(dir, engine.Options{CheckpointMin: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.ExecScript(ctx, "CREATE SOURCE s; CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT) SOURCE s", query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
		t.Fatal(err)
	}
	load := func(e *engine.Engine, from int) {
		var sb strings.Builder
		for i := from; i < from+100; i++ {
			fmt.Fprintf(&sb, `{"source":"s","table":"t","op":"upsert","ts":%d,"data":{"k":%d,"v":%d}}`+"\n", 1_000_000+i, i%10, i)
		}
		fmt.Fprintf(&sb, `{"source":"s","op":"watermark","ts":%d}`+"\n", 1_000_000+from+100)
		if _, err := e.Load(ctx, strings.NewReader(sb.String()), "t"); err != nil {
			t.Fatal(err)
		}
	}
	load(e, 0)
	e.Close()

	checkpoints := func(e *engine.Engine) int {
		return len(engineRows(t, e, "SELECT table_name FROM ttq_checkpoints"))
	}
	// Reading only, quiet for far more than five polls.
	if e, err = engine.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	engineRows(t, e, "SELECT * FROM t")
	time.Sleep(300 * time.Millisecond)
	if n := checkpoints(e); n != 0 {
		t.Fatalf("a process that only read took %d checkpoints", n)
	}
	// Writing, then quiet.
	load(e, 100)
	deadline := time.Now().Add(5 * time.Second)
	for checkpoints(e) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := checkpoints(e); n != 1 {
		t.Fatalf("after writes and a quiet spell: %d checkpoints, want 1", n)
	}
	time.Sleep(200 * time.Millisecond)
	if n := checkpoints(e); n != 1 {
		t.Fatalf("quiet again without writes: %d checkpoints, want still 1", n)
	}
	e.Close()
}
