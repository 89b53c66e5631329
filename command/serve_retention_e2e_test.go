package command_test

import (
	"strings"
	"syscall"
	"testing"
)

func TestServeRetentionAndExportOverServer(t *testing.T) {
	data := t.TempDir()
	s := startServe(t, nil, "--data", data, "--retention", "5s")
	ddl := `CREATE SOURCE s; CREATE TABLE t (k VARCHAR PRIMARY KEY, v BIGINT) SOURCE s;`
	if r := runTTQ(t, "", "sql", "--server", s.url, "-e", ddl); r.code != 0 {
		t.Fatal(r.stderr)
	}
	in := `{"source":"s","table":"t","op":"upsert","ts":"2026-11-25T10:00:00Z","data":{"k":"a","v":1}}
{"source":"s","table":"t","op":"upsert","ts":"2026-11-25T10:00:07Z","data":{"k":"a","v":2}}
{"source":"s","op":"watermark","ts":"2026-11-25T10:00:10Z"}
`
	if r := runTTQ(t, in, "load", "--server", s.url, "-"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := runTTQ(t, "", "sql", "--server", s.url, "-e", "SELECT v FROM t AS OF '2026-11-25T10:00:04Z'")
	if r.code == 0 || !strings.Contains(r.stderr, "retention horizon 2026-11-25T10:00:05Z") {
		t.Fatalf("behind the horizon: exit %d %q", r.code, r.stderr)
	}
	r = runTTQ(t, "", "sql", "--server", s.url, "--format", "csv", "-e", "SELECT v FROM t AS OF '2026-11-25T10:00:05Z'")
	if r.code != 0 || r.stdout != "v\n1\n" {
		t.Fatalf("at the horizon: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runTTQ(t, "", "export", "--server", s.url, "--as-of", "2026-11-25T10:00:08Z", "--format", "csv", "--out", "-", "t")
	if r.code != 0 || r.stdout != "k,v\na,2\n" {
		t.Fatalf("export over the server: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d: %s", code, s.log())
	}
}
