package crashtest

import (
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSoak runs the crash test's workload (two sources ingesting, sealed
// answers recorded by two clients, a view closing an epoch on every move of
// G) for TTQ_SOAK (default 30s), restarting the server every TTQ_SOAK_RESTART
// (default a sixth of it),
// by SIGTERM under load (it must exit 0) or by SIGKILL in turn. After each
// restart everything is verified as in TestCrashSafety: the store equals the
// acknowledged batches, sealed answers are unchanged and agree with them,
// the view equals its query. Meanwhile the server's resident memory
// (VmRSS) is sampled; past each process's first seconds of warm-up, the
// last third of the samples may not average more than 1.5 times the first
// third.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary for tens of seconds")
	}
	total := envDuration(t, "TTQ_SOAK", 30*time.Second)
	segment := envDuration(t, "TTQ_SOAK_RESTART", total/6)
	const warmup = 2 * time.Second
	queriers := 2
	if os.Getenv("TTQ_SOAK_QUERIERS") != "" {
		queriers = envInt(t, "TTQ_SOAK_QUERIERS", 2) % 100 // 100 means none
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %s with a restart every %s", seed, total, segment)
	r := &crashRun{t: t, dir: t.TempDir(), m: newModel(seed), rng: rand.New(rand.NewPCG(seed, 1)), seed: seed}
	r.clock.Store(baseTime)
	r.restart()
	r.setup()

	type sample struct {
		at time.Duration
		memory
	}
	var samples []sample
	var heap []string // the server's Go heap now and then, for the log
	start := time.Now()
	restarts := 0
	for time.Since(start) < total && !t.Failed() {
		r.cycleN++
		procStart := time.Now()
		cancel, wait := r.load(queriers)
		end := time.Now().Add(segment)
		if stop := start.Add(total); stop.Before(end) {
			end = stop
		}
		for time.Now().Before(end) {
			time.Sleep(250 * time.Millisecond)
			if time.Since(procStart) < warmup {
				continue
			}
			if m, err := r.p.memory(); err == nil {
				samples = append(samples, sample{time.Since(start), m})
			}
			if len(samples)%20 == 1 {
				heap = append(heap, r.c.goHeap())
			}
		}
		if restarts%2 == 0 {
			// A graceful stop under load: in-flight requests finish.
			if err := r.p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
				t.Errorf("SIGTERM under load: %v\n%s", err, r.p.log())
			}
		} else {
			r.p.kill()
		}
		cancel()
		wait()
		r.c.close()
		restarts++
		r.restart()
		r.verify()
	}
	cancel, wait := r.load(0)
	cancel()
	wait()
	if err := r.p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("final SIGTERM: %v", err)
	}

	t.Logf("%s, %d restarts: %d batches acknowledged, %d sealed answers recorded, %d re-read after restarts, all checked against the model",
		time.Since(start).Round(time.Second), restarts, r.stats.acked.Load(), len(r.answers), r.stats.rechecked)
	if len(samples) < 6 {
		t.Fatalf("only %d RSS samples", len(samples))
	}
	third := len(samples) / 3
	avg := func(ss []sample, part func(memory) int64) float64 {
		sum := 0.0
		for _, s := range ss {
			sum += float64(part(s.memory))
		}
		return sum / float64(len(ss)) / 1024
	}
	rss := func(m memory) int64 { return m.rss }
	first, last := avg(samples[:third], rss), avg(samples[len(samples)-third:], rss)
	peak := int64(0)
	for _, s := range samples {
		peak = max(peak, s.rss)
	}
	anon := func(m memory) int64 { return m.anon }
	file := func(m memory) int64 { return m.file }
	t.Logf("RSS: first third %.0f MiB (anonymous %.0f, file-backed %.0f), last third %.0f MiB (%.0f, %.0f): %.2fx; peak %d MiB; %d samples",
		first, avg(samples[:third], anon), avg(samples[:third], file), last, avg(samples[len(samples)-third:], anon), avg(samples[len(samples)-third:], file), last/first, peak>>10, len(samples))
	t.Logf("Go heap of the server (live MiB / in use MiB / idle not yet returned MiB) every 5s: %v", heap)
	if last > 1.5*first {
		t.Errorf("RSS grew: last third %.0f MiB > 1.5 x first third %.0f MiB\n%v", last, first, samples)
	}
}
