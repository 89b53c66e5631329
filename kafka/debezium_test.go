package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"ttq/ingest"
	"ttq/query"
	"ttq/timeline"
)

const dbzDDL = `
CREATE SOURCE shop WITH (topic = 'dbz.orders', format = 'debezium', watermark = 'bounded', max_delay = '1ms');
CREATE TABLE orders (id BIGINT PRIMARY KEY, customer VARCHAR, total DOUBLE, created TIMESTAMP) SOURCE shop;
`

// dbzSchemaJSON is the Kafka Connect schema Debezium puts in the wrapper;
// "created" is an io.debezium.time.Timestamp (milliseconds).
const dbzSchemaJSON = `{"type":"struct","fields":[
 {"type":"struct","optional":true,"field":"before","fields":[{"type":"int64","field":"id"},{"type":"string","field":"customer"},{"type":"double","field":"total"},{"type":"int64","name":"io.debezium.time.Timestamp","field":"created"}]},
 {"type":"struct","optional":true,"field":"after","fields":[{"type":"int64","field":"id"},{"type":"string","field":"customer"},{"type":"double","field":"total"},{"type":"int64","name":"io.debezium.time.Timestamp","field":"created"}]},
 {"type":"struct","field":"source","fields":[{"type":"int64","field":"ts_ms"},{"type":"string","field":"table"}]},
 {"type":"string","field":"op"}],"name":"dbserver1.inventory.orders.Envelope"}`

func dbzEvent(wrap bool, op, before, after, source string) []byte {
	p := fmt.Sprintf(`{"before":%s,"after":%s,"source":%s,"op":%q,"ts_ms":1}`, before, after, source, op)
	if wrap {
		p = `{"schema":` + dbzSchemaJSON + `,"payload":` + p + `}`
	}
	return []byte(p)
}

func dbzSrc(field string, us int64) string {
	if field == "ts_ms" {
		return fmt.Sprintf(`{"version":"2.7.0","connector":"postgresql","db":"shop","table":"orders","ts_ms":%d}`, us/1000)
	}
	return fmt.Sprintf(`{"version":"2.7.0","connector":"postgresql","db":"shop","table":"orders","ts_ms":%d,"ts_us":%d}`, us/1000, us)
}

// TestDebezium reads Debezium change events with and without the schema
// wrapper: creates, an update, deletes by "before" and by the message key,
// tombstones, and an unsupported op that becomes a reject.
func TestDebezium(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "dbz.orders"))
	cl := newProducer(t, c.ListenAddrs())
	e := openEngine(t, "")
	defer e.Close()
	execScript(t, e, dbzDDL)

	// 2026-11-25T10:00:00.123Z: in milliseconds where the wrapper's schema
	// says io.debezium.time.Timestamp, else in microseconds as ttq reads
	// a bare integer
	row := func(id int, who string, total float64) string {
		return fmt.Sprintf(`{"id":%d,"customer":%q,"total":%v,"created":%d}`, id, who, total, t0+123000)
	}
	rowMS := func(id int, who string, total float64) string {
		return fmt.Sprintf(`{"id":%d,"customer":%q,"total":%v,"created":%d}`, id, who, total, t0/1000+123)
	}
	type rec struct {
		part       int32
		key, value []byte
	}
	recs := []rec{
		{0, nil, dbzEvent(true, "c", "null", rowMS(1, "alice", 10.5), dbzSrc("ts_ms", t0+1000))},
		{0, nil, dbzEvent(false, "u", row(1, "alice", 10.5), row(1, "alice", 12), dbzSrc("ts_us", t0+5000))},
		{1, nil, dbzEvent(false, "c", "null", row(2, "bob", 7), dbzSrc("ts_ms", t0+2000))},
		{1, []byte(`{"id":2}`), nil}, // a tombstone
		{0, nil, dbzEvent(true, "d", rowMS(1, "alice", 12), "null", dbzSrc("ts_ms", t0+10000))},
		{0, []byte(`{"id":1}`), nil},
		{1, []byte(`{"schema":{"type":"struct"},"payload":{"id":2}}`), dbzEvent(false, "d", "null", "null", dbzSrc("ts_us", t0+12000))},
		{1, nil, dbzEvent(false, "t", "null", "null", dbzSrc("ts_us", t0+13000))}, // truncate: rejected
		{0, nil, dbzEvent(false, "r", "null", row(3, "carol", 1), dbzSrc("ts_us", t0+100000))},
		{1, nil, dbzEvent(true, "r", "null", rowMS(4, "dave", 2), dbzSrc("ts_ms", t0+100000))},
	}
	ends := map[string]int64{}
	var krs []*kgo.Record
	for _, r := range recs {
		krs = append(krs, &kgo.Record{Topic: "dbz.orders", Partition: r.part, Key: r.key, Value: r.value})
		ends[fmt.Sprintf("dbz.orders/%d", r.part)]++
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, e, c.ListenAddrs(), 4)
	waitFor(t, "catch-up", 20*time.Second, func() bool { return caughtUp(e, ends) })

	// bounded: W = min over partitions of (max ts - 1ms)
	if g, want := e.Watermark(), t0+99000; g != want {
		t.Fatalf("G = %s, want %s", timeline.Format(g), timeline.Format(want))
	}
	at := func(ts int64) string {
		res, err := e.Exec(context.Background(), fmt.Sprintf("SELECT * FROM orders AS OF '%s' ORDER BY id", timeline.Format(ts)), query.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := query.WriteCSV(&b, res); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	const hdr = "id,customer,total,created\n"
	for _, c := range []struct {
		ts   int64
		want string
	}{
		{t0 + 1500, hdr + "1,alice,10.5,2026-11-25T10:00:00.123Z\n"},
		{t0 + 3000, hdr + "1,alice,10.5,2026-11-25T10:00:00.123Z\n2,bob,7,2026-11-25T10:00:00.123Z\n"},
		{t0 + 6000, hdr + "1,alice,12,2026-11-25T10:00:00.123Z\n2,bob,7,2026-11-25T10:00:00.123Z\n"},
		{t0 + 11000, hdr + "2,bob,7,2026-11-25T10:00:00.123Z\n"},
		{t0 + 99000, hdr},
	} {
		if got := at(c.ts); got != c.want {
			t.Errorf("AS OF %s:\n%s\nwant:\n%s", timeline.Format(c.ts), got, c.want)
		}
	}
	var rejects []ingest.Reject
	if err := e.Rejects(func(_ uint64, r ingest.Reject) error { rejects = append(rejects, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(rejects) != 1 {
		t.Fatalf("rejects = %+v, want the truncate", rejects)
	}
	rj := rejects[0]
	if rj.Origin != "dbz.orders/1/3" || rj.Reason != ingest.ReasonBadOp || rj.Source != "shop" ||
		!strings.Contains(rj.Message, `op \"t\" is not supported`) || !bytes.Contains(rj.Record, recs[7].value) {
		t.Fatalf("reject = %+v (record %s)", rj, rj.Record)
	}
}
