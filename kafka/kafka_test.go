package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"ttq/engine"
	"ttq/ingest"
	"ttq/kafka"
	"ttq/query"
	"ttq/timeline"
)

// t0 is 2026-11-25T10:00:00Z on the timeline.
const t0 = int64(1795600800000000)

const ddl = `
CREATE SOURCE pricing;
CREATE TABLE prices (product_id VARCHAR PRIMARY KEY, price DOUBLE, currency VARCHAR) SOURCE pricing;
CREATE SOURCE inventory WITH (topic = 'inv.updates');
CREATE TABLE stock (product_id VARCHAR, warehouse VARCHAR, qty BIGINT, PRIMARY KEY (product_id, warehouse)) SOURCE inventory;
`

// topicParts is how many partitions each test topic has.
var topicParts = map[string]int32{"pricing": 3, "inv.updates": 2}

// msg is one Kafka message of a generated stream; part -1 sends it to every
// partition of the topic (a watermark).
type msg struct {
	topic string
	part  int32
	value []byte // nil: a tombstone
}

// stream is a generated workload: the messages in production order and the
// same stream as an NDJSON file (watermarks once, tombstones absent).
type stream struct {
	msgs    []msg
	file    []string
	rejects int // records the contract rejects (late, poison)
	finalG  int64
}

func keyPart(key string, n int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int32(h.Sum32() % uint32(n))
}

// genStream makes n steps of updates for pricing and inventory, with
// watermarks to every partition, some late records, a poison message and a
// tombstone. Rows are partitioned by key, as a keyed producer does.
func genStream(seed int64, n int) stream {
	rng := rand.New(rand.NewSource(seed))
	var s stream
	lastW := map[string]int64{"pricing": timeline.None, "inventory": timeline.None}
	topic := map[string]string{"pricing": "pricing", "inventory": "inv.updates"}
	add := func(src string, part int32, line string) {
		s.msgs = append(s.msgs, msg{topic: topic[src], part: part, value: []byte(line)})
		s.file = append(s.file, line)
	}
	for i := 0; i < n; i++ {
		ts := t0 + int64(i)*1000 + rng.Int63n(4000) - 2000
		switch {
		case i%20 == 19: // a watermark for both sources, to every partition
			for _, src := range []string{"pricing", "inventory"} {
				w := t0 + int64(i)*1000 - 5000
				lastW[src] = w
				add(src, -1, fmt.Sprintf(`{"source":%q,"op":"watermark","ts":%d}`, src, w))
			}
		case i == n/2: // poison
			add("pricing", 1, `{"source":"pricing","table":"prices","op":"upsert","ts":`)
			s.rejects++
		case i == n/3: // a tombstone: skipped, not in the file
			s.msgs = append(s.msgs, msg{topic: "pricing", part: 2})
		case rng.Intn(2) == 0:
			key := fmt.Sprintf("P%d", rng.Intn(15))
			late := lastW["pricing"] != timeline.None && rng.Intn(25) == 0
			if late {
				ts = lastW["pricing"]
				s.rejects++
			}
			p := keyPart(key, topicParts["pricing"])
			if rng.Intn(5) == 0 {
				add("pricing", p, fmt.Sprintf(`{"source":"pricing","table":"prices","op":"delete","ts":%d,"key":{"product_id":%q}}`, ts, key))
			} else {
				add("pricing", p, fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"product_id":%q,"price":%d.5,"currency":"INR"}}`, ts, key, rng.Intn(1000)))
			}
		default:
			pid, wh := fmt.Sprintf("P%d", rng.Intn(10)), fmt.Sprintf("W%d", rng.Intn(3))
			late := lastW["inventory"] != timeline.None && rng.Intn(25) == 0
			if late {
				ts = lastW["inventory"]
				s.rejects++
			}
			p := keyPart(pid+"|"+wh, topicParts["inv.updates"])
			if rng.Intn(6) == 0 {
				add("inventory", p, fmt.Sprintf(`{"source":"inventory","table":"stock","op":"delete","ts":%d,"key":{"product_id":%q,"warehouse":%q}}`, ts, pid, wh))
			} else {
				add("inventory", p, fmt.Sprintf(`{"source":"inventory","table":"stock","op":"upsert","ts":%d,"data":{"product_id":%q,"warehouse":%q,"qty":%d}}`, ts, pid, wh, rng.Intn(100)))
			}
		}
	}
	s.finalG = t0 + int64(n+10)*1000
	for _, src := range []string{"pricing", "inventory"} {
		add(src, -1, fmt.Sprintf(`{"source":%q,"op":"watermark","ts":%d}`, src, s.finalG))
	}
	return s
}

// newCluster starts an in-process Kafka broker with the test topics.
func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	base := []kfake.Opt{kfake.NumBrokers(1)}
	for topic, n := range topicParts {
		base = append(base, kfake.SeedTopics(n, topic))
	}
	c, err := kfake.NewCluster(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newProducer(t *testing.T, addrs []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce sends msgs in order and returns how many messages each
// partition ("topic/p") holds afterwards.
func produce(t *testing.T, cl *kgo.Client, msgs []msg, ends map[string]int64) {
	t.Helper()
	var recs []*kgo.Record
	for _, m := range msgs {
		parts := []int32{m.part}
		if m.part < 0 {
			parts = parts[:0]
			for p := int32(0); p < topicPartsOf(m.topic); p++ {
				parts = append(parts, p)
			}
		}
		for _, p := range parts {
			recs = append(recs, &kgo.Record{Topic: m.topic, Partition: p, Value: m.value})
			ends[fmt.Sprintf("%s/%d", m.topic, p)]++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

var extraParts = map[string]int32{}

func topicPartsOf(topic string) int32 {
	if n, ok := extraParts[topic]; ok {
		return n
	}
	return topicParts[topic]
}

func openEngine(t *testing.T, dir string) *engine.Engine {
	t.Helper()
	opts := engine.Options{InMemory: dir == ""}
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func execScript(t *testing.T, e *engine.Engine, script string) {
	t.Helper()
	err := e.ExecScript(context.Background(), script, query.Options{}, func(string, *query.Result) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
}

// running is a daemon started by a test.
type running struct {
	d      *kafka.Daemon
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned, with its error in err
	err    error
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop")
	}
}

func startDaemon(t *testing.T, e *engine.Engine, addrs []string, batch int, opts ...func(*kafka.Config)) *running {
	t.Helper()
	cfg := kafka.Config{
		Brokers: addrs, BatchSize: batch, BatchWait: 5 * time.Millisecond,
		MetadataInterval: 150 * time.Millisecond, BackoffMin: 20 * time.Millisecond, BackoffMax: 300 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	d, err := kafka.New(e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = d.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.Errorf("the daemon did not stop within 30s of its context ending (goroutines above)")
		}
	})
	return r
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// caughtUp reports whether e stored every offset in ends.
func caughtUp(e *engine.Engine, ends map[string]int64) bool {
	off := e.Offsets()
	for s, n := range ends {
		if off[s] < n {
			return false
		}
	}
	return true
}

// answers renders every table AS OF each of ts as CSV, for comparing
// replicas.
func answers(t *testing.T, e *engine.Engine, tables map[string]string, ts []int64) string {
	t.Helper()
	var b strings.Builder
	for _, at := range ts {
		for _, name := range []string{"prices", "stock", "orders"} {
			order, ok := tables[name]
			if !ok {
				continue
			}
			q := fmt.Sprintf("SELECT * FROM %s AS OF '%s' ORDER BY %s", name, timeline.Format(at), order)
			res, err := e.Exec(context.Background(), q, query.Options{})
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			fmt.Fprintf(&b, "-- %s\n", q)
			if err := query.WriteCSV(&b, res); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b.String()
}

var testTables = map[string]string{"prices": "product_id", "stock": "product_id, warehouse"}

// sealedTimes spreads n instants over the stream up to g.
func sealedTimes(g int64, steps int) []int64 {
	var out []int64
	for i := 0; i <= 8; i++ {
		out = append(out, t0+int64(i)*int64(steps)*1000/8)
	}
	return append(out, g)
}

// fileReplica loads the stream from NDJSON into a fresh in-memory engine.
func fileReplica(t *testing.T, s stream) *engine.Engine {
	t.Helper()
	e := openEngine(t, "")
	t.Cleanup(func() { e.Close() })
	execScript(t, e, ddl)
	if _, err := e.Load(context.Background(), strings.NewReader(strings.Join(s.file, "\n")+"\n"), "file"); err != nil {
		t.Fatal(err)
	}
	if g := e.Watermark(); g != s.finalG {
		t.Fatalf("file replica G = %s, want %s", timeline.Format(g), timeline.Format(s.finalG))
	}
	return e
}

func countRejects(t *testing.T, e *engine.Engine) (n int, origins []string) {
	t.Helper()
	err := e.Rejects(func(_ uint64, r ingest.Reject) error {
		n++
		origins = append(origins, r.Origin)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, origins
}

// TestAnswersEqualFile: two sources on multi-partition topics, with
// watermarks on every partition, give the same answers at every sealed T
// as the same stream loaded from a file; the poison message is a reject
// with its topic/partition/offset, and later messages still apply.
func TestAnswersEqualFile(t *testing.T) {
	const steps = 600
	s := genStream(1, steps)
	c := newCluster(t)
	ends := map[string]int64{}
	produce(t, newProducer(t, c.ListenAddrs()), s.msgs, ends)

	e := openEngine(t, "")
	defer e.Close()
	execScript(t, e, ddl)
	r := startDaemon(t, e, c.ListenAddrs(), 64)
	waitFor(t, "the daemon to catch up", 30*time.Second, func() bool { return caughtUp(e, ends) })
	// Once no message is queued, the applier finishes the batch in flight:
	// the status shows every offset while the daemon waits for more.
	waitFor(t, "the status to show every offset", 10*time.Second, func() bool {
		for _, p := range r.d.Status().Partitions {
			if p.Offset != ends[p.Stream] {
				return false
			}
		}
		return true
	})
	r.stop(t)

	if g := e.Watermark(); g != s.finalG {
		t.Fatalf("G = %s, want %s", timeline.Format(g), timeline.Format(s.finalG))
	}
	ref := fileReplica(t, s)
	ts := sealedTimes(s.finalG, steps)
	if got, want := answers(t, e, testTables, ts), answers(t, ref, testTables, ts); got != want {
		t.Fatalf("answers differ from the file replica:\n--- kafka\n%s\n--- file\n%s", got, want)
	}
	n, origins := countRejects(t, e)
	if n != s.rejects {
		t.Fatalf("%d rejects, want %d", n, s.rejects)
	}
	found := false
	for _, o := range origins {
		if strings.HasPrefix(o, "pricing/1/") {
			found = true
		}
		if len(strings.Split(o, "/")) != 3 {
			t.Errorf("origin %q is not topic/partition/offset", o)
		}
	}
	if !found {
		t.Fatalf("no reject from pricing/1 (the poison message): %v", origins)
	}
	st := r.d.Status()
	if len(st.Partitions) != 5 {
		t.Fatalf("status has %d partitions, want 5: %+v", len(st.Partitions), st.Partitions)
	}
	for _, p := range st.Partitions {
		if p.Offset != ends[p.Stream] {
			t.Errorf("status %s offset %d, want %d", p.Stream, p.Offset, ends[p.Stream])
		}
	}
}

// TestPoisonMessage: an unparseable message becomes a reject stored
// verbatim with its topic/partition/offset, and the partition moves on.
func TestPoisonMessage(t *testing.T) {
	c := newCluster(t)
	cl := newProducer(t, c.ListenAddrs())
	ends := map[string]int64{}
	poison := []byte("\x00\xffnot json")
	produce(t, cl, []msg{
		{"pricing", 0, []byte(fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"product_id":"A","price":1}}`, t0+1))},
		{"pricing", 0, poison},
		{"pricing", 0, []byte(fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"product_id":"B","price":2}}`, t0+2))},
	}, ends)
	e := openEngine(t, "")
	defer e.Close()
	execScript(t, e, ddl)
	startDaemon(t, e, c.ListenAddrs(), 100, func(c *kafka.Config) { c.Group = "ttq-lag" })
	waitFor(t, "catch-up", 20*time.Second, func() bool { return caughtUp(e, ends) })
	// the applied offsets reach the consumer group, for lag tools
	waitFor(t, "the group commit", 20*time.Second, func() bool {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = "ttq-lag"
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "pricing", []int32{0}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), cl)
		return err == nil && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 && resp.Topics[0].Partitions[0].Offset == 3
	})
	var rejects []ingest.Reject
	if err := e.Rejects(func(_ uint64, r ingest.Reject) error { rejects = append(rejects, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(rejects) != 1 || rejects[0].Origin != "pricing/0/1" || !bytes.Equal(rejects[0].Record, poison) || rejects[0].Reason != ingest.ReasonInvalidJSON {
		t.Fatalf("rejects = %+v", rejects)
	}
	if got := e.Offsets()["pricing/0"]; got != 3 {
		t.Fatalf("pricing/0 next offset %d, want 3", got)
	}
	_, src := e.Watermarks()
	for _, sw := range src {
		if sw.Source == "pricing" && sw.Applied != 2 {
			t.Fatalf("pricing applied %d, want 2", sw.Applied)
		}
	}
}

var queryOpts = query.Options{}
