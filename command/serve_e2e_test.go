package command_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// served is a running `ttq serve` process.
type served struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr strings.Builder
	done   chan struct{}
}

// startServe starts the real binary on a free loopback port and waits for
// its "serving" line.
func startServe(t *testing.T, env []string, args ...string) *served {
	t.Helper()
	return startServeURL(t, env, append([]string{"--listen", "127.0.0.1:0"}, args...)...)
}

func (s *served) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// stop sends sig and returns the exit code.
func (s *served) stop(sig syscall.Signal) int {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { <-s.done; waited <- s.cmd.Wait() }()
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		s.t.Fatalf("ttq serve did not stop on %v: %s", sig, s.log())
	}
	return s.cmd.ProcessState.ExitCode()
}

const e2eSchema = `CREATE SOURCE pricing;
CREATE SOURCE inventory;
CREATE TABLE prices (product_id VARCHAR PRIMARY KEY, price DOUBLE, currency VARCHAR, on_sale BOOLEAN, changed TIMESTAMP) SOURCE pricing;
CREATE TABLE stock (product_id VARCHAR, warehouse VARCHAR, qty BIGINT, PRIMARY KEY (product_id, warehouse)) SOURCE inventory;`

const e2eUpdates = `{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:00Z","data":{"product_id":"P1","price":129.5,"currency":"EUR","on_sale":true,"changed":"2026-11-25T09:00:00Z"}}
{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:01Z","data":{"product_id":"P2","price":89,"currency":"a, \"b\""}}
{"source":"inventory","table":"stock","op":"upsert","ts":"2026-11-25T10:00:00Z","data":{"product_id":"P1","warehouse":"W1","qty":5}}

{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:05Z"}
{"source":"inventory","table":"stock","op":"upsert","ts":"2026-11-25T10:00:02Z","data":{"product_id":"P1","warehouse":"W1","qty":"many"}}
{"source":"inventory","op":"watermark","ts":"2026-11-25T10:00:10Z"}
{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:03Z","data":{"product_id":"P2","price":1}}
`

var e2eQueries = []string{
	"SELECT * FROM prices ORDER BY product_id",
	"SELECT p.product_id, p.price, s.qty FROM prices p LEFT JOIN stock s ON p.product_id = s.product_id AS OF '2026-11-25T10:00:00Z' ORDER BY p.product_id",
	"SELECT source, watermark, holds_global, applied, rejected FROM ttq_watermarks",
	"SELECT reason, table_name FROM ttq_rejects ORDER BY id",
	"SHOW TABLES",
}

// TestServeEndToEnd runs the same script embedded and against `ttq serve`,
// and demands the same output in every format; then stops the server with
// SIGTERM, kills it with -9, and checks nothing acknowledged was lost.
func TestServeEndToEnd(t *testing.T) {
	tmp := t.TempDir()
	schemaFile := filepath.Join(tmp, "schema.sql")
	updatesFile := filepath.Join(tmp, "updates.ndjson")
	os.WriteFile(schemaFile, []byte(e2eSchema), 0o644)
	os.WriteFile(updatesFile, []byte(e2eUpdates), 0o644)
	embedded := filepath.Join(tmp, "embedded")
	data := filepath.Join(tmp, "served")
	const token = "t0ken"

	// Refuses to listen beyond loopback without a token.
	if r := runTTQ(t, "", "serve", "--data", data, "--listen", "0.0.0.0:0"); r.code == 0 || !strings.Contains(r.stderr, "--auth-token") {
		t.Fatalf("non-loopback without token: %d %s", r.code, r.stderr)
	}

	srv := startServe(t, []string{"TTQ_AUTH_TOKEN=" + token}, "--data", data)
	remote := []string{"--server", srv.url, "--auth-token", token}

	mustRun := func(stdin string, args ...string) string {
		t.Helper()
		r := runTTQ(t, stdin, args...)
		if r.code != 0 {
			t.Fatalf("ttq %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r.stdout
	}
	for _, target := range [][]string{{"--data", embedded}, remote} {
		out := mustRun("", append([]string{"sql", "-f", schemaFile}, target...)...)
		if !strings.Contains(out, "CREATE TABLE stock") {
			t.Errorf("DDL output %q", out)
		}
		out = mustRun(e2eUpdates, append([]string{"load", "-"}, target...)...)
		if want := "applied 3, watermarks 2, rejected 2\n"; out != want {
			t.Errorf("load %v: %q, want %q", target, out, want)
		}
	}
	for _, q := range e2eQueries {
		for _, format := range []string{"table", "csv", "json"} {
			want := mustRun("", "sql", "--data", embedded, "--format", format, "-e", q)
			got := mustRun("", append([]string{"sql", "--format", format, "-e", q}, remote...)...)
			if got != want {
				t.Errorf("%s as %s:\nserver:\n%s\nembedded:\n%s", q, format, got, want)
			}
		}
	}

	// Errors come back as one line and a non-zero exit, as embedded.
	r := runTTQ(t, "", append([]string{"sql", "-e", "SELECT * FROM prices AS OF '2026-11-25T10:00:06Z'"}, remote...)...)
	if r.code == 0 || !strings.Contains(r.stderr, "global watermark 2026-11-25T10:00:05Z") {
		t.Errorf("not sealed over the server: %d %q", r.code, r.stderr)
	}
	r = runTTQ(t, "", "sql", "--server", srv.url, "--auth-token", "wrong", "-e", "SHOW TABLES")
	if r.code == 0 || !strings.Contains(r.stderr, "not valid") {
		t.Errorf("wrong token: %d %q", r.code, r.stderr)
	}

	// The file loader keeps the file's line numbers in the rejects' origins.
	mustRun("", append([]string{"load", updatesFile}, remote...)...)
	out := mustRun("", append([]string{"sql", "--format", "csv", "-e", "SELECT origin FROM ttq_rejects ORDER BY id"}, remote...)...)
	if !strings.Contains(out, "updates.ndjson:6\n") || !strings.Contains(out, "updates.ndjson:8\n") {
		t.Errorf("reject origins:\n%s", out)
	}

	if code := srv.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d: %s", code, srv.log())
	}
	if !strings.Contains(srv.log(), "ttq server stopped") {
		t.Errorf("no clean stop: %s", srv.log())
	}

	// Restart, record a sealed answer, ingest more, kill -9, restart.
	srv = startServe(t, []string{"TTQ_AUTH_TOKEN=" + token}, "--data", data)
	remote = []string{"--server", srv.url, "--auth-token", token}
	const sealedQ = "SELECT * FROM prices AS OF '2026-11-25T10:00:05Z' ORDER BY product_id"
	before := mustRun("", append([]string{"sql", "--format", "csv", "-e", sealedQ}, remote...)...)
	mustRun(`{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:07Z","data":{"product_id":"P3","price":3}}
{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:06Z","data":{"product_id":"P1","price":0.5}}
{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:08Z"}
`, append([]string{"load", "-"}, remote...)...)
	if code := srv.stop(syscall.SIGKILL); code == 0 {
		t.Errorf("kill -9 exited 0")
	}
	srv = startServe(t, []string{"TTQ_AUTH_TOKEN=" + token}, "--data", data)
	remote = []string{"--server", srv.url, "--auth-token", token}
	after := mustRun("", append([]string{"sql", "--format", "csv", "-e", sealedQ}, remote...)...)
	if after != before {
		t.Errorf("sealed answer changed across kill -9:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	got := mustRun("", append([]string{"sql", "--format", "csv", "-e", "SELECT product_id, price FROM prices ORDER BY product_id"}, remote...)...)
	if want := "product_id,price\nP1,0.5\nP2,89\nP3,3\n"; got != want {
		t.Errorf("acknowledged ingest after kill -9:\n%s\nwant:\n%s", got, want)
	}
	if code := srv.stop(syscall.SIGINT); code != 0 {
		t.Errorf("SIGINT: exit %d: %s", code, srv.log())
	}
}
