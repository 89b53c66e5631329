package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ttq/engine"
	"ttq/query"
)

var update = flag.Bool("update", false, "rewrite the expected output of testdata/scripts")

// A script is a list of steps, each a command line, input lines, "----" and
// the expected output up to a blank line:
//
//	exec                 DDL or any statement; output "ok" or the error
//	load [name]          NDJSON envelopes; output counts and one line per reject
//	query                one statement; output CSV exactly as `ttq sql --format csv`
//	reopen               close and reopen the store (no input, no output)
type step struct {
	cmd, arg string
	input    []string
	want     []string
}

func parseScript(t *testing.T, path string) []step {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var steps []step
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur *step
	inOutput := false
	flush := func() {
		if cur != nil {
			steps = append(steps, *cur)
			cur = nil
		}
		inOutput = false
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && (strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#")):
			continue
		case cur == nil:
			f := strings.Fields(line)
			cur = &step{cmd: f[0]}
			if len(f) > 1 {
				cur.arg = f[1]
			}
			if cur.cmd == "reopen" {
				flush()
			}
		case line == "----":
			inOutput = true
		case inOutput && line == "":
			flush()
		case inOutput:
			cur.want = append(cur.want, line)
		default:
			cur.input = append(cur.input, line)
		}
	}
	flush()
	return steps
}

func writeScript(path string, steps []step) error {
	var b strings.Builder
	for i, s := range steps {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(s.cmd)
		if s.arg != "" {
			b.WriteString(" " + s.arg)
		}
		b.WriteString("\n")
		if s.cmd == "reopen" {
			continue
		}
		for _, l := range s.input {
			b.WriteString(l + "\n")
		}
		b.WriteString("----\n")
		for _, l := range s.want {
			b.WriteString(l + "\n")
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

type config struct {
	name        string
	batch       int
	reopenEvery bool // reopen the store after every step
}

// The same scripts run under every configuration and must give the same
// answers: batch sizes and restarts never change a sealed answer.
var configs = []config{
	{name: "default"},
	{name: "batch1", batch: 1},
	{name: "batch3-reopen", batch: 3, reopenEvery: true},
}

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("../testdata/scripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			steps := parseScript(t, f)
			for ci, cfg := range configs {
				got := runScript(t, steps, cfg)
				if ci == 0 && *update {
					for i := range steps {
						steps[i].want = got[i]
					}
					if err := writeScript(f, steps); err != nil {
						t.Fatal(err)
					}
					continue
				}
				for i, s := range steps {
					if s.cmd == "reopen" {
						continue
					}
					if strings.Join(got[i], "\n") != strings.Join(s.want, "\n") {
						t.Errorf("%s: step %d (%s %s):\n%s\ngot:\n%s\nwant:\n%s", cfg.name, i+1, s.cmd,
							s.arg, strings.Join(s.input, "\n"), strings.Join(got[i], "\n"), strings.Join(s.want, "\n"))
					}
				}
			}
		})
	}
}

func runScript(t *testing.T, steps []step, cfg config) [][]string {
	t.Helper()
	dir := t.TempDir()
	opts := engine.Options{BatchSize: cfg.batch}
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()
	reopen := func() {
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if e, err = engine.Open(dir, opts); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	out := make([][]string, len(steps))
	for i, s := range steps {
		var lines []string
		switch s.cmd {
		case "reopen":
			reopen()
			continue
		case "exec", "query":
			stmt := strings.Join(s.input, "\n")
			r, err := e.Exec(ctx, stmt, query.Options{})
			if err != nil {
				lines = []string{"error: " + err.Error()}
				break
			}
			if s.cmd == "exec" {
				lines = []string{"ok"}
			} else {
				var b bytes.Buffer
				if err := query.WriteCSV(&b, r); err != nil {
					t.Fatal(err)
				}
				lines = strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
				if r.Note != "" {
					lines = append(lines, "-- "+r.Note)
				}
			}
			r.Release()
		case "load":
			name := s.arg
			if name == "" {
				name = "script"
			}
			// Apply through Load so batch size and line numbering are real.
			input := strings.Join(s.input, "\n") + "\n"
			c, err := e.Load(ctx, strings.NewReader(input), name)
			if err != nil {
				lines = []string{"error: " + err.Error()}
				break
			}
			lines = []string{fmt.Sprintf("applied %d, watermarks %d, rejected %d", c.Applied, c.Watermarks, c.Rejected)}
		default:
			t.Fatalf("step %d: unknown command %q", i+1, s.cmd)
		}
		out[i] = lines
		if cfg.reopenEvery {
			reopen()
		}
	}
	return out
}
