package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"ttq/engine"
	"ttq/query"
)

func TestGlobalRetentionHorizonIsDurableAndCompactionKeepsAnswers(t *testing.T) {
	dir := t.TempDir()
	const sec = 1_000_000
	base := int64(1_800_000_000_000_000)
	e, err := engine.Open(dir, engine.Options{Retention: 10 * sec})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.ExecScript(ctx, `CREATE SOURCE s; CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT) SOURCE s;`, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := 0; i < 60; i++ {
		lines = append(lines, fmt.Sprintf(`{"source":"s","table":"t","op":"upsert","ts":%d,"data":{"k":%d,"v":%d}}`, base+int64(i)*sec, i%3, i))
		if i%7 == 3 {
			lines = append(lines, fmt.Sprintf(`{"source":"s","table":"t","op":"delete","ts":%d,"key":{"k":%d}}`, base+int64(i)*sec+1, (i+1)%3))
		}
	}
	lines = append(lines, fmt.Sprintf(`{"source":"s","op":"watermark","ts":%d}`, base+60*sec))
	if _, err := e.Load(ctx, strings.NewReader(strings.Join(lines, "\n")), "r"); err != nil {
		t.Fatal(err)
	}
	horizon := base + 50*sec
	if h := e.Horizon(); h != horizon {
		t.Fatalf("horizon %d, want G-10s = %d", h, horizon)
	}
	answer := func(e *engine.Engine, ts int64) (string, error) {
		r, err := e.Exec(ctx, fmt.Sprintf("SELECT k, v FROM t AS OF %d ORDER BY k", ts), query.Options{})
		if err != nil {
			return "", err
		}
		defer r.Release()
		return fmt.Sprint(r.Rows()), nil
	}
	before := map[int64]string{}
	for ts := horizon; ts <= base+60*sec; ts += sec / 2 {
		a, err := answer(e, ts)
		if err != nil {
			t.Fatalf("AS OF %d: %v", ts, err)
		}
		before[ts] = a
	}
	if _, err := answer(e, horizon-1); !errors.Is(err, engine.ErrBeforeHorizon) {
		t.Fatalf("behind the horizon: %v, want ErrBeforeHorizon", err)
	}
	// Compact everything Badger may, and reopen without the retention
	// option: the stored horizon still holds, and every answer at or after it
	// is unchanged.
	if err := e.Store().DB().Flatten(1); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if e, err = engine.Open(dir, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if h := e.Horizon(); h != horizon {
		t.Fatalf("horizon after reopen %d, want %d", h, horizon)
	}
	for ts, want := range before {
		if got, err := answer(e, ts); err != nil || got != want {
			t.Fatalf("AS OF %d after compaction: %v %s, want %s", ts, err, got, want)
		}
	}
	if _, err := answer(e, horizon-1); !errors.Is(err, engine.ErrBeforeHorizon) {
		t.Fatalf("behind the horizon after reopen: %v", err)
	}
}
