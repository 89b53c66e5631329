// Package loadgen drives a running ttq server with primary-key AS OF
// queries at a fixed rate, optionally while ingesting, and reports latency
// percentiles. It is a benchmark tool, not a test.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one run.
type Config struct {
	URL      string
	Token    string
	Keys     int           // products loaded before the run
	Versions int           // versions per product
	Rate     int           // point queries per second (open loop)
	Duration time.Duration // how long to query
	Workers  int           // concurrent HTTP clients
	Ingest   int           // updates per second sent concurrently (0: none)
	Setup    bool          // create the schema and load the data first
}

// Report is what a run measured.
type Report struct {
	Sent, OK, Failed int64
	Achieved         float64 // queries/s completed
	P50, P90, P99    time.Duration
	Max              time.Duration
	Ingested         int64
}

func (r Report) String() string {
	return fmt.Sprintf("queries %d ok %d failed %d, %.0f q/s, p50 %v p90 %v p99 %v max %v, ingested %d updates",
		r.Sent, r.OK, r.Failed, r.Achieved, r.P50, r.P90, r.P99, r.Max, r.Ingested)
}

const base = int64(1_800_000_000_000_000)

type client struct {
	cfg Config
	hc  *http.Client
}

func (c *client) post(ctx context.Context, path, ctype string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "text/csv")
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, nil
}

func (c *client) sql(ctx context.Context, q string) ([]byte, error) {
	body, _ := json.Marshal(map[string]string{"sql": q})
	return c.post(ctx, "/v1/sql", "application/json", body)
}

// setup declares the schema and loads Keys x Versions versions, sealed.
func (c *client) setup(ctx context.Context) error {
	for _, s := range []string{"CREATE SOURCE lg_pricing", "CREATE TABLE lg_prices (product_id VARCHAR PRIMARY KEY, price DOUBLE) SOURCE lg_pricing"} {
		if _, err := c.sql(ctx, s); err != nil {
			return err
		}
	}
	var b bytes.Buffer
	ts := base
	for v := 0; v < c.cfg.Versions; v++ {
		for k := 0; k < c.cfg.Keys; k++ {
			ts++
			fmt.Fprintf(&b, `{"source":"lg_pricing","table":"lg_prices","op":"upsert","ts":%d,"data":{"product_id":"P%d","price":%d.5}}`+"\n", ts, k, v)
			if b.Len() > 4<<20 {
				if _, err := c.post(ctx, "/v1/ingest", "application/x-ndjson", b.Bytes()); err != nil {
					return err
				}
				b.Reset()
			}
		}
	}
	fmt.Fprintf(&b, `{"source":"lg_pricing","op":"watermark","ts":%d}`+"\n", ts)
	_, err := c.post(ctx, "/v1/ingest", "application/x-ndjson", b.Bytes())
	return err
}

// Run executes the load and returns its report.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	c := &client{cfg: cfg, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Workers * 2, MaxConnsPerHost: cfg.Workers * 2}}}
	if cfg.Setup {
		if err := c.setup(ctx); err != nil {
			return Report{}, fmt.Errorf("setup: %w", err)
		}
	}
	span := int64(cfg.Keys * cfg.Versions)
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()

	var rep Report
	var ingested atomic.Int64
	var wg sync.WaitGroup
	if cfg.Ingest > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ingestLoop(ctx, c, cfg, &ingested)
		}()
	}
	type job struct{ due time.Time }
	jobs := make(chan job, cfg.Rate)
	var mu sync.Mutex
	var lat []time.Duration
	var ok, failed atomic.Int64
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			r := rand.New(rand.NewSource(seed))
			local := make([]time.Duration, 0, 1024)
			for j := range jobs {
				q := fmt.Sprintf("SELECT price FROM lg_prices AS OF %d WHERE product_id = 'P%d'", base+1+r.Int63n(span), r.Intn(cfg.Keys))
				_, err := c.sql(context.Background(), q)
				// Latency from when the query was due, so a slow server
				// cannot hide its queueing (no coordinated omission).
				d := time.Since(j.due)
				if err != nil {
					failed.Add(1)
					continue
				}
				ok.Add(1)
				local = append(local, d)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(int64(w))
	}
	start := time.Now()
	interval := time.Second / time.Duration(cfg.Rate)
	next := start
	for ctx.Err() == nil {
		now := time.Now()
		for ; !next.After(now); next = next.Add(interval) {
			select {
			case jobs <- job{due: next}:
				rep.Sent++
			default:
				rep.Failed++ // the client itself cannot keep up
			}
		}
		time.Sleep(time.Until(next))
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	rep.OK, rep.Failed = ok.Load(), rep.Failed+failed.Load()
	rep.Achieved = float64(rep.OK) / elapsed.Seconds()
	rep.Ingested = ingested.Load()
	if len(lat) == 0 {
		return rep, errors.New("no query succeeded")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	rep.P50, rep.P90, rep.P99, rep.Max = pct(0.50), pct(0.90), pct(0.99), lat[len(lat)-1]
	return rep, nil
}

// ingestLoop sends cfg.Ingest updates per second in 10 requests a second,
// each followed by a watermark, so G keeps moving while queries run.
func ingestLoop(ctx context.Context, c *client, cfg Config, n *atomic.Int64) {
	per := max(1, cfg.Ingest/10)
	ts := base + int64(cfg.Keys*cfg.Versions) + 1_000_000
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	r := rand.New(rand.NewSource(99))
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var b bytes.Buffer
		for i := 0; i < per; i++ {
			ts++
			fmt.Fprintf(&b, `{"source":"lg_pricing","table":"lg_prices","op":"upsert","ts":%d,"data":{"product_id":"P%d","price":%d.25}}`+"\n", ts, r.Intn(cfg.Keys), i)
		}
		fmt.Fprintf(&b, `{"source":"lg_pricing","op":"watermark","ts":%d}`+"\n", ts)
		if _, err := c.post(context.Background(), "/v1/ingest", "application/x-ndjson", b.Bytes()); err == nil {
			n.Add(int64(per))
		}
	}
}
