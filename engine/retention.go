package engine

import (
	"fmt"
	"sync"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/timeline"
	"ttq/types"
)

// Retention is measured on the timeline: versions needed to answer AS OF any
// T >= horizon are kept, where a table's horizon is G minus its retention
// (its own WITH (retention = ...), else the store's Options.Retention). The
// global horizon is stored in the state record, so it survives restarts,
// and it only moves forward. Badger's discard timestamp is set to the lowest
// horizon of any table, and never above a snapshot a reader still holds.

// advanceHorizonLocked raises the stored global horizon to G - retention.
// It runs before the state commit, so the horizon is durable before Badger
// is allowed to compact below it.
func (e *Engine) advanceHorizonLocked() {
	g := e.st.Tracker.Global()
	if e.opts.Retention <= 0 || g == timeline.None {
		return
	}
	if h := g - e.opts.Retention; h > e.st.Horizon {
		e.st.Horizon = h
	}
}

// tableHorizon is the oldest instant table t can be read at (0: everything).
func (v *view) tableHorizon(t *catalog.Table) int64 {
	if t != nil && t.Retention > 0 && v.g != timeline.None {
		if h := v.g - t.Retention; h > 0 {
			return h
		}
		return 0
	}
	return v.horizon
}

// minHorizon is the lowest horizon over every table and view: Badger may
// only forget what no table can be asked for any more.
func (v *view) minHorizon() int64 {
	h := v.horizon
	for _, t := range v.cat.Tables {
		if th := v.tableHorizon(t); th < h {
			h = th
		}
	}
	return h
}

// pins counts the readers holding each oldest-readable instant.
type pins struct {
	mu sync.Mutex // guards n; held while the writer picks the discard timestamp
	n  map[int64]int
}

// pin registers a reader of the current published view and returns it; the
// view is loaded under the pin lock, so the writer either sees this pin or
// this reader sees the writer's newer view.
func (e *Engine) pin() (*view, int64) {
	e.pins.mu.Lock()
	defer e.pins.mu.Unlock()
	v := e.pub.Load()
	h := v.minHorizon()
	if e.pins.n == nil {
		e.pins.n = map[int64]int{}
	}
	e.pins.n[h]++
	return v, h
}

func (e *Engine) unpin(h int64) {
	e.pins.mu.Lock()
	defer e.pins.mu.Unlock()
	if e.pins.n[h]--; e.pins.n[h] <= 0 {
		delete(e.pins.n, h)
	}
}

// setDiscardLocked hands Badger the highest discard timestamp that no table
// horizon and no reader needs below.
func (e *Engine) setDiscardLocked(v *view) {
	e.pins.mu.Lock()
	defer e.pins.mu.Unlock()
	d := v.minHorizon()
	for h := range e.pins.n {
		if h < d {
			d = h
		}
	}
	if d > 1 {
		e.store.SetHorizon(d - 1)
	}
}

// checkTable is the per-table part of CheckReadable.
func (x *env) CheckTable(t *catalog.Table, ts int64) error {
	if h := x.v.tableHorizon(t); h > 0 && ts < h {
		return fmt.Errorf("%w: %s AS OF %s is behind its retention horizon %s; query AS OF a later time",
			ErrBeforeHorizon, t.Name, timeline.Format(ts), timeline.Format(h))
	}
	return nil
}

// release ends the statement's hold on old versions.
func (x *env) release() {
	if x.pinned {
		x.pinned = false
		x.e.unpin(x.pin)
	}
}

// History clamps a range that starts behind the table's horizon (FOR
// SYSTEM_TIME ALL) to the horizon, so the answer does not depend on what
// compaction already merged.
func (x *env) History(t *catalog.Table, prefix []types.Value, from, to int64, fn func(mvcc.RowVersion) error) error {
	if h := x.v.tableHorizon(t); from < h {
		from = h
	}
	return x.e.store.History(t, prefix, from, to, fn)
}

// Hold keeps every version needed to read AS OF ts or later from being
// discarded by retention until release is called: a change-feed
// subscriber or a long export is not cut off by the horizon moving under it.
func (e *Engine) Hold(ts int64) (release func()) {
	e.pins.mu.Lock()
	if e.pins.n == nil {
		e.pins.n = map[int64]int{}
	}
	e.pins.n[ts]++
	e.pins.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { e.unpin(ts) }) }
}
