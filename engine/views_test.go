package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ttq/engine"
	"ttq/precompute"
	"ttq/query"
)

const viewSchema = `CREATE SOURCE s1; CREATE SOURCE s2; CREATE SOURCE s3;
CREATE TABLE a (k VARCHAR PRIMARY KEY, v BIGINT, j BIGINT) SOURCE s1;
CREATE TABLE b (k BIGINT, j VARCHAR, x DOUBLE, PRIMARY KEY (k, j)) SOURCE s2;
CREATE TABLE c (id BIGINT PRIMARY KEY, name VARCHAR) SOURCE s3;`

// viewDefs are the views of the property test; %s is where AS OF goes to
// run the defining query on the base tables.
var viewDefs = map[string]string{
	"vleft":   "SELECT a.k, a.v, c.name FROM a LEFT JOIN c ON c.id = a.j %s",
	"vthree":  "SELECT a.k, b.j, b.x, c.name FROM a JOIN b ON b.k = a.j JOIN c ON c.id = b.k %s WHERE b.x > 10",
	"vleft3":  "SELECT a.k, b.j, a.v + 1 AS v1, c.name FROM a LEFT JOIN b ON b.k = a.j LEFT JOIN c ON c.id = b.k %s",
	"vgroup":  "SELECT a.j, COUNT(*) AS n, SUM(a.v) AS s, MIN(a.v) AS lo, MAX(a.v) AS hi FROM a %s GROUP BY a.j",
	"vgjoin":  "SELECT c.name, COUNT(*) AS n, SUM(b.x) AS s, MIN(b.x) AS lo, MAX(b.x) AS hi, AVG(b.x) AS av FROM b JOIN c ON c.id = b.k %s GROUP BY c.name HAVING COUNT(*) > 1",
	"vglobal": "SELECT COUNT(*) AS n, SUM(a.v) AS s, MAX(a.v) AS hi FROM a %s",
	// Groups of root rows reached through an index (a.j): the epoch reads
	// the roots at prev too, where the index's rows (at B) do not apply.
	"vgidx": "SELECT a.v, COUNT(*) AS n, MAX(c.name) AS nm FROM a JOIN c ON c.id = a.j %s GROUP BY a.v",
}

// genViewStream makes a random three-source stream with out-of-order
// records, deletes, late records and watermarks that advance in jumps.
func genViewStream(r *rand.Rand, n int) []string {
	var lines []string
	base := int64(1_800_000_000_000_000)
	clock := map[string]int64{"s1": base, "s2": base, "s3": base}
	srcs := []string{"s1", "s2", "s3"}
	for i := 0; i < n; i++ {
		src := srcs[r.Intn(3)]
		if r.Intn(100) < 10 {
			lines = append(lines, fmt.Sprintf(`{"source":%q,"op":"watermark","ts":%d}`, src, clock[src]-int64(r.Intn(2_000))))
			continue
		}
		clock[src] += int64(r.Intn(1_500))
		ts := clock[src] - int64(r.Intn(3_000))
		del := r.Intn(5) == 0
		var line string
		switch src {
		case "s1":
			k := fmt.Sprintf("k%d", r.Intn(15))
			if del {
				line = fmt.Sprintf(`{"source":"s1","table":"a","op":"delete","ts":%d,"key":{"k":%q}}`, ts, k)
			} else if r.Intn(6) == 0 {
				line = fmt.Sprintf(`{"source":"s1","table":"a","op":"upsert","ts":%d,"data":{"k":%q,"v":%d}}`, ts, k, r.Intn(100))
			} else {
				line = fmt.Sprintf(`{"source":"s1","table":"a","op":"upsert","ts":%d,"data":{"k":%q,"v":%d,"j":%d}}`, ts, k, r.Intn(100)-20, r.Intn(6))
			}
		case "s2":
			k, j := r.Intn(6), []string{"x", "y", "z"}[r.Intn(3)]
			if del {
				line = fmt.Sprintf(`{"source":"s2","table":"b","op":"delete","ts":%d,"key":{"k":%d,"j":%q}}`, ts, k, j)
			} else {
				line = fmt.Sprintf(`{"source":"s2","table":"b","op":"upsert","ts":%d,"data":{"k":%d,"j":%q,"x":%g}}`, ts, k, j, float64(r.Intn(200))/4)
			}
		default:
			id := r.Intn(6)
			if del {
				line = fmt.Sprintf(`{"source":"s3","table":"c","op":"delete","ts":%d,"key":{"id":%d}}`, ts, id)
			} else {
				line = fmt.Sprintf(`{"source":"s3","table":"c","op":"upsert","ts":%d,"data":{"id":%d,"name":%q}}`, ts, id, []string{"red", "green", "blue"}[r.Intn(3)])
			}
		}
		lines = append(lines, line)
	}
	for _, s := range srcs {
		lines = append(lines, fmt.Sprintf(`{"source":%q,"op":"watermark","ts":%d}`, s, clock[s]+10_000))
	}
	return lines
}

func csvRows(t *testing.T, e *engine.Engine, sql string) ([]string, error) {
	t.Helper()
	r, err := e.Exec(context.Background(), sql, query.Options{})
	if err != nil {
		return nil, err
	}
	defer r.Release()
	var b bytes.Buffer
	if err := query.WriteCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")[1:]
	sort.Strings(lines)
	return lines, nil
}

const testEpoch = 2_000

// compared counts view/boundary comparisons (nonEmpty: with rows).
var compared, nonEmpty int

// checkViews compares every view with its defining query at every
// boundary in (from, G]; it returns the last boundary checked.
func checkViews(t *testing.T, e *engine.Engine, label string, from int64) int64 {
	t.Helper()
	g := e.Watermark()
	if g < 0 {
		return from
	}
	last := precompute.Floor(g, testEpoch)
	for name, def := range viewDefs {
		v, err := e.Catalog().View(name)
		if err != nil {
			t.Fatal(err)
		}
		start := from + testEpoch
		if start < v.Created {
			start = v.Created
		}
		for b := start; b <= last; b += testEpoch {
			got, err := csvRows(t, e, fmt.Sprintf("SELECT * FROM %s AS OF %d", name, b))
			if err != nil {
				t.Fatalf("%s: %s AS OF %d: %v", label, name, b, err)
			}
			want, err := csvRows(t, e, fmt.Sprintf(def, fmt.Sprintf("AS OF %d", b)))
			if err != nil {
				t.Fatalf("%s: defining query of %s AS OF %d: %v", label, name, b, err)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("%s: view %s AS OF %d:\ngot  %v\nwant %v", label, name, b, got, want)
			}
			compared++
			if len(want) > 0 {
				nonEmpty++
			}
		}
	}
	return last
}

func createViews(t *testing.T, e *engine.Engine) {
	t.Helper()
	for name, def := range viewDefs {
		if _, err := e.Exec(context.Background(), fmt.Sprintf("CREATE VIEW %s AS %s", name, fmt.Sprintf(def, "")), query.Options{}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
}

// TestViewsMatchDefiningQuery is the view invariant under random streams:
// after each load, at every sealed boundary, the view equals its query on
// the base tables AS OF that boundary, also across restarts and for views
// created over existing data.
func TestViewsMatchDefiningQuery(t *testing.T) {
	seeds := int64(4)
	if testing.Short() {
		seeds = 2
	}
	for seed := int64(1); seed <= seeds; seed++ {
		for _, variant := range []string{"fresh", "reopen", "late-create"} {
			r := rand.New(rand.NewSource(seed))
			lines := genViewStream(r, 500)
			dir := t.TempDir()
			opts := engine.Options{BatchSize: 1 + r.Intn(40), EpochLength: testEpoch}
			// Versions written slowly: Load commits the next batch while
			// they are on their way, and epochs must not see half of them.
			slow := func(int) { time.Sleep(300 * time.Microsecond) }
			e, err := engine.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			e.Store().SetWriteHook(slow)
			if err := e.ExecScript(context.Background(), viewSchema, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
				t.Fatal(err)
			}
			label := fmt.Sprintf("seed %d %s", seed, variant)
			if variant != "late-create" {
				createViews(t, e)
			}
			checked := int64(1_800_000_000_000_000 - 10*testEpoch)
			for i := 0; i < len(lines); {
				n := 1 + r.Intn(60)
				if i+n > len(lines) {
					n = len(lines) - i
				}
				loadInto(t, e, lines[i:i+n])
				i += n
				if variant == "late-create" && i > len(lines)/3 && e.Catalog().Views["vleft"] == nil {
					createViews(t, e)
				}
				if variant == "reopen" && r.Intn(3) == 0 {
					e.Close()
					if e, err = engine.Open(dir, opts); err != nil {
						t.Fatal(err)
					}
					e.Store().SetWriteHook(slow)
				}
				if e.Catalog().Views["vleft"] != nil {
					checked = checkViews(t, e, label, checked)
				}
			}
			e.Close()
		}
	}
	t.Logf("compared %d view epochs with their defining queries (%d non-empty)", compared, nonEmpty)
}

func TestViewBeforeCreated(t *testing.T) {
	e, err := engine.Open(t.TempDir(), engine.Options{InMemory: true, EpochLength: testEpoch})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.ExecScript(context.Background(), viewSchema, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
		t.Fatal(err)
	}
	loadInto(t, e, []string{`{"source":"s1","op":"watermark","ts":10000}`, `{"source":"s2","op":"watermark","ts":10000}`, `{"source":"s3","op":"watermark","ts":10500}`})
	createViews(t, e)
	if _, err := csvRows(t, e, "SELECT * FROM vleft AS OF 9999"); !errors.Is(err, precompute.ErrBeforeView) {
		t.Fatalf("AS OF before the view: %v", err)
	}
	if _, err := csvRows(t, e, "SELECT * FROM vleft AS OF 10000"); err != nil {
		t.Fatal(err)
	}
}

// replay applies a change feed to a map of rendered rows and checks, at
// every progress record, that the map is the view AS OF that epoch.
type replay struct {
	t      *testing.T
	e      *engine.Engine
	view   string
	rows   map[string]string
	epochs int
	last   int64
	// reached mirrors last for another goroutine watching a follower.
	reached atomic.Int64
}

func (r *replay) apply(c precompute.Change) error {
	r.t.Helper()
	key := fmt.Sprint(c.Key)
	switch c.Kind {
	case precompute.Upsert:
		vals := make([]string, len(c.Row))
		for i, v := range c.Row {
			if !v.IsNull() {
				vals[i] = v.Text()
			}
		}
		r.rows[key] = strings.Join(vals, ",")
	case precompute.Delete:
		if _, ok := r.rows[key]; !ok {
			r.t.Fatalf("%s: delete of %s, which the feed never sent", r.view, key)
		}
		delete(r.rows, key)
	case precompute.Progress:
		if c.Epoch <= r.last {
			r.t.Fatalf("%s: progress went from %d to %d", r.view, r.last, c.Epoch)
		}
		r.last = c.Epoch
		defer r.reached.Store(c.Epoch)
		want, err := csvRows(r.t, r.e, fmt.Sprintf("SELECT * FROM %s AS OF %d", r.view, c.Epoch))
		if err != nil {
			r.t.Fatal(err)
		}
		var got []string
		for _, row := range r.rows {
			got = append(got, row)
		}
		sort.Strings(got)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			r.t.Fatalf("%s: feed replayed to %d:\ngot  %v\nwant %v", r.view, c.Epoch, got, want)
		}
		r.epochs++
	}
	return nil
}

func TestChangeFeedReplaysView(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	lines := genViewStream(r, 600)
	e, err := engine.Open(t.TempDir(), engine.Options{InMemory: true, EpochLength: testEpoch, BatchSize: 25})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.ExecScript(context.Background(), viewSchema, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
		t.Fatal(err)
	}
	createViews(t, e)
	// Follow one view while the stream loads.
	ctx, cancel := context.WithCancel(context.Background())
	followed := &replay{t: t, e: e, view: "vthree", rows: map[string]string{}, last: -1 << 62}
	followed.reached.Store(-1 << 62)
	done := make(chan error, 1)
	go func() {
		done <- precompute.Changes(ctx, e, "vthree", -1<<62, precompute.Follow, followed.apply)
	}()
	loadInto(t, e, lines)
	final, _ := e.ViewProgress("vthree")
	for followed.reached.Load() < final {
		select {
		case err := <-done:
			t.Fatalf("follow ended early: %v", err)
		default:
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow: %v", err)
	}
	// Every view, replayed from the start.
	for name := range viewDefs {
		rp := &replay{t: t, e: e, view: name, rows: map[string]string{}, last: -1 << 62}
		p, _ := e.ViewProgress(name)
		if err := precompute.Changes(context.Background(), e, name, -1<<62, p, rp.apply); err != nil {
			t.Fatal(err)
		}
		if rp.last != p || rp.epochs < 2 {
			t.Fatalf("%s: feed ended at %d after %d epochs, progress %d", name, rp.last, rp.epochs, p)
		}
	}
	t.Logf("follow mode checked %d epochs", followed.epochs)
}

// BenchmarkViewEpochScale measures closing one epoch of a 3-table join
// view over 100k rows per table with 100 to 100k changed price rows, and a
// full recompute of the view at the same boundary (reported as
// full-ms). TTQ_VIEW_CPUPROFILE=file profiles the timed epochs only.
func BenchmarkViewEpochScale(b *testing.B) {
	n := 100_000 // rows per table; TTQ_VIEW_ROWS sets it (333334 gives 1M base rows)
	if v, err := strconv.Atoi(os.Getenv("TTQ_VIEW_ROWS")); err == nil && v > 0 {
		n = v
	}
	for _, c := range []int{100, 1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("rows%d/changed%d", n, c), func(b *testing.B) {
			vb := openViewBench(b, n)
			e, ctx := vb.e, context.Background()
			// The full recompute, at the sealed boundary, outside the
			// profile: the profile shows the epochs only.
			v, err := e.Catalog().View("docs")
			if err != nil {
				b.Fatal(err)
			}
			m, err := precompute.NewMaintainer(e.Store(), e.Catalog(), v)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if _, err := m.Recompute(ctx, vb.ts); err != nil {
				b.Fatal(err)
			}
			full := time.Since(start)
			// Epochs before the clock starts: the first epoch after a
			// maintainer starts builds its join indexes and view-row
			// directory from the tables (reported as warmup-ms), later ones
			// do not; and for the next few Badger is still flushing the
			// bulk load's memtables in the background, which slows the
			// first epochs after a load of 1M rows by up to 2x (reported as
			// settle-ms, their mean). The timed epochs are the steady state.
			vb.change(1<<20, c)
			warm := vb.closeEpoch()
			var settle time.Duration
			for i := 1; i <= settleEpochs; i++ {
				vb.change(1<<20+i, c)
				settle += vb.closeEpoch()
			}
			if prof := os.Getenv("TTQ_VIEW_CPUPROFILE"); prof != "" {
				f, err := os.Create(prof)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				b.Cleanup(pprof.StopCPUProfile)
				defer pprof.StopCPUProfile()
				pprof.StartCPUProfile(f)
			}
			b.ResetTimer()
			var total, cpu time.Duration
			for it := 0; it < b.N; it++ {
				b.StopTimer()
				vb.change(it, c)
				b.StartTimer()
				cpu0 := cpuTime()
				total += vb.closeEpoch()
				cpu += cpuTime() - cpu0
			}
			b.ReportMetric(float64(warm.Microseconds())/1000, "warmup-ms")
			b.ReportMetric(float64(settle.Microseconds())/1000/settleEpochs, "settle-ms")
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/epoch")
			b.ReportMetric(float64(full.Microseconds())/1000, "full-ms")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/epoch")
		})
	}
}

// settleEpochs is how many epochs BenchmarkViewEpochScale closes, untimed,
// after the first one and before it measures.
const settleEpochs = 5

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestViewLargeEpochs checks epochs large enough for the parallel reads
// and the chunked recompute (thousands of roots), with changes through an
// index (listings.product_id moves), deletes of joined rows and of roots,
// and a restart (the change log starts over from the store).
func TestViewLargeEpochs(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(dir, engine.Options{NoSync: true, BatchSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()
	ctx := context.Background()
	const def = "SELECT l.listing_id, l.title, p.price, s.warehouse, s.qty FROM listings l JOIN prices p ON p.product_id = l.product_id LEFT JOIN stock s ON s.product_id = l.product_id %s"
	schema := `CREATE SOURCE s; CREATE TABLE listings (listing_id BIGINT PRIMARY KEY, product_id BIGINT, title VARCHAR) SOURCE s;
CREATE TABLE prices (product_id BIGINT PRIMARY KEY, price DOUBLE) SOURCE s;
CREATE TABLE stock (product_id BIGINT, warehouse VARCHAR, qty BIGINT, PRIMARY KEY (product_id, warehouse)) SOURCE s;
CREATE VIEW docs AS ` + fmt.Sprintf(def, "")
	if err := e.ExecScript(ctx, schema, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
		t.Fatal(err)
	}
	const n = 12_000
	r := rand.New(rand.NewSource(7))
	var sb strings.Builder
	up := func(ts int64, table string, data string) {
		fmt.Fprintf(&sb, `{"source":"s","table":%q,"op":"upsert","ts":%d,"data":{%s}}`+"\n", table, ts, data)
	}
	del := func(ts int64, table string, key string) {
		fmt.Fprintf(&sb, `{"source":"s","table":%q,"op":"delete","ts":%d,"key":{%s}}`+"\n", table, ts, key)
	}
	ts := int64(1_000_000)
	for i := 0; i < n; i++ {
		up(ts, "listings", fmt.Sprintf(`"listing_id":%d,"product_id":%d,"title":"t%d"`, i, i%(n/2), i))
		up(ts, "prices", fmt.Sprintf(`"product_id":%d,"price":%d`, i, i%500))
		up(ts, "stock", fmt.Sprintf(`"product_id":%d,"warehouse":"w%d","qty":%d`, i%(n/2), i%3, i%7))
	}
	var bounds []int64
	for round := 0; round < 6; round++ {
		if round == 3 {
			e.Close()
			if e, err = engine.Open(dir, engine.Options{NoSync: true, BatchSize: 4096}); err != nil {
				t.Fatal(err)
			}
		}
		ts += 1_000_000
		// A round's changes (after ts) are sealed by the next round's
		// watermark: since the reopen, the epochs of rounds 2, 3 and 4.
		changes := 6000
		if round == 3 {
			changes = 100 // an epoch recomputed root by root
		}
		if round == 2 || round == 4 {
			// Every price a listing joins: the epoch reaches every root
			// and recomputes the view whole.
			for k := 0; k < n/2; k++ {
				up(ts+int64(r.Intn(900_000)), "prices", fmt.Sprintf(`"product_id":%d,"price":%d`, k, r.Intn(1000)))
			}
		}
		for i := 0; i < changes; i++ {
			k := r.Intn(n)
			at := ts + int64(r.Intn(900_000))
			switch r.Intn(10) {
			case 0:
				up(at, "listings", fmt.Sprintf(`"listing_id":%d,"product_id":%d,"title":"m%d"`, k, r.Intn(n), round))
			case 1:
				del(at, "stock", fmt.Sprintf(`"product_id":%d,"warehouse":"w%d"`, k, r.Intn(3)))
			case 2:
				del(at, "listings", fmt.Sprintf(`"listing_id":%d`, k))
			case 3:
				del(at, "prices", fmt.Sprintf(`"product_id":%d`, k))
			default:
				up(at, "prices", fmt.Sprintf(`"product_id":%d,"price":%d`, k, r.Intn(1000)))
			}
		}
		fmt.Fprintf(&sb, `{"source":"s","op":"watermark","ts":%d}`+"\n", ts)
		if _, err := e.Load(ctx, strings.NewReader(sb.String()), "round"); err != nil {
			t.Fatal(err)
		}
		sb.Reset()
		bounds = append(bounds, ts)
	}
	// The epochs of rounds 2 and 4 were recomputed whole, 3 root by root;
	// the statistics of the epochs before the reopen were kept with the
	// view's progress.
	var modes []bool
	for _, st := range e.ViewStats("docs") {
		modes = append(modes, st.Full)
	}
	if len(modes) < 6 || fmt.Sprint(modes[len(modes)-3:]) != "[true false true]" {
		t.Errorf("epochs recomputed whole: %v, want at least 6 (across the reopen) ending [true false true]", modes)
	}
	if rows := engineRows(t, e, "SELECT COUNT(*) FROM ttq_epochs WHERE view = 'docs' AND rows_changed IS NOT NULL"); len(rows) != 1 || rows[0] != fmt.Sprint(len(modes)) {
		t.Errorf("ttq_epochs has %v epochs with statistics, want %d", rows, len(modes))
	}
	for _, b := range bounds {
		got, err := csvRows(t, e, fmt.Sprintf("SELECT * FROM docs AS OF %d", b))
		if err != nil {
			t.Fatal(err)
		}
		want, err := csvRows(t, e, fmt.Sprintf(def, fmt.Sprintf("AS OF %d", b)))
		if err != nil {
			t.Fatal(err)
		}
		if len(want) < n/2 {
			t.Fatalf("AS OF %d: only %d rows", b, len(want))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("view docs AS OF %d differs from its query: %d rows, want %d", b, len(got), len(want))
		}
	}
}

// TestExecParsedTwice runs one parsed statement twice, as the server does
// while it waits for G: refused before its instant is sealed, answered
// after, with a statement of the same shape (other literals, the same
// cached tree shape) run in between.
func TestExecParsedTwice(t *testing.T) {
	e, err := engine.Open(t.TempDir(), engine.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if err := e.ExecScript(ctx, `CREATE SOURCE s; CREATE TABLE p (id BIGINT PRIMARY KEY, price DOUBLE) SOURCE s`, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := 0; i < 20; i++ {
		lines = append(lines, fmt.Sprintf(`{"source":"s","table":"p","op":"upsert","ts":%d,"data":{"id":%d,"price":%d}}`, 100+i, i, i))
	}
	loadInto(t, e, append(lines, `{"source":"s","op":"watermark","ts":150}`))
	rows := func(r *query.Result, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		var b bytes.Buffer
		if err := query.WriteCSV(&b, r); err != nil {
			t.Fatal(err)
		}
		return strings.Split(b.String(), "\n")
	}
	const later = "SELECT id, price FROM p AS OF 300 WHERE price > 3 ORDER BY id"
	rows(e.Exec(ctx, "SELECT id, price FROM p AS OF 120 WHERE price > 1 ORDER BY id", query.Options{})) // the shape is learned
	p := e.Parse(later)
	defer p.Release()
	if _, err := e.ExecParsed(ctx, p, query.Options{}); !errors.Is(err, engine.ErrNotSealed) {
		t.Fatalf("before G reaches 300: %v, want ErrNotSealed", err)
	}
	mid := rows(e.Exec(ctx, "SELECT id, price FROM p AS OF 140 WHERE price > 15 ORDER BY id", query.Options{}))
	loadInto(t, e, []string{`{"source":"s","table":"p","op":"upsert","ts":200,"data":{"id":5,"price":99}}`, `{"source":"s","op":"watermark","ts":400}`})
	got := rows(e.ExecParsed(ctx, p, query.Options{}))
	want := rows(e.Exec(ctx, later, query.Options{}))
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) < 10 {
		t.Fatalf("run again after G moved:\n%v\nwant\n%v", got, want)
	}
	if len(mid) != 6 { // header, ids 16..19, and the final newline
		t.Fatalf("the statement in between: %v", mid)
	}
}

// TestEpochStatsOfViewCreatedEmpty: a view created before anything was
// sealed starts at instant 0 with no rows; ttq_epochs lists no epoch of it
// there (it used to show a 1970-01-01 row of 0 rows), while a view created
// over sealed data lists its backfill at its first boundary.
func TestEpochStatsOfViewCreatedEmpty(t *testing.T) {
	e, err := engine.Open(t.TempDir(), engine.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	exec := func(script string) {
		t.Helper()
		if err := e.ExecScript(ctx, script, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	load := func(lines string) {
		t.Helper()
		if _, err := e.Load(ctx, strings.NewReader(lines), "test"); err != nil {
			t.Fatal(err)
		}
	}
	exec("CREATE SOURCE s; CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT) SOURCE s; CREATE VIEW early AS SELECT k, v FROM t")
	load(`{"source":"s","table":"t","op":"upsert","ts":"2026-01-01T00:00:00Z","data":{"k":1,"v":2}}
{"source":"s","op":"watermark","ts":"2026-01-01T00:00:10Z"}
`)
	exec("CREATE VIEW late AS SELECT k, v FROM t")
	load(`{"source":"s","table":"t","op":"upsert","ts":"2026-01-01T00:00:15Z","data":{"k":2,"v":3}}
{"source":"s","op":"watermark","ts":"2026-01-01T00:00:20Z"}
`)
	got := engineRows(t, e, "SELECT view, epoch, rows_changed FROM ttq_epochs")
	want := []string{
		"early,2026-01-01T00:00:00Z,1",
		"early,2026-01-01T00:00:15Z,1",
		"early,2026-01-01T00:00:20Z,",
		"late,2026-01-01T00:00:10Z,1",
		"late,2026-01-01T00:00:15Z,1",
		"late,2026-01-01T00:00:20Z,",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ttq_epochs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
