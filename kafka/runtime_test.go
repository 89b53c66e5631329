package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"ttq/timeline"
)

// TestRuntimeSourcesAndPartitions: a source declared while the daemon runs
// is picked up, and so is a partition added to a topic; the new partition
// holds the source until it carries a watermark, and never unseals.
func TestRuntimeSourcesAndPartitions(t *testing.T) {
	c := newCluster(t)
	cl := newProducer(t, c.ListenAddrs())
	e := openEngine(t, "")
	defer e.Close()
	execScript(t, e, `CREATE SOURCE pricing; CREATE TABLE prices (product_id VARCHAR PRIMARY KEY, price DOUBLE, currency VARCHAR) SOURCE pricing;`)
	r := startDaemon(t, e, c.ListenAddrs(), 16)
	wm := func(src string, ts int64) []byte {
		return []byte(fmt.Sprintf(`{"source":%q,"op":"watermark","ts":%d}`, src, ts))
	}
	ends := map[string]int64{}
	produce(t, cl, []msg{{"pricing", -1, wm("pricing", t0+100)}}, ends)
	waitFor(t, "pricing", 20*time.Second, func() bool { return caughtUp(e, ends) })
	if g := e.Watermark(); g != t0+100 {
		t.Fatalf("G = %s", timeline.Format(g))
	}

	// a new source at runtime
	execScript(t, e, `CREATE SOURCE inventory WITH (topic = 'inv.updates');
CREATE TABLE stock (product_id VARCHAR, warehouse VARCHAR, qty BIGINT, PRIMARY KEY (product_id, warehouse)) SOURCE inventory;`)
	produce(t, cl, []msg{
		{"inv.updates", 1, []byte(fmt.Sprintf(`{"source":"inventory","table":"stock","op":"upsert","ts":%d,"data":{"product_id":"P1","warehouse":"W1","qty":3}}`, t0+150))},
		{"inv.updates", -1, wm("inventory", t0+300)},
	}, ends)
	waitFor(t, "inventory", 20*time.Second, func() bool { return caughtUp(e, ends) })
	if w, applied := sourceW(e, "inventory"); w != t0+300 || applied != 1 {
		t.Fatalf("inventory W %s applied %d", timeline.Format(w), applied)
	}

	// pricing grows a fourth partition
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "pricing", 4
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if ec := resp.Topics[0].ErrorCode; ec != 0 {
		t.Fatalf("create partitions: error code %d", ec)
	}
	waitFor(t, "the new partition", 20*time.Second, func() bool {
		for _, p := range r.d.Status().Partitions {
			if p.Stream == "pricing/3" {
				return true
			}
		}
		return false
	})
	cl2 := newProducer(t, c.ListenAddrs())
	produce(t, cl2, []msg{{"pricing", 0, wm("pricing", t0+200)}, {"pricing", 1, wm("pricing", t0+200)}, {"pricing", 2, wm("pricing", t0+200)}}, ends)
	waitFor(t, "pricing 0-2", 20*time.Second, func() bool { return caughtUp(e, ends) })
	if w, _ := sourceW(e, "pricing"); w != t0+100 {
		t.Fatalf("pricing W = %s with pricing/3 silent, want the old %s", timeline.Format(w), timeline.Format(t0+100))
	}
	produce(t, cl2, []msg{{"pricing", 3, wm("pricing", t0+250)}}, ends)
	waitFor(t, "pricing/3", 20*time.Second, func() bool { return caughtUp(e, ends) })
	if w, _ := sourceW(e, "pricing"); w != t0+200 {
		t.Fatalf("pricing W = %s, want %s", timeline.Format(w), timeline.Format(t0+200))
	}
}
