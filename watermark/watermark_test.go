package watermark

import (
	"testing"

	"ttq/catalog"
	"ttq/timeline"
)

func TestGlobalIsMinimumOverSources(t *testing.T) {
	tr := New()
	tr.Declare(&catalog.Source{Name: "search", Watermark: catalog.WatermarkExplicit})
	tr.Declare(&catalog.Source{Name: "pricing", Watermark: catalog.WatermarkExplicit})
	if g := tr.Global(); g != timeline.None {
		t.Fatalf("G = %d before any watermark, want None", g)
	}
	tr.Advance("search", Default, 100)
	if g := tr.Global(); g != timeline.None {
		t.Fatalf("G = %d while pricing sent nothing, want None", g)
	}
	tr.Advance("pricing", Default, 80)
	if g := tr.Global(); g != 80 {
		t.Fatalf("G = %d, want 80", g)
	}
	if h := tr.Holding(); len(h) != 1 || h[0] != "pricing" {
		t.Fatalf("holding %v, want [pricing]", h)
	}
	if moved := tr.Advance("pricing", Default, 70); moved {
		t.Fatal("a lower watermark must be a no-op")
	}
	tr.Advance("pricing", Default, 120)
	if g := tr.Global(); g != 100 {
		t.Fatalf("G = %d, want 100", g)
	}
}

func TestLateness(t *testing.T) {
	tr := New()
	tr.Declare(&catalog.Source{Name: "s", Watermark: catalog.WatermarkExplicit})
	cases := []struct {
		op   string
		ts   int64
		late bool
	}{
		{"data", 5, false},
		{"wm", 10, false},
		{"data", 10, true}, // at the watermark is late
		{"data", 9, true},
		{"data", 11, false},
		{"wm", 8, false}, // no-op
		{"data", 9, true},
	}
	for i, c := range cases {
		if c.op == "wm" {
			tr.Advance("s", Default, c.ts)
			continue
		}
		if late, _ := tr.Late("s", Default, c.ts); late != c.late {
			t.Fatalf("step %d: ts %d late=%v want %v", i, c.ts, late, c.late)
		}
		tr.Observe("s", Default, c.ts)
	}
}

func TestBoundedDelay(t *testing.T) {
	tr := New()
	tr.Declare(&catalog.Source{Name: "search", Watermark: catalog.WatermarkBounded, MaxDelay: 5})
	if w := tr.Sources["search"].W(); w != timeline.None {
		t.Fatalf("W = %d before data, want None", w)
	}
	tr.Observe("search", Default, 100)
	if w := tr.Sources["search"].W(); w != 95 {
		t.Fatalf("W = %d, want 95", w)
	}
	if late, _ := tr.Late("search", Default, 95); !late {
		t.Fatal("ts 95 must be late once W is 95")
	}
	if late, _ := tr.Late("search", Default, 96); late {
		t.Fatal("ts 96 is within the delay")
	}
	tr.Observe("search", Default, 90) // older record does not move W back
	if w := tr.Sources["search"].W(); w != 95 {
		t.Fatalf("W = %d, want 95", w)
	}
}

func TestPartitionsGateSource(t *testing.T) {
	tr := New()
	tr.Declare(&catalog.Source{Name: "s", Watermark: catalog.WatermarkExplicit})
	tr.Expect("s", []string{"t/0", "t/1"})
	tr.Advance("s", "t/0", 50)
	if w := tr.Sources["s"].W(); w != timeline.None {
		t.Fatalf("W = %d with partition 1 silent, want None", w)
	}
	tr.Advance("s", "t/1", 30)
	if w := tr.Sources["s"].W(); w != 30 {
		t.Fatalf("W = %d, want 30", w)
	}
	if late, _ := tr.Late("s", "t/0", 40); !late {
		t.Fatal("lateness is judged per partition: 40 <= 50 on t/0")
	}
	if late, _ := tr.Late("s", "t/1", 40); late {
		t.Fatal("40 > 30 on t/1 is not late")
	}
}

func TestDeclaringLaterNeverUnseals(t *testing.T) {
	tr := New()
	tr.Declare(&catalog.Source{Name: "a", Watermark: catalog.WatermarkExplicit})
	tr.Advance("a", Default, 100)
	tr.Declare(&catalog.Source{Name: "b", Watermark: catalog.WatermarkExplicit})
	if g := tr.Global(); g != 100 {
		t.Fatalf("G = %d after declaring b, want 100 (never back)", g)
	}
	if late, _ := tr.Late("b", Default, 100); !late {
		t.Fatal("b's records at or below the sealed G are late")
	}
}

func TestCloneIsDeep(t *testing.T) {
	tr := New()
	tr.Declare(&catalog.Source{Name: "a", Watermark: catalog.WatermarkExplicit})
	tr.Advance("a", Default, 1)
	c := tr.Clone()
	tr.Advance("a", Default, 9)
	if c.Global() != 1 {
		t.Fatal("clone shares state with the original")
	}
}
