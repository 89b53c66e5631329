package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"ttq/ingest"
	"ttq/timeline"
)

func allRejects(t *testing.T, e interface {
	Rejects(func(uint64, ingest.Reject) error) error
}) []ingest.Reject {
	t.Helper()
	var out []ingest.Reject
	if err := e.Rejects(func(_ uint64, r ingest.Reject) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDebeziumLateStoresRaw: a Debezium event that translates but that the
// engine rejects (late) is stored as the Debezium message as received, not
// as the envelope it was translated to.
func TestDebeziumLateStoresRaw(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "dbz.orders"))
	cl := newProducer(t, c.ListenAddrs())
	e := openEngine(t, "")
	defer e.Close()
	execScript(t, e, dbzDDL)
	row := func(id int) string {
		return fmt.Sprintf(`{"id":%d,"customer":"x","total":1,"created":%d}`, id, t0)
	}
	late := dbzEvent(true, "c", "null", row(2), dbzSrc("ts_ms", t0+1000))
	vals := [][]byte{
		dbzEvent(false, "c", "null", row(1), dbzSrc("ts_us", t0+100000)), // W = t0+99ms
		late,
	}
	var krs []*kgo.Record
	for _, v := range vals {
		krs = append(krs, &kgo.Record{Topic: "dbz.orders", Partition: 0, Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, e, c.ListenAddrs(), 1)
	waitFor(t, "catch-up", 20*time.Second, func() bool { return caughtUp(e, map[string]int64{"dbz.orders/0": 2}) })
	rj := allRejects(t, e)
	if len(rj) != 1 {
		t.Fatalf("rejects = %+v, want the late event", rj)
	}
	if rj[0].Reason != ingest.ReasonLate || rj[0].Origin != "dbz.orders/0/1" || rj[0].Source != "shop" {
		t.Fatalf("reject = %+v", rj[0])
	}
	if !bytes.Equal(rj[0].Record, late) {
		t.Fatalf("stored record is not the Debezium event as received:\n%s\nwant:\n%s", rj[0].Record, late)
	}
}

// TestWrongSource: a ttq envelope naming another source on a source's topic
// (an upsert, and a watermark that would otherwise move the other source)
// is rejected wrong_source with its origin; the topic's own records apply.
func TestWrongSource(t *testing.T) {
	c := newCluster(t)
	cl := newProducer(t, c.ListenAddrs())
	e := openEngine(t, "")
	defer e.Close()
	execScript(t, e, ddl)
	ends := map[string]int64{}
	foreign := []byte(fmt.Sprintf(`{"source":"inventory","table":"stock","op":"upsert","ts":%d,"data":{"product_id":"A","warehouse":"W","qty":1}}`, t0+5))
	produce(t, cl, []msg{
		{"pricing", 0, []byte(fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"product_id":"A","price":1}}`, t0+1))},
		{"pricing", 0, foreign},
		{"pricing", 1, []byte(fmt.Sprintf(`{"source":"inventory","op":"watermark","ts":%d}`, t0+10))},
		{"pricing", 2, []byte(fmt.Sprintf(`{"source":"nosuch","op":"watermark","ts":%d}`, t0+10))},
	}, ends)
	startDaemon(t, e, c.ListenAddrs(), 10)
	waitFor(t, "catch-up", 20*time.Second, func() bool { return caughtUp(e, ends) })
	rj := allRejects(t, e)
	if len(rj) != 3 {
		t.Fatalf("rejects = %+v, want 3", rj)
	}
	wantOrigin := []string{"pricing/0/1", "pricing/1/0", "pricing/2/0"}
	wantNamed := []string{"inventory", "inventory", "nosuch"}
	got := map[string]ingest.Reject{}
	for _, r := range rj {
		got[r.Origin] = r
	}
	for i, o := range wantOrigin {
		r, ok := got[o]
		if !ok {
			t.Fatalf("no reject from %s: %+v", o, rj)
		}
		want := fmt.Sprintf(`record names source %q, but topic "pricing" is read for source "pricing"`, wantNamed[i])
		if r.Reason != ingest.ReasonWrongSource || r.Source != "pricing" || r.Message != want {
			t.Errorf("reject %s = %+v, want wrong_source for pricing: %s", o, r, want)
		}
	}
	if !bytes.Equal(got["pricing/0/1"].Record, foreign) || got["pricing/0/1"].Table != "stock" {
		t.Errorf("reject pricing/0/1 = %+v (record %s)", got["pricing/0/1"], got["pricing/0/1"].Record)
	}
	if _, applied := sourceW(e, "pricing"); applied != 1 {
		t.Errorf("pricing applied %d, want 1", applied)
	}
	if w, applied := sourceW(e, "inventory"); applied != 0 || w != timeline.None {
		t.Errorf("inventory applied %d, W %s; want 0 and nothing sealed", applied, timeline.Format(w))
	}
}
