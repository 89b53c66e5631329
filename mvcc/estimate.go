package mvcc

import (
	"encoding/binary"
	"sync"
	"time"

	"ttq/catalog"
)

// sizes caches per-table version counts estimated from Badger's table
// statistics, recomputed at most once per sizesTTL.
type sizes struct {
	mu      sync.Mutex
	at      time.Time
	n       map[uint32]int64 // from Badger's tables at the time at
	written map[uint32]int64 // versions written since the store opened
	since   map[uint32]int64 // versions written since the table's last checkpoint (this process)
}

const sizesTTL = time.Second

// EstimateVersions estimates how many versions t stores: the key counts
// of Badger's on-disk tables (a table spanning several ttq tables counts
// for each in equal parts) plus the versions written since the store
// opened (which may count some twice once flushed; an estimate for
// planners choosing between join algorithms, not a row count).
func (s *Store) EstimateVersions(t *catalog.Table) int64 {
	s.sizes.mu.Lock()
	defer s.sizes.mu.Unlock()
	if s.sizes.n == nil || time.Since(s.sizes.at) > sizesTTL {
		s.sizes.n = map[uint32]int64{}
		tables := s.db.Tables()
		// A table whose last key is not a data key (the meta records sort
		// after the data) ends at the largest table id known.
		var maxID uint32
		for id := range s.sizes.written {
			maxID = max(maxID, id)
		}
		for _, ti := range tables {
			for _, k := range [][]byte{ti.Left, ti.Right} {
				if id, ok := dataTable(k); ok {
					maxID = max(maxID, id)
				}
			}
		}
		for _, ti := range tables {
			lo, lok := dataTable(ti.Left)
			hi, hok := dataTable(ti.Right)
			if !hok && len(ti.Right) > 0 && ti.Right[0] > prefixData {
				hi, hok = maxID, true
			}
			if !lok || !hok || hi < lo || hi-lo > 1024 {
				continue // meta keys only, or a range ttq does not write
			}
			per := int64(ti.KeyCount) / int64(hi-lo+1)
			for id := lo; ; id++ {
				s.sizes.n[id] += per
				if id == hi {
					break
				}
			}
		}
		s.sizes.at = time.Now()
	}
	return s.sizes.n[t.ID] + s.sizes.written[t.ID]
}

// countWrites adds versions written to the estimates.
func (s *Store) countWrites(ents []pending) {
	s.sizes.mu.Lock()
	defer s.sizes.mu.Unlock()
	if s.sizes.written == nil {
		s.sizes.written, s.sizes.since = map[uint32]int64{}, map[uint32]int64{}
	}
	last, n := uint32(0), int64(0)
	for i, e := range ents {
		id, ok := dataTable(e.key)
		if !ok {
			continue
		}
		if i > 0 && id != last && n > 0 {
			s.sizes.written[last] += n
			s.sizes.since[last] += n
			n = 0
		}
		last = id
		n++
	}
	if n > 0 {
		s.sizes.written[last] += n
		s.sizes.since[last] += n
	}
}

// dataTable returns the table id of a data key (a key of Badger's tables
// carries an 8-byte version suffix after it).
func dataTable(k []byte) (uint32, bool) {
	if len(k) < 5 || k[0] != prefixData {
		return 0, false
	}
	return binary.BigEndian.Uint32(k[1:5]), true
}
