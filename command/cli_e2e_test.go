package command_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// cliBinary builds the real ttq binary once per test run.
func cliBinary(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ttq-cli-bin")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "ttq")
		out, err := exec.Command("go", "build", "-o", cliPath, "../cmd/ttq").CombinedOutput()
		if err != nil {
			cliErr = err
			t.Logf("%s", out)
		}
	})
	if cliErr != nil {
		t.Fatalf("build ttq: %v", cliErr)
	}
	return cliPath
}

type runResult struct {
	stdout, stderr string
	code           int
}

func runTTQ(t *testing.T, stdin string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(cliBinary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return runResult{out.String(), errb.String(), code}
}

func TestCLIEndToEnd(t *testing.T) {
	data := t.TempDir()
	ddl := `CREATE SOURCE pricing; CREATE SOURCE search;
CREATE TABLE prices (product_id VARCHAR PRIMARY KEY, price DOUBLE, currency VARCHAR) SOURCE pricing;
CREATE TABLE listings (listing_id VARCHAR PRIMARY KEY, product_id VARCHAR, title VARCHAR) SOURCE search;`
	if r := runTTQ(t, "", "sql", "--data", data, "-e", ddl); r.code != 0 {
		t.Fatalf("DDL: exit %d: %s", r.code, r.stderr)
	}
	file := filepath.Join(t.TempDir(), "updates.ndjson")
	updates := `{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:00Z","data":{"product_id":"P1","price":499.0,"currency":"INR"}}
{"source":"search","table":"listings","op":"upsert","ts":"2026-11-25T10:00:00Z","data":{"listing_id":"L1","product_id":"P1","title":"Shoe, \"red\""}}
not json at all
{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:01Z"}
`
	if err := os.WriteFile(file, []byte(updates), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runTTQ(t, "", "load", "--data", data, file)
	if r.code != 0 || !strings.Contains(r.stdout, "applied 2, watermarks 1, rejected 1") {
		t.Fatalf("load: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	// The second source's watermark comes from standard input.
	r = runTTQ(t, `{"source":"search","op":"watermark","ts":"2026-11-25T10:00:01Z"}`+"\n", "load", "--data", data, "-")
	if r.code != 0 || !strings.Contains(r.stdout, "watermarks 1") {
		t.Fatalf("load -: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runTTQ(t, "", "sql", "--data", data, "--format", "csv", "-e",
		"SELECT l.title, p.price, p._ts FROM listings l JOIN prices p ON l.product_id = p.product_id AS OF '2026-11-25T10:00:00.5Z'")
	want := "title,price,_ts\n\"Shoe, \"\"red\"\"\",499,2026-11-25T10:00:00Z\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("csv: exit %d\n got %q\nwant %q\nstderr %s", r.code, r.stdout, want, r.stderr)
	}
	r = runTTQ(t, "", "sql", "--data", data, "--format", "json", "-e", "SELECT product_id, price FROM prices")
	if r.code != 0 || !strings.Contains(r.stdout, `"rows":[["P1",499]]`) {
		t.Fatalf("json: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runTTQ(t, "", "sql", "--data", data, "--format", "csv", "-e", "SELECT reason, origin FROM ttq_rejects")
	if r.stdout != "reason,origin\ninvalid_json,"+file+":3\n" {
		t.Fatalf("rejects: %q", r.stdout)
	}
	// Failures: one line on stderr, non-zero exit, store untouched.
	for _, bad := range []string{
		"SELECT * FROM prices AS OF '2026-11-25T10:00:02Z'",
		"SELECT * FROM prices AS OF 'yesterday'",
		"SELEC 1",
		"SELECT * FROM nope",
	} {
		r = runTTQ(t, "", "sql", "--data", data, "-e", bad)
		if r.code == 0 || strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") != 0 || r.stderr == "" {
			t.Errorf("%s: exit %d, stderr %q (want one line and non-zero)", bad, r.code, r.stderr)
		}
	}
	r = runTTQ(t, "", "sql", "--data", data, "--format", "csv", "-e", "SELECT COUNT(*) AS n FROM prices")
	if r.stdout != "n\n1\n" {
		t.Fatalf("store changed by failing statements: %q", r.stdout)
	}
	// The shell reads statements across lines from a pipe.
	r = runTTQ(t, "SELECT product_id\nFROM prices;\n\\q\n", "shell", "--data", data, "--format", "csv")
	if r.code != 0 || !strings.Contains(r.stdout, "product_id\nP1\n") {
		t.Fatalf("shell: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestDemoRuns(t *testing.T) {
	data := filepath.Join(t.TempDir(), "demo")
	r := runTTQ(t, "", "demo", "--data", data)
	if r.code != 0 || !strings.Contains(r.stdout, "Trail runner (sale)") || strings.Contains(r.stdout, "error:") {
		t.Fatalf("demo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// A second run reuses the seeded store.
	if r2 := runTTQ(t, "", "demo", "--data", data); r2.code != 0 || r2.stdout != r.stdout {
		t.Fatalf("second demo run differs or fails: %d %s", r2.code, r2.stderr)
	}
}
