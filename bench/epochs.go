package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"syscall"
	"time"

	"ttq/engine"
	"ttq/query"
)

// viewDef is the view the epoch measurement maintains: every listing with
// its price, the document a search index would take.
const viewDef = `CREATE VIEW listing_prices AS SELECT l.listing_id, l.category, l.active, p.price FROM listings l JOIN prices p ON l.product_id = p.product_id`

// EpochReport is the view part of the run.
type EpochReport struct {
	Changed int             // base rows changed in each epoch
	Full    time.Duration   // CREATE VIEW: the view computed from the tables
	First   time.Duration   // the first epoch after it (builds the join indexes)
	Closes  []time.Duration // the timed epochs, sorted
	CPU     time.Duration   // process CPU (user + system) per timed epoch
	Rows    int64           // view rows at the last boundary
}

// measureEpochs creates a view over the loaded workload on e, then closes
// warm+n epochs of changed rows each and times the closes: a close is the
// Load of the watermark that moves G past the epoch's boundary, which
// brings the view to it before it returns. The view's rows at the last
// boundary are checked against its defining query first.
func measureEpochs(ctx context.Context, e *engine.Engine, cfg Config, g GenStats, changed, warm, n int) (*EpochReport, error) {
	rep := &EpochReport{Changed: changed}
	t0 := time.Now()
	if _, err := e.Exec(ctx, viewDef, query.Options{}); err != nil {
		return nil, err
	}
	rep.Full = time.Since(t0)
	rng := rand.New(rand.NewSource(cfg.W.Seed + 2000))
	ts := g.End
	var buf bytes.Buffer
	var stop func() // the CPU profile of the timed epochs (-profile Epochs)
	for i := 0; i < warm+n+1; i++ {
		// changed rows in the next second: 60% prices, 40% listings
		buf.Reset()
		for j := 0; j < changed; j++ {
			ts++
			if j%5 < 3 {
				fmt.Fprintf(&buf, `{"source":"pricing","table":"prices","op":"upsert","ts":%d,"data":{"product_id":%q,"price":%s}}`+"\n",
					ts, productID(rng.Intn(cfg.W.Products)), strconv.FormatFloat(float64(100+rng.Intn(99_900))/100, 'f', -1, 64))
			} else {
				l := rng.Intn(cfg.W.Listings)
				fmt.Fprintf(&buf, `{"source":"search","table":"listings","op":"upsert","ts":%d,"data":{"listing_id":%q,"product_id":%q,"category":%q,"active":%t,"title":"listing %d epoch %d"}}`+"\n",
					ts, listingID(l), productID(rng.Intn(cfg.W.Products)), category(rng.Intn(categories)), rng.Intn(4) > 0, l, i)
			}
		}
		if cfg.Profile != "" && cfg.ProfQuery == "Epochs" && i == warm+1 {
			var err error
			if stop, err = startProfile(cfg.Profile); err != nil {
				return nil, err
			}
		}
		end := g.End + int64(i+1)*second
		fmt.Fprintf(&buf, `{"source":"pricing","op":"watermark","ts":%d}`+"\n", end)
		ts = end
		if _, err := e.Load(ctx, &buf, "epochs"); err != nil {
			return nil, err
		}
		buf.Reset()
		fmt.Fprintf(&buf, `{"source":"search","op":"watermark","ts":%d}`+"\n", end)
		t, cpu0 := time.Now(), cpuTime()
		if _, err := e.Load(ctx, &buf, "epochs"); err != nil {
			return nil, err
		}
		d, cpu := time.Since(t), cpuTime()-cpu0
		if stop != nil && i == warm+n {
			stop()
		}
		switch {
		case i == 0:
			rep.First = d
		case i > warm:
			rep.Closes = append(rep.Closes, d)
			rep.CPU += cpu / time.Duration(n)
		}
	}
	sort.Slice(rep.Closes, func(i, j int) bool { return rep.Closes[i] < rep.Closes[j] })
	// The view at its last boundary (the whole second before G, after the
	// last round's changes) equals its defining query there.
	at := fmt.Sprintf("AS OF %d", g.End+int64(warm+n+1)*second-(second-1))
	sum := func(q string) (string, error) {
		r, err := e.Exec(ctx, fmt.Sprintf(q, at), query.Options{})
		if err != nil {
			return "", err
		}
		defer r.Release()
		return fmt.Sprint(r.Rows()), nil
	}
	v, err := sum("SELECT category, active, COUNT(*), MIN(price), MAX(price), MIN(listing_id), MAX(listing_id) FROM listing_prices %s GROUP BY category, active ORDER BY category, active")
	if err != nil {
		return nil, err
	}
	d, err := sum("SELECT l.category, l.active, COUNT(*), MIN(p.price), MAX(p.price), MIN(l.listing_id), MAX(l.listing_id) FROM listings l JOIN prices p ON l.product_id = p.product_id %s GROUP BY l.category, l.active ORDER BY l.category, l.active")
	if err != nil {
		return nil, err
	}
	if v != d {
		return nil, fmt.Errorf("ANSWERS DIFFER: view listing_prices says %s, its defining query says %s", v, d)
	}
	r, err := e.Exec(ctx, "SELECT COUNT(*) FROM listing_prices "+at, query.Options{})
	if err != nil {
		return nil, err
	}
	rep.Rows = r.Rows()[0][0].I
	r.Release()
	return rep, nil
}

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
