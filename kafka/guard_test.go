package kafka_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"ttq/kafka"
)

// TestGuardPausesIngest: while the guard (the server's free-disk check)
// fails, nothing is committed and the daemon says why; once it passes, the
// same messages apply exactly once.
func TestGuardPausesIngest(t *testing.T) {
	c := newCluster(t)
	cl := newProducer(t, c.ListenAddrs())
	ends := map[string]int64{}
	produce(t, cl, []msg{
		{"pricing", 0, []byte(fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"product_id":"A","price":1}}`, t0+1))},
		{"pricing", 0, []byte(fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"product_id":"B","price":2}}`, t0+2))},
	}, ends)
	e := openEngine(t, "")
	defer e.Close()
	execScript(t, e, ddl)
	var full atomic.Bool
	full.Store(true)
	r := startDaemon(t, e, c.ListenAddrs(), 100, func(c *kafka.Config) {
		c.Guard = func() error {
			if full.Load() {
				return errors.New("disk full")
			}
			return nil
		}
	})
	waitFor(t, "the daemon to report the guard", 20*time.Second, func() bool {
		st := r.d.Status()
		return st.Error != "" && st.Messages == 0
	})
	if off := e.Offsets()["pricing/0"]; off != 0 {
		t.Fatalf("committed offset %d while the guard failed", off)
	}
	full.Store(false)
	waitFor(t, "catch-up", 20*time.Second, func() bool { return caughtUp(e, ends) })
	_, src := e.Watermarks()
	for _, sw := range src {
		if sw.Source == "pricing" && sw.Applied != 2 {
			t.Fatalf("pricing applied %d, want 2 (exactly once)", sw.Applied)
		}
	}
}
