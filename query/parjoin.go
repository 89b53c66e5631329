package query

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/types"
)

// A hash join whose sides are whole-table scans read from the store's
// segment cache runs on every core: each scan is cut into key ranges
// (mvcc.Snapshot.ScanParts) and workers each take the next range. For the
// right side they read and filter it and compute each row's key, and the
// hash table is filled from the ranges in key order; for the left side
// they read, filter and probe it (the table is read-only by then), and
// the join returns the ranges' rows in key order. Either way every
// operator sees the rows the single-threaded join gives, in the same
// order, so answers (sums of doubles included) do not depend on the
// number of cores. Workers run at most two ranges a core ahead of the
// consumer.

// partRows is about how many entries of the cached segments a range holds
// (a variable for tests).
var partRows = 16384

// parJoins counts the scans cut into key ranges: join sides, or a grouped
// table (for tests).
var parJoins atomic.Int64

// partScanner is implemented by readers whose whole-table scans can be
// cut into key ranges (mvcc.Snapshot; precompute's restricted snapshots
// do it only for tables they do not restrict).
type partScanner interface {
	ScanParts(t *catalog.Table, rowsPerPart int) []mvcc.RowIter
}

// scanParts returns the key ranges of n when it is a whole-table scan
// that can be read in parallel, or nil.
func scanParts(x *execCtx, n node) []mvcc.RowIter {
	sc, ok := n.(*scanNode)
	if !ok || sc.kind != srcTable || sc.point || sc.keys != nil || runtime.GOMAXPROCS(0) < 2 {
		return nil
	}
	ps, ok := x.snapshot(sc.ts).(partScanner)
	if !ok {
		return nil
	}
	parts := ps.ScanParts(sc.tbl, partRows)
	if len(parts) < 2 {
		for _, p := range parts {
			p.Close()
		}
		return nil
	}
	parJoins.Add(1)
	return parts
}

// parSource is a node's rows read on every core: a worker reads each key
// range of parts, calling emit for every row of the range in order (a row
// is valid only during the call); results come back in range order.
type parSource struct {
	parts []mvcc.RowIter
	rows  func(w *parWorker, it mvcc.RowIter, emit func(row []types.Value)) error
}

// parRows returns n's rows as a parSource when they can be read in
// parallel: a whole-table scan the segment cache serves, a hash join whose
// left (probe) side is one, or either under filters. A join's hash table
// is built here.
func parRows(x *execCtx, n node) (*parSource, error) {
	switch n := n.(type) {
	case *scanNode:
		parts := scanParts(x, n)
		if parts == nil {
			return nil, nil
		}
		return &parSource{parts: parts, rows: func(w *parWorker, it mvcc.RowIter, emit func([]types.Value)) error {
			for it.Next() {
				if stop, err := w.stopped(); stop {
					return err
				}
				if w.scanRow(it, n.filter) {
					emit(w.lrow)
				}
			}
			return nil
		}}, nil
	case *joinNode:
		if n.kind != joinHash {
			return nil, nil
		}
		parts := scanParts(x, n.left)
		if parts == nil {
			return nil, nil
		}
		table, _, err := n.buildTable(x)
		if err != nil {
			for _, p := range parts {
				p.Close()
			}
			return nil, err
		}
		return n.probeSource(table, parts), nil
	case *filterNode:
		src, err := parRows(x, n.in)
		if src == nil || err != nil {
			return nil, err
		}
		in := src.rows
		src.rows = func(w *parWorker, it mvcc.RowIter, emit func([]types.Value)) error {
			return in(w, it, func(row []types.Value) {
				if passes(n.pred, row) {
					emit(row)
				}
			})
		}
		return src, nil
	}
	return nil, nil
}

// partRunner runs fn over key ranges on every core and hands the results
// back in range order (next).
type partRunner[R any] struct {
	ctx      context.Context
	parts    []mvcc.RowIter
	fn       func(w *parWorker, it mvcc.RowIter) (R, error)
	results  []partResult[R]
	taken    atomic.Int64  // ranges taken by workers
	tokens   chan struct{} // one a range taken and not yet handed back
	quit     chan struct{}
	quitOnce sync.Once
	wg       sync.WaitGroup
	cur      int // the next range to hand back
}

type partResult[R any] struct {
	done chan struct{}
	r    R
	err  error
}

func runParts[R any](ctx context.Context, parts []mvcc.RowIter, fn func(w *parWorker, it mvcc.RowIter) (R, error)) *partRunner[R] {
	workers := min(runtime.GOMAXPROCS(0), len(parts))
	p := &partRunner[R]{
		ctx: ctx, parts: parts, fn: fn,
		results: make([]partResult[R], len(parts)),
		tokens:  make(chan struct{}, 2*workers),
		quit:    make(chan struct{}),
	}
	for i := range p.results {
		p.results[i].done = make(chan struct{})
	}
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

func (p *partRunner[R]) work() {
	defer p.wg.Done()
	w := &parWorker{quit: p.quit, ctx: p.ctx}
	for {
		select {
		case p.tokens <- struct{}{}:
		case <-p.quit:
			return
		}
		i := int(p.taken.Add(1) - 1)
		if i >= len(p.parts) {
			return
		}
		r := &p.results[i]
		if rr, ok := p.parts[i].(mvcc.RowReuser); ok {
			rr.ReuseRows()
		}
		if ss, ok := p.parts[i].(mvcc.StringSharer); ok {
			ss.ShareStrings() // results are copied out of the rows
		}
		r.r, r.err = p.call(w, p.parts[i])
		if r.err == nil {
			r.err = p.parts[i].Err()
		}
		p.parts[i].Close()
		close(r.done)
	}
}

// call runs fn on one range; a panic becomes the range's error (Run
// recovers the statement's own goroutine, not the workers').
func (p *partRunner[R]) call(w *parWorker, it mvcc.RowIter) (r R, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: a parallel worker: %v (please report this)", ErrInternal, v)
		}
	}()
	return p.fn(w, it)
}

// next returns the next range's result; ok is false after the last.
func (p *partRunner[R]) next() (r R, ok bool, err error) {
	if p.cur >= len(p.results) {
		return r, false, nil
	}
	res := &p.results[p.cur]
	select {
	case <-res.done:
	case <-p.ctx.Done():
		return r, false, p.ctx.Err()
	}
	r, err = res.r, res.err
	var zero R
	res.r = zero
	p.cur++
	<-p.tokens // its range is handed back: a worker may take another
	return r, true, err
}

// close stops the workers and waits for them; ranges no worker took are
// closed here.
func (p *partRunner[R]) close() {
	p.quitOnce.Do(func() { close(p.quit) })
	p.wg.Wait()
	for i := int(min(p.taken.Load(), int64(len(p.parts)))); i < len(p.parts); i++ {
		p.parts[i].Close()
	}
}

// parWorker holds one worker's buffers.
type parWorker struct {
	quit  chan struct{}
	ctx   context.Context
	lrow  []types.Value // the row scanRow read, until the next
	buf   []types.Value
	jrow  []types.Value // the joined row probeSource emits, until the next
	kb    []byte
	arena rowArena
	count int
}

// stopped says, every 1024 rows, whether the statement was cancelled
// (err) or the consumer stopped reading (true, nil).
func (w *parWorker) stopped() (bool, error) {
	if w.count++; w.count%1024 != 0 {
		return false, nil
	}
	if err := w.ctx.Err(); err != nil {
		return true, err
	}
	select {
	case <-w.quit:
		return true, nil
	default:
		return false, nil
	}
}

// scanRow makes it's current row with _ts w.lrow (in place when the row
// has room for it) and applies the scan's filter.
func (w *parWorker) scanRow(it mvcc.RowIter, filter *expr) bool {
	if row := it.Row(); cap(row) > len(row) {
		w.lrow = append(row, types.Time(it.TS()))
	} else {
		w.buf = append(append(w.buf[:0], row...), types.Time(it.TS()))
		w.lrow = w.buf
	}
	return passes(filter, w.lrow)
}

// key encodes the join key of row into w.kb (appendJoinKey).
func (w *parWorker) key(keys []*expr, row []types.Value) bool {
	var ok bool
	w.kb, ok = appendJoinKey(w.kb[:0], keys, row)
	return ok
}

// builtPart is one range of a hash join's right side: its rows with a
// key, the key of each, and how many rows had a NULL key (held, not
// stored).
type builtPart struct {
	rows  [][]types.Value
	keys  []string
	nulls int
}

// buildParallel fills the hash table from the right side's ranges, in key
// order: the table the single-threaded build makes, rows of one key in
// the same order.
func (n *joinNode) buildParallel(x *execCtx, parts []mvcc.RowIter, table hashTable) error {
	filter := n.right.(*scanNode).filter
	pr := runParts(x.ctx, parts, func(w *parWorker, it mvcc.RowIter) (builtPart, error) {
		var b builtPart
		for it.Next() {
			if stop, err := w.stopped(); stop {
				return b, err
			}
			if !w.scanRow(it, filter) {
				continue
			}
			if !w.key(n.rightKeys, w.lrow) {
				b.nulls++
				continue
			}
			row := w.arena.row(len(w.lrow))
			copy(row, w.lrow)
			b.rows, b.keys = append(b.rows, row), append(b.keys, string(w.kb))
		}
		return b, nil
	})
	defer pr.close()
	for {
		b, ok, err := pr.next()
		if err != nil || !ok {
			return err
		}
		for range b.nulls {
			if err := x.hold(); err != nil {
				return err
			}
		}
		for i, row := range b.rows {
			if err := x.hold(); err != nil {
				return err
			}
			table.add(b.keys[i], row)
		}
	}
}

// probeSource reads the left side's ranges and probes table with each
// row (the table is read-only by now).
func (n *joinNode) probeSource(table hashTable, parts []mvcc.RowIter) *parSource {
	filter := n.left.(*scanNode).filter
	nRight := len(n.right.cols())
	return &parSource{parts: parts, rows: func(w *parWorker, it mvcc.RowIter, emit func([]types.Value)) error {
		for it.Next() {
			if stop, err := w.stopped(); stop {
				return err
			}
			if !w.scanRow(it, filter) {
				continue
			}
			matched := false
			if w.key(n.leftKeys, w.lrow) {
				b, ok := table[string(w.kb)]
				for i := -1; ok && i < len(b.more); i++ {
					r := b.one
					if i >= 0 {
						r = b.more[i]
					}
					w.jrow = append(append(w.jrow[:0], w.lrow...), r...)
					if !passes(n.residual, w.jrow) {
						continue
					}
					matched = true
					emit(w.jrow)
				}
			}
			if n.leftJoin && !matched {
				w.jrow = append(w.jrow[:0], w.lrow...)
				for range nRight {
					w.jrow = append(w.jrow, types.NullValue)
				}
				emit(w.jrow)
			}
		}
		return nil
	}}
}

// parIter returns a parSource's rows, in order.
type parIter struct {
	pr   *partRunner[[][]types.Value]
	rows [][]types.Value
	row  []types.Value
	err  error
}

func newParIter(x *execCtx, src *parSource) *parIter {
	collect := func(w *parWorker, it mvcc.RowIter) ([][]types.Value, error) {
		var out [][]types.Value
		err := src.rows(w, it, func(r []types.Value) {
			row := w.arena.row(len(r))
			copy(row, r)
			out = append(out, row)
		})
		return out, err
	}
	return &parIter{pr: runParts(x.ctx, src.parts, collect)}
}

func (p *parIter) Next() bool {
	for p.err == nil {
		if len(p.rows) > 0 {
			p.row, p.rows = p.rows[0], p.rows[1:]
			return true
		}
		var ok bool
		if p.rows, ok, p.err = p.pr.next(); !ok {
			return false
		}
	}
	return false
}

func (p *parIter) Row() []types.Value { return p.row }
func (p *parIter) Err() error         { return p.err }
func (p *parIter) Close()             { p.pr.close() }
