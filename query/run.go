package query

import (
	"context"
	"fmt"

	"ttq/catalog"
	"ttq/mvcc"
	"ttq/types"
)

// TableChecker is an optional capability of an Env: per-table limits on the
// instants a table can be read at (its retention horizon). The planner calls
// it for every base-table read after CheckReadable.
type TableChecker interface {
	CheckTable(t *catalog.Table, ts int64) error
}

// Env is what a SELECT needs from the engine.
type Env interface {
	// Catalog is the schema, immutable for the statement.
	Catalog() *catalog.Catalog
	// Watermark is the global watermark G, timeline.None if nothing is sealed.
	Watermark() int64
	// CheckReadable returns nil if ts can be read (ts <= G and not behind
	// the retention horizon), otherwise the engine's error, returned unchanged.
	CheckReadable(ts int64) error
	// Snapshot reads rows AS OF ts; the caller Closes it.
	Snapshot(ts int64) mvcc.Reader
	// History calls fn for every version of t's rows with key prefix
	// visible at some instant of [from, to].
	History(t *catalog.Table, prefix []types.Value, from, to int64, fn func(mvcc.RowVersion) error) error
	// ViewAt maps a requested time for a view to the epoch boundary that
	// answers it (the last boundary <= ts). The view's rows are read with
	// Snapshot(boundary) and ViewTable(v).
	ViewAt(v *catalog.View, ts int64) (boundary int64, err error)
	// SystemTable returns the rows of ttq_watermarks, ttq_rejects and
	// ttq_epochs (ok=false for other names).
	SystemTable(name string) (cols []catalog.Column, rows [][]types.Value, ok bool, err error)
}

// ViewTable is the pseudo-table a view's stored rows are read through.
func ViewTable(v *catalog.View) *catalog.Table {
	return &catalog.Table{ID: v.ID, Name: v.Name, Columns: v.Columns, PK: v.PK}
}

// Options bound a statement's execution.
type Options struct {
	// MaxRows bounds the result; 0 is unlimited. Exceeding it is ErrTooManyRows.
	MaxRows int64
	// BatchSize is the number of rows per Arrow record batch; default 1024.
	BatchSize int
	// MaxHeldRows bounds the rows a statement holds in memory at once in
	// sorts, groups, DISTINCT sets and hash-join build sides together;
	// 0 is unlimited. Exceeding it is ErrTooMuchHeld.
	MaxHeldRows int64
}

// Run executes s at the times its clauses (or the global watermark) name.
func Run(ctx context.Context, env Env, s *Select, opts Options) (res *Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("%w: executing %q: %v (please report this)", ErrInternal, s.Text, r)
		}
	}()
	pl, err := buildPlan(env.Catalog(), env, s, opts.MaxHeldRows)
	if err != nil {
		return nil, err
	}
	x := &execCtx{ctx: ctx, env: env, snaps: map[int64]mvcc.Reader{}, maxHeld: opts.MaxHeldRows}
	defer x.close()
	it, err := pl.root.open(x)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	b := newResultBuilder(pl.out, opts.BatchSize)
	defer b.release()
	for it.Next() {
		if opts.MaxRows > 0 && b.rows >= opts.MaxRows {
			return nil, fmt.Errorf("%w: more than %d rows; add a LIMIT or a narrower WHERE", ErrTooManyRows, opts.MaxRows)
		}
		b.add(it.Row())
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res = b.finish(pl.asOf)
	res.Note = joinNotes(pl.notes)
	return res, nil
}

func joinNotes(ns []string) string {
	out := ""
	for i, n := range ns {
		if i > 0 {
			out += "; "
		}
		out += n
	}
	return out
}

// Analyze returns the output schema of s without running it; the engine
// uses it to validate CREATE VIEW.
func Analyze(cat *catalog.Catalog, s *Select) (cols []catalog.Column, err error) {
	defer func() {
		if r := recover(); r != nil {
			cols, err = nil, fmt.Errorf("%w: analyzing %q: %v (please report this)", ErrInternal, s.Text, r)
		}
	}()
	pl, err := buildPlan(cat, nil, s, 0)
	if err != nil {
		return nil, err
	}
	return pl.out, nil
}
