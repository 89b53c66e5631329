package mvcc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"ttq/types"
)

// Key space. Every Badger key starts with one prefix byte; see
// docs/STORAGE.md for the full layout.
const (
	prefixData   byte = 0x01 // prefixData | id u32 BE | encoded primary key  @ version = ts+1
	prefixCkpt   byte = 0x02 // prefixCkpt | id u32 BE | R|C | ... (checkpoint.go) @ version 1
	prefixMeta   byte = 0x10 // prefixMeta | name                              @ meta sequence
	prefixReject byte = 0x11 // prefixReject | seq u64 BE                      @ meta sequence
)

// ErrBadKey is returned when a stored key cannot be decoded.
var ErrBadKey = errors.New("mvcc: malformed key")

// Version maps a timeline instant (microseconds, >= 0) to the Badger version
// that stores it. Badger reserves version 0, so the timeline is shifted by one.
func Version(ts int64) uint64 { return uint64(ts) + 1 }

// TS maps a Badger version back to the timeline.
func TS(v uint64) int64 { return int64(v - 1) }

// tablePrefix returns prefixData | id.
func tablePrefix(dst []byte, id uint32) []byte {
	dst = append(dst, prefixData)
	return binary.BigEndian.AppendUint32(dst, id)
}

// EncodeKey appends the key of one row of table id: the prefix, the table id
// and each key value in an order-preserving encoding, so that Badger's byte
// order equals (table, key) order. A prefix of the key columns encodes to a
// byte prefix of the full key, which makes prefix scans possible.
func EncodeKey(dst []byte, id uint32, key []types.Value) []byte {
	dst = tablePrefix(dst, id)
	for _, v := range key {
		dst = appendKeyValue(dst, v)
	}
	return dst
}

// EncodeRowKey is EncodeKey of the key of row, whose key columns are pk:
// it encodes them from the row, without a slice of them.
func EncodeRowKey(dst []byte, id uint32, row []types.Value, pk []int) []byte {
	dst = tablePrefix(dst, id)
	for _, c := range pk {
		dst = appendKeyValue(dst, row[c])
	}
	return dst
}

func appendKeyValue(dst []byte, v types.Value) []byte {
	switch v.T {
	case types.BigInt, types.Timestamp:
		return binary.BigEndian.AppendUint64(dst, uint64(v.I)^(1<<63))
	case types.Double:
		f := v.F
		if f == 0 {
			f = 0 // fold -0 into +0
		}
		b := math.Float64bits(f)
		if b&(1<<63) != 0 {
			b = ^b
		} else {
			b |= 1 << 63
		}
		return binary.BigEndian.AppendUint64(dst, b)
	case types.Boolean:
		return append(dst, byte(v.I&1))
	default: // Varchar: 0x00 escaped as 0x00 0xFF, terminated by 0x00 0x01
		for i := 0; i < len(v.S); i++ {
			c := v.S[i]
			if c == 0 {
				dst = append(dst, 0, 0xFF)
			} else {
				dst = append(dst, c)
			}
		}
		return append(dst, 0, 1)
	}
}

// DecodeKey decodes a key made by EncodeKey, given the key column types.
func DecodeKey(b []byte, kinds []types.Type) (id uint32, key []types.Value, err error) {
	if len(b) < 5 || b[0] != prefixData {
		return 0, nil, fmt.Errorf("%w: no table prefix", ErrBadKey)
	}
	id = binary.BigEndian.Uint32(b[1:5])
	b = b[5:]
	key = make([]types.Value, len(kinds))
	for i, k := range kinds {
		var v types.Value
		v, b, err = decodeKeyValue(b, k)
		if err != nil {
			return 0, nil, err
		}
		key[i] = v
	}
	if len(b) != 0 {
		return 0, nil, fmt.Errorf("%w: %d trailing bytes", ErrBadKey, len(b))
	}
	return id, key, nil
}

func decodeKeyValue(b []byte, t types.Type) (types.Value, []byte, error) {
	switch t {
	case types.BigInt, types.Timestamp:
		if len(b) < 8 {
			return types.Value{}, nil, fmt.Errorf("%w: short integer", ErrBadKey)
		}
		return types.Value{T: t, I: int64(binary.BigEndian.Uint64(b) ^ (1 << 63))}, b[8:], nil
	case types.Double:
		if len(b) < 8 {
			return types.Value{}, nil, fmt.Errorf("%w: short double", ErrBadKey)
		}
		u := binary.BigEndian.Uint64(b)
		if u&(1<<63) != 0 {
			u &^= 1 << 63
		} else {
			u = ^u
		}
		return types.Float(math.Float64frombits(u)), b[8:], nil
	case types.Boolean:
		if len(b) < 1 {
			return types.Value{}, nil, fmt.Errorf("%w: short boolean", ErrBadKey)
		}
		return types.Bool(b[0] != 0), b[1:], nil
	case types.Varchar:
		s := make([]byte, 0, 16)
		for i := 0; i < len(b); i++ {
			if b[i] != 0 {
				s = append(s, b[i])
				continue
			}
			if i+1 >= len(b) {
				break
			}
			switch b[i+1] {
			case 0xFF:
				s = append(s, 0)
				i++
			case 1:
				return types.String(string(s)), b[i+2:], nil
			default:
				return types.Value{}, nil, fmt.Errorf("%w: bad string escape", ErrBadKey)
			}
		}
		return types.Value{}, nil, fmt.Errorf("%w: unterminated string", ErrBadKey)
	}
	return types.Value{}, nil, fmt.Errorf("%w: key column of type %s", ErrBadKey, t)
}

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

func rejectKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixReject}, seq)
}
