package ingest

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"ttq/catalog"
	"ttq/types"
)

func scanCatalog() *catalog.Catalog {
	cat := catalog.New()
	_ = cat.AddSource(&catalog.Source{Name: "pricing"})
	_ = cat.AddSource(&catalog.Source{Name: "inventory"})
	_ = cat.AddTable(&catalog.Table{Name: "prices", Source: "pricing", Columns: []catalog.Column{
		{Name: "product_id", Type: types.Varchar}, {Name: "price", Type: types.Double}, {Name: "qty", Type: types.BigInt},
		{Name: "on_sale", Type: types.Boolean}, {Name: "since", Type: types.Timestamp}}, PK: []int{0}})
	_ = cat.AddTable(&catalog.Table{Name: "stock", Source: "inventory", Columns: []catalog.Column{
		{Name: "product_id", Type: types.Varchar}, {Name: "warehouse", Type: types.Varchar}, {Name: "qty", Type: types.BigInt}}, PK: []int{0, 1}})
	return cat
}

// scanSeeds are envelopes inside the plain subset and just outside it.
var scanSeeds = []string{
	`{"source":"pricing","table":"prices","op":"upsert","ts":1764064800000000,"data":{"product_id":"P1","price":499.5,"qty":-3,"on_sale":true,"since":"2026-11-25T10:00:00Z"}}`,
	` { "source" : "inventory" , "table":"stock", "op":"delete", "ts":"2026-11-25T10:00:00.5Z", "key":{"warehouse":"w1","product_id":"P1"} } `,
	`{"source":"pricing","op":"watermark","ts":17}`,
	`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1","price":1e3,"qty":5.0,"on_sale":null,"since":12}}`,
	`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1","price":"x","qty":true,"nope":1}}`,
	`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1","product_id":"P2"}}`,
	`{"source":"pricing","source":"pricing","op":"watermark","ts":1}`,
	`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{}}`,
	`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":null}`,
	`{"source":"pric\u0069ng","op":"watermark","ts":1}`,
	`{"Source":"pricing","op":"watermark","ts":1}`,
	`{"source":"pricing","op":"watermark","ts":1,"extra":[1,2]}`,
	`{"source":"pricing","op":"watermark","ts":01}`,
	`{"source":"pricing","op":"watermark","ts":-0}`,
	`{"source":"pricing","op":"watermark","ts":1.}`,
	`{"source":"pricing","op":"watermark","ts":null}`,
	`{"source":null,"op":"watermark","ts":1}`,
	`{"source":"pricing","op":"watermark","ts":1}x`,
	`{"source":"pricing","op":"watermark","ts":1,}`,
	`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1","price":1,"qty":99999999999999999999}}`,
	`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"é ☃","price":-0.0e-0}}`,
	`{}`,
	`{"source":"pricing","table":"stock","op":"delete","ts":1,"key":{"product_id":"P1"}}`,
	`{"source":"inventory","table":"stock","op":"delete","ts":1,"key":{"product_id":"P1","qty":1}}`,
	`{"source":"inventory","table":"stock","op":"upsert","ts":1,"data":{"product_id":"P1","warehouse":"a	b"}}`,
}

func TestScanEnvelopeMatchesJSON(t *testing.T) {
	cat := scanCatalog()
	accepted := 0
	for _, s := range scanSeeds {
		if checkScan(t, cat, s) {
			accepted++
		}
	}
	for _, s := range scanSeeds[:4] {
		if _, ok := scanEnvelope([]byte(s)); !ok {
			t.Errorf("the scan refused the plain envelope %s", s)
		}
	}
	if accepted < 10 {
		t.Fatalf("the scan accepted %d seeds", accepted)
	}
}

func FuzzScanEnvelope(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add(s)
	}
	cat := scanCatalog()
	f.Fuzz(func(t *testing.T, s string) { checkScan(t, cat, s) })
}

// checkScan reports whether the scan accepts line, failing t unless the
// update or reject it leads to is the JSON library's.
func checkScan(t *testing.T, cat *catalog.Catalog, line string) bool {
	t.Helper()
	if !utf8.ValidString(line) {
		return false // Decode refuses it before either
	}
	fast, ok := scanEnvelope([]byte(line))
	if !ok {
		return false
	}
	slow, err := unmarshalEnvelope([]byte(line))
	if err != nil {
		t.Fatalf("%s: the scan accepted what the JSON library rejects: %v", line, err)
	}
	fu, fr := fast.validate(cat)
	su, sr := slow.validate(cat)
	if !reflect.DeepEqual(fu, su) || !reflect.DeepEqual(fr, sr) {
		t.Fatalf("%s:\nscan %+v %+v\njson %+v %+v", line, fu, fr, su, sr)
	}
	return true
}

// TestRejectNamesFirstBadColumn: a line with several bad columns is
// rejected for the first one it writes, whichever path reads it (an
// escape in a string sends a line to the JSON library).
func TestRejectNamesFirstBadColumn(t *testing.T) {
	cat := scanCatalog()
	cases := []struct {
		line, reason, column string
	}{
		{`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1","zz":1,"price":"x"}}`, ReasonUnknownColumn, "zz"},
		{`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1","price":"x","zz":1}}`, ReasonBadValue, "price"},
		{`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"qty":1.5,"product_id":"P\u0031","price":"x"}}`, ReasonBadValue, "qty"},
		{`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P\u0031","price":"x","qty":1.5}}`, ReasonBadValue, "price"},
		{`{"source":"pricing","table":"prices","op":"upsert","ts":1,"Data":{"on_sale":1,"qty":"x"},"extra":{"a":[1]}}`, ReasonBadValue, "on_sale"},
		{`{"source":"inventory","table":"stock","op":"delete","ts":1,"key":{"qty":1,"nope":2,"product_id":"P\u0031"}}`, ReasonUnknownColumn, "qty"},
	}
	for _, c := range cases {
		_, re := Decode([]byte(c.line), cat)
		if re == nil || re.Reason != c.reason || !strings.Contains(re.Message, `"`+c.column+`"`) {
			t.Errorf("%s: %+v, want %s naming %q", c.line, re, c.reason, c.column)
		}
	}
}
