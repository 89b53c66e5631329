package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"ttq/engine"
	"ttq/query"
	"ttq/timeline"
	"ttq/types"
)

// The reference model: obviously correct, in memory, written from the
// contract. Each table maps a key to its versions in stream order.
type modelVersion struct {
	ts  int64
	row string // rendered CSV row; "" for a delete
}

type model struct {
	w      map[string]int64 // source -> watermark
	tables map[string]map[string][]modelVersion
}

func newModel() *model {
	return &model{w: map[string]int64{"s1": timeline.None, "s2": timeline.None},
		tables: map[string]map[string][]modelVersion{"a": {}, "b": {}}}
}

func (m *model) g() int64 {
	g := m.w["s1"]
	if m.w["s2"] < g {
		g = m.w["s2"]
	}
	return g
}

// at renders table t AS OF ts, sorted by key (the CSV of ORDER BY key).
func (m *model) at(t string, ts int64) []string {
	var rows []string
	for _, vs := range m.tables[t] {
		best, bestTS := "", int64(-1)
		for _, v := range vs { // later in stream order wins ties
			if v.ts <= ts && v.ts >= bestTS {
				best, bestTS = v.row, v.ts
			}
		}
		if best != "" {
			rows = append(rows, best)
		}
	}
	sort.Strings(rows)
	return rows
}

// history renders table t's versions visible at some instant of [t1, t2]:
// a version runs from its ts to the next version or delete of its row;
// its end is empty when it was still visible at t2. Same-ts writes: the
// later in stream order is the version.
func (m *model) history(t string, t1, t2 int64) []string {
	var rows []string
	for _, vs := range m.tables[t] {
		var chain []modelVersion // by ts, one per ts (the last written)
		for _, v := range vs {
			if v.ts > t2 {
				continue
			}
			replaced := false
			for i := range chain {
				if chain[i].ts == v.ts {
					chain[i] = v
					replaced = true
				}
			}
			if !replaced {
				chain = append(chain, v)
			}
		}
		sort.Slice(chain, func(i, j int) bool { return chain[i].ts < chain[j].ts })
		for i, v := range chain {
			if v.row == "" {
				continue
			}
			to := ""
			if i+1 < len(chain) {
				if chain[i+1].ts <= t1 {
					continue // ended before the range
				}
				to = timeline.Format(chain[i+1].ts)
			}
			rows = append(rows, v.row+","+timeline.Format(v.ts)+","+to)
		}
	}
	sort.Strings(rows)
	return rows
}

// selfJoin renders table a AS OF t1 joined on its key with a AS OF t2.
func (m *model) selfJoin(t string, t1, t2 int64) []string {
	later := map[string]string{}
	for _, r := range m.at(t, t2) {
		k, v, _ := strings.Cut(r, ",")
		later[k] = v
	}
	var rows []string
	for _, r := range m.at(t, t1) {
		k, _, _ := strings.Cut(r, ",")
		if v, ok := later[k]; ok {
			rows = append(rows, r+","+v)
		}
	}
	sort.Strings(rows)
	return rows
}

// genStream makes a random two-source stream: out-of-order records within
// bounds, deletes, re-inserts, same-ts overwrites, late records, malformed
// lines and replays of earlier records; and feeds the model as it goes.
func genStream(r *rand.Rand, m *model, n int) []string {
	var lines []string
	base := int64(1_800_000_000_000_000)
	clock := map[string]int64{"s1": base, "s2": base}
	for i := 0; i < n; i++ {
		src := []string{"s1", "s2"}[r.Intn(2)]
		switch p := r.Intn(100); {
		case p < 8: // watermark, sometimes backwards (a no-op)
			w := clock[src] - int64(r.Intn(3_000))
			lines = append(lines, fmt.Sprintf(`{"source":%q,"op":"watermark","ts":%d}`, src, w))
			if w > m.w[src] {
				m.w[src] = w
			}
		case p < 11: // malformed
			lines = append(lines, []string{`{"source":"s1","op":`, `{"source":"s9","table":"a","op":"upsert","ts":5,"data":{"k":"x"}}`,
				`{"source":"s1","table":"a","op":"upsert","ts":5,"data":{"k":"x","v":"nan"}}`}[r.Intn(3)])
		case p < 20: // two writes of one row at one ts: the later wins
			clock["s1"] += int64(r.Intn(1_000))
			k := fmt.Sprintf("k%d", r.Intn(12))
			for _, v := range []int{r.Intn(100), 100 + r.Intn(100)} {
				line := fmt.Sprintf(`{"source":"s1","table":"a","op":"upsert","ts":%d,"data":{"k":%q,"v":%d}}`, clock["s1"], k, v)
				lines = append(lines, line)
				replayInto(m, line)
			}
		case p < 23 && len(lines) > 0: // replay an earlier line
			old := lines[r.Intn(len(lines))]
			lines = append(lines, old)
			replayInto(m, old)
		default:
			clock[src] += int64(r.Intn(1_000))
			ts := clock[src] - int64(r.Intn(4_000)) // out of order, sometimes late
			if r.Intn(10) == 0 {
				ts = clock[src] // same ts as others: overwrites
			}
			var line string
			del := r.Intn(5) == 0
			if src == "s1" {
				k := fmt.Sprintf("k%d", r.Intn(12))
				if del {
					line = fmt.Sprintf(`{"source":"s1","table":"a","op":"delete","ts":%d,"key":{"k":%q}}`, ts, k)
				} else {
					line = fmt.Sprintf(`{"source":"s1","table":"a","op":"upsert","ts":%d,"data":{"k":%q,"v":%d}}`, ts, k, r.Intn(1000)-500)
				}
			} else {
				k, j := r.Intn(5), []string{"x", "y"}[r.Intn(2)]
				if del {
					line = fmt.Sprintf(`{"source":"s2","table":"b","op":"delete","ts":%d,"key":{"k":%d,"j":%q}}`, ts, k, j)
				} else if r.Intn(4) == 0 {
					line = fmt.Sprintf(`{"source":"s2","table":"b","op":"upsert","ts":%d,"data":{"k":%d,"j":%q}}`, ts, k, j)
				} else {
					line = fmt.Sprintf(`{"source":"s2","table":"b","op":"upsert","ts":%d,"data":{"k":%d,"j":%q,"x":%g}}`, ts, k, j, float64(r.Intn(10000))/8)
				}
			}
			lines = append(lines, line)
			replayInto(m, line)
		}
	}
	// Close both sources at the end so everything is sealed.
	for _, s := range []string{"s1", "s2"} {
		w := clock[s] + 10_000
		lines = append(lines, fmt.Sprintf(`{"source":%q,"op":"watermark","ts":%d}`, s, w))
		m.w[s] = w
	}
	return lines
}

// replayInto applies one data line to the model, exactly as the contract
// says: late records (ts <= W) are rejected, others become versions.
func replayInto(m *model, line string) {
	var src, table, op, key, row string
	var ts int64
	switch {
	case strings.Contains(line, `"op":"watermark"`):
		var w int64
		fmt.Sscanf(line[strings.Index(line, `"ts":`)+5:], "%d", &w)
		src = line[11:13]
		if w > m.w[src] {
			m.w[src] = w
		}
		return
	case !strings.HasPrefix(line, `{"source":"s`) || strings.Contains(line, `"s9"`) || strings.Contains(line, `"nan"`) || !strings.Contains(line, `"ts":`):
		return
	}
	src = line[11:13]
	table = line[24:25]
	op = "upsert"
	if strings.Contains(line, `"op":"delete"`) {
		op = "delete"
	}
	fmt.Sscanf(line[strings.Index(line, `"ts":`)+5:], "%d", &ts)
	if ts <= m.w[src] {
		return // late
	}
	if table == "a" {
		var v int
		rest := strings.SplitN(line, `"k":"`, 2)[1]
		k := rest[:strings.IndexByte(rest, '"')]
		if op == "upsert" {
			fmt.Sscanf(strings.SplitN(line, `"v":`, 2)[1], "%d", &v)
			row = fmt.Sprintf("%s,%d", k, v)
		}
		key = k
	} else {
		var k int
		fmt.Sscanf(strings.SplitN(line, `"k":`, 2)[1], "%d", &k)
		jrest := strings.SplitN(line, `"j":"`, 2)[1]
		j := jrest[:1]
		key = fmt.Sprintf("%d/%s", k, j)
		if op == "upsert" {
			x := ""
			if strings.Contains(line, `"x":`) {
				var f float64
				fmt.Sscanf(strings.SplitN(line, `"x":`, 2)[1], "%g", &f)
				x = types.FormatFloat(f)
			}
			row = fmt.Sprintf("%d,%s,%s", k, j, x)
		}
	}
	m.tables[table][key] = append(m.tables[table][key], modelVersion{ts: ts, row: row})
}

const propSchema = `CREATE SOURCE s1; CREATE SOURCE s2;
CREATE TABLE a (k VARCHAR PRIMARY KEY, v BIGINT) SOURCE s1;
CREATE TABLE b (k BIGINT, j VARCHAR, x DOUBLE, PRIMARY KEY (k, j)) SOURCE s2;`

func engineAt(t *testing.T, e *engine.Engine, table string, ts int64) []string {
	t.Helper()
	cols := map[string]string{"a": "k, v", "b": "k, j, x"}[table]
	order := map[string]string{"a": "k", "b": "k, j"}[table]
	r, err := e.Exec(context.Background(), fmt.Sprintf("SELECT %s FROM %s AS OF %d ORDER BY %s", cols, table, ts, order), query.Options{})
	if err != nil {
		t.Fatalf("AS OF %d: %v", ts, err)
	}
	defer r.Release()
	var b bytes.Buffer
	if err := query.WriteCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")[1:]
	sort.Strings(lines) // the model sorts textually
	return lines
}

// engineRows runs a query and returns its CSV rows sorted (no header).
func engineRows(t *testing.T, e *engine.Engine, sql string) []string {
	t.Helper()
	r, err := e.Exec(context.Background(), sql, query.Options{})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer r.Release()
	var b bytes.Buffer
	if err := query.WriteCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")[1:]
	sort.Strings(lines)
	return lines
}

func loadInto(t *testing.T, e *engine.Engine, lines []string) {
	t.Helper()
	if _, err := e.Load(context.Background(), strings.NewReader(strings.Join(lines, "\n")+"\n"), "stream"); err != nil {
		t.Fatal(err)
	}
}

func TestPropertyAgainstReferenceModel(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		r := rand.New(rand.NewSource(seed))
		m := newModel()
		lines := genStream(r, m, 400)
		// Probe instants: every watermark the model reached plus random ones.
		probes := []int64{m.g()}
		for i := 0; i < 12; i++ {
			probes = append(probes, 1_800_000_000_000_000+int64(r.Intn(int(m.g()-1_800_000_000_000_000+1))))
		}
		variants := []struct {
			name   string
			batch  int
			reopen bool
			twice  bool
			ckpt   bool // checkpoint every table after every 40 lines (and reopen)
		}{{"batch-default", 0, false, false, false}, {"batch1", 1, false, false, false}, {"batch7-reopen", 7, true, false, false},
			{"replayed-twice", 50, false, true, false}, {"checkpoints-reopen", 5, true, false, true}}
		for _, v := range variants {
			dir := t.TempDir()
			opts := engine.Options{BatchSize: v.batch}
			if v.ckpt {
				opts.CheckpointMin = -1 // taken by the test, not in the background
			}
			e, err := engine.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.ExecScript(context.Background(), propSchema, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if v.ckpt {
				for i := 0; i < len(lines); i += 40 {
					loadInto(t, e, lines[i:min(i+40, len(lines))])
					if err := e.Checkpoint(); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				loadInto(t, e, lines)
			}
			if v.twice {
				loadInto(t, e, lines)
			}
			if v.reopen {
				e.Close()
				if e, err = engine.Open(dir, opts); err != nil {
					t.Fatal(err)
				}
			}
			if v.ckpt {
				n := 0
				for _, tb := range []string{"a", "b"} {
					tbl, err := e.Catalog().Table(tb)
					if err != nil {
						t.Fatal(err)
					}
					at, _ := e.Store().CheckpointList(tbl)
					n += len(at)
				}
				if n < 10 {
					t.Fatalf("seed %d: only %d checkpoints taken", seed, n)
				}
				if rows := engineRows(t, e, "SELECT table_name, checkpoint, has_changes FROM ttq_checkpoints"); len(rows) != n {
					t.Fatalf("seed %d: ttq_checkpoints has %d rows, want %d: %v", seed, len(rows), n, rows)
				}
			}
			if g := e.Watermark(); g != m.g() {
				t.Fatalf("seed %d %s: G = %d, model %d", seed, v.name, g, m.g())
			}
			for _, ts := range probes {
				for _, tb := range []string{"a", "b"} {
					got, want := engineAt(t, e, tb, ts), m.at(tb, ts)
					if strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Fatalf("seed %d %s: %s AS OF %d:\ngot  %v\nwant %v", seed, v.name, tb, ts, got, want)
					}
				}
			}
			// History ranges and per-table times against the model.
			for i := 0; i+1 < len(probes); i += 2 {
				t1, t2 := min(probes[i], probes[i+1]), max(probes[i], probes[i+1])
				got := engineRows(t, e, fmt.Sprintf("SELECT k, v, _valid_from, _valid_to FROM a FOR SYSTEM_TIME BETWEEN %d AND %d", t1, t2))
				if want := m.history("a", t1, t2); strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("seed %d %s: a BETWEEN %d AND %d:\ngot  %v\nwant %v", seed, v.name, t1, t2, got, want)
				}
				got = engineRows(t, e, fmt.Sprintf("SELECT o.k, o.v, n.v FROM a FOR SYSTEM_TIME AS OF %d o JOIN a n ON o.k = n.k AS OF %d", t1, t2))
				if want := m.selfJoin("a", t1, t2); strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("seed %d %s: a AS OF %d joined with a AS OF %d:\ngot  %v\nwant %v", seed, v.name, t1, t2, got, want)
				}
			}
			e.Close()
		}
	}
}
