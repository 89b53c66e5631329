package command_test

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestServeKafkaWithKcat produces envelopes with Debian's kcat (librdkafka,
// a client independent of ttq's) into an in-process Kafka broker that speaks
// the real wire protocol, and queries what `ttq serve --kafka-brokers`
// consumed.
func TestServeKafkaWithKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (apt-get install kcat; .ci/run installs it)")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "prices.updates"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	broker := cluster.ListenAddrs()[0]

	data := t.TempDir()
	ddl := `CREATE SOURCE pricing WITH (topic = 'prices.updates');
CREATE TABLE prices (product_id VARCHAR PRIMARY KEY, price DOUBLE) SOURCE pricing;`
	if r := runTTQ(t, "", "sql", "--data", data, "-e", ddl); r.code != 0 {
		t.Fatal(r.stderr)
	}
	s := startServe(t, nil, "--data", data, "--kafka-brokers", broker)

	produce := func(partition string, lines ...string) {
		t.Helper()
		cmd := exec.Command(kcat, "-P", "-b", broker, "-t", "prices.updates", "-p", partition)
		cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("kcat: %v: %s", err, errb.String())
		}
	}
	produce("0",
		`{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:00Z","data":{"product_id":"P1","price":10}}`,
		`not an envelope`,
		`{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:05Z"}`)
	produce("1",
		`{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:01Z","data":{"product_id":"P2","price":20}}`,
		`{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:05Z"}`)

	deadline := time.Now().Add(30 * time.Second)
	var r runResult
	for {
		r = runTTQ(t, "", "sql", "--server", s.url, "--format", "csv", "-e", "SELECT product_id, price FROM prices AS OF '2026-11-25T10:00:05Z' ORDER BY product_id")
		if r.code == 0 && r.stdout == "product_id,price\nP1,10\nP2,20\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafka records never became queryable: %d %q %q\nserver log:\n%s", r.code, r.stdout, r.stderr, s.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	r = runTTQ(t, "", "sql", "--server", s.url, "--format", "csv", "-e", "SELECT reason, origin FROM ttq_rejects")
	if r.stdout != "reason,origin\ninvalid_json,prices.updates/0/1\n" {
		t.Fatalf("rejects: %q", r.stdout)
	}
	r = runTTQ(t, "", "sql", "--server", s.url, "--format", "csv", "-e", "SELECT topic_partition, next_offset, lag FROM ttq_kafka ORDER BY topic_partition")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "topic_partition,next_offset,lag\nprices.updates/0,3,") {
		t.Fatalf("ttq_kafka: %d %q %q", r.code, r.stdout, r.stderr)
	}
	get := func(path string) string {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if h := get("/healthz"); !strings.Contains(h, `"kafka":{"state":"connected"`) {
		t.Fatalf("/healthz: %s", h)
	}
	if m := get("/metrics"); !strings.Contains(m, `ttq_kafka_partition_lag{partition="0",topic="prices.updates"} 0`) {
		t.Fatalf("/metrics lacks the partition lag:\n%s", m)
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d: %s", code, s.log())
	}
}
