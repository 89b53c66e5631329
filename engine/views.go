package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/precompute"
	"ttq/query"
	"ttq/timeline"
	"ttq/types"
)

// keepStats is how many epochs per view ttq_epochs shows.
const keepStats = 16

// viewWait bounds how long a read waits for a view to reach the epoch it
// needs (maintenance runs right after G is published).
const viewWait = 60 * time.Second

// views is the engine's view maintenance: the progress of every view (the
// last boundary its rows are complete for) and recent epoch statistics.
// Maintenance runs in the writer (under wmu), after every commit that moved
// G, and when a view is created. Lock order: wmu, then mu.
type views struct {
	mu       sync.Mutex
	progress map[uint32]int64 // view id -> last boundary processed (timeline.None: not backfilled)
	errs     map[uint32]error // view id -> why maintenance stopped
	stats    map[string][]precompute.Stat
	moved    chan struct{} // closed when any progress moves
	maint    map[uint32]*precompute.Maintainer
	// log holds the base versions committed by the writer that some view
	// has not processed yet, so an epoch finds its changed keys without
	// scanning the store (it falls back to the scan, and seeds itself from
	// it, after a restart, a DDL change or an overflow). Writer-owned.
	log *precompute.ChangeLog
}

// viewMeta is the durable progress of one view, the meta record
// "view/<id>", committed after the rows it covers are flushed, with the
// statistics of its recent epochs that changed rows (ttq_epochs).
type viewMeta struct {
	Progress int64             `json:"progress_us"`
	Recent   []precompute.Stat `json:"recent,omitempty"`
}

func viewMetaName(id uint32) string { return "view/" + strconv.FormatUint(uint64(id), 10) }

func newViews() *views {
	return &views{progress: map[uint32]int64{}, errs: map[uint32]error{}, stats: map[string][]precompute.Stat{},
		moved: make(chan struct{}), maint: map[uint32]*precompute.Maintainer{}, log: precompute.NewChangeLog()}
}

// openViews loads every view's committed progress and registers view
// maintenance; the first publish (in Open) then catches views up to G.
func (e *Engine) openViews() error {
	e.views = newViews()
	for _, v := range e.cat.Views {
		b, ok, err := e.store.Meta(viewMetaName(v.ID))
		if err != nil {
			return err
		}
		p := timeline.None
		if ok {
			var m viewMeta
			if err := json.Unmarshal(b, &m); err != nil {
				return fmt.Errorf("engine: view %s progress: %w", v.Name, err)
			}
			p = m.Progress
			if len(m.Recent) > 0 {
				e.views.stats[v.Name] = m.Recent
			}
		}
		e.views.progress[v.ID] = p
	}
	e.onSealed = append(e.onSealed, func(_, g int64) { e.maintainViewsLocked(g) })
	return nil
}

func (e *Engine) viewEpoch(v *catalog.View) int64 {
	if v.Epoch > 0 {
		return v.Epoch
	}
	return e.opts.EpochLength
}

// CreateView defines view name over query, durably, and computes it at the
// last boundary at or before G (or, if nothing is sealed yet, from the
// start of the timeline once something is).
func (e *Engine) CreateView(ctx context.Context, name, text string, options map[string]string) (*catalog.View, error) {
	epoch := e.opts.EpochLength
	for k, val := range options {
		switch k {
		case "epoch":
			d, err := timeline.ParseDuration(val)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("%w: CREATE VIEW %s: epoch %q: a positive duration such as '5s'", catalog.ErrInvalid, name, val)
			}
			epoch = d
		default:
			return nil, fmt.Errorf("%w: CREATE VIEW %s: unknown option %q (use epoch)", catalog.ErrInvalid, name, k)
		}
	}
	var v *catalog.View
	err := e.ddl(func(cat *catalog.Catalog) error {
		d, err := precompute.Analyze(cat, name, text)
		if err != nil {
			return err
		}
		v = d.View(epoch)
		v.Created = 0
		if g := e.st.Tracker.Global(); g != timeline.None {
			v.Created = precompute.Floor(g, epoch)
		}
		if err := cat.AddView(v); err != nil {
			return err
		}
		e.views.mu.Lock()
		e.views.progress[v.ID] = timeline.None
		delete(e.views.errs, v.ID)
		e.views.mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if e.closed.Load() {
		return nil, ErrClosed
	}
	e.maintainViewsLocked(e.st.Tracker.Global())
	e.views.mu.Lock()
	verr := e.views.errs[v.ID]
	e.views.mu.Unlock()
	if verr != nil {
		return v, verr
	}
	return v, nil
}

// dropViewLocked forgets a dropped view's progress; its rows are removed
// by the caller with the catalog change.
func (e *Engine) dropViewLocked(v *catalog.View) {
	e.views.mu.Lock()
	defer e.views.mu.Unlock()
	delete(e.views.progress, v.ID)
	delete(e.views.errs, v.ID)
	delete(e.views.maint, v.ID)
	delete(e.views.stats, v.Name)
}

// maintainViewsLocked brings every view to the last boundary at or before
// g. A failure is recorded for the view (reads of later epochs report it)
// and retried the next time G moves.
func (e *Engine) maintainViewsLocked(g int64) {
	if g == timeline.None || e.views == nil {
		return
	}
	for _, name := range e.cat.ViewNames() {
		v := e.cat.Views[name]
		err := e.maintainLocked(v, g)
		e.views.mu.Lock()
		if err != nil {
			e.views.errs[v.ID] = fmt.Errorf("%w: view %s: %w", precompute.ErrNotMaintained, v.Name, err)
		} else {
			delete(e.views.errs, v.ID)
		}
		e.views.mu.Unlock()
	}
	e.pruneChangeLogLocked()
}

// viewsTrackChanges reports whether the writer should pass the versions
// it commits to viewsApplied (some table is followed by the change log).
func (e *Engine) viewsTrackChanges() bool {
	return e.views != nil && len(e.views.log.Tables()) > 0
}

// viewsApplied is the writer's hook after a commit of base versions: cs
// are the versions committed (err == nil), or the commit failed (err !=
// nil) and may have stored some of them, so the change log starts over
// from the store.
func (e *Engine) viewsApplied(cs []precompute.BaseChange, err error) {
	if e.views == nil {
		return
	}
	if err != nil {
		e.views.log.Clear()
		return
	}
	e.views.log.Add(cs)
}

// pruneChangeLogLocked drops from the change log the versions every view
// reading their table has processed, and the tables no view reads.
func (e *Engine) pruneChangeLogLocked() {
	need := map[uint32]int64{}
	e.views.mu.Lock()
	for _, v := range e.cat.Views {
		m := e.views.maint[v.ID]
		if m == nil || m.Cat != e.cat {
			continue
		}
		from := e.views.progress[v.ID]
		if from == timeline.None {
			from = v.Created
		}
		for _, t := range m.Tables() {
			if f, ok := need[t.ID]; !ok || from < f {
				need[t.ID] = from
			}
		}
	}
	e.views.mu.Unlock()
	for _, id := range e.views.log.Tables() {
		if f, ok := need[id]; ok {
			e.views.log.Prune(id, f)
		} else {
			e.views.log.Drop(id)
		}
	}
}

func (e *Engine) maintainLocked(v *catalog.View, g int64) error {
	ctx := context.Background()
	epoch := e.viewEpoch(v)
	target := precompute.Floor(g, epoch)
	e.views.mu.Lock()
	p, known := e.views.progress[v.ID]
	m := e.views.maint[v.ID]
	e.views.mu.Unlock()
	if !known {
		p = timeline.None
	}
	if p != timeline.None && target <= p {
		return nil
	}
	if m == nil || m.Cat != e.cat {
		var err error
		if m, err = precompute.NewMaintainer(e.store, e.cat, v); err != nil {
			return err
		}
		e.views.mu.Lock()
		e.views.maint[v.ID] = m
		e.views.mu.Unlock()
	}
	var stats []precompute.Stat
	wrote := false
	if p == timeline.None {
		if target < v.Created {
			return nil
		}
		st, err := m.Backfill(ctx, v.Created)
		if err != nil {
			return err
		}
		if st.Recomputed > 0 {
			// A view created before anything was sealed starts empty at
			// instant 0: no epoch of it to list there.
			stats = append(stats, st)
		}
		p, wrote = v.Created, true
	}
	eps, err := precompute.ChangedLogged(e.views.log, e.store, m.Tables(), p, target, epoch)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		st, err := m.Step(ctx, p, ep)
		if err != nil {
			if wrote {
				// Keep what is flushed: commit the progress reached so far.
				_ = e.commitViewProgress(v, p, e.recentStats(v, stats))
			}
			return err
		}
		if st.Changed > 0 {
			wrote = true
		}
		stats = append(stats, st)
		p = ep.B
	}
	m.Advance(p, target) // no base changes after the last epoch processed
	p = target
	recent := e.recentStats(v, stats)
	if wrote {
		if err := e.commitViewProgress(v, p, recent); err != nil {
			return err
		}
	}
	e.views.mu.Lock()
	defer e.views.mu.Unlock()
	e.views.progress[v.ID] = p
	e.views.stats[v.Name] = recent
	close(e.views.moved)
	e.views.moved = make(chan struct{})
	return nil
}

// recentStats returns v's recent epoch statistics followed by stats, the
// last keepStats of them.
func (e *Engine) recentStats(v *catalog.View, stats []precompute.Stat) []precompute.Stat {
	e.views.mu.Lock()
	defer e.views.mu.Unlock()
	all := append(slices.Clone(e.views.stats[v.Name]), stats...)
	if len(all) > keepStats {
		all = all[len(all)-keepStats:]
	}
	return all
}

// commitViewProgress durably records that v's rows are complete up to b.
// Rows at boundaries after the committed progress are never read (ViewAt
// does not return them), so a crash between the rows' flush and this
// commit leaves them unseen; they are recomputed, identically, on reopen.
func (e *Engine) commitViewProgress(v *catalog.View, b int64, recent []precompute.Stat) error {
	mb, err := json.Marshal(viewMeta{Progress: b, Recent: recent})
	if err != nil {
		return err
	}
	return e.store.CommitMeta(mvcc.MetaWrite{Puts: map[string][]byte{viewMetaName(v.ID): mb}}, 0)
}

// viewAt maps a read of view v AS OF ts (already checked to be sealed) to
// the last boundary at or before it. It waits, briefly, for maintenance
// that is still bringing the view to that boundary.
func (e *Engine) viewAt(v *catalog.View, ts int64) (int64, error) {
	b := precompute.Floor(ts, e.viewEpoch(v))
	if b < v.Created {
		return 0, fmt.Errorf("%w: view %s starts at epoch %s; query it AS OF %s or later", precompute.ErrBeforeView,
			v.Name, timeline.Format(v.Created), timeline.Format(v.Created))
	}
	deadline := time.NewTimer(viewWait)
	defer deadline.Stop()
	for {
		e.views.mu.Lock()
		p, known := e.views.progress[v.ID]
		verr := e.views.errs[v.ID]
		moved := e.views.moved
		e.views.mu.Unlock()
		if !known {
			return 0, fmt.Errorf("%w %q", catalog.ErrUnknownView, v.Name)
		}
		if p != timeline.None && b <= p {
			return b, nil
		}
		if verr != nil {
			return 0, verr
		}
		select {
		case <-moved:
		case <-deadline.C:
			return 0, fmt.Errorf("%w: view %s is still being brought to epoch %s; retry", precompute.ErrNotMaintained, v.Name, timeline.Format(b))
		}
	}
}

// ViewProgress returns the last boundary view name is complete for, or
// timeline.None.
func (e *Engine) ViewProgress(name string) (int64, error) {
	v, err := e.Catalog().View(name)
	if err != nil {
		return 0, err
	}
	e.views.mu.Lock()
	defer e.views.mu.Unlock()
	p, ok := e.views.progress[v.ID]
	if !ok {
		return timeline.None, nil
	}
	return p, nil
}

// ViewStats returns the recent epochs of view name that changed rows
// (kept in memory since the engine opened), oldest first.
func (e *Engine) ViewStats(name string) []precompute.Stat {
	e.views.mu.Lock()
	defer e.views.mu.Unlock()
	return append([]precompute.Stat(nil), e.views.stats[name]...)
}

// epochStats returns ttq_epochs: the recent epochs of every view that
// changed rows, and each view's last processed boundary.
func (e *Engine) epochStats() [][]types.Value {
	cat := e.Catalog()
	e.views.mu.Lock()
	defer e.views.mu.Unlock()
	var rows [][]types.Value
	for _, n := range cat.ViewNames() {
		v := cat.Views[n]
		p, ok := e.views.progress[v.ID]
		if !ok {
			continue
		}
		st := e.views.stats[n]
		for _, s := range st {
			if s.B <= p {
				rows = append(rows, []types.Value{types.String(n), types.Time(s.B), types.Int(int64(s.Changed)), types.Int(s.Duration.Microseconds())})
			}
		}
		if p != timeline.None && (len(st) == 0 || st[len(st)-1].B < p) {
			// The last boundary had no base changes (or ran before a restart).
			rows = append(rows, []types.Value{types.String(n), types.Time(p), types.NullValue, types.NullValue})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i][0].S != rows[j][0].S {
			return rows[i][0].S < rows[j][0].S
		}
		return rows[i][1].I < rows[j][1].I
	})
	return rows
}

// createViewStmt runs CREATE VIEW.
func (e *Engine) createViewStmt(ctx context.Context, s *query.CreateView) (*query.Result, error) {
	v, err := e.CreateView(ctx, s.Name, s.Query, s.Options)
	if err != nil {
		return nil, err
	}
	return message("CREATE VIEW " + v.Name), nil
}
