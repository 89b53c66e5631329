package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"ttq/engine"
	"ttq/query"
	"ttq/timeline"
)

// countEnds returns how many messages each partition holds once msgs are
// produced (a watermark goes to every partition of its topic).
func countEnds(msgs []msg) map[string]int64 {
	ends := map[string]int64{}
	for _, m := range msgs {
		if m.part >= 0 {
			ends[fmt.Sprintf("%s/%d", m.topic, m.part)]++
			continue
		}
		for p := int32(0); p < topicPartsOf(m.topic); p++ {
			ends[fmt.Sprintf("%s/%d", m.topic, p)]++
		}
	}
	return ends
}

var wmRe = regexp.MustCompile(`"op":"watermark","ts":(\d+)`)

// watermarkTimes lists every distinct watermark value in msgs, ascending.
func watermarkTimes(msgs []msg) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, m := range msgs {
		if sm := wmRe.FindSubmatch(m.value); sm != nil {
			ts, _ := strconv.ParseInt(string(sm[1]), 10, 64)
			if !seen[ts] {
				seen[ts] = true
				out = append(out, ts)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// sqlCSV runs q and renders its result as CSV.
func sqlCSV(t *testing.T, e *engine.Engine, q string) string {
	t.Helper()
	res, err := e.Exec(context.Background(), q, query.Options{})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var b strings.Builder
	if err := query.WriteCSV(&b, res); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestReplicaDeterminism: two independent stores consume the same topics —
// two sources, multi-partition, watermarks on every partition, deletes, late
// records, poison, a tombstone and a record for the wrong source. Replica A
// runs one daemon throughout with batches of 500; replica B uses batches of
// 3 and is restarted many times (cleanly, or by closing its store under the
// daemon) while the stream is still being produced. Once both have caught
// up they must agree at every sealed T: every watermark value of the
// stream and random instants up to G, plus the rejects and G itself. Both
// must also equal the same stream loaded from a file.
func TestReplicaDeterminism(t *testing.T) {
	const steps = 1500
	s := genStream(7, steps)
	// a pricing envelope on the inventory topic: wrong_source on both replicas
	foreign := msg{"inv.updates", 1, []byte(fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"product_id":"X","price":1,"currency":"INR"}}`, t0+500_000))}
	s.msgs = append(s.msgs[:len(s.msgs)/3], append([]msg{foreign}, s.msgs[len(s.msgs)/3:]...)...)
	ends := countEnds(s.msgs)

	c := newCluster(t)
	addrs := c.ListenAddrs()

	dirA := filepath.Join(t.TempDir(), "a")
	dirB := filepath.Join(t.TempDir(), "b")
	eA := openEngine(t, dirA)
	defer eA.Close()
	execScript(t, eA, ddl)
	eB := openEngine(t, dirB)
	execScript(t, eB, ddl)

	// the producer runs on its own, in chunks, while B restarts
	const chunks = 25
	produced := make(chan error, 1)
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			produced <- err
			return
		}
		defer cl.Close()
		for k := 0; k < chunks; k++ {
			var recs []*kgo.Record
			for _, m := range s.msgs[k*len(s.msgs)/chunks : (k+1)*len(s.msgs)/chunks] {
				if m.part >= 0 {
					recs = append(recs, &kgo.Record{Topic: m.topic, Partition: m.part, Value: m.value})
					continue
				}
				for p := int32(0); p < topicPartsOf(m.topic); p++ {
					recs = append(recs, &kgo.Record{Topic: m.topic, Partition: p, Value: m.value})
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := cl.ProduceSync(ctx, recs...).FirstErr()
			cancel()
			if err != nil {
				produced <- err
				return
			}
			time.Sleep(40 * time.Millisecond) // pacing, so B restarts mid-stream
		}
		produced <- nil
	}()

	rA := startDaemon(t, eA, addrs, 500)

	total := func(off map[string]int64) (n int64) {
		for _, v := range off {
			n += v
		}
		return n
	}
	var want int64
	for _, n := range ends {
		want += n
	}
	producing := true
	restarts, midStream := 0, 0
	deadline := time.Now().Add(90 * time.Second)
	for {
		if producing {
			select {
			case err := <-produced:
				if err != nil {
					t.Fatalf("produce: %v", err)
				}
				producing = false
			default:
			}
		}
		if !producing && caughtUp(eB, ends) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica B did not catch up: %d of %d messages after %d restarts", total(eB.Offsets()), want, restarts)
		}
		r := startDaemon(t, eB, addrs, 3)
		before := total(eB.Offsets())
		step := int64(30 + restarts*13%70)
		waitFor(t, "replica B to make progress", 30*time.Second, func() bool {
			n := total(eB.Offsets())
			return n >= want || n >= before+step
		})
		if producing {
			midStream++
		}
		restarts++
		if restarts%2 == 0 {
			// unclean: the store closes under the running daemon
			if err := eB.Close(); err != nil {
				t.Fatal(err)
			}
			r.cancel()
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
				t.Fatal("daemon B did not stop after its store closed")
			}
			if r.err != nil && !errors.Is(r.err, engine.ErrClosed) {
				t.Fatalf("Run after close: %v", r.err)
			}
		} else {
			r.stop(t)
			if err := eB.Close(); err != nil {
				t.Fatal(err)
			}
		}
		eB = openEngine(t, dirB)
	}
	defer eB.Close()
	waitFor(t, "replica A to catch up", 60*time.Second, func() bool { return caughtUp(eA, ends) })
	rA.stop(t)
	if restarts < 8 || midStream < 3 {
		t.Fatalf("%d restarts of B, %d while producing; the test meant many, mid-stream", restarts, midStream)
	}

	gA, gB := eA.Watermark(), eB.Watermark()
	if gA != s.finalG || gB != s.finalG {
		t.Fatalf("G: A %s, B %s, want %s", timeline.Format(gA), timeline.Format(gB), timeline.Format(s.finalG))
	}
	ts := watermarkTimes(s.msgs)
	rng := rand.New(rand.NewSource(99))
	for i := 0; i < 40; i++ {
		ts = append(ts, t0-5_000_000+rng.Int63n(gA-t0+5_000_001))
	}
	ts = append(ts, gA)
	for _, at := range ts {
		if at > gA {
			t.Fatalf("instant %s is not sealed (G %s)", timeline.Format(at), timeline.Format(gA))
		}
	}
	ansA, ansB := answers(t, eA, testTables, ts), answers(t, eB, testTables, ts)
	if ansA != ansB {
		t.Fatalf("replicas differ at some sealed T:\n%s", firstDiff(ansA, ansB))
	}
	// and both equal the file replica (the foreign record is wrong_source
	// only on Kafka, so the file does not carry it)
	ref := fileReplica(t, s)
	if ansF := answers(t, ref, testTables, ts); ansA != ansF {
		t.Fatalf("replica A differs from the file replica:\n%s", firstDiff(ansA, ansF))
	}

	const rq = "SELECT source, reason, COUNT(*) AS n FROM ttq_rejects GROUP BY source, reason ORDER BY source, reason"
	if a, b := sqlCSV(t, eA, rq), sqlCSV(t, eB, rq); a != b {
		t.Fatalf("ttq_rejects counts differ:\n--- A\n%s--- B\n%s", a, b)
	}
	const dq = "SELECT origin, source, table_name, reason, message, record FROM ttq_rejects ORDER BY origin"
	if a, b := sqlCSV(t, eA, dq), sqlCSV(t, eB, dq); a != b {
		t.Fatalf("ttq_rejects differ:\n%s", firstDiff(a, b))
	}
	if a, b := eA.RejectCounts(), eB.RejectCounts(); !reflect.DeepEqual(a, b) {
		t.Fatalf("reject counters differ: A %v, B %v", a, b)
	}
	if n, _ := countRejects(t, eA); n != s.rejects+1 {
		t.Fatalf("%d rejects, want %d (late, poison) + 1 (wrong_source)", n, s.rejects)
	}
	if got := eA.RejectCounts()["pricing"]["wrong_source"] + eA.RejectCounts()["inventory"]["wrong_source"]; got != 1 {
		t.Fatalf("wrong_source rejects: %v", eA.RejectCounts())
	}
	for _, src := range []string{"pricing", "inventory"} {
		_, a := sourceW(eA, src)
		_, b := sourceW(eB, src)
		if a != b {
			t.Errorf("%s: A applied %d, B %d", src, a, b)
		}
	}
	t.Logf("%d sealed instants compared; B restarted %d times (%d while producing)", len(ts), restarts, midStream)
}

// firstDiff shows the first line where two renderings differ, with context.
func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	q := ""
	for i := 0; i < len(la) && i < len(lb); i++ {
		if strings.HasPrefix(la[i], "-- ") {
			q = la[i]
		}
		if la[i] != lb[i] {
			return fmt.Sprintf("%s\nline %d:\n  A: %s\n  B: %s", q, i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("lengths differ: %d and %d lines", len(la), len(lb))
}
