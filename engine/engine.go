// Package engine ties ttq together: it owns the store, the catalog and the
// watermarks, applies ingested records, seals the timeline and answers SQL.
package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/query"
	"ttq/timeline"
	"ttq/watermark"
)

// Sentinel errors of the engine. Messages wrapped around them say what to do.
var (
	// ErrNotSealed is returned for a read AS OF a time after the global watermark.
	ErrNotSealed = errors.New("engine: not sealed yet")
	// ErrBeforeHorizon is returned for a read AS OF a time behind retention.
	ErrBeforeHorizon = errors.New("engine: before the retention horizon")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("engine: closed")
)

// Options configure an Engine.
type Options struct {
	// InMemory keeps the store in memory (tests).
	InMemory bool
	// NoSync skips fsync on commit (benchmarks only).
	NoSync bool
	// Retention is how much timeline before G stays queryable, in
	// microseconds; 0 keeps everything.
	Retention int64
	// BatchSize is how many records one ingest commit holds at most.
	BatchSize int
	// EpochLength is the default epoch of views, in microseconds.
	EpochLength int64
	// CheckpointMin is how many versions a table gets before a checkpoint
	// of it is considered while ingest runs (see checkpoint.go): 0 means
	// the default of 1,000,000; a negative value turns the background
	// checkpointer off.
	CheckpointMin int64
	// CheckpointPoll is how often the checkpointer looks for due tables
	// (default one second).
	CheckpointPoll time.Duration
	// BlockCache is the size of the store's block cache in bytes (0: the
	// default of 256 MiB; see mvcc.Options).
	BlockCache int64
	// SegmentCache is the memory in bytes for checkpoints kept for scans
	// (0: the default of 512 MiB; negative: none; see mvcc.Options).
	SegmentCache int64
}

const (
	defaultBatchSize = 8192
	defaultEpoch     = 1_000_000
)

// state is the writer's bookkeeping, stored as the "state" meta record in
// the same commit as the data it covers.
type state struct {
	Tracker   *watermark.Tracker          `json:"tracker"`
	RejectSeq uint64                      `json:"reject_seq"`
	Rejects   map[string]map[string]int64 `json:"rejects"` // source -> reason -> count
	Applied   map[string]int64            `json:"applied"` // source -> updates applied
	Offsets   map[string]int64            `json:"offsets"` // stream position ("topic/partition") -> next offset
	Horizon   int64                       `json:"horizon"` // global retention horizon; only moves forward
}

func newState() *state {
	return &state{Tracker: watermark.New(), Rejects: map[string]map[string]int64{}, Applied: map[string]int64{}, Offsets: map[string]int64{}}
}

func (s *state) clone() *state {
	c := &state{Tracker: s.Tracker.Clone(), RejectSeq: s.RejectSeq, Horizon: s.Horizon,
		Rejects: map[string]map[string]int64{}, Applied: map[string]int64{}, Offsets: map[string]int64{}}
	for src, m := range s.Rejects {
		cm := map[string]int64{}
		for r, n := range m {
			cm[r] = n
		}
		c.Rejects[src] = cm
	}
	for k, v := range s.Applied {
		c.Applied[k] = v
	}
	for k, v := range s.Offsets {
		c.Offsets[k] = v
	}
	return c
}

// view is what readers see: an immutable catalog and watermark state,
// swapped atomically after each commit.
type view struct {
	cat     *catalog.Catalog
	catGen  uint64 // the writer's catGen when cat was copied
	st      *state
	g       int64
	horizon int64
}

// Engine is one open ttq store.
type Engine struct {
	store *mvcc.Store
	opts  Options
	stmts *query.Statements // parsed SELECTs by shape

	// The background checkpointer (checkpoint.go).
	ckMu           sync.Mutex // held while a table is checkpointed or dropped
	ckStop, ckDone chan struct{}

	// wmu is the writer lock: it serialises ingest and DDL and guards cat
	// and st, the writer's live copies. Readers never take it.
	wmu sync.Mutex
	cat *catalog.Catalog
	st  *state
	// catGen counts DDL statements run on cat: records decoded against a
	// published copy of the catalog with the same generation decode the
	// same against cat (Load decodes ahead of the writer).
	catGen uint64

	pub atomic.Pointer[view]
	// stGen counts the batches applied to st; pubGen is the generation of
	// the state last published. A batch's state is published once its
	// versions are durable, unless a later state was published first.
	stGen, pubGen uint64

	pins     pins // readers' oldest instants, which retention must keep
	extra    extraTables
	sealMu   sync.Mutex // guards sealCh
	sealCh   chan struct{}
	closed   atomic.Bool
	onSealed []func(oldG, newG int64) // run by the writer after G moves, under wmu

	views *views // view progress and maintenance (views.go)
}

// Open opens (or creates) the store in dir.
func Open(dir string, opts Options) (*Engine, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = defaultBatchSize
	}
	if opts.EpochLength <= 0 {
		opts.EpochLength = defaultEpoch
	}
	if opts.CheckpointMin == 0 {
		opts.CheckpointMin = defaultCheckpointMin
	}
	st, err := mvcc.Open(dir, mvcc.Options{InMemory: opts.InMemory, NoSync: opts.NoSync, BlockCache: opts.BlockCache, SegmentCache: opts.SegmentCache})
	if err != nil {
		return nil, err
	}
	e := &Engine{store: st, opts: opts, cat: catalog.New(), st: newState(), sealCh: make(chan struct{}), stmts: query.NewStatements(1024)}
	if b, ok, err := st.Meta("catalog"); err != nil {
		st.Close()
		return nil, err
	} else if ok {
		if e.cat, err = catalog.Unmarshal(b); err != nil {
			st.Close()
			return nil, err
		}
	}
	if b, ok, err := st.Meta("state"); err != nil {
		st.Close()
		return nil, err
	} else if ok {
		s := newState()
		if err := json.Unmarshal(b, s); err != nil {
			st.Close()
			return nil, fmt.Errorf("engine: decode state: %w", err)
		}
		if s.Tracker == nil || s.Tracker.Sources == nil {
			s.Tracker = watermark.New()
		}
		e.st = s
	}
	if err := e.openViews(); err != nil {
		st.Close()
		return nil, err
	}
	e.publishLocked()
	e.startCheckpointer()
	return e, nil
}

// Close closes the store. In-flight writers finish first.
func (e *Engine) Close() error {
	e.stopCheckpointer()
	e.ckMu.Lock()
	defer e.ckMu.Unlock()
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if e.closed.Swap(true) {
		return nil
	}
	return e.store.Close()
}

// Store exposes the MVCC store (benchmarks, view maintenance).
func (e *Engine) Store() *mvcc.Store { return e.store }

// Options returns the engine's options.
func (e *Engine) Options() Options { return e.opts }

// OnSealed registers fn to run after each commit that moved G, with the
// writer lock held. View maintenance hooks in here.
func (e *Engine) OnSealed(fn func(oldG, newG int64)) {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	e.onSealed = append(e.onSealed, fn)
}

// commitStateLocked stores the catalog (if changed), the state and the
// rejects in one atomic meta commit.
func (e *Engine) commitStateLocked(catChanged bool, rejects [][]byte, firstReject uint64) error {
	_, err := e.commitBatchLocked(nil, catChanged, rejects, firstReject)
	return err
}

// commitBatchLocked commits the state (and catalog, rejects) together with a
// batch of versions through the store's intent protocol; batch may be nil.
// The batch's versions are still being written when it returns: readers
// may see its state only after the Flushing's Wait.
func (e *Engine) commitBatchLocked(batch *mvcc.Batch, catChanged bool, rejects [][]byte, firstReject uint64) (*mvcc.Flushing, error) {
	e.advanceHorizonLocked()
	sb, err := json.Marshal(e.st)
	if err != nil {
		return nil, fmt.Errorf("engine: encode state: %w", err)
	}
	m := mvcc.MetaWrite{Puts: map[string][]byte{"state": sb}, Rejects: rejects}
	if catChanged {
		cb, err := e.cat.Marshal()
		if err != nil {
			return nil, fmt.Errorf("engine: encode catalog: %w", err)
		}
		m.Puts["catalog"] = cb
	}
	if batch != nil {
		return e.store.CommitAsync(batch, m, firstReject)
	}
	return nil, e.store.CommitMeta(m, firstReject)
}

// publishLocked makes the writer's committed state visible to readers and
// wakes anyone waiting for G to move. Call only after the commit returned
// (a meta commit waits for the versions of every batch before it).
func (e *Engine) publishLocked() {
	e.publishStateLocked(e.st.clone(), e.stGen)
}

// publishStateLocked publishes st, the writer's state after gen batches,
// with the writer's catalog. The versions of those batches must be durable.
func (e *Engine) publishStateLocked(st *state, gen uint64) {
	old := e.pub.Load()
	g := st.Tracker.Global()
	if old != nil && old.g != g && len(e.cat.Views) > 0 {
		// View maintenance reads the store (a scan seeds its change log):
		// no batch may be half written while it runs.
		if err := e.store.Drain(); err != nil {
			return
		}
	}
	e.pubGen = gen
	v := &view{cat: e.cat.Clone(), catGen: e.catGen, st: st, g: g, horizon: st.Horizon}
	e.pub.Store(v)
	e.setDiscardLocked(v)
	if old == nil || old.g != g {
		oldG := timeline.None
		if old != nil {
			oldG = old.g
		}
		for _, fn := range e.onSealed {
			fn(oldG, g)
		}
		e.sealMu.Lock()
		close(e.sealCh)
		e.sealCh = make(chan struct{})
		e.sealMu.Unlock()
	}
}

// Watermark returns the published global watermark G.
func (e *Engine) Watermark() int64 { return e.pub.Load().g }

// Sealed returns a channel closed the next time G moves.
func (e *Engine) Sealed() <-chan struct{} {
	e.sealMu.Lock()
	defer e.sealMu.Unlock()
	return e.sealCh
}

// Catalog returns the published catalog. Do not modify it.
func (e *Engine) Catalog() *catalog.Catalog { return e.pub.Load().cat }

// SourceWatermark is one source's row in ttq_watermarks.
type SourceWatermark struct {
	Source   string
	Kind     string
	W        int64 // timeline.None when nothing is sealed for it
	MaxTS    int64 // newest record time seen, timeline.None if none
	Holding  bool  // its watermark is G: it holds the global watermark back
	Since    int64 // G when this source's watermark last moved
	Applied  int64
	Rejected int64
}

// Watermarks returns every source's watermark and G, as published.
func (e *Engine) Watermarks() (g int64, sources []SourceWatermark) {
	v := e.pub.Load()
	for _, name := range v.cat.SourceNames() {
		s := v.st.Tracker.Sources[name]
		sw := SourceWatermark{Source: name, W: timeline.None, MaxTS: timeline.None, Since: timeline.None}
		if s != nil {
			sw.Kind, sw.W, sw.MaxTS, sw.Since = s.Kind, s.W(), s.MaxTS(), s.Since
			sw.Holding = sw.W == v.g
		}
		sw.Applied = v.st.Applied[name]
		for _, n := range v.st.Rejects[name] {
			sw.Rejected += n
		}
		sources = append(sources, sw)
	}
	return v.g, sources
}

// RejectCounts returns rejects counted per source and reason.
func (e *Engine) RejectCounts() map[string]map[string]int64 {
	return e.pub.Load().st.clone().Rejects
}

// Offsets returns the stored stream positions (for the Kafka daemon).
func (e *Engine) Offsets() map[string]int64 {
	return e.pub.Load().st.clone().Offsets
}

// Horizon returns the retention horizon (0 when everything is kept).
func (e *Engine) Horizon() int64 { return e.pub.Load().horizon }
