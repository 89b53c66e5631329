package catalog

import (
	"errors"
	"testing"

	"ttq/types"
)

func TestAddTableValidates(t *testing.T) {
	c := New()
	if err := c.AddSource(&Source{Name: "Pricing"}); err != nil {
		t.Fatal(err)
	}
	cols := func(names ...string) []Column {
		var out []Column
		for _, n := range names {
			out = append(out, Column{Name: n, Type: types.Varchar})
		}
		return out
	}
	cases := []struct {
		name string
		t    *Table
		want error
	}{
		{"ok", &Table{Name: "prices", Source: "pricing", Columns: cols("id", "v"), PK: []int{0}}, nil},
		{"duplicate table", &Table{Name: "PRICES", Source: "pricing", Columns: cols("id"), PK: []int{0}}, ErrExists},
		{"unknown source", &Table{Name: "t2", Source: "billing", Columns: cols("id"), PK: []int{0}}, ErrUnknownSource},
		{"no key", &Table{Name: "t3", Source: "pricing", Columns: cols("id")}, ErrInvalid},
		{"duplicate column", &Table{Name: "t4", Source: "pricing", Columns: cols("id", "ID"), PK: []int{0}}, ErrInvalid},
		{"reserved column", &Table{Name: "t5", Source: "pricing", Columns: cols("id", "_ts"), PK: []int{0}}, ErrInvalid},
	}
	for _, tc := range cases {
		err := c.AddTable(tc.t)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := c.DropSource("pricing"); !errors.Is(err, ErrInUse) {
		t.Errorf("dropping a source that owns a table: %v", err)
	}
	if err := c.AddSource(&Source{Name: "x", Format: "avro"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestCatalogRoundTripAndIDs(t *testing.T) {
	c := New()
	_ = c.AddSource(&Source{Name: "s", Watermark: WatermarkBounded, MaxDelay: 5})
	_ = c.AddTable(&Table{Name: "a", Source: "s", Columns: []Column{{Name: "k", Type: types.BigInt}}, PK: []int{0}})
	_ = c.AddView(&View{Name: "v", Query: "SELECT k FROM a"})
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := d.Table("A")
	v, _ := d.View("v")
	if a == nil || v == nil || a.ID == v.ID || d.Sources["s"].MaxDelay != 5 || d.Sources["s"].Topic != "s" {
		t.Fatalf("round trip lost something: %+v %+v %+v", a, v, d.Sources["s"])
	}
	// IDs are never reused, so a dropped table's rows can never surface
	// under a new table.
	_, _ = d.DropTable("a")
	_ = d.AddTable(&Table{Name: "a", Source: "s", Columns: []Column{{Name: "k", Type: types.BigInt}}, PK: []int{0}})
	if na, _ := d.Table("a"); na.ID == a.ID {
		t.Fatal("a table id was reused")
	}
	cl := d.Clone()
	cl.Sources["s"].MaxDelay = 9
	if d.Sources["s"].MaxDelay != 5 {
		t.Fatal("Clone shares state")
	}
}
