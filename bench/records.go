package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// rec is one parsed envelope, for the raw systems (raw Badger, SQLite),
// which are timed on already parsed records.
type rec struct {
	Source string   `json:"source"`
	Table  string   `json:"table"`
	Op     string   `json:"op"`
	TS     int64    `json:"ts"`
	Data   *rowData `json:"data"`
	Key    *rowData `json:"key"`
}

type rowData struct {
	ProductID string  `json:"product_id"`
	ListingID string  `json:"listing_id"`
	Category  string  `json:"category"`
	Active    bool    `json:"active"`
	Title     string  `json:"title"`
	Price     float64 `json:"price"`
}

// readRecords parses the workload file in chunks of n upserts and deletes
// (watermarks are skipped) and hands each chunk to fn.
func readRecords(r io.Reader, n int, fn func([]rec) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	chunk := make([]rec, 0, n)
	line := 0
	for sc.Scan() {
		line++
		var x rec
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			return fmt.Errorf("workload line %d: %w", line, err)
		}
		if x.Op == "watermark" {
			continue
		}
		chunk = append(chunk, x)
		if len(chunk) == n {
			if err := fn(chunk); err != nil {
				return err
			}
			chunk = chunk[:0]
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(chunk) > 0 {
		return fn(chunk)
	}
	return nil
}
