package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"ttq/engine"
	"ttq/ingest"
	"ttq/kafka"
	"ttq/timeline"
)

func sourceW(e *engine.Engine, name string) (w int64, applied int64) {
	_, srcs := e.Watermarks()
	for _, s := range srcs {
		if s.Source == name {
			return s.W, s.Applied
		}
	}
	return timeline.None, 0
}

// TestPartitionWithoutWatermark: a partition that has carried no watermark
// holds its source at "nothing sealed"; lateness is judged per partition.
func TestPartitionWithoutWatermark(t *testing.T) {
	c := newCluster(t)
	cl := newProducer(t, c.ListenAddrs())
	e := openEngine(t, "")
	defer e.Close()
	execScript(t, e, ddl)
	ends := map[string]int64{}
	wm := func(ts int64) []byte { return []byte(fmt.Sprintf(`{"source":"pricing","op":"watermark","ts":%d}`, ts)) }
	up := func(key string, ts int64) []byte {
		return []byte(fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"product_id":%q,"price":1}}`, ts, key))
	}
	produce(t, cl, []msg{{"pricing", 0, wm(t0 + 100)}, {"pricing", 1, wm(t0 + 100)}}, ends)
	startDaemon(t, e, c.ListenAddrs(), 10)
	waitFor(t, "catch-up", 20*time.Second, func() bool { return caughtUp(e, ends) })
	if w, _ := sourceW(e, "pricing"); w != timeline.None {
		t.Fatalf("pricing W = %s with partition 2 silent, want nothing sealed", timeline.Format(w))
	}
	// Partition 2's watermark is lower: the source's is the minimum.
	produce(t, cl, []msg{
		{"pricing", 2, wm(t0 + 50)},
		{"pricing", 2, up("on-2", t0+75)}, // above partition 2's watermark: applied
		{"pricing", 0, up("on-0", t0+75)}, // at or below partition 0's: late
		{"pricing", 0, up("ok-0", t0+101)},
	}, ends)
	waitFor(t, "catch-up", 20*time.Second, func() bool { return caughtUp(e, ends) })
	if w, applied := sourceW(e, "pricing"); w != t0+50 || applied != 2 {
		t.Fatalf("pricing W = %s, applied %d; want %s, 2", timeline.Format(w), applied, timeline.Format(t0+50))
	}
	var rejects []ingest.Reject
	if err := e.Rejects(func(_ uint64, r ingest.Reject) error { rejects = append(rejects, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(rejects) != 1 || rejects[0].Reason != ingest.ReasonLate || rejects[0].Origin != "pricing/0/1" {
		t.Fatalf("rejects = %+v, want one late record from pricing/0/1", rejects)
	}
}

// TestRestartExactlyOnce stops the daemon mid-stream many times, sometimes
// by closing the engine under it, reopens the store, changes the batch
// size, and checks that the result equals the file replica: every version
// applied once, every reject stored once.
func TestRestartExactlyOnce(t *testing.T) {
	const steps = 800
	s := genStream(2, steps)
	c := newCluster(t)
	cl := newProducer(t, c.ListenAddrs())
	dir := filepath.Join(t.TempDir(), "store")
	e := openEngine(t, dir)
	execScript(t, e, ddl)
	ends := map[string]int64{}
	total := func(off map[string]int64) (n int64) {
		for _, v := range off {
			n += v
		}
		return n
	}
	chunks := 4
	cycle := 0
	batches := []int{3, 17, 50, 1}
	for k := 0; k < chunks; k++ {
		lo, hi := k*len(s.msgs)/chunks, (k+1)*len(s.msgs)/chunks
		produce(t, cl, s.msgs[lo:hi], ends)
		var want int64
		for _, n := range ends {
			want += n
		}
		for total(e.Offsets()) < want {
			cycle++
			r := startDaemon(t, e, c.ListenAddrs(), batches[cycle%len(batches)])
			before := total(e.Offsets())
			// let it make some progress, then stop it mid-stream
			waitFor(t, "progress", 20*time.Second, func() bool {
				n := total(e.Offsets())
				return n >= want || n >= before+int64(20+cycle*7%40)
			})
			if cycle%2 == 0 {
				// unclean: the store goes away under the daemon
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				r.cancel()
				select {
				case <-r.done:
				case <-time.After(30 * time.Second):
					t.Fatal("daemon did not stop after the engine closed")
				}
				if r.err != nil && !errors.Is(r.err, engine.ErrClosed) {
					t.Fatalf("Run after close: %v", r.err)
				}
			} else {
				r.stop(t)
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
			}
			e = openEngine(t, dir)
		}
	}
	defer e.Close()
	if cycle < 6 {
		t.Fatalf("only %d restarts; the test meant many", cycle)
	}
	if g := e.Watermark(); g != s.finalG {
		t.Fatalf("G = %s, want %s", timeline.Format(g), timeline.Format(s.finalG))
	}
	ref := fileReplica(t, s)
	ts := sealedTimes(s.finalG, steps)
	if got, want := answers(t, e, testTables, ts), answers(t, ref, testTables, ts); got != want {
		t.Fatalf("answers differ from the file replica after %d restarts:\n--- kafka\n%s\n--- file\n%s", cycle, got, want)
	}
	if n, _ := countRejects(t, e); n != s.rejects {
		t.Fatalf("%d rejects after %d restarts, want %d", n, cycle, s.rejects)
	}
	for _, src := range []string{"pricing", "inventory"} {
		_, got := sourceW(e, src)
		_, want := sourceW(ref, src)
		if got != want {
			t.Errorf("%s: %d versions applied, file replica %d", src, got, want)
		}
	}
	t.Logf("%d restarts", cycle)
}

// TestBrokerRestart: the broker goes away mid-stream; the daemon reports
// retrying, and when a broker comes back on the same address with the same
// log it catches up by itself.
func TestBrokerRestart(t *testing.T) {
	const steps = 300
	s := genStream(3, steps)
	logDir := t.TempDir()
	c1 := newCluster(t, kfake.DataDir(logDir))
	addrs := c1.ListenAddrs()
	var port int
	if _, err := fmt.Sscanf(addrs[0][strings.LastIndexByte(addrs[0], ':')+1:], "%d", &port); err != nil {
		t.Fatal(err)
	}
	ends := map[string]int64{}
	half := len(s.msgs) / 2
	cl := newProducer(t, addrs)
	produce(t, cl, s.msgs[:half], ends)
	cl.Close()

	e := openEngine(t, "")
	defer e.Close()
	execScript(t, e, ddl)
	r := startDaemon(t, e, addrs, 32)
	waitFor(t, "catch-up", 20*time.Second, func() bool { return caughtUp(e, ends) })
	waitFor(t, "connected", 20*time.Second, func() bool { return r.d.Status().State == kafka.StateConnected })

	c1.Close()
	waitFor(t, "retrying", 20*time.Second, func() bool { return r.d.Status().State == kafka.StateRetrying })
	g := e.Watermark()
	if _, err := e.Exec(context.Background(), fmt.Sprintf("SELECT * FROM prices AS OF '%s'", timeline.Format(g)), queryOpts); err != nil {
		t.Fatalf("sealed data not queryable during the outage: %v", err)
	}

	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(logDir))
	if err != nil {
		t.Fatalf("restart the broker on port %d: %v", port, err)
	}
	defer c2.Close()
	produce(t, newProducer(t, c2.ListenAddrs()), s.msgs[half:], ends)
	waitFor(t, "catch-up after the outage", 30*time.Second, func() bool { return caughtUp(e, ends) })
	waitFor(t, "connected again", 20*time.Second, func() bool { return r.d.Status().State == kafka.StateConnected })
	r.stop(t)

	ref := fileReplica(t, s)
	ts := sealedTimes(s.finalG, steps)
	if got, want := answers(t, e, testTables, ts), answers(t, ref, testTables, ts); got != want {
		t.Fatalf("answers differ from the file replica:\n--- kafka\n%s\n--- file\n%s", got, want)
	}
	if n, _ := countRejects(t, e); n != s.rejects {
		t.Fatalf("%d rejects, want %d", n, s.rejects)
	}
}
