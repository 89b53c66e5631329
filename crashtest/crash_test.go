package crashtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestCrashSafety runs the real `ttq serve`, ingests two sources over HTTP
// while querying sealed instants, and kills the server with SIGKILL at random
// points: while ingest requests are being decoded, committed and their views
// brought to the next epoch; between requests; and while the server is still
// recovering from the previous kill. After every restart it checks that
//
//   - G and every source's watermark are at least what any answer showed;
//   - every acknowledged batch is present, and a batch that was in flight is
//     either wholly present or wholly absent once a later watermark passed it;
//   - the store equals the model of acknowledged batches AS OF the new G;
//   - every sealed answer recorded before the kill is unchanged, and each
//     agrees with the model;
//   - the view equals its defining query on the base tables at the boundary;
//   - nothing was rejected.
//
// TTQ_CRASH_KILLS sets the number of kills (default 50), TTQ_CRASH_SEED the
// random seed (default: the time, logged), TTQ_CRASH_PAD bytes of padding
// per row (default none; e.g. 4096 with 500 kills makes Badger flush
// memtables and compact during the run).
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary for tens of seconds")
	}
	kills := envInt(t, "TTQ_CRASH_KILLS", 50)
	if os.Getenv("TTQ_CRASH_PAD") != "" {
		pad = strings.Repeat("x", envInt(t, "TTQ_CRASH_PAD", 1))
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("TTQ_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("TTQ_CRASH_SEED=%q: want a number", v)
		}
		seed = n
	}
	t.Logf("seed %d (TTQ_CRASH_SEED=%d reproduces the schedule)", seed, seed)
	start := time.Now()
	r := &crashRun{t: t, dir: t.TempDir(), m: newModel(seed), rng: rand.New(rand.NewPCG(seed, 1)), seed: seed}
	r.clock.Store(baseTime)
	r.restart()
	r.setup()
	for r.kills() < kills && !t.Failed() {
		r.cycle()
	}
	// A clean stop keeps everything too.
	if err := r.p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("SIGTERM: %v\n%s", err, r.p.log())
	}
	r.restart()
	r.verify()
	// The server took checkpoints (--checkpoint-min 300) while it was
	// killed, and sealed answers read through them matched.
	ckpts, err := r.c.sql("SELECT COUNT(*) FROM ttq_checkpoints WHERE has_changes = true")
	if err != nil || string(ckpts.Rows) == "[[0]]" {
		t.Errorf("no checkpoint with a change list across the run: %v %s", err, ckpts.Rows)
	}
	r.p.stop(syscall.SIGTERM, 30*time.Second)
	epochs := "no views"
	if r.views {
		epochs = fmt.Sprintf("epoch closes seen before idle kills: %s", r.epochs)
	}

	s := &r.stats
	t.Logf("%d kills in %s: %d during load (%d with an ingest request in flight), %d between requests, %d during recovery",
		r.kills(), time.Since(start).Round(time.Millisecond), s.killsLoad, s.killsInFlight, s.killsIdle, s.killsStartup)
	t.Logf("batches: %d acknowledged, %d in flight at a kill found whole, %d found absent; %d sealed answers recorded, %d re-read after restarts; %s; checkpoints with change lists at the end: %s",
		s.acked.Load(), s.pendApplied, s.pendDropped, len(r.answers), s.rechecked, epochs, ckpts.Rows)
}

type crashRun struct {
	t      *testing.T
	dir    string
	m      *model
	rng    *rand.Rand // the orchestrator's; goroutines make their own
	seed   uint64
	clock  atomic.Int64 // timeline: the next batch's time is clock.Add(stepUS)
	views  bool
	epochs string // ttq_epochs summaries, for the log

	p *proc
	c *client

	cycleN   int
	inflight atomic.Int32 // ingest requests sent and not answered

	ansMu   sync.Mutex
	answers []answer

	stats struct {
		killsLoad, killsInFlight, killsIdle, killsStartup int
		pendApplied, pendDropped, rechecked               int
		acked                                             atomic.Int64
	}
}

func (r *crashRun) kills() int {
	return r.stats.killsLoad + r.stats.killsIdle + r.stats.killsStartup
}

func (r *crashRun) restart() {
	r.t.Helper()
	p := spawn(r.t, r.dir, nil, "--epoch", "250ms", "--checkpoint-min", "300", "--checkpoint-poll", "50ms", "--block-cache", blockCache)
	if err := p.waitServing(30 * time.Second); err != nil {
		r.t.Fatal(err)
	}
	r.p, r.c = p, newClient(p.url)
}

// blockCache is the server's block cache in these tests: small enough to
// be warm within the soak test's warm-up, so that what the soak test sees
// grow is not a bounded cache filling (256 MiB by default) but a leak.
const blockCache = "16MiB"

func (r *crashRun) setup() {
	for _, stmt := range splitStatements(crashSchema) {
		if _, err := r.c.sql(stmt); err != nil {
			r.t.Fatal(err)
		}
	}
	if _, err := r.c.sql(viewDDL); err != nil {
		r.t.Logf("no views in this build, epoch close is not exercised: %v", err)
	} else {
		r.views = true
	}
}

// load starts the two ingesters and queriers sealed-answer recorders;
// cancel stops them starting new requests, wait waits for them to return
// (when the server is gone, their requests fail at once).
func (r *crashRun) load(queriers int) (cancel func(), wait func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2 + queriers)
	go r.ingestA(ctx, &wg)
	go r.ingestB(ctx, &wg)
	for q := 0; q < queriers; q++ {
		go r.query(ctx, &wg, rand.New(rand.NewPCG(r.seed, uint64(r.cycleN*8+q)+2)))
	}
	return cancel, wg.Wait
}

// cycle runs load for a random while, kills the server, restarts it and
// verifies everything.
func (r *crashRun) cycle() {
	r.cycleN++
	cancel, wait := r.load(1)
	// A CHECKPOINT now and then, which the kill may land in.
	ckDone := make(chan struct{})
	ckAfter := time.Duration(r.rng.IntN(150)) * time.Millisecond
	ckNow := r.rng.IntN(2) == 0
	go func() {
		defer close(ckDone)
		if !ckNow {
			return
		}
		time.Sleep(ckAfter)
		if _, err := r.c.sql("CHECKPOINT"); err != nil && !errors.Is(err, errTransport) && !strings.Contains(err.Error(), "status 503") {
			r.t.Errorf("cycle %d: CHECKPOINT: %v", r.cycleN, err)
		}
	}()
	time.Sleep(time.Duration(20+r.rng.IntN(280)) * time.Millisecond)
	if r.rng.IntN(5) == 0 {
		// Between requests: let the clients finish, then kill an idle server.
		cancel()
		wait()
		if r.views {
			if res, err := r.c.sql("SELECT COUNT(duration_us), AVG(duration_us), MAX(duration_us) FROM ttq_epochs"); err == nil {
				r.epochs += string(res.Rows) // [count, avg µs, max µs] since the last restart
			}
		}
		r.p.kill()
		r.stats.killsIdle++
	} else {
		if r.inflight.Load() > 0 {
			r.stats.killsInFlight++
		}
		r.p.kill()
		r.stats.killsLoad++
		cancel()
		wait()
	}
	<-ckDone
	r.c.close()
	if r.rng.IntN(4) == 0 {
		// Kill it again while it opens the store, finishes the last batch's
		// intent and catches the views up.
		p := spawn(r.t, r.dir, nil, "--epoch", "250ms", "--checkpoint-min", "300", "--checkpoint-poll", "50ms", "--block-cache", blockCache)
		time.Sleep(time.Duration(r.rng.IntN(80)) * time.Millisecond)
		p.kill()
		r.stats.killsStartup++
	}
	r.restart()
	r.verify()
}

func (r *crashRun) ingestA(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for ctx.Err() == nil {
		b := r.m.newA(r.clock.Add(stepUS))
		ans, ok := r.send(b.id, b.body(), b.applied())
		if !ok {
			return
		}
		g, _ := parseTime(ans.Global)
		r.m.ackA(b, g)
	}
}

func (r *crashRun) ingestB(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for ctx.Err() == nil {
		b := r.m.newB(r.clock.Add(stepUS))
		ans, ok := r.send(b.id, b.body(), b.applied())
		if !ok {
			return
		}
		g, _ := parseTime(ans.Global)
		r.m.ackB(b, g)
	}
}

// send posts one batch; ok means it was acknowledged as wholly applied.
func (r *crashRun) send(id int64, body []byte, applied int64) (ingestAnswer, bool) {
	r.inflight.Add(1)
	ans, code, err := r.c.ingest(body)
	r.inflight.Add(-1)
	if err != nil {
		if code != 0 && code != http.StatusServiceUnavailable { // 503: shutting down
			r.t.Errorf("batch %d: %v", id, err)
		}
		return ans, false // killed or stopping: the batch stays in flight until verify
	}
	if ans.Applied != applied || ans.Watermarks != 1 || ans.Rejected != 0 {
		r.t.Errorf("batch %d: answer %+v, want %d applied, 1 watermark, 0 rejected", id, ans, applied)
		return ans, false
	}
	r.stats.acked.Add(1)
	return ans, true
}

// query records answers AS OF random sealed instants.
func (r *crashRun) query(ctx context.Context, wg *sync.WaitGroup, rng *rand.Rand) {
	defer wg.Done()
	kinds := []string{"ea", "kb"}
	if r.views {
		kinds = append(kinds, "view")
	}
	for ctx.Err() == nil {
		time.Sleep(time.Duration(5+rng.IntN(10)) * time.Millisecond)
		g := r.m.G()
		if g == none {
			continue
		}
		at := baseTime + rng.Int64N(g-baseTime+1)
		a, err := r.record(kinds[rng.IntN(len(kinds))], at)
		if err != nil {
			if !errors.Is(err, errTransport) && !strings.Contains(err.Error(), "status 503") {
				r.t.Errorf("sealed query: %v", err)
			}
			return
		}
		r.ansMu.Lock()
		r.answers = append(r.answers, a)
		r.ansMu.Unlock()
	}
}

func (r *crashRun) record(kind string, at int64) (answer, error) {
	q := map[string]string{"ea": qEA, "kb": qKB, "view": qView}[kind]
	a := answer{sql: fmt.Sprintf(q, at), kind: kind, at: at, cycle: r.cycleN}
	res, err := r.c.sql(a.sql)
	if err != nil {
		return a, err
	}
	a.rows = string(res.Rows)
	if w, err := parseTime(res.Watermark); err == nil {
		r.m.sawG(w)
	}
	return a, nil
}

// verify runs after every restart.
func (r *crashRun) verify() {
	t := r.t
	t.Helper()
	// No crash loses G or a source's watermark.
	g, ws, err := r.c.watermarks()
	if err != nil {
		t.Fatal(err)
	}
	r.m.mu.Lock()
	seenG, acked := r.m.seenG, maps.Clone(r.m.ackedW)
	r.m.mu.Unlock()
	if g < seenG {
		t.Errorf("cycle %d: G after restart %d < G %d already shown to clients", r.cycleN, g, seenG)
	}
	for src, w := range acked {
		if ws[src].W < w {
			t.Errorf("cycle %d: source %s watermark after restart %d < acknowledged %d", r.cycleN, src, ws[src].W, w)
		}
	}

	// Pass both watermarks beyond every batch ever sent: a batch that was in
	// flight is now sealed if it was committed, and late (never applied) if not.
	tr := r.clock.Add(stepUS)
	ans, _, err := r.c.ingest(fmt.Appendf(nil, `{"source":"a","op":"watermark","ts":%d}`+"\n"+`{"source":"b","op":"watermark","ts":%d}`+"\n", tr, tr))
	if err != nil || ans.Watermarks != 2 {
		t.Fatalf("cycle %d: advance watermarks: %v %+v", r.cycleN, err, ans)
	}
	if g, _ := parseTime(ans.Global); g != tr {
		t.Fatalf("cycle %d: G %d after both watermarks moved to %d", r.cycleN, g, tr)
	}
	r.m.mu.Lock()
	r.m.ackedW["a"], r.m.ackedW["b"], r.m.seenG = tr, tr, tr
	r.m.mu.Unlock()

	// Resolve the batches that were in flight: all or nothing.
	ea, err := r.record("ea", tr)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := r.record("kb", tr)
	if err != nil {
		t.Fatal(err)
	}
	r.resolve(ea, kb, tr, ws)
	// The applied counters, stored in the same commit as the rows, agree.
	_, ws2, err := r.c.watermarks()
	if err != nil {
		t.Fatal(err)
	}
	for src, n := range r.m.appliedCounts() {
		if ws2[src].Applied != n {
			t.Errorf("cycle %d: source %s counts %d updates applied, the batches found hold %d", r.cycleN, src, ws2[src].Applied, n)
		}
	}

	// The store equals the model now, and so do the answers recorded
	// during the last cycle (and the view, at its boundary).
	now := []answer{ea, kb}
	if r.views {
		v, err := r.record("view", tr)
		if err != nil {
			t.Fatal(err)
		}
		now = append(now, v)
		b := floorEpoch(tr)
		got, err1 := r.c.sql(fmt.Sprintf(viewRows, b))
		want, err2 := r.c.sql(fmt.Sprintf(viewBase, b))
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if string(got.Rows) != string(want.Rows) {
			t.Errorf("cycle %d: view jv AS OF %d differs from its query on the base tables:\n view %.400s\n base %.400s", r.cycleN, b, got.Rows, want.Rows)
		}
	}
	r.ansMu.Lock()
	r.answers = append(r.answers, now...)
	all := r.answers
	r.ansMu.Unlock()
	var recheck []answer
	for i := range all {
		a := &all[i]
		if !a.model {
			if err := r.m.checkAgainstModel(*a); err != nil {
				t.Errorf("cycle %d: sealed answer recorded in cycle %d disagrees with the acknowledged batches: %v", r.cycleN, a.cycle, err)
			}
			a.model = true
		}
		if i >= len(all)-len(now) {
			continue // just read
		}
		if a.cycle >= r.cycleN-1 || r.rng.IntN(len(all)) < 8 {
			recheck = append(recheck, *a)
		}
	}
	if len(recheck) > maxRecheck {
		r.rng.Shuffle(len(recheck), func(i, j int) { recheck[i], recheck[j] = recheck[j], recheck[i] })
		recheck = recheck[:maxRecheck]
	}
	for _, a := range recheck {
		res, err := r.c.sql(a.sql)
		if err != nil {
			t.Fatalf("cycle %d: re-read %s: %v", r.cycleN, a.sql, err)
		}
		if string(res.Rows) != a.rows {
			t.Errorf("cycle %d: sealed answer changed across a kill: %s\n before (cycle %d): %.400s\n after: %.400s", r.cycleN, a.sql, a.cycle, a.rows, res.Rows)
		}
		r.stats.rechecked++
	}
	res, err := r.c.sql("SELECT COUNT(*) FROM ttq_rejects")
	if err != nil || string(res.Rows) != "[[0]]" {
		t.Errorf("cycle %d: rejects: %v %s", r.cycleN, err, res.Rows)
	}
}

// maxRecheck bounds the sealed answers read again after one restart (each
// is also checked against the model once, whatever the bound).
const maxRecheck = 150

// resolve decides, from the store AS OF tr, whether each in-flight batch
// was applied, and fails on a batch that is only partly there: some of its
// rows, or its rows without its watermark (ws, read before anything else
// was sent after the restart), or its watermark without its rows.
func (r *crashRun) resolve(ea, kb answer, tr int64, ws map[string]sourceState) {
	t := r.t
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.pendA; p != nil {
		rows, err := intRows([]byte(ea.rows))
		if err != nil {
			t.Fatal(err)
		}
		n := int64(0)
		for _, row := range rows {
			if row[0] == p.id {
				n = row[1]
			}
		}
		if wmApplied := ws["a"].W >= p.ts; wmApplied != (n > 0) {
			t.Errorf("cycle %d: unacknowledged batch %d is half-applied: %d of %d rows, but source a's watermark %d (batch at %d)", r.cycleN, p.id, n, aRows, ws["a"].W, p.ts)
		}
		switch n {
		case 0:
			m.pendA = nil
			r.stats.pendDropped++
		case aRows:
			m.applyALocked(*p)
			r.stats.pendApplied++
		default:
			t.Errorf("cycle %d: unacknowledged batch %d is half-applied: %d of %d rows", r.cycleN, p.id, n, aRows)
			m.pendA = nil
		}
	}
	if p := m.pendB; p != nil {
		rows, err := intRows([]byte(kb.rows))
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]int64{}
		for _, row := range rows {
			got[row[0]] = row[1]
		}
		without := kbOf(m.b, tr)
		with := kbOf(append(m.b[:len(m.b):len(m.b)], *p), tr)
		if wmApplied := ws["b"].W >= p.ts; wmApplied != maps.Equal(got, with) {
			t.Errorf("cycle %d: unacknowledged batch %d is half-applied: rows applied %v, watermark applied %v (source b at %d, batch at %d)", r.cycleN, p.id, !wmApplied, wmApplied, ws["b"].W, p.ts)
		}
		switch {
		case maps.Equal(got, with):
			m.applyBLocked(*p)
			r.stats.pendApplied++
		case maps.Equal(got, without):
			m.pendB = nil
			r.stats.pendDropped++
		default:
			t.Errorf("cycle %d: unacknowledged batch %d (keys %v, delete %d) is half-applied or acknowledged ones are lost: %v",
				r.cycleN, p.id, p.up, p.del, diffMaps("kb", got, with, "k", "batch"))
			m.pendB = nil
		}
	}
}

// splitStatements splits the schema at semicolons (it has no literals).
func splitStatements(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ';' {
			if stmt := s[start:i]; len(stmt) > 0 {
				out = append(out, stmt)
			}
			start = i + 1
		}
	}
	return out
}
