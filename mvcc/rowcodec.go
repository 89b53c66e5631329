package mvcc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"ttq/catalog"
	"ttq/types"
)

// ErrBadRow is returned when a stored row cannot be decoded.
var ErrBadRow = errors.New("mvcc: malformed row")

// EncodeRow appends the value encoding of one row of cols: a NULL bitmap,
// then each non-NULL value in column order (integers and times as zig-zag
// varints, doubles as 8 little-endian bytes, strings length-prefixed,
// booleans as one byte). The layout is written down in docs/STORAGE.md.
func EncodeRow(dst []byte, cols []catalog.Column, row []types.Value) []byte {
	nb := (len(cols) + 7) / 8
	start := len(dst)
	for i := 0; i < nb; i++ {
		dst = append(dst, 0)
	}
	for i, c := range cols {
		v := row[i]
		if v.T == types.Null {
			dst[start+i/8] |= 1 << (i % 8)
			continue
		}
		switch c.Type {
		case types.BigInt, types.Timestamp, types.Boolean:
			dst = binary.AppendVarint(dst, v.I)
		case types.Double:
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.F))
		default:
			dst = binary.AppendUvarint(dst, uint64(len(v.S)))
			dst = append(dst, v.S...)
		}
	}
	return dst
}

// DecodeRow decodes a row made by EncodeRow into dst (resized to len(cols)).
// Strings are copied, so the result does not alias b.
func DecodeRow(dst []types.Value, cols []catalog.Column, b []byte) ([]types.Value, error) {
	return decodeRow(dst, cols, b, false)
}

// decodeRow is DecodeRow; with share, strings point into b instead of
// copies of it (b must never change afterwards).
func decodeRow(dst []types.Value, cols []catalog.Column, b []byte, share bool) ([]types.Value, error) {
	if cap(dst) < len(cols) {
		dst = make([]types.Value, len(cols))
	}
	dst = dst[:len(cols)]
	nb := (len(cols) + 7) / 8
	if len(b) < nb {
		return nil, fmt.Errorf("%w: short null bitmap", ErrBadRow)
	}
	bitmap, p := b[:nb], nb
	for i, c := range cols {
		if bitmap[i/8]&(1<<(i%8)) != 0 {
			dst[i] = types.Value{}
			continue
		}
		switch c.Type {
		case types.BigInt, types.Timestamp, types.Boolean:
			x, n := binary.Varint(b[p:])
			if n <= 0 {
				return nil, fmt.Errorf("%w: bad integer in column %s", ErrBadRow, c.Name)
			}
			dst[i] = types.Value{T: c.Type, I: x}
			p += n
		case types.Double:
			if len(b)-p < 8 {
				return nil, fmt.Errorf("%w: short double in column %s", ErrBadRow, c.Name)
			}
			dst[i] = types.Float(math.Float64frombits(binary.LittleEndian.Uint64(b[p:])))
			p += 8
		default:
			l, n := binary.Uvarint(b[p:])
			if n <= 0 || uint64(len(b)-p-n) < l {
				return nil, fmt.Errorf("%w: bad string in column %s", ErrBadRow, c.Name)
			}
			p += n
			if share && l > 0 {
				dst[i] = types.String(unsafe.String(&b[p], int(l)))
			} else {
				dst[i] = types.String(string(b[p : p+int(l)]))
			}
			p += int(l)
		}
	}
	if p != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadRow, len(b)-p)
	}
	return dst, nil
}
