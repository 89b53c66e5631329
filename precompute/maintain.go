package precompute

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/query"
	"ttq/types"
)

// Maintainer brings one view's stored rows from epoch boundary to epoch
// boundary. It writes with its own mvcc batches; the caller commits the
// view's progress (the last boundary processed) after they are flushed.
type Maintainer struct {
	Store *mvcc.Store
	Cat   *catalog.Catalog
	View  *catalog.View
	Def   *Def
	// Full turns incremental maintenance off: every epoch with changes
	// recomputes the whole view (tests compare the two).
	Full bool

	inc *incremental
}

// NewMaintainer analyses v's query against cat.
func NewMaintainer(store *mvcc.Store, cat *catalog.Catalog, v *catalog.View) (*Maintainer, error) {
	d, err := Analyze(cat, v.Name, v.Query)
	if err != nil {
		return nil, err
	}
	return &Maintainer{Store: store, Cat: cat, View: v, Def: d}, nil
}

// Stat describes the work of one epoch boundary.
type Stat struct {
	View       string
	B          int64
	Changed    int // view rows written (upserts and deletes)
	BaseRows   int // base rows changed in the epoch
	Recomputed int // view rows recomputed
	Duration   time.Duration
	Full       bool // recomputed the whole view
}

// Tables returns the base tables the view reads.
func (m *Maintainer) Tables() []*catalog.Table {
	out := make([]*catalog.Table, len(m.Def.Rels))
	for i, r := range m.Def.Rels {
		out[i] = r.Table
	}
	return out
}

// viewRows holds view rows by encoded view key.
type viewRows map[string][]types.Value

func (m *Maintainer) table() *catalog.Table { return query.ViewTable(m.View) }

func (m *Maintainer) encKey(row []types.Value) string {
	return string(mvcc.EncodeRowKey(nil, m.View.ID, row, m.View.PK))
}

// compute runs the view's query AS OF b over the base tables, restricted to
// the rows in only (nil: everything).
func (m *Maintainer) compute(ctx context.Context, b int64, only map[uint32]*rowSet) (viewRows, error) {
	sel, err := query.ParseSelect(m.View.Query)
	if err != nil {
		return nil, err
	}
	res, err := query.Run(ctx, &asOf{cat: m.Cat, store: m.Store, ts: b, only: only}, sel, query.Options{})
	if err != nil {
		return nil, fmt.Errorf("view %s at %d: %w", m.View.Name, b, err)
	}
	defer res.Release()
	out := viewRows{}
	for _, r := range res.Rows() {
		out[m.encKey(r)] = r
	}
	return out, nil
}

// Recompute computes the whole view AS OF b without storing it and
// returns its number of rows (benchmarks compare it with an epoch).
func (m *Maintainer) Recompute(ctx context.Context, b int64) (int, error) {
	rows, err := m.compute(ctx, b, nil)
	return len(rows), err
}

// Backfill computes the whole view AS OF b and stores it at b.
func (m *Maintainer) Backfill(ctx context.Context, b int64) (Stat, error) {
	start := time.Now()
	rows, err := m.compute(ctx, b, nil)
	if err != nil {
		return Stat{}, err
	}
	n, err := m.write(b, rows, viewRows{}, nil)
	return Stat{View: m.View.Name, B: b, Changed: n, Recomputed: len(rows), Duration: time.Since(start), Full: true}, err
}

// Step brings the view from boundary prev to boundary ep.B, given the base
// rows that changed in (prev, ep.B]; it writes only the view rows that
// differ, as versions at ep.B.
func (m *Maintainer) Step(ctx context.Context, prev int64, ep *Epoch) (Stat, error) {
	start := time.Now()
	st := Stat{View: m.View.Name, B: ep.B}
	for _, ks := range ep.Keys {
		st.BaseRows += len(ks.keys)
	}
	var err error
	if m.Full || !m.canIncrement() {
		err = m.stepFull(ctx, prev, ep.B, &st)
	} else {
		err = m.stepIncremental(ctx, prev, ep, &st)
	}
	if err != nil {
		m.inc = nil // rebuilt from the stored state on the next epoch
	}
	st.Duration = time.Since(start)
	return st, err
}

// stepFull recomputes the whole view at b and writes what differs from it
// at prev.
func (m *Maintainer) stepFull(ctx context.Context, prev, b int64, st *Stat) error {
	st.Full = true
	now, err := m.compute(ctx, b, nil)
	if err != nil {
		return err
	}
	old, err := m.scanView(prev)
	if err != nil {
		return err
	}
	st.Recomputed = len(now)
	if st.Changed, err = m.write(b, now, old, nil); err != nil {
		return err
	}
	if m.inc != nil && m.inc.dir != nil {
		m.inc.dir = m.dirFrom(now)
	}
	return nil
}

// scanView reads the stored view rows AS OF b.
func (m *Maintainer) scanView(b int64) (viewRows, error) {
	sn := m.Store.At(b)
	defer sn.Close()
	it := sn.Scan(m.table(), nil)
	defer it.Close()
	out := viewRows{}
	for it.Next() {
		row := it.Row()
		out[m.encKey(row)] = row
	}
	return out, it.Err()
}

// write stores the difference between now and old at b: rows of now that
// are new or differ, and deletes of rows of old absent from now. scope,
// when not nil, limits the keys considered to those in it.
func (m *Maintainer) write(b int64, now, old viewRows, scope map[string]bool) (int, error) {
	batch, n, err := m.diff(b, now, old, scope)
	if err != nil || n == 0 {
		return 0, err
	}
	return n, batch.Flush()
}

// diff returns the batch write would flush and its number of versions.
func (m *Maintainer) diff(b int64, now, old viewRows, scope map[string]bool) (*mvcc.Batch, int, error) {
	t := m.table()
	batch := m.Store.NewBatch()
	n := 0
	var e1, e2 []byte
	for k, r := range now {
		if scope != nil && !scope[k] {
			continue
		}
		if o, ok := old[k]; ok {
			e1 = mvcc.EncodeRow(e1[:0], t.Columns, r)
			e2 = mvcc.EncodeRow(e2[:0], t.Columns, o)
			if bytes.Equal(e1, e2) {
				continue
			}
		}
		if err := batch.Put(t, r, b); err != nil {
			batch.Cancel()
			return nil, 0, err
		}
		n++
	}
	for k, o := range old {
		if scope != nil && !scope[k] {
			continue
		}
		if _, ok := now[k]; ok {
			continue
		}
		if err := batch.Delete(t, keyOf(o, t.PK), b); err != nil {
			batch.Cancel()
			return nil, 0, err
		}
		n++
	}
	return batch, n, nil
}
