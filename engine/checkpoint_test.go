package engine_test

import (
	"context"
	"fmt"
	"strconv"
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

// TestLogStartedAfterRestart: a process that writes a table starts logging
// its versions since its last checkpoint in the background, those written
// before it started included (ttq_checkpoints says how many it holds), so
// its next checkpoint needs no walk and scans after the last read the log;
// a process that only reads starts none.
func TestLogStartedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(dir, engine.Options{CheckpointMin: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.ExecScript(ctx, "CREATE SOURCE s; CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT) SOURCE s", query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
		t.Fatal(err)
	}
	ts := 1_000_000
	load := func(e *engine.Engine, n int) {
		var sb strings.Builder
		for range n {
			ts++
			fmt.Fprintf(&sb, `{"source":"s","table":"t","op":"upsert","ts":%d,"data":{"k":%d,"v":%d}}`+"\n", ts, ts%10, ts)
		}
		fmt.Fprintf(&sb, `{"source":"s","op":"watermark","ts":%d}`+"\n", ts)
		if _, err := e.Load(ctx, strings.NewReader(sb.String()), "t"); err != nil {
			t.Fatal(err)
		}
	}
	load(e, 100)
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	load(e, 40) // after the checkpoint, before the restart
	e.Close()

	logged := func(e *engine.Engine) string {
		return strings.Join(engineRows(t, e, "SELECT logged FROM ttq_checkpoints"), ",")
	}
	opts := engine.Options{CheckpointPoll: 10 * time.Millisecond, CheckpointMin: 1 << 40}
	if e, err = engine.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()
	time.Sleep(100 * time.Millisecond)
	if got := logged(e); got != "" {
		t.Fatalf("a process that only read logs %q versions", got)
	}
	// Writes that keep G moving (no quiet checkpoint) until the log
	// holds the 40 versions written before the restart and the 5 after.
	load(e, 5)
	var got string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); load(e, 1) {
		if got = logged(e); got != "" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if want := strconv.Itoa(ts - 1_000_100); got != want {
		t.Fatalf("logged %q, want %s: every version since the checkpoint, 40 of them written before the restart", got, want)
	}
	// Scans after the checkpoint answer as a store without the log does.
	var want []string
	for at := 1_000_100; at <= ts; at += 3 {
		want = append(want, strings.Join(engineRows(t, e, fmt.Sprintf("SELECT k, v FROM t AS OF %d", at)), " "))
	}
	e.Close()
	if e, err = engine.Open(dir, engine.Options{CheckpointMin: -1, SegmentCache: -1}); err != nil {
		t.Fatal(err)
	}
	for i, at := 0, 1_000_100; at <= ts; i, at = i+1, at+3 {
		if got := strings.Join(engineRows(t, e, fmt.Sprintf("SELECT k, v FROM t AS OF %d", at)), " "); got != want[i] {
			t.Fatalf("AS OF %d: with the log %s, from the versions %s", at, want[i], got)
		}
	}
}
