package ingest

import (
	"encoding/binary"
	"errors"
)

// MaxStoredRecord bounds how much of a rejected record is stored verbatim;
// a longer record keeps its first MaxStoredRecord bytes and says so. It is
// half of Badger's largest value in an in-memory store (1 MiB), leaving room
// for the reject's other fields.
const MaxStoredRecord = 512 << 10

// ErrBadReject is returned when a stored reject cannot be decoded.
var ErrBadReject = errors.New("ingest: malformed stored reject")

// Reject is a rejected record as stored: the record verbatim, why, and
// where it came from.
type Reject struct {
	Source    string
	Table     string
	Reason    string
	Message   string
	Origin    string // file:line, topic/partition/offset or the HTTP request
	Record    []byte
	Truncated bool // Record holds only the first MaxStoredRecord bytes
}

// Marshal encodes r as length-prefixed fields, so the record's bytes are
// kept exactly, valid UTF-8 or not.
func (r *Reject) Marshal() []byte {
	rec := r.Record
	trunc := r.Truncated
	if len(rec) > MaxStoredRecord {
		rec, trunc = rec[:MaxStoredRecord], true
	}
	b := make([]byte, 0, len(rec)+len(r.Message)+len(r.Origin)+64)
	for _, f := range []string{r.Source, r.Table, r.Reason, r.Message, r.Origin} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.AppendUvarint(b, uint64(len(rec)))
	b = append(b, rec...)
	if trunc {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return b
}

// UnmarshalReject decodes a reject stored by Marshal.
func UnmarshalReject(b []byte) (Reject, error) {
	var fields [6][]byte
	for i := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return Reject{}, ErrBadReject
		}
		fields[i] = b[k : k+int(n)]
		b = b[k+int(n):]
	}
	if len(b) != 1 {
		return Reject{}, ErrBadReject
	}
	return Reject{
		Source: string(fields[0]), Table: string(fields[1]), Reason: string(fields[2]),
		Message: string(fields[3]), Origin: string(fields[4]),
		Record: append([]byte(nil), fields[5]...), Truncated: b[0] == 1,
	}, nil
}
