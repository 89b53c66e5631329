// Command bench runs ttq side by side with raw Badger managed mode and
// SQLite on one generated workload (issue 8): ingest, four AS OF queries
// and peak RSS, with every system's answers checked equal before any time
// is reported. See docs/BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

func main() {
	cfg := defaultConfig()
	scale := flag.Float64("scale", 1, "multiply products, listings and updates (e.g. 0.05 for a quick run)")
	flag.IntVar(&cfg.W.Products, "products", cfg.W.Products, "products (rows of prices)")
	flag.IntVar(&cfg.W.Listings, "listings", cfg.W.Listings, "listings")
	flag.IntVar(&cfg.W.Updates, "updates", cfg.W.Updates, "updates after the initial load")
	flag.IntVar(&cfg.W.Seconds, "seconds", cfg.W.Seconds, "timeline the updates span, in seconds")
	flag.Int64Var(&cfg.W.Seed, "seed", cfg.W.Seed, "generator seed")
	flag.IntVar(&cfg.Points, "points", cfg.Points, "random (key, T) pairs for Q1, Q2 and Q4")
	flag.IntVar(&cfg.Scans, "scans", cfg.Scans, "random T for Q3")
	flag.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "timed epoch closes of a view over the data (0: skip)")
	flag.IntVar(&cfg.EpochRows, "epoch-rows", cfg.EpochRows, "base rows changed in each epoch")
	flag.StringVar(&cfg.Dir, "dir", "", "work directory (default: a new temporary one, removed after)")
	flag.StringVar(&cfg.Out, "out", "", "also write the table as markdown to this file")
	flag.StringVar(&cfg.Profile, "cpuprofile", "", "write a CPU profile of ttq embedded's timed loop of the -profile query to this file")
	flag.StringVar(&cfg.ProfQuery, "profile", "Q2", "what -cpuprofile profiles: a query's timed loop (Q1..Q4), ttq embedded's Load, or the view's timed epochs (Epochs)")
	flag.Parse()
	if *scale != 1 {
		cfg.W.Products = max(10, int(float64(cfg.W.Products)**scale))
		cfg.W.Listings = max(10, int(float64(cfg.W.Listings)**scale))
		cfg.W.Updates = int(float64(cfg.W.Updates) * *scale)
	}
	cfg.Log = os.Stderr
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	md := rep.Markdown(strings.Join(os.Args, " "))
	fmt.Print(md)
	if cfg.Out != "" {
		if err := os.WriteFile(cfg.Out, []byte(md), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

func defaultConfig() Config {
	return Config{
		W:      Workload{Products: 100_000, Listings: 300_000, Updates: 2_000_000, Seconds: 3600, Seed: 1},
		Points: 1000,
		Scans:  20,
		Epochs: 10, EpochRows: 10_000,
	}
}

// machine describes where the run happened.
func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.Index(l, ":")+1:])
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%s, %d cores%s, %s %s/%s, %s", model, runtime.NumCPU(), mem, runtime.Version(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02"))
}
