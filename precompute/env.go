package precompute

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/query"
	"ttq/types"
)

// asOf is the query.Env a view's query runs in during maintenance: the
// base tables AS OF one boundary, with no watermark check (maintenance
// only runs at sealed boundaries). Tables named in only are restricted to
// the given rows, which is how a view is recomputed for some of its rows
// only: the planner runs the view's own query, but the restricted tables
// yield just the rows that can reach the rows being recomputed.
type asOf struct {
	cat   *catalog.Catalog
	store *mvcc.Store
	ts    int64
	only  map[uint32]*rowSet
}

var _ query.Env = (*asOf)(nil)

func (x *asOf) Catalog() *catalog.Catalog { return x.cat }
func (x *asOf) Watermark() int64          { return x.ts }

// EstimateVersions sizes tables for the planner (query.Sizer), which may
// then scan and hash a table instead of reading it by key per row; for a
// restricted query the restricted tables are small, and the sizes of the
// whole tables would mislead it.
func (x *asOf) EstimateVersions(t *catalog.Table) int64 {
	if len(x.only) > 0 {
		return 0
	}
	return x.store.EstimateVersions(t)
}

func (x *asOf) CheckReadable(ts int64) error {
	if ts > x.ts {
		return fmt.Errorf("%w: view maintenance reads AS OF %d only", query.ErrInternal, x.ts)
	}
	return nil
}

func (x *asOf) Snapshot(ts int64) mvcc.Reader {
	sn := x.store.At(ts)
	if len(x.only) == 0 {
		return sn
	}
	return &restricted{Snapshot: sn, only: x.only}
}

func (x *asOf) History(t *catalog.Table, prefix []types.Value, from, to int64, fn func(mvcc.RowVersion) error) error {
	return fmt.Errorf("%w: FOR SYSTEM_TIME in a view", ErrUnsupportedView)
}

func (x *asOf) ViewAt(v *catalog.View, ts int64) (int64, error) {
	return 0, fmt.Errorf("%w: a view over view %s", ErrUnsupportedView, v.Name)
}

func (x *asOf) SystemTable(string) ([]catalog.Column, [][]types.Value, bool, error) {
	return nil, nil, false, nil
}

// rowSet is a set of rows of one table at one instant, in key order.
type rowSet struct {
	t    *catalog.Table
	keys map[string]int // encoded key -> index in rows
	rows []row
}

type row struct {
	enc string // encoded primary key
	key []types.Value
	val []types.Value
	ts  int64
	at  bool // val is the row at the boundary an epoch computes (from an index)
}

func newRowSet(t *catalog.Table) *rowSet { return &rowSet{t: t, keys: map[string]int{}} }

func (s *rowSet) add(vals []types.Value, ts int64) {
	s.addEnc(string(mvcc.EncodeRowKey(nil, s.t.ID, vals, s.t.PK)), vals, ts)
}

// addEnc is add with the row's encoded key already computed.
func (s *rowSet) addEnc(enc string, vals []types.Value, ts int64) {
	if _, ok := s.keys[enc]; ok {
		return
	}
	s.keys[enc] = len(s.rows)
	s.rows = append(s.rows, row{enc: enc, key: keyOf(vals, s.t.PK), val: vals, ts: ts})
}

// addRow adds a row taken from another set of the same table.
func (s *rowSet) addRow(r row) {
	if i, ok := s.keys[r.enc]; ok {
		if r.at && !s.rows[i].at {
			s.rows[i] = r
		}
		return
	}
	s.keys[r.enc] = len(s.rows)
	s.rows = append(s.rows, r)
}

// addAt adds the row at the boundary an epoch computes, committed at ts.
func (s *rowSet) addAt(vals []types.Value, ts int64) {
	key := keyOf(vals, s.t.PK)
	enc := string(mvcc.EncodeKey(nil, s.t.ID, key))
	if i, ok := s.keys[enc]; ok {
		if !s.rows[i].at {
			s.rows[i] = row{enc: enc, key: key, val: vals, ts: ts, at: true}
		}
		return
	}
	s.keys[enc] = len(s.rows)
	s.rows = append(s.rows, row{enc: enc, key: key, val: vals, ts: ts, at: true})
}

// addKey adds a key without its row: sets of roots need their keys only.
func (s *rowSet) addKey(enc string, key []types.Value) {
	if _, ok := s.keys[enc]; ok {
		return
	}
	s.keys[enc] = len(s.rows)
	s.rows = append(s.rows, row{enc: enc, key: key})
}

func (s *rowSet) sort() {
	slices.SortFunc(s.rows, func(a, b row) int { return strings.Compare(a.enc, b.enc) })
	for i, r := range s.rows {
		s.keys[r.enc] = i
	}
}

// restricted is a snapshot whose restricted tables hold only some rows.
type restricted struct {
	*mvcc.Snapshot
	only map[uint32]*rowSet
}

func (r *restricted) Get(t *catalog.Table, key []types.Value, dst []types.Value) ([]types.Value, int64, bool, error) {
	s, ok := r.only[t.ID]
	if !ok {
		return r.Snapshot.Get(t, key, dst)
	}
	i, ok := s.keys[string(mvcc.EncodeKey(nil, t.ID, key))]
	if !ok {
		return nil, 0, false, nil
	}
	return s.rows[i].val, s.rows[i].ts, true, nil
}

func (r *restricted) Scan(t *catalog.Table, prefix []types.Value) mvcc.RowIter {
	s, ok := r.only[t.ID]
	if !ok {
		return r.Snapshot.Scan(t, prefix)
	}
	p := string(mvcc.EncodeKey(nil, t.ID, prefix))
	i := sort.Search(len(s.rows), func(i int) bool { return s.rows[i].enc >= p })
	return &setIter{rows: s.rows, i: i - 1, prefix: p}
}

// ScanParts cuts scans of the tables it does not restrict only (the
// embedded snapshot's would read the whole of a restricted one).
func (r *restricted) ScanParts(t *catalog.Table, rowsPerPart int) []mvcc.RowIter {
	if _, ok := r.only[t.ID]; ok {
		return nil
	}
	return r.Snapshot.ScanParts(t, rowsPerPart)
}

// setIter iterates the rows of a rowSet that start with a key prefix.
type setIter struct {
	rows   []row
	i      int
	prefix string
}

func (it *setIter) Next() bool {
	it.i++
	if it.i >= len(it.rows) || len(it.rows[it.i].enc) < len(it.prefix) || it.rows[it.i].enc[:len(it.prefix)] != it.prefix {
		it.i = len(it.rows)
		return false
	}
	return true
}

// Row returns a row the set keeps: without room after it, so that no
// caller appends into memory another row may own (mvcc.Iter.Row).
func (it *setIter) Row() []types.Value { v := it.rows[it.i].val; return v[:len(v):len(v)] }
func (it *setIter) TS() int64          { return it.rows[it.i].ts }
func (it *setIter) Err() error         { return nil }
func (it *setIter) Close()             {}
