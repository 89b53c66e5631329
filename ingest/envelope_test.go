package ingest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"ttq/catalog"
	"ttq/types"
)

func testCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	c := catalog.New()
	for _, s := range []string{"pricing", "inventory", "search"} {
		if err := c.AddSource(&catalog.Source{Name: s}); err != nil {
			t.Fatal(err)
		}
	}
	tables := []*catalog.Table{
		{Name: "prices", Source: "pricing", Columns: []catalog.Column{{Name: "product_id", Type: types.Varchar}, {Name: "price", Type: types.Double}, {Name: "currency", Type: types.Varchar}}, PK: []int{0}},
		{Name: "stock", Source: "inventory", Columns: []catalog.Column{{Name: "product_id", Type: types.Varchar}, {Name: "warehouse", Type: types.Varchar}, {Name: "qty", Type: types.BigInt}}, PK: []int{0, 1}},
		{Name: "listings", Source: "search", Columns: []catalog.Column{{Name: "listing_id", Type: types.Varchar}, {Name: "active", Type: types.Boolean}, {Name: "seen", Type: types.Timestamp}}, PK: []int{0}},
	}
	for _, tb := range tables {
		if err := c.AddTable(tb); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestDecodeAccepts(t *testing.T) {
	cat := testCatalog(t)
	cases := []struct {
		name, line string
		op         Op
		ts         int64
		check      func(Update) bool
	}{
		{"upsert rfc3339 micros", `{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:00.000123Z","data":{"product_id":"P1","price":499.0,"currency":"INR"}}`,
			OpUpsert, 1795600800000123, func(u Update) bool { return u.Row[1].F == 499 && u.Row[2].S == "INR" }},
		{"upsert integer ts and missing column is NULL", `{"source":"pricing","table":"prices","op":"upsert","ts":1795600800000123,"data":{"product_id":"P1","price":5}}`,
			OpUpsert, 1795600800000123, func(u Update) bool { return u.Row[1].F == 5 && u.Row[2].IsNull() }},
		{"offset time", `{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T15:30:00+05:30","data":{"product_id":"P1"}}`,
			OpUpsert, 1795600800000000, nil},
		{"delete composite key", `{"source":"inventory","table":"stock","op":"delete","ts":5,"key":{"warehouse":"berlin","product_id":"P1"}}`,
			OpDelete, 5, func(u Update) bool { return u.Key[0].S == "P1" && u.Key[1].S == "berlin" }},
		{"bigint written as integral float", `{"source":"inventory","table":"stock","op":"upsert","ts":5,"data":{"product_id":"P1","warehouse":"w","qty":3.0}}`,
			OpUpsert, 5, func(u Update) bool { return u.Row[2].I == 3 }},
		{"large bigint exact", `{"source":"inventory","table":"stock","op":"upsert","ts":5,"data":{"product_id":"P1","warehouse":"w","qty":9007199254740993}}`,
			OpUpsert, 5, func(u Update) bool { return u.Row[2].I == 9007199254740993 }},
		{"boolean and timestamp", `{"source":"search","table":"listings","op":"upsert","ts":5,"data":{"listing_id":"L1","active":false,"seen":"2026-11-25T10:00:00Z"}}`,
			OpUpsert, 5, func(u Update) bool { return !u.Row[1].AsBool() && u.Row[2].I == 1795600800000000 }},
		{"watermark", `{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:01Z"}`, OpWatermark, 1795600801000000, nil},
		{"case-insensitive names", `{"source":"Pricing","table":"PRICES","op":"upsert","ts":1,"data":{"Product_ID":"P1"}}`, OpUpsert, 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, re := Decode([]byte(c.line), cat)
			if re != nil {
				t.Fatalf("rejected: %v", re)
			}
			if u.Op != c.op || u.TS != c.ts {
				t.Fatalf("got op %v ts %d, want %v %d", u.Op, u.TS, c.op, c.ts)
			}
			if c.check != nil && !c.check(u) {
				t.Fatalf("unexpected update %+v", u)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	cat := testCatalog(t)
	cases := []struct{ name, line, reason string }{
		{"not json", `{"source":`, ReasonInvalidJSON},
		{"not utf8", "{\"source\":\"pricing\xff\"}", ReasonInvalidJSON},
		{"array", `[1,2]`, ReasonInvalidJSON},
		{"unknown op", `{"source":"pricing","table":"prices","op":"merge","ts":1,"data":{"product_id":"P1"}}`, ReasonBadOp},
		{"missing op", `{"source":"pricing","table":"prices","ts":1}`, ReasonBadOp},
		{"missing ts", `{"source":"pricing","table":"prices","op":"upsert","data":{"product_id":"P1"}}`, ReasonBadTS},
		{"garbage ts", `{"source":"pricing","table":"prices","op":"upsert","ts":"yesterday","data":{"product_id":"P1"}}`, ReasonBadTS},
		{"fractional ts", `{"source":"pricing","table":"prices","op":"upsert","ts":1.5,"data":{"product_id":"P1"}}`, ReasonBadTS},
		{"negative ts", `{"source":"pricing","table":"prices","op":"upsert","ts":-5,"data":{"product_id":"P1"}}`, ReasonBadTS},
		{"nanosecond ts", `{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:00.0000001Z","data":{"product_id":"P1"}}`, ReasonBadTS},
		{"undeclared source", `{"source":"billing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1"}}`, ReasonUnknownSource},
		{"undeclared table", `{"source":"pricing","table":"coupons","op":"upsert","ts":1,"data":{"product_id":"P1"}}`, ReasonUnknownTable},
		{"table of another source", `{"source":"pricing","table":"stock","op":"upsert","ts":1,"data":{"product_id":"P1","warehouse":"w"}}`, ReasonWrongSource},
		{"missing key column", `{"source":"inventory","table":"stock","op":"upsert","ts":1,"data":{"product_id":"P1","qty":1}}`, ReasonMissingKey},
		{"null key", `{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":null}}`, ReasonMissingKey},
		{"delete without key", `{"source":"pricing","table":"prices","op":"delete","ts":1}`, ReasonMissingKey},
		{"delete partial key", `{"source":"inventory","table":"stock","op":"delete","ts":1,"key":{"product_id":"P1"}}`, ReasonMissingKey},
		{"unknown column", `{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1","colour":"red"}}`, ReasonUnknownColumn},
		{"delete by non-key column", `{"source":"pricing","table":"prices","op":"delete","ts":1,"key":{"product_id":"P1","price":1}}`, ReasonUnknownColumn},
		{"string for double", `{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1","price":"499"}}`, ReasonBadValue},
		{"number for varchar", `{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1","currency":5}}`, ReasonBadValue},
		{"fraction for bigint", `{"source":"inventory","table":"stock","op":"upsert","ts":1,"data":{"product_id":"P1","warehouse":"w","qty":2.5}}`, ReasonBadValue},
		{"bigint overflow", `{"source":"inventory","table":"stock","op":"upsert","ts":1,"data":{"product_id":"P1","warehouse":"w","qty":99999999999999999999}}`, ReasonBadValue},
		{"double overflow", `{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1","price":1e400}}`, ReasonBadValue},
		{"string for boolean", `{"source":"search","table":"listings","op":"upsert","ts":1,"data":{"listing_id":"L1","active":"yes"}}`, ReasonBadValue},
		{"bad timestamp value", `{"source":"search","table":"listings","op":"upsert","ts":1,"data":{"listing_id":"L1","seen":"soon"}}`, ReasonBadValue},
		{"NaN is not JSON", `{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1","price":NaN}}`, ReasonInvalidJSON},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, re := Decode([]byte(c.line), cat)
			if re == nil {
				t.Fatal("accepted")
			}
			if re.Reason != c.reason {
				t.Fatalf("reason %s (%s), want %s", re.Reason, re.Message, c.reason)
			}
			if !errors.Is(re, ErrRejected) {
				t.Fatal("reject does not wrap ErrRejected")
			}
			if strings.Contains(re.Message, "\n") {
				t.Fatal("message spans lines")
			}
		})
	}
}

func TestRejectRoundTripKeepsBytes(t *testing.T) {
	r := Reject{Source: "pricing", Reason: ReasonInvalidJSON, Message: "m", Origin: "f:1", Record: []byte("\xff\x00{")}
	got, err := UnmarshalReject(r.Marshal())
	if err != nil || string(got.Record) != string(r.Record) || got.Origin != "f:1" || got.Truncated {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	big := Reject{Record: make([]byte, MaxStoredRecord+10)}
	got, err = UnmarshalReject(big.Marshal())
	if err != nil || !got.Truncated || len(got.Record) != MaxStoredRecord {
		t.Fatalf("oversized record: truncated=%v len=%d err=%v", got.Truncated, len(got.Record), err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"product_id":"P1","price":1}}`)
	f.Add(`{"source":"inventory","table":"stock","op":"delete","ts":"2026-11-25T10:00:00Z","key":{"product_id":"P1","warehouse":"w"}}`)
	f.Add(`{"source":"pricing","op":"watermark","ts":"-1s"}`)
	f.Add(`[[[[[[[[[[`)
	f.Add(`{"source":"0\n0","op":"watermark","ts":1}`) // a name with a newline stays on the reason's one line
	f.Add(`{"source":"pricing","table":"prices","op":"upsert","ts":1,"data":{"price":"x","zz":1,"product_id":"P\u0031"},"data":{"zz":2,"price":[]}}`)
	cat := catalog.New()
	_ = cat.AddSource(&catalog.Source{Name: "pricing"})
	_ = cat.AddTable(&catalog.Table{Name: "prices", Source: "pricing", Columns: []catalog.Column{{Name: "product_id", Type: types.Varchar}, {Name: "price", Type: types.Double}}, PK: []int{0}})
	f.Fuzz(func(t *testing.T, line string) {
		u, re := Decode([]byte(line), cat)
		for range 3 { // the same line is always decided alike (no map order)
			if u2, re2 := Decode([]byte(line), cat); !reflect.DeepEqual(u, u2) || !reflect.DeepEqual(re, re2) {
				t.Fatalf("%q decoded twice: %+v %+v, then %+v %+v", line, u, re, u2, re2)
			}
		}
		if re != nil {
			if re.Reason == "" || strings.Contains(re.Message, "\n") {
				t.Fatalf("bad reject %+v", re)
			}
			return
		}
		if u.Op == OpUpsert && (len(u.Row) != 2 || u.Row[0].IsNull()) {
			t.Fatalf("accepted upsert without key: %+v", u)
		}
		if u.TS < 0 {
			t.Fatalf("accepted negative ts %d", u.TS)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	cat := catalog.New()
	_ = cat.AddSource(&catalog.Source{Name: "pricing"})
	_ = cat.AddTable(&catalog.Table{Name: "prices", Source: "pricing", Columns: []catalog.Column{{Name: "product_id", Type: types.Varchar}, {Name: "price", Type: types.Double}, {Name: "currency", Type: types.Varchar}}, PK: []int{0}})
	line := []byte(`{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:00.000123Z","data":{"product_id":"P1","price":499.0,"currency":"INR"}}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, re := Decode(line, cat); re != nil {
			b.Fatal(re)
		}
	}
}
