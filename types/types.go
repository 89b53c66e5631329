// Package types defines ttq's column types and the typed values that flow
// through ingest, storage and query execution.
package types

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"ttq/timeline"
)

// ErrUnknownType is returned by ParseType for a type name ttq does not know.
var ErrUnknownType = errors.New("types: unknown column type")

// Type is a column type. The zero Type is Null, the type of the NULL literal.
type Type uint8

const (
	Null Type = iota
	BigInt
	Double
	Varchar
	Boolean
	Timestamp
)

// String returns the SQL name of t.
func (t Type) String() string {
	switch t {
	case BigInt:
		return "BIGINT"
	case Double:
		return "DOUBLE"
	case Varchar:
		return "VARCHAR"
	case Boolean:
		return "BOOLEAN"
	case Timestamp:
		return "TIMESTAMP"
	}
	return "NULL"
}

// Arrow returns the Arrow type a column of type t maps to. Timestamps are
// microseconds in UTC, like the timeline.
func (t Type) Arrow() arrow.DataType {
	switch t {
	case BigInt:
		return arrow.PrimitiveTypes.Int64
	case Double:
		return arrow.PrimitiveTypes.Float64
	case Varchar:
		return arrow.BinaryTypes.String
	case Boolean:
		return arrow.FixedWidthTypes.Boolean
	case Timestamp:
		return timestampArrow
	}
	return arrow.Null
}

// timestampArrow is shared: Arrow types are immutable.
var timestampArrow = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// ParseType maps a SQL type name (with aliases, any case, an optional length
// such as VARCHAR(64)) to a Type.
func ParseType(name string) (Type, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if i := strings.IndexByte(n, '('); i >= 0 {
		n = strings.TrimSpace(n[:i])
	}
	switch n {
	case "BIGINT", "INT", "INTEGER":
		return BigInt, nil
	case "DOUBLE", "FLOAT", "REAL":
		return Double, nil
	case "VARCHAR", "TEXT":
		return Varchar, nil
	case "BOOLEAN", "BOOL":
		return Boolean, nil
	case "TIMESTAMP":
		return Timestamp, nil
	}
	return Null, fmt.Errorf("%w %q (use BIGINT, DOUBLE, VARCHAR, BOOLEAN or TIMESTAMP)", ErrUnknownType, name)
}

// Value is one typed SQL value. Integers, booleans (0 or 1) and timestamps
// (microseconds since the Unix epoch) live in I, doubles in F, strings in S.
type Value struct {
	T Type
	I int64
	F float64
	S string
}

// NullValue is the SQL NULL.
var NullValue = Value{}

// Int returns a BIGINT value.
func Int(i int64) Value { return Value{T: BigInt, I: i} }

// Float returns a DOUBLE value.
func Float(f float64) Value { return Value{T: Double, F: f} }

// String returns a VARCHAR value.
func String(s string) Value { return Value{T: Varchar, S: s} }

// Bool returns a BOOLEAN value.
func Bool(b bool) Value {
	if b {
		return Value{T: Boolean, I: 1}
	}
	return Value{T: Boolean}
}

// Time returns a TIMESTAMP value at ts microseconds.
func Time(ts int64) Value { return Value{T: Timestamp, I: ts} }

// IsNull reports whether v is NULL.
func (v Value) IsNull() bool { return v.T == Null }

// AsBool returns the truth of a BOOLEAN value.
func (v Value) AsBool() bool { return v.I != 0 }

// AsFloat returns v as a float64 for numeric comparison and arithmetic.
func (v Value) AsFloat() float64 {
	if v.T == Double {
		return v.F
	}
	return float64(v.I)
}

// Text formats v for display and CSV: NULL as "", doubles in Go's shortest
// round-trip form, booleans as true/false, times as RFC 3339 in UTC.
func (v Value) Text() string {
	switch v.T {
	case BigInt:
		return strconv.FormatInt(v.I, 10)
	case Double:
		return FormatFloat(v.F)
	case Varchar:
		return v.S
	case Boolean:
		if v.I != 0 {
			return "true"
		}
		return "false"
	case Timestamp:
		return timeline.Format(v.I)
	}
	return ""
}

// String implements fmt.Stringer; NULL prints as NULL.
func (v Value) String() string {
	if v.T == Null {
		return "NULL"
	}
	return v.Text()
}

// FormatFloat formats f in Go's shortest round-trip form.
func FormatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// Compare orders two non-NULL values: numbers numerically (BIGINT and DOUBLE
// mix), strings bytewise, booleans false < true, times by instant. Values of
// unrelated types order by type so sorting is total.
func Compare(a, b Value) int {
	if a.T == b.T {
		switch a.T {
		case Double:
			return cmpFloat(a.F, b.F)
		case Varchar:
			return strings.Compare(a.S, b.S)
		case Null:
			return 0
		default:
			return cmpInt(a.I, b.I)
		}
	}
	if a.T == Null {
		return -1
	}
	if b.T == Null {
		return 1
	}
	if a.IsNumeric() && b.IsNumeric() {
		if a.T == BigInt && b.T == BigInt {
			return cmpInt(a.I, b.I)
		}
		return cmpFloat(a.AsFloat(), b.AsFloat())
	}
	return cmpInt(int64(a.T), int64(b.T))
}

// IsNumeric reports whether v is a BIGINT or DOUBLE.
func (v Value) IsNumeric() bool { return v.T == BigInt || v.T == Double }

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case a == b:
		return 0
	case math.IsNaN(a) && !math.IsNaN(b):
		return -1
	case !math.IsNaN(a) && math.IsNaN(b):
		return 1
	}
	return 0
}

// Equal reports whether two values are the same for grouping and DISTINCT:
// NULLs are equal to each other here, unlike in SQL comparisons.
func Equal(a, b Value) bool {
	if a.T == Null || b.T == Null {
		return a.T == b.T
	}
	return Compare(a, b) == 0
}

// MarshalJSON encodes v as a JSON value: NULL as null, BIGINT and DOUBLE as
// numbers (doubles in the shortest round-trip form, NaN and infinities as
// strings), booleans, and strings; times are RFC 3339 strings in UTC. The
// JSON result format, exports and change feeds all use it.
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.T {
	case Null:
		return []byte("null"), nil
	case BigInt:
		return strconv.AppendInt(nil, v.I, 10), nil
	case Double:
		if math.IsInf(v.F, 0) || math.IsNaN(v.F) {
			return strconv.AppendQuote(nil, FormatFloat(v.F)), nil
		}
		return []byte(FormatFloat(v.F)), nil
	case Boolean:
		return []byte(v.Text()), nil
	}
	return json.Marshal(v.Text())
}
