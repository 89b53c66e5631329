package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

var queryNames = map[string]string{
	"Q1": "Q1 price of one product AS OF T",
	"Q2": "Q2 one listing JOIN its price AS OF T",
	"Q3": "Q3 active listings per category, avg price, AS OF T",
	"Q4": "Q4 versions of one price BETWEEN T1 AND T2",
}

func dur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// Markdown renders the report as one table.
func (r *Report) Markdown(command string) string {
	var b strings.Builder
	g := r.Gen
	fmt.Fprintf(&b, "command: `%s`\n\n", command)
	fmt.Fprintf(&b, "machine: %s\n\n", r.Machine)
	fmt.Fprintf(&b, "workload: %d products, %d listings, %d updates over %d s of timeline (seed %d); %d records ingested (%d deletes), %d watermarks, %.0f MB of NDJSON\n\n",
		r.Cfg.W.Products, r.Cfg.W.Listings, r.Cfg.W.Updates, r.Cfg.W.Seconds, r.Cfg.W.Seed, g.Records, g.Deletes, g.Watermarks, float64(g.Bytes)/1e6)
	fmt.Fprintf(&b, "answers checked equal on all systems before timing: Q1 %d, Q2 %d, Q3 %d, Q4 %d\n\n",
		r.Checked["Q1"], r.Checked["Q2"], r.Checked["Q3"], r.Checked["Q4"])
	b.WriteString("| median / p99 |")
	for _, s := range r.Systems {
		b.WriteString(" " + s + " |")
	}
	b.WriteString("\n|---|")
	for range r.Systems {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, q := range queries {
		b.WriteString("| " + queryNames[q] + " |")
		for _, s := range r.Systems {
			ls := r.Lat[q][s]
			fmt.Fprintf(&b, " %s / %s |", dur(pct(ls, 0.5)), dur(pct(ls, 0.99)))
		}
		b.WriteString("\n")
	}
	b.WriteString("| ingest, durable (records/s) |")
	for _, s := range r.Systems {
		fmt.Fprintf(&b, " %.0fk |", r.Ingest[s]/1e3)
	}
	b.WriteString("\n| peak RSS during the system's ingest |")
	for _, s := range r.Systems {
		fmt.Fprintf(&b, " %.0f MiB |", float64(r.RSS[s])/(1<<20))
	}
	if e := r.Epochs; e != nil {
		fmt.Fprintf(&b, "\n| epoch close, view listings JOIN prices (%d view rows), %d changed base rows | %s / %s |", e.Rows, e.Changed, dur(pct(e.Closes, 0.5)), dur(pct(e.Closes, 0.99)))
		for range r.Systems[1:] {
			b.WriteString(" — |")
		}
		fmt.Fprintf(&b, "\n\nview: computed whole by CREATE VIEW in %s; the first epoch after it (building its join indexes) %s; %d epochs timed after %d untimed, %s of process CPU each on average",
			dur(e.Full), dur(e.First), len(e.Closes), 2, dur(e.CPU))
	}
	fmt.Fprintf(&b, "\n\npeak RSS of the whole process: %.0f MiB (all four systems open at once during queries)\n", float64(r.PeakRSS)/(1<<20))
	return b.String()
}
