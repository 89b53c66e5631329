package main

import (
	"context"
	"strings"
	"testing"
)

// TestSmoke runs the whole benchmark at a tiny scale: generation, ingest
// into every system, the answer check of every query, timing and the
// table. It runs only inside this module: cd bench && go test ./...
func TestSmoke(t *testing.T) {
	cfg := Config{
		W:      Workload{Products: 200, Listings: 600, Updates: 4000, Seconds: 600, Seed: 7},
		Points: 40,
		Scans:  3,
		Epochs: 3, EpochRows: 50,
		Dir: t.TempDir(),
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		if rep.Checked[q] == 0 {
			t.Errorf("%s: no answers checked", q)
		}
		for _, s := range rep.Systems {
			if len(rep.Lat[q][s]) == 0 {
				t.Errorf("%s %s: not timed", q, s)
			}
		}
	}
	for _, s := range rep.Systems {
		if rep.Ingest[s] <= 0 {
			t.Errorf("%s: no ingest rate", s)
		}
	}
	if e := rep.Epochs; e == nil || len(e.Closes) != 3 || e.Rows == 0 || !strings.Contains(rep.Markdown("x"), "epoch close") {
		t.Errorf("epochs not measured or not reported: %+v", e)
	}
	if rep.Gen.Deletes == 0 {
		t.Error("the workload has no deletes")
	}
	md := rep.Markdown("go test")
	if !strings.Contains(md, "| Q1 price of one product AS OF T |") {
		t.Errorf("table:\n%s", md)
	}
}

// TestDiff: the answer check catches a difference and tolerates float sums
// in another order.
func TestDiff(t *testing.T) {
	if d := diff(answer{"a|1|0.30000000000000004"}, answer{"a|1|0.3"}); d != "" {
		t.Errorf("float tolerance: %s", d)
	}
	if d := diff(answer{"a|1|0.3"}, answer{"a|2|0.3"}); d == "" {
		t.Error("a different count passed")
	}
	if d := diff(answer{"x"}, nil); d == "" {
		t.Error("a missing row passed")
	}
	if d := diff(answer{"1||"}, answer{"1|5|"}); d == "" {
		t.Error("NULL against a value passed")
	}
}

// TestGenerateDeterministic: one seed, one file.
func TestGenerateDeterministic(t *testing.T) {
	w := Workload{Products: 50, Listings: 100, Updates: 1000, Seconds: 60, Seed: 3}
	var a, b strings.Builder
	if _, err := Generate(&a, w); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(&b, w); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Fatal("two runs with one seed differ")
	}
}
