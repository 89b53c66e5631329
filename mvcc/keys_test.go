package mvcc

import (
	"bytes"
	"math"
	"testing"

	"ttq/types"
)

func TestKeyOrderMatchesValueOrder(t *testing.T) {
	cases := []struct {
		name string
		a, b types.Value
	}{
		{"negative before positive", types.Int(-5), types.Int(3)},
		{"int min before zero", types.Int(math.MinInt64), types.Int(0)},
		{"small before large", types.Int(7), types.Int(1 << 40)},
		{"negative doubles", types.Float(-2.5), types.Float(-1)},
		{"double sign", types.Float(-0.1), types.Float(0.1)},
		{"double magnitude", types.Float(1.5), types.Float(1e300)},
		{"string prefix", types.String("P1"), types.String("P10")},
		{"string with NUL", types.String("a\x00"), types.String("a\x00b")},
		{"NUL before letter", types.String("a\x00z"), types.String("aa")},
		{"empty string first", types.String(""), types.String("\x00")},
		{"false before true", types.Bool(false), types.Bool(true)},
		{"times", types.Time(1), types.Time(2)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ka := EncodeKey(nil, 7, []types.Value{c.a})
			kb := EncodeKey(nil, 7, []types.Value{c.b})
			if bytes.Compare(ka, kb) >= 0 {
				t.Fatalf("key(%v)=%x not before key(%v)=%x", c.a, ka, c.b, kb)
			}
		})
	}
}

func TestCompositeKeyOrderAndPrefix(t *testing.T) {
	k1 := EncodeKey(nil, 1, []types.Value{types.String("P1"), types.String("berlin")})
	k2 := EncodeKey(nil, 1, []types.Value{types.String("P1"), types.String("madrid")})
	k3 := EncodeKey(nil, 1, []types.Value{types.String("P10"), types.String("aachen")})
	p := EncodeKey(nil, 1, []types.Value{types.String("P1")})
	if !(bytes.Compare(k1, k2) < 0 && bytes.Compare(k2, k3) < 0) {
		t.Fatal("composite keys out of order")
	}
	if !bytes.HasPrefix(k1, p) || !bytes.HasPrefix(k2, p) || bytes.HasPrefix(k3, p) {
		t.Fatal("prefix of P1 must cover P1 rows only, not P10")
	}
	if bytes.HasPrefix(EncodeKey(nil, 2, nil), EncodeKey(nil, 1, nil)) {
		t.Fatal("table prefixes overlap")
	}
}

func FuzzKeyRoundTrip(f *testing.F) {
	f.Add(int64(0), "P1", 1.5, true)
	f.Add(int64(-1), "", -0.0, false)
	f.Add(int64(math.MaxInt64), "a\x00\xff", math.Inf(1), true)
	f.Fuzz(func(t *testing.T, i int64, s string, d float64, b bool) {
		if math.IsNaN(d) {
			return
		}
		kinds := []types.Type{types.BigInt, types.Varchar, types.Double, types.Boolean}
		key := []types.Value{types.Int(i), types.String(s), types.Float(d), types.Bool(b)}
		enc := EncodeKey(nil, 42, key)
		id, got, err := DecodeKey(enc, kinds)
		if err != nil || id != 42 {
			t.Fatalf("decode: id %d err %v", id, err)
		}
		for j := range key {
			if types.Compare(key[j], got[j]) != 0 {
				t.Fatalf("column %d: %v != %v", j, key[j], got[j])
			}
		}
		// Order: changing the string must order the keys like the strings.
		other := EncodeKey(nil, 42, []types.Value{types.Int(i), types.String(s + "x"), types.Float(d), types.Bool(b)})
		if bytes.Compare(enc, other) >= 0 {
			t.Fatalf("key order broken for %q", s)
		}
	})
}

// TestEncodeRowKeyEqualsEncodeKey checks that encoding a row's key columns
// in place gives the bytes of encoding the extracted key, for key columns
// in and out of the row's column order.
func TestEncodeRowKeyEqualsEncodeKey(t *testing.T) {
	row := []types.Value{types.String("b"), types.Int(-7), types.NullValue, types.Float(2.5), types.Bool(true)}
	for _, pk := range [][]int{{0}, {1}, {3, 0}, {4, 1, 0}, {2}, {}} {
		key := make([]types.Value, len(pk))
		for i, c := range pk {
			key[i] = row[c]
		}
		want := EncodeKey([]byte("x"), 42, key)
		if got := EncodeRowKey([]byte("x"), 42, row, pk); !bytes.Equal(got, want) {
			t.Errorf("pk %v: %x, want %x", pk, got, want)
		}
	}
}
