package query

import (
	"runtime"
	"sync"
	"sync/atomic"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/types"
)

// A hash join whose left side is a whole-table scan read from the store's
// segment cache probes on every core: the scan is cut into key ranges
// (mvcc.Snapshot.ScanParts), workers each take the next range, read it,
// filter it and probe the hash table (read-only by then), and the join
// returns the ranges' rows in key order, as the single-threaded join
// does: every operator above it sees the same rows in the same order, so
// answers (sums of doubles included) do not depend on the number of
// cores. Workers run at most two ranges a core ahead of the consumer.

// partRows is about how many entries of the cached segments a range holds
// (a variable for tests).
var partRows = 16384

// parJoins counts the joins that probed in parallel (for tests).
var parJoins atomic.Int64

// partScanner is implemented by readers whose whole-table scans can be
// cut into key ranges (mvcc.Snapshot; precompute's restricted snapshots
// do it only for tables they do not restrict).
type partScanner interface {
	ScanParts(t *catalog.Table, rowsPerPart int) []mvcc.RowIter
}

// parallelParts returns the key ranges of the join's left scan when the
// join can probe in parallel, or nil.
func (n *joinNode) parallelParts(x *execCtx) []mvcc.RowIter {
	sc, ok := n.left.(*scanNode)
	if !ok || n.kind != joinHash || sc.kind != srcTable || sc.point || sc.keys != nil || runtime.GOMAXPROCS(0) < 2 {
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
	return parts
}

// parJoinIter is the join's iterator when it probes in parallel.
type parJoinIter struct {
	x        *execCtx
	n        *joinNode
	filter   *expr // the left scan's
	table    map[string][][]types.Value
	parts    []mvcc.RowIter
	results  []parResult
	next     atomic.Int64  // the next range a worker takes
	tokens   chan struct{} // one a range taken and not yet returned
	quit     chan struct{}
	quitOnce sync.Once
	wg       sync.WaitGroup

	cur  int // the range being returned
	rows [][]types.Value
	row  []types.Value
	err  error
}

type parResult struct {
	done chan struct{}
	rows [][]types.Value
	err  error
}

func newParJoinIter(x *execCtx, n *joinNode, table map[string][][]types.Value, parts []mvcc.RowIter) *parJoinIter {
	parJoins.Add(1)
	workers := min(runtime.GOMAXPROCS(0), len(parts))
	p := &parJoinIter{
		x: x, n: n, filter: n.left.(*scanNode).filter, table: table, parts: parts,
		results: make([]parResult, len(parts)),
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

func (p *parJoinIter) work() {
	defer p.wg.Done()
	var w parWorker
	for {
		select {
		case p.tokens <- struct{}{}:
		case <-p.quit:
			return
		}
		i := int(p.next.Add(1) - 1)
		if i >= len(p.parts) {
			return
		}
		r := &p.results[i]
		r.rows, r.err = w.run(p, p.parts[i])
		p.parts[i].Close()
		close(r.done)
	}
}

// parWorker holds one worker's buffers.
type parWorker struct {
	lrow  []types.Value
	kb    []byte
	arena rowArena
}

// run reads one range: joinIter's loop over scanIter's rows.
func (w *parWorker) run(p *parJoinIter, it mvcc.RowIter) ([][]types.Value, error) {
	if r, ok := it.(mvcc.RowReuser); ok {
		r.ReuseRows()
	}
	n := p.n
	nRight := len(n.right.cols())
	var out [][]types.Value
	count := 0
	for it.Next() {
		if count++; count%1024 == 0 {
			if err := p.x.ctx.Err(); err != nil {
				return nil, err
			}
			select {
			case <-p.quit:
				return nil, nil
			default:
			}
		}
		w.lrow = append(append(w.lrow[:0], it.Row()...), types.Time(it.TS()))
		if !passes(p.filter, w.lrow) {
			continue
		}
		matched := false
		if cands, ok := w.probe(n, w.lrow, p.table); ok {
			for _, r := range cands {
				k := len(w.lrow) + len(r)
				row := w.arena.row(k)
				copy(row[copy(row, w.lrow):], r)
				if !passes(n.residual, row) {
					w.arena.unrow(k)
					continue
				}
				matched = true
				out = append(out, row)
			}
		}
		if n.leftJoin && !matched {
			row := w.arena.row(len(w.lrow) + nRight)
			copy(row, w.lrow)
			clear(row[len(w.lrow):])
			out = append(out, row)
		}
	}
	return out, it.Err()
}

// probe returns the right rows whose keys equal l's (ok false: a key is
// NULL, which equals nothing).
func (w *parWorker) probe(n *joinNode, l []types.Value, table map[string][][]types.Value) ([][]types.Value, bool) {
	w.kb = w.kb[:0]
	for _, k := range n.leftKeys {
		v := k.eval(l)
		if v.IsNull() {
			return nil, false
		}
		w.kb = appendKey(w.kb, v)
	}
	return table[string(w.kb)], true
}

func (p *parJoinIter) Next() bool {
	for p.err == nil {
		if len(p.rows) > 0 {
			p.row, p.rows = p.rows[0], p.rows[1:]
			return true
		}
		if p.cur >= len(p.results) {
			return false
		}
		r := &p.results[p.cur]
		select {
		case <-r.done:
		case <-p.x.ctx.Done():
			p.err = p.x.ctx.Err()
			return false
		}
		p.rows, p.err = r.rows, r.err
		r.rows = nil
		p.cur++
		<-p.tokens // its range is returned: a worker may take another
	}
	return false
}

func (p *parJoinIter) Row() []types.Value { return p.row }
func (p *parJoinIter) Err() error         { return p.err }

// Close stops the workers and waits for them; ranges no worker took are
// closed here.
func (p *parJoinIter) Close() {
	p.quitOnce.Do(func() { close(p.quit) })
	p.wg.Wait()
	for i := int(min(p.next.Load(), int64(len(p.parts)))); i < len(p.parts); i++ {
		p.parts[i].Close()
	}
}
