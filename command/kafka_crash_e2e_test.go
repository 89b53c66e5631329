package command_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaKillNineExactlyOnce runs the real `ttq serve --kafka-brokers`
// against an in-process Kafka broker, kills it with SIGKILL at random
// points while it consumes (and while producing goes on), restarts it each
// time, and demands at the end what a store loaded from the same stream as a
// file holds: every sealed answer, every reject counted once, the same G.
func TestKafkaKillNineExactlyOnce(t *testing.T) {
	kills := 8
	if v, err := strconv.Atoi(os.Getenv("TTQ_KAFKA_KILLS")); err == nil && v > 0 {
		kills = v
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "pricing"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	broker := cluster.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// The stream: per partition, upserts and deletes with increasing ts,
	// a poison message now and then, and a watermark on every partition
	// after each round.
	r := rand.New(rand.NewSource(3))
	const base = int64(1_800_000_000_000_000)
	var all []string // the same stream, as a file replica sees it
	var rounds [][]*kgo.Record
	ts := base
	for round := 0; round < 40; round++ {
		var recs []*kgo.Record
		for i := 0; i < 60; i++ {
			ts += int64(r.Intn(3) + 1)
			p := int32(r.Intn(3))
			var line string
			switch {
			case i%29 == 7:
				line = `{"source":"pricing","table":"prices","op":"upsert","ts":"garbage"}`
			case r.Intn(6) == 0:
				line = fmt.Sprintf(`{"source":"pricing","table":"prices","op":"delete","ts":%d,"key":{"id":"K%d"}}`, ts, r.Intn(50))
			default:
				line = fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"id":"K%d","price":%d}}`, ts, r.Intn(50), r.Intn(1000))
			}
			recs = append(recs, &kgo.Record{Topic: "pricing", Partition: p, Value: []byte(line)})
			all = append(all, line)
		}
		for p := int32(0); p < 3; p++ {
			line := fmt.Sprintf(`{"source":"pricing","op":"watermark","ts":%d}`, ts)
			recs = append(recs, &kgo.Record{Topic: "pricing", Partition: p, Value: []byte(line)})
			all = append(all, line)
		}
		rounds = append(rounds, recs)
	}
	produce := func(recs []*kgo.Record) {
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	schema := `CREATE SOURCE pricing; CREATE TABLE prices (id VARCHAR PRIMARY KEY, price BIGINT) SOURCE pricing;`
	data := t.TempDir()
	if r := runTTQ(t, "", "sql", "--data", data, "-e", schema); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// The file replica: per partition order is what Kafka guarantees, and
	// every record here is in one ts order, so the file order is equivalent.
	replica := t.TempDir()
	if r := runTTQ(t, "", "sql", "--data", replica, "-e", schema); r.code != 0 {
		t.Fatal(r.stderr)
	}
	file := filepath.Join(t.TempDir(), "stream.ndjson")
	if err := os.WriteFile(file, []byte(strings.Join(all, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runTTQ(t, "", "load", "--data", replica, file); r.code != 0 {
		t.Fatal(r.stderr)
	}

	next := 0
	var applied []string
	for k := 0; k < kills; k++ {
		s := startServe(t, nil, "--data", data, "--kafka-brokers", broker)
		// Produce a few rounds while it runs, then kill it at a random point.
		for i := 0; i < 3 && next < len(rounds); i++ {
			produce(rounds[next])
			next++
		}
		time.Sleep(time.Duration(r.Intn(150)) * time.Millisecond)
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
		s.cmd.Wait()
		st := runTTQ(t, "", "sql", "--data", data, "--format", "csv", "-e", "SELECT applied FROM ttq_watermarks")
		applied = append(applied, strings.TrimSpace(strings.TrimPrefix(st.stdout, "applied\n")))
	}
	t.Logf("applied updates found after each kill: %v (of %d produced rounds)", applied, len(rounds))
	for ; next < len(rounds); next++ {
		produce(rounds[next])
	}
	// A last run catches up; compare with the replica.
	s := startServe(t, nil, "--data", data, "--kafka-brokers", broker)
	want := runTTQ(t, "", "sql", "--data", replica, "--format", "csv", "-e", "SELECT watermark, applied, rejected FROM ttq_watermarks")
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := runTTQ(t, "", "sql", "--server", s.url, "--format", "csv", "-e", "SELECT watermark, applied, rejected FROM ttq_watermarks")
		if got.stdout == want.stdout {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never caught up: got %q want %q\n%s", got.stdout, want.stdout, s.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop(syscall.SIGTERM)
	// Same answers at sealed instants, same rejects by reason (counted once).
	for _, q := range []string{
		"SELECT reason, COUNT(*) FROM ttq_rejects GROUP BY reason ORDER BY reason",
		"SELECT * FROM prices ORDER BY id",
		fmt.Sprintf("SELECT * FROM prices AS OF %d ORDER BY id", base+1000),
		fmt.Sprintf("SELECT COUNT(*), SUM(price) FROM prices AS OF %d", base+2000),
		fmt.Sprintf("SELECT id, price, _valid_from FROM prices FOR SYSTEM_TIME BETWEEN %d AND %d ORDER BY id, _valid_from", base+500, base+3000),
	} {
		got := runTTQ(t, "", "sql", "--data", data, "--format", "csv", "-e", q)
		exp := runTTQ(t, "", "sql", "--data", replica, "--format", "csv", "-e", q)
		if got.code != 0 || got.stdout != exp.stdout {
			t.Fatalf("%s after %d kills:\n got %q %s\nwant %q", q, kills, got.stdout, got.stderr, exp.stdout)
		}
	}
}
