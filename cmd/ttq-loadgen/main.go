// Command ttq-loadgen measures primary-key AS OF queries per second and
// their latency against a running ttq server, with and without concurrent
// ingest. See docs/PERFORMANCE.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"ttq/loadgen"
)

func main() {
	var cfg loadgen.Config
	flag.StringVar(&cfg.URL, "url", "http://127.0.0.1:7070", "server URL")
	flag.StringVar(&cfg.Token, "token", os.Getenv("TTQ_AUTH_TOKEN"), "bearer token")
	flag.IntVar(&cfg.Keys, "keys", 10000, "products to load")
	flag.IntVar(&cfg.Versions, "versions", 10, "versions per product")
	flag.IntVar(&cfg.Rate, "rate", 5000, "point queries per second")
	flag.DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long to query")
	flag.IntVar(&cfg.Workers, "workers", 64, "concurrent clients")
	flag.IntVar(&cfg.Ingest, "ingest", 0, "updates per second ingested meanwhile")
	flag.BoolVar(&cfg.Setup, "setup", true, "create the schema and load data first")
	flag.Parse()
	rep, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ttq-loadgen:", err)
		os.Exit(1)
	}
	fmt.Println(rep)
}
