package types

import (
	"errors"
	"math"
	"testing"
)

func TestText(t *testing.T) {
	cases := []struct {
		v    Value
		text string
		js   string
	}{
		{NullValue, "", "null"},
		{Int(-42), "-42", "-42"},
		{Float(499), "499", "499"},
		{Float(19.99), "19.99", "19.99"},
		{Float(1e6), "1e+06", "1e+06"},
		{Float(math.Inf(1)), "Infinity", `"Infinity"`},
		{String(`a "b", c`), `a "b", c`, `"a \"b\", c"`},
		{Bool(true), "true", "true"},
		{Time(1795600800000123), "2026-11-25T10:00:00.000123Z", `"2026-11-25T10:00:00.000123Z"`},
	}
	for _, c := range cases {
		if got := c.v.Text(); got != c.text {
			t.Errorf("Text(%#v) = %q, want %q", c.v, got, c.text)
		}
		if got, _ := c.v.MarshalJSON(); string(got) != c.js {
			t.Errorf("MarshalJSON(%#v) = %s, want %s", c.v, got, c.js)
		}
	}
}

func TestCompare(t *testing.T) {
	cases := []struct {
		a, b Value
		want int
	}{
		{Int(1), Float(1.5), -1},
		{Float(2), Int(2), 0},
		{String("a"), String("b"), -1},
		{NullValue, Int(0), -1},
		{Bool(false), Bool(true), -1},
		{Float(math.NaN()), Float(0), -1},
	}
	for _, c := range cases {
		if got := Compare(c.a, c.b); got != c.want {
			t.Errorf("Compare(%v, %v) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	if !Equal(NullValue, NullValue) || Equal(NullValue, Int(0)) {
		t.Error("Equal treats NULLs as one group")
	}
}

func TestParseType(t *testing.T) {
	for name, want := range map[string]Type{"int": BigInt, "INTEGER": BigInt, "real": Double, "VARCHAR(64)": Varchar, "text": Varchar, "bool": Boolean, "timestamp": Timestamp} {
		if got, err := ParseType(name); err != nil || got != want {
			t.Errorf("ParseType(%q) = %v, %v", name, got, err)
		}
	}
	if _, err := ParseType("blob"); !errors.Is(err, ErrUnknownType) {
		t.Errorf("blob: %v", err)
	}
}
