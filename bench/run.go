package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"ttq/engine"
	"ttq/query"
)

// Config is one benchmark run.
type Config struct {
	W         Workload
	Points    int // (key, T) pairs for Q1, Q2, Q4
	Scans     int // T for Q3
	Epochs    int // timed epoch closes of the view (0: none)
	EpochRows int // base rows changed in each
	Dir       string
	Out       string
	Log       io.Writer // progress; nil: none
	// Profile, when set, writes a CPU profile of ttq embedded's timed
	// loop of query ProfQuery to this file (the loop is repeated for at
	// least two seconds).
	Profile   string
	ProfQuery string
}

// Report is what a run measured.
type Report struct {
	Cfg     Config
	Gen     GenStats
	Machine string
	Systems []string
	// Lat[query][system] = sorted latencies.
	Lat map[string]map[string][]time.Duration
	// Ingest[system] = records (upserts and deletes) per second; RSS[system]
	// = peak RSS (bytes) of that system's ingest phase.
	Ingest map[string]float64
	RSS    map[string]int64
	// PeakRSS is the process's peak over the whole run.
	PeakRSS int64
	Checked map[string]int // answers compared per query
	Epochs  *EpochReport   // nil when not measured
}

var queries = []string{"Q1", "Q2", "Q3", "Q4"}

func (c Config) logf(format string, a ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
}

// Run generates the workload, ingests it into every system, checks that all
// answers agree, then times the queries.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "ttq-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	rep := &Report{Cfg: cfg, Machine: machine(), Lat: map[string]map[string][]time.Duration{},
		Ingest: map[string]float64{}, RSS: map[string]int64{}, Checked: map[string]int{}}

	// 1. The workload.
	file := filepath.Join(dir, "workload.ndjson")
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	rep.Gen, err = Generate(f, cfg.W)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	g := rep.Gen
	cfg.logf("workload: %d records (%d deletes), %d watermarks, %.0f MB, G = %d", g.Records, g.Deletes, g.Watermarks, float64(g.Bytes)/1e6, g.End)
	peak := func(name string, fn func() error) error {
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS()
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rep.RSS[name] = peakRSS()
		rep.PeakRSS = max(rep.PeakRSS, rep.RSS[name])
		return nil
	}

	// 2a. ttq embedded: Load from the file, durable.
	var e *engine.Engine
	err = peak("ttq embedded", func() error {
		var err error
		if e, err = engine.Open(filepath.Join(dir, "ttq"), engine.Options{}); err != nil {
			return err
		}
		if err := e.ExecScript(ctx, ddl, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
			return err
		}
		in, err := os.Open(file)
		if err != nil {
			return err
		}
		defer in.Close()
		if cfg.Profile != "" && cfg.ProfQuery == "Load" {
			stop, err := startProfile(cfg.Profile)
			if err != nil {
				return err
			}
			defer stop()
		}
		t0 := time.Now()
		c, err := e.Load(ctx, in, "workload.ndjson")
		el := time.Since(t0)
		if err != nil {
			return err
		}
		if c.Applied != g.Records || c.Rejected != 0 || e.Watermark() != g.End {
			return fmt.Errorf("load: applied %d rejected %d G %d; want %d, 0, %d", c.Applied, c.Rejected, e.Watermark(), g.Records, g.End)
		}
		rep.Ingest["ttq embedded"] = float64(c.Applied) / el.Seconds()
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	cfg.logf("ttq Load: %.0f records/s", rep.Ingest["ttq embedded"])

	// 2b. ttq over HTTP: POST /v1/ingest into a second store; its answers
	// are checked against the first, then it is closed. Queries over HTTP
	// go to a server on the first store.
	err = peak("ttq HTTP", func() error { return httpIngest(ctx, cfg, dir, file, rep, e) })
	if err != nil {
		return nil, err
	}
	cfg.logf("ttq HTTP ingest: %.0f records/s", rep.Ingest["ttq HTTP"])
	hs, stop, err := startServer(ctx, e)
	if err != nil {
		return nil, err
	}
	defer stop()
	if _, err := hs.sql("SELECT 1"); err != nil {
		return nil, err
	}

	// 2c. raw Badger managed mode, same keys, rows and versions.
	pt, _ := e.Catalog().Table("prices")
	lt, _ := e.Catalog().Table("listings")
	var rb *rawBadger
	err = peak("raw Badger", func() error {
		var err error
		if rb, err = openRawBadger(filepath.Join(dir, "badger"), pt, lt); err != nil {
			return err
		}
		in, err := os.Open(file)
		if err != nil {
			return err
		}
		defer in.Close()
		var el time.Duration
		var n int64
		var es []kv
		err = readRecords(in, 8192, func(rs []rec) error {
			es = rb.encode(rs, es) // encoding is not timed: pre-encoded entries
			t0 := time.Now()
			err := rb.write(es)
			el += time.Since(t0)
			n += int64(len(rs))
			return err
		})
		if err != nil {
			return err
		}
		rep.Ingest["raw Badger"] = float64(n) / el.Seconds()
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if rb != nil {
			rb.db.Close()
		}
	}()
	cfg.logf("raw Badger ingest: %.0f records/s", rep.Ingest["raw Badger"])

	// 2d. SQLite history tables, loaded in one transaction.
	var sq *sqliteSys
	err = peak("SQLite", func() error {
		var err error
		if sq, err = openSQLite(filepath.Join(dir, "sqlite.db")); err != nil {
			return err
		}
		in, err := os.Open(file)
		if err != nil {
			return err
		}
		defer in.Close()
		var el time.Duration
		timed := func(fn func() error) error {
			t0 := time.Now()
			err := fn()
			el += time.Since(t0)
			return err
		}
		err = sq.load(func(fn func([]rec) error) error { return readRecords(in, 8192, fn) }, timed)
		if err != nil {
			return err
		}
		rep.Ingest["SQLite"] = float64(g.Records) / el.Seconds()
		return sq.prepare()
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if sq != nil {
			sq.db.Close()
		}
	}()
	cfg.logf("SQLite ingest: %.0f records/s", rep.Ingest["SQLite"])

	// 3. Queries: check, then time.
	systems := []system{&ttqEmbedded{e}, hs, rb, sq}
	for _, s := range systems {
		rep.Systems = append(rep.Systems, s.Name())
	}
	rng := rand.New(rand.NewSource(cfg.W.Seed + 1000))
	randT := func() int64 { return g.UpdStart + rng.Int63n(g.End-g.UpdStart+1) }
	type point struct {
		key    string
		t1, t2 int64
	}
	mk := func(n int, key func() string, span bool) []point {
		ps := make([]point, n)
		for i := range ps {
			ps[i] = point{key: key(), t1: randT()}
			ps[i].t2 = ps[i].t1
			if span {
				ps[i].t2 = min(g.End, ps[i].t1+rng.Int63n(15*60*second))
			}
		}
		return ps
	}
	prod := func() string { return productID(rng.Intn(cfg.W.Products)) }
	list := func() string { return listingID(rng.Intn(cfg.W.Listings)) }
	work := map[string][]point{
		"Q1": mk(cfg.Points, prod, false),
		"Q2": mk(cfg.Points, list, false),
		"Q3": mk(cfg.Scans, func() string { return "" }, false),
		"Q4": mk(cfg.Points, prod, true),
	}
	do := func(s system, q string, p point) (answer, error) {
		switch q {
		case "Q1":
			return s.Q1(p.key, p.t1)
		case "Q2":
			return s.Q2(p.key, p.t1)
		case "Q3":
			return s.Q3(p.t1)
		}
		return s.Q4(p.key, p.t1, p.t2)
	}
	// Every answer of every system, compared with ttq embedded's.
	for _, q := range queries {
		nonEmpty := 0
		for i, p := range work[q] {
			var want answer
			for j, s := range systems {
				got, err := do(s, q, p)
				if err != nil {
					return nil, fmt.Errorf("%s %s (key %q, T %d..%d): %w", s.Name(), q, p.key, p.t1, p.t2, err)
				}
				if j == 0 {
					want = got
					if len(got) > 0 {
						nonEmpty++
					}
					continue
				}
				if d := diff(want, got); d != "" {
					return nil, fmt.Errorf("ANSWERS DIFFER: %s #%d (key %q, T %d..%d): %s says %q, %s says %q: %s",
						q, i, p.key, p.t1, p.t2, systems[0].Name(), want, s.Name(), got, d)
				}
			}
		}
		rep.Checked[q] = len(work[q])
		cfg.logf("%s: %d answers equal on all systems (%d non-empty)", q, len(work[q]), nonEmpty)
		if nonEmpty == 0 && len(work[q]) > 0 {
			return nil, fmt.Errorf("%s: every answer is empty; the check proves nothing", q)
		}
	}
	for _, q := range queries {
		rep.Lat[q] = map[string][]time.Duration{}
		for _, s := range systems {
			ls := make([]time.Duration, 0, len(work[q]))
			for _, p := range work[q] {
				t0 := time.Now()
				if _, err := do(s, q, p); err != nil {
					return nil, err
				}
				ls = append(ls, time.Since(t0))
			}
			if cfg.Profile != "" && q == cfg.ProfQuery && s == systems[0] {
				if err := profileLoop(cfg.Profile, func() error {
					for _, p := range work[q] {
						if _, err := do(s, q, p); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					return nil, err
				}
			}
			sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
			rep.Lat[q][s.Name()] = ls
			cfg.logf("%s %s: median %v p99 %v", q, s.Name(), pct(ls, 0.5), pct(ls, 0.99))
		}
	}
	// 4. Epoch close of a view over this data (ttq only). The other
	// systems are done: closed first, so that their caches and background
	// compactions do not share the process with the timed epochs.
	if cfg.Epochs > 0 {
		err := errors.Join(rb.db.Close(), sq.db.Close())
		rb, sq = nil, nil
		if err != nil {
			return nil, err
		}
		runtime.GC()
		er, err := measureEpochs(ctx, e, cfg, g, cfg.EpochRows, 2, cfg.Epochs)
		if err != nil {
			return nil, fmt.Errorf("epochs: %w", err)
		}
		rep.Epochs = er
		cfg.logf("view: full %v, first epoch %v, %d epochs of %d changed rows: median %v p99 %v, CPU %v each (%d view rows)",
			er.Full, er.First, len(er.Closes), er.Changed, pct(er.Closes, 0.5), pct(er.Closes, 0.99), er.CPU, er.Rows)
	}
	rep.PeakRSS = max(rep.PeakRSS, peakRSS())
	return rep, nil
}

// profileLoop writes a CPU profile of fn, called again and again for at
// least two seconds, to file.
func profileLoop(file string, fn func() error) error {
	stop, err := startProfile(file)
	if err != nil {
		return err
	}
	defer stop()
	for start := time.Now(); time.Since(start) < 2*time.Second; {
		if err := fn(); err != nil {
			return err
		}
	}
	return nil
}

// startProfile starts a CPU profile into file; stop ends it.
func startProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// httpIngest posts the file to a server on a fresh store in chunks of
// about 8 MB, then checks the store agrees with ref.
func httpIngest(ctx context.Context, cfg Config, dir, file string, rep *Report, ref *engine.Engine) error {
	e2, err := engine.Open(filepath.Join(dir, "ttq-http"), engine.Options{})
	if err != nil {
		return err
	}
	defer e2.Close()
	hs, stop, err := startServer(ctx, e2)
	if err != nil {
		return err
	}
	defer stop()
	for _, st := range strings.Split(ddl, ";") {
		if strings.TrimSpace(st) == "" {
			continue
		}
		if _, err := hs.sql(st); err != nil {
			return err
		}
	}
	in, err := os.Open(file)
	if err != nil {
		return err
	}
	defer in.Close()
	br := bufio.NewReaderSize(in, 1<<20)
	var applied int64
	var body []byte
	t0 := time.Now()
	for {
		// A body of whole lines, about 8 MB, read from the file as it goes.
		body = body[:0]
		var rerr error
		for len(body) < 8<<20 {
			var line []byte
			line, rerr = br.ReadSlice('\n')
			body = append(body, line...)
			if rerr == bufio.ErrBufferFull {
				rerr = nil
				continue
			}
			if rerr != nil {
				break
			}
		}
		if rerr != nil && rerr != io.EOF {
			return rerr
		}
		if len(body) > 0 {
			b, err := hs.post("/v1/ingest", "application/x-ndjson", "application/json", body)
			if err != nil {
				return err
			}
			var r struct{ Applied, Rejected int64 }
			if err := jsonUnmarshal(b, &r); err != nil {
				return err
			}
			if r.Rejected != 0 {
				return fmt.Errorf("ingest rejected %d records: %s", r.Rejected, b)
			}
			applied += r.Applied
		}
		if rerr == io.EOF {
			break
		}
	}
	el := time.Since(t0)
	if applied != rep.Gen.Records {
		return fmt.Errorf("HTTP ingest applied %d, want %d", applied, rep.Gen.Records)
	}
	rep.Ingest["ttq HTTP"] = float64(applied) / el.Seconds()
	// The HTTP-ingested store answers as the file-loaded one.
	a, b := &ttqEmbedded{ref}, &ttqEmbedded{e2}
	for _, t := range []int64{rep.Gen.UpdStart, (rep.Gen.UpdStart + rep.Gen.End) / 2, rep.Gen.End} {
		x, err := a.Q3(t)
		if err != nil {
			return err
		}
		y, err := b.Q3(t)
		if err != nil {
			return err
		}
		if d := diff(x, y); d != "" {
			return fmt.Errorf("ANSWERS DIFFER: Q3 at %d: file-loaded %q, HTTP-ingested %q: %s", t, x, y, d)
		}
	}
	return nil
}

// diff returns "" when a and b are equal, fields compared as text or, when
// both are numbers, within a relative 1e-9 (sums in another order).
func diff(a, b answer) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d rows against %d", len(a), len(b))
	}
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		fa, fb := strings.Split(a[i], "|"), strings.Split(b[i], "|")
		if len(fa) != len(fb) {
			return fmt.Sprintf("row %d: %d fields against %d", i, len(fa), len(fb))
		}
		for j := range fa {
			if fa[j] == fb[j] {
				continue
			}
			x, err1 := strconv.ParseFloat(fa[j], 64)
			y, err2 := strconv.ParseFloat(fb[j], 64)
			if err1 != nil || err2 != nil || math.Abs(x-y) > 1e-9*math.Max(math.Abs(x), math.Abs(y)) {
				return fmt.Sprintf("row %d field %d: %q against %q", i, j, fa[j], fb[j])
			}
		}
	}
	return ""
}

func pct(ls []time.Duration, p float64) time.Duration {
	if len(ls) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(ls)))) - 1
	return ls[max(0, min(i, len(ls)-1))]
}

// resetPeakRSS resets the kernel's peak RSS of this process to its current
// RSS (Linux: 5 > /proc/self/clear_refs); a no-op elsewhere.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS reads VmHWM from /proc/self/status, in bytes (0 if unknown).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
