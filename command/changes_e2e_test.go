package command_test

import (
	"strings"
	"syscall"
	"testing"
)

func TestChangesEmbeddedAndOverServer(t *testing.T) {
	data := t.TempDir()
	ddl := `CREATE SOURCE s; CREATE TABLE items (id VARCHAR PRIMARY KEY, cat VARCHAR) SOURCE s;
CREATE VIEW per_cat AS SELECT cat, COUNT(*) AS n FROM items GROUP BY cat;`
	if r := runTTQ(t, "", "sql", "--data", data, "-e", ddl); r.code != 0 {
		t.Fatal(r.stderr)
	}
	in := `{"source":"s","table":"items","op":"upsert","ts":"2026-11-25T10:00:00.5Z","data":{"id":"a","cat":"x"}}
{"source":"s","table":"items","op":"upsert","ts":"2026-11-25T10:00:01.5Z","data":{"id":"b","cat":"x"}}
{"source":"s","table":"items","op":"upsert","ts":"2026-11-25T10:00:02.5Z","data":{"id":"a","cat":"y"}}
{"source":"s","op":"watermark","ts":"2026-11-25T10:00:03.5Z"}
`
	if r := runTTQ(t, in, "load", "--data", data, "-"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	want := `{"op":"upsert","epoch":"2026-11-25T10:00:01Z","key":{"cat":"x"},"row":{"cat":"x","n":1}}
{"op":"progress","epoch":"2026-11-25T10:00:01Z"}
{"op":"upsert","epoch":"2026-11-25T10:00:02Z","key":{"cat":"x"},"row":{"cat":"x","n":2}}
{"op":"progress","epoch":"2026-11-25T10:00:02Z"}
{"op":"upsert","epoch":"2026-11-25T10:00:03Z","key":{"cat":"x"},"row":{"cat":"x","n":1}}
{"op":"upsert","epoch":"2026-11-25T10:00:03Z","key":{"cat":"y"},"row":{"cat":"y","n":1}}
{"op":"progress","epoch":"2026-11-25T10:00:03Z"}
`
	r := runTTQ(t, "", "changes", "--data", data, "--from", "2026-11-25T10:00:00Z", "per_cat")
	if r.code != 0 || r.stdout != want {
		t.Fatalf("embedded: %d\n%s\nwant\n%s\n%s", r.code, r.stdout, want, r.stderr)
	}
	s := startServe(t, nil, "--data", data)
	r = runTTQ(t, "", "changes", "--server", s.url, "--from", "2026-11-25T10:00:00Z", "--to", "2026-11-25T10:00:03.5Z", "per_cat")
	if r.code != 0 || r.stdout != want {
		t.Fatalf("over the server: %d\n%s\nwant\n%s\n%s", r.code, r.stdout, want, r.stderr)
	}
	if r := runTTQ(t, "", "changes", "--server", s.url, "nope"); r.code == 0 || !strings.Contains(r.stderr, "nope") {
		t.Fatalf("unknown view: %d %q", r.code, r.stderr)
	}
	s.stop(syscall.SIGTERM)
}
