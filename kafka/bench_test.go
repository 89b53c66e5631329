package kafka_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"ttq/engine"
	"ttq/kafka"
	"ttq/query"
)

// BenchmarkKafkaVersusFile measures the sustained consume-and-apply rate of
// the daemon from a 3-partition topic into a durable store, against
// engine.Load of the same records from an NDJSON file, in the same run.
// The records (200,000 upserts over 100,000 keys, partitioned by key, plus a
// watermark to every partition each 2,000 records) are produced into an
// in-process kfake broker before the clock starts; kfake serves the fetches
// from the same process, so it shares the CPU with the daemon. Each
// iteration ingests into fresh stores; docs/PERFORMANCE.md has the numbers.
//
//	go test ./kafka -run '^$' -bench KafkaVersusFile -benchtime 3x
func BenchmarkKafkaVersusFile(b *testing.B) {
	const (
		n     = 200_000
		keys  = 100_000
		parts = 3
		every = 2_000
		topic = "bench"
	)
	const ddl = `CREATE SOURCE pricing WITH (topic = 'bench');
CREATE TABLE prices (product_id VARCHAR PRIMARY KEY, price DOUBLE, currency VARCHAR) SOURCE pricing;`
	base := t0
	var lines []string
	var recs []*kgo.Record
	ends := map[string]int64{}
	updates := 0
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("P%07d", i%keys)
		line := fmt.Sprintf(`{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"product_id":%q,"price":%d.5,"currency":"EUR"}}`, base+int64(i), key, i%1000)
		p := keyPart(key, parts)
		lines = append(lines, line)
		recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(line)})
		ends[fmt.Sprintf("%s/%d", topic, p)]++
		updates++
		if i%every == every-1 || i == n-1 {
			w := fmt.Sprintf(`{"source":"pricing","op":"watermark","ts":%d}`, base+int64(i))
			lines = append(lines, w)
			for q := int32(0); q < parts; q++ {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: q, Value: []byte(w)})
				ends[fmt.Sprintf("%s/%d", topic, q)]++
			}
		}
	}
	file := filepath.Join(b.TempDir(), "bench.ndjson")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, topic))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	cancel()
	cl.Close()
	recs = nil

	open := func() *engine.Engine {
		e, err := engine.Open(b.TempDir(), engine.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.ExecScript(context.Background(), ddl, query.Options{}, func(string, *query.Result) error { return nil }); err != nil {
			b.Fatal(err)
		}
		return e
	}
	var fileTime, kafkaTime, fileCPU, kafkaCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// the file, through engine.Load as `ttq load` does
		e := open()
		cpu0 := cpuTime()
		start := time.Now()
		f, err := os.Open(file)
		if err != nil {
			b.Fatal(err)
		}
		cnt, err := e.Load(context.Background(), f, "bench.ndjson")
		f.Close()
		if err != nil || cnt.Applied != int64(updates) {
			b.Fatalf("load: %+v, %v", cnt, err)
		}
		fileTime += time.Since(start)
		fileCPU += cpuTime() - cpu0
		e.Close()

		// the topic, through the daemon, until every offset is stored
		e = open()
		d, err := kafka.New(e, kafka.Config{Brokers: c.ListenAddrs()})
		if err != nil {
			b.Fatal(err)
		}
		rctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		cpu0 = cpuTime()
		start = time.Now()
		go func() { done <- d.Run(rctx) }()
		deadline := start.Add(5 * time.Minute)
		for !caughtUp(e, ends) {
			if time.Now().After(deadline) {
				b.Fatalf("the daemon did not catch up: %v of %v", e.Offsets(), ends)
			}
			time.Sleep(2 * time.Millisecond)
		}
		kafkaTime += time.Since(start)
		kafkaCPU += cpuTime() - cpu0
		stop()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if _, applied := sourceW(e, "pricing"); applied != int64(updates) {
			b.Fatalf("kafka applied %d, want %d", applied, updates)
		}
		e.Close()
	}
	b.StopTimer()
	fileRate := float64(b.N*updates) / fileTime.Seconds()
	kafkaRate := float64(b.N*updates) / kafkaTime.Seconds()
	b.ReportMetric(fileRate, "file-updates/s")
	b.ReportMetric(kafkaRate, "kafka-updates/s")
	b.ReportMetric(kafkaRate/fileRate, "kafka/file")
	// CPU seconds of the whole process (kfake included) per phase
	b.ReportMetric(kafkaCPU.Seconds()/fileCPU.Seconds(), "cpu-kafka/file")
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
