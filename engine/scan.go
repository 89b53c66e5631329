package engine

import (
	"context"
	"fmt"

	"ttq/catalog"
	"ttq/timeline"
	"ttq/types"
)

// ResolveTime turns a time literal of the contract (RFC 3339, integer
// microseconds, or a negative duration relative to G) into an instant; ""
// means G.
func (e *Engine) ResolveTime(lit string) (int64, error) {
	g := e.Watermark()
	if lit == "" {
		if g == timeline.None {
			return 0, notSealed(e.pub.Load(), g)
		}
		return g, nil
	}
	return timeline.Parse(lit, g)
}

// ScanTable streams every row of a base table AS OF ts in key order, for
// exports that must not hold a table in memory. It applies the same checks as
// a query (sealed, retention) and holds its snapshot against retention until
// it returns. fn's row is only valid during the call.
func (e *Engine) ScanTable(ctx context.Context, name string, ts int64, fn func(row []types.Value) error) (*catalog.Table, error) {
	x := e.env()
	defer x.release()
	t, err := x.v.cat.Table(name)
	if err != nil {
		return nil, err
	}
	if err := x.CheckReadable(ts); err != nil {
		return nil, err
	}
	if err := x.CheckTable(t, ts); err != nil {
		return nil, err
	}
	sn := e.store.At(ts)
	defer sn.Close()
	it := sn.Scan(t, nil)
	defer it.Close()
	for n := 0; it.Next(); n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := fn(it.Row()); err != nil {
			return nil, err
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("engine: scan %s: %w", t.Name, err)
	}
	return t, nil
}
