package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"ttq/catalog"
	"ttq/ingest"
	"ttq/mvcc"
	"ttq/precompute"
	"ttq/query"
	"ttq/timeline"
	"ttq/types"
)

// Exec runs one SQL statement: DDL changes the catalog durably, SELECT reads
// a sealed snapshot.
func (e *Engine) Exec(ctx context.Context, sql string, opts query.Options) (*query.Result, error) {
	p := e.Parse(sql)
	defer p.Release()
	return e.ExecParsed(ctx, p, opts)
}

// Parse tokenizes one statement for ExecParsed (and query.Parsed.Class);
// the caller releases it when done with its results.
func (e *Engine) Parse(sql string) *query.Parsed { return e.stmts.Parse(sql) }

// ExecParsed is Exec of a statement from Parse; it may run it more than
// once (the server does, waiting for G).
func (e *Engine) ExecParsed(ctx context.Context, p *query.Parsed, opts query.Options) (*query.Result, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	// Primary-key lookups, the bulk of a serving workload, skip the SQL
	// parser; anything the fast path is unsure of takes the general one.
	// Other SELECTs of a shape seen before take a parsed tree from the
	// statement cache, returned when the result is complete.
	if pg, ok := p.PointGet(); ok {
		x := e.env()
		res, err := query.RunPointGet(ctx, x, pg, opts)
		x.release()
		if !errors.Is(err, query.ErrNotPointGet) {
			return res, err
		}
	}
	stmt, err := p.Statement()
	if err != nil {
		return nil, err
	}
	switch s := stmt.(type) {
	case *query.Select:
		x := e.env()
		defer x.release()
		return query.Run(ctx, x, s, opts)
	case *query.Explain:
		return e.explain(ctx, s)
	case *query.CreateSource:
		return e.createSource(s)
	case *query.CreateTable:
		return e.createTable(s)
	case *query.CreateView:
		return e.createView(ctx, s)
	case *query.Drop:
		return e.drop(s)
	case *query.Show:
		return e.show(s)
	case *query.Describe:
		return e.describe(s)
	case *query.Checkpoint:
		if err := e.Checkpoint(); err != nil {
			return nil, err
		}
		return message("CHECKPOINT"), nil
	}
	return nil, fmt.Errorf("%w: statement %T", query.ErrUnsupported, stmt)
}

// ExecScript runs each statement of a script in order and hands every
// result to fn; it stops at the first error.
func (e *Engine) ExecScript(ctx context.Context, script string, opts query.Options, fn func(stmt string, r *query.Result) error) error {
	stmts, err := query.Split(script)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		r, err := e.Exec(ctx, s, opts)
		if err != nil {
			return err
		}
		err = fn(s, r)
		r.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

func message(text string) *query.Result {
	r := query.NewResult([]catalog.Column{{Name: "result", Type: types.Varchar}}, [][]types.Value{{types.String(text)}}, timeline.None)
	r.Status = text
	return r
}

// ddl runs fn on the writer's catalog under the writer lock and commits the
// new catalog durably; on failure the catalog is left as it was.
func (e *Engine) ddl(fn func(cat *catalog.Catalog) error) error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if e.closed.Load() {
		return ErrClosed
	}
	savedCat, savedSt := e.cat.Clone(), e.st.clone()
	e.catGen++ // whether or not it succeeds, cat is replaced or changed
	if err := fn(e.cat); err != nil {
		e.cat, e.st = savedCat, savedSt
		return err
	}
	if err := e.commitStateLocked(true, nil, 0); err != nil {
		e.cat, e.st = savedCat, savedSt
		return err
	}
	e.publishLocked()
	return nil
}

func (e *Engine) createSource(s *query.CreateSource) (*query.Result, error) {
	src := &catalog.Source{Name: s.Name, Options: s.Options}
	for k, v := range s.Options {
		switch k {
		case "topic":
			src.Topic = v
		case "format":
			src.Format = strings.ToLower(v)
		case "watermark":
			src.Watermark = strings.ToLower(v)
		case "max_delay":
			d, err := timeline.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("%w: CREATE SOURCE %s: max_delay: %w", catalog.ErrInvalid, s.Name, err)
			}
			src.MaxDelay = d
		default:
			return nil, fmt.Errorf("%w: CREATE SOURCE %s: unknown option %q (use topic, format, watermark, max_delay)", catalog.ErrInvalid, s.Name, k)
		}
	}
	if _, ok := s.Options["max_delay"]; ok && src.Watermark != catalog.WatermarkBounded {
		return nil, fmt.Errorf("%w: CREATE SOURCE %s: max_delay needs watermark = 'bounded'", catalog.ErrInvalid, s.Name)
	}
	err := e.ddl(func(cat *catalog.Catalog) error {
		if err := cat.AddSource(src); err != nil {
			return err
		}
		e.st.Tracker.Declare(src)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return message("CREATE SOURCE " + src.Name), nil
}

func (e *Engine) createTable(s *query.CreateTable) (*query.Result, error) {
	t := &catalog.Table{Name: s.Name, Source: s.Source, Columns: s.Columns, PK: s.PK}
	for k, v := range s.Options {
		switch k {
		case "retention":
			d, err := timeline.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("%w: CREATE TABLE %s: retention: %w", catalog.ErrInvalid, s.Name, err)
			}
			t.Retention = d
		default:
			return nil, fmt.Errorf("%w: CREATE TABLE %s: unknown option %q (use retention)", catalog.ErrInvalid, s.Name, k)
		}
	}
	err := e.ddl(func(cat *catalog.Catalog) error {
		if s.IfNotExists {
			if _, err := cat.Table(s.Name); err == nil {
				return nil
			}
		}
		return cat.AddTable(t)
	})
	if err != nil {
		return nil, err
	}
	return message("CREATE TABLE " + t.Name), nil
}

func (e *Engine) createView(ctx context.Context, s *query.CreateView) (*query.Result, error) {
	return e.createViewStmt(ctx, s)
}

func (e *Engine) drop(s *query.Drop) (*query.Result, error) {
	var dropped *catalog.Table
	err := e.ddl(func(cat *catalog.Catalog) error {
		var err error
		switch s.Kind {
		case "table":
			dropped, err = cat.DropTable(s.Name)
		case "view":
			var v *catalog.View
			if v, err = cat.DropView(s.Name); err == nil {
				e.dropViewLocked(v)
				dropped = query.ViewTable(v) // its rows go with it
			}
		case "source":
			var src *catalog.Source
			if src, err = cat.DropSource(s.Name); err == nil {
				e.st.Tracker.Forget(src.Name)
			}
		default:
			err = fmt.Errorf("%w: DROP %s", query.ErrUnsupported, s.Kind)
		}
		if s.IfExists && isUnknown(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if dropped != nil {
		// Badger's DropPrefix blocks every write while it runs: a batch
		// committing meanwhile fails ("Writes are blocked"), possibly after
		// its meta commit, between the two steps of the intent protocol.
		// Run it under the writer lock, like every other write (the store
		// first waits for the versions of batches committed before, which
		// a pipeline writes after letting go of the lock).
		e.ckMu.Lock()
		e.wmu.Lock()
		err := ErrClosed
		if !e.closed.Load() {
			err = e.store.DropTable(dropped.ID)
		}
		e.wmu.Unlock()
		e.ckMu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	return message("DROP " + strings.ToUpper(s.Kind) + " " + catalog.Normalize(s.Name)), nil
}

func isUnknown(err error) bool {
	return errors.Is(err, catalog.ErrUnknownTable) || errors.Is(err, catalog.ErrUnknownView) || errors.Is(err, catalog.ErrUnknownSource)
}

func (e *Engine) show(s *query.Show) (*query.Result, error) {
	v := e.pub.Load()
	var cols []catalog.Column
	var rows [][]types.Value
	str := func(n string) catalog.Column { return catalog.Column{Name: n, Type: types.Varchar} }
	switch s.What {
	case "tables":
		cols = []catalog.Column{str("table"), str("source"), str("primary_key")}
		for _, n := range v.cat.TableNames() {
			t := v.cat.Tables[n]
			rows = append(rows, []types.Value{types.String(n), types.String(t.Source), types.String(pkNames(t))})
		}
	case "sources":
		cols = []catalog.Column{str("source"), str("topic"), str("format"), str("watermark_kind"), {Name: "max_delay_us", Type: types.BigInt}, {Name: "watermark", Type: types.Timestamp}}
		for _, n := range v.cat.SourceNames() {
			src := v.cat.Sources[n]
			w := types.NullValue
			if ts := v.st.Tracker.Sources[n]; ts != nil && ts.W() != timeline.None {
				w = types.Time(ts.W())
			}
			md := types.NullValue
			if src.Watermark == catalog.WatermarkBounded {
				md = types.Int(src.MaxDelay)
			}
			rows = append(rows, []types.Value{types.String(n), types.String(src.Topic), types.String(src.Format), types.String(src.Watermark), md, w})
		}
	case "views":
		cols = []catalog.Column{str("view"), str("query")}
		for _, n := range v.cat.ViewNames() {
			rows = append(rows, []types.Value{types.String(n), types.String(v.cat.Views[n].Query)})
		}
	default:
		return nil, fmt.Errorf("%w: SHOW %s (use SHOW TABLES, SHOW SOURCES or SHOW VIEWS)", query.ErrUnsupported, s.What)
	}
	return query.NewResult(cols, rows, timeline.None), nil
}

func pkNames(t *catalog.Table) string {
	names := make([]string, len(t.PK))
	for i, k := range t.PK {
		names[i] = t.Columns[k].Name
	}
	return strings.Join(names, ", ")
}

func (e *Engine) describe(s *query.Describe) (*query.Result, error) {
	v := e.pub.Load()
	cols := []catalog.Column{{Name: "column", Type: types.Varchar}, {Name: "type", Type: types.Varchar}, {Name: "key", Type: types.Boolean}, {Name: "nullable", Type: types.Boolean}}
	var rows [][]types.Value
	var tcols []catalog.Column
	var pk []int
	if t, err := v.cat.Table(s.Name); err == nil {
		tcols, pk = t.Columns, t.PK
	} else if vw, verr := v.cat.View(s.Name); verr == nil {
		tcols, pk = vw.Columns, vw.PK
	} else if sc, _, ok, _ := e.systemTable(v, catalog.Normalize(s.Name)); ok {
		tcols = sc
	} else {
		return nil, err
	}
	isKey := func(i int) bool {
		for _, k := range pk {
			if k == i {
				return true
			}
		}
		return false
	}
	for i, c := range tcols {
		rows = append(rows, []types.Value{types.String(c.Name), types.String(c.Type.String()), types.Bool(isKey(i)), types.Bool(!isKey(i))})
	}
	return query.NewResult(cols, rows, timeline.None), nil
}

// env is the query.Env of one statement: one published state for all of it.
type env struct {
	e      *Engine
	v      *view
	pin    int64 // the oldest instant this statement may read, held against retention
	pinned bool
}

var _ query.Env = (*env)(nil)

// env pins the published state for one statement; call release when the
// statement's reads are done.
func (e *Engine) env() *env {
	v, h := e.pin()
	return &env{e: e, v: v, pin: h, pinned: true}
}

func (x *env) Catalog() *catalog.Catalog { return x.v.cat }
func (x *env) Watermark() int64          { return x.v.g }

func (x *env) CheckReadable(ts int64) error {
	v := x.v
	if v.g == timeline.None || ts > v.g {
		return notSealed(v, ts)
	}
	if v.horizon > 0 && ts < v.horizon {
		return fmt.Errorf("%w: AS OF %s is behind the retention horizon %s; query AS OF a later time",
			ErrBeforeHorizon, timeline.Format(ts), timeline.Format(v.horizon))
	}
	return nil
}

func notSealed(v *view, ts int64) error {
	var holders []string
	var none []string
	for _, n := range v.cat.SourceNames() {
		s := v.st.Tracker.Sources[n]
		if s == nil || s.W() == timeline.None {
			none = append(none, n)
			continue
		}
		if s.W() < ts {
			holders = append(holders, fmt.Sprintf("%s at %s", n, timeline.Format(s.W())))
		}
	}
	sort.Strings(holders)
	if v.g == timeline.None {
		if len(v.cat.Sources) == 0 {
			return fmt.Errorf("%w: nothing is sealed: no source is declared (CREATE SOURCE, then load data and watermarks)", ErrNotSealed)
		}
		return fmt.Errorf("%w: nothing is sealed yet: source(s) %s have sent no watermark", ErrNotSealed, strings.Join(none, ", "))
	}
	all := append(holders, none...)
	return fmt.Errorf("%w: AS OF %s is after the global watermark %s, held back by %s; wait for their watermarks or query AS OF a time at or before %s",
		ErrNotSealed, timeline.Format(ts), timeline.Format(v.g), strings.Join(all, ", "), timeline.Format(v.g))
}

func (x *env) Snapshot(ts int64) mvcc.Reader { return x.e.store.At(ts) }

// EstimateVersions lets the planner size tables (query.Sizer).
func (x *env) EstimateVersions(t *catalog.Table) int64 { return x.e.store.EstimateVersions(t) }

func (x *env) ViewAt(v *catalog.View, ts int64) (int64, error) {
	return x.e.viewAt(v, ts)
}

func (x *env) SystemTable(name string) ([]catalog.Column, [][]types.Value, bool, error) {
	return x.e.systemTable(x.v, name)
}

func (e *Engine) systemTable(v *view, name string) ([]catalog.Column, [][]types.Value, bool, error) {
	switch name {
	case "ttq_watermarks":
		cols := []catalog.Column{
			{Name: "source", Type: types.Varchar}, {Name: "kind", Type: types.Varchar},
			{Name: "watermark", Type: types.Timestamp}, {Name: "max_ts", Type: types.Timestamp},
			{Name: "trails_us", Type: types.BigInt}, {Name: "holds_global", Type: types.Boolean},
			{Name: "applied", Type: types.BigInt}, {Name: "rejected", Type: types.BigInt},
		}
		// trails_us: how far the source's watermark is behind the most
		// advanced source's watermark.
		lead := timeline.None
		for _, s := range v.st.Tracker.Sources {
			if w := s.W(); w > lead {
				lead = w
			}
		}
		var rows [][]types.Value
		for _, n := range v.cat.SourceNames() {
			s := v.st.Tracker.Sources[n]
			row := []types.Value{types.String(n), types.String(v.cat.Sources[n].Watermark), types.NullValue, types.NullValue, types.NullValue, types.Bool(false), types.Int(v.st.Applied[n]), types.NullValue}
			var rej int64
			for _, c := range v.st.Rejects[n] {
				rej += c
			}
			row[7] = types.Int(rej)
			if s != nil {
				if w := s.W(); w != timeline.None {
					row[2] = types.Time(w)
					row[4] = types.Int(lead - w)
				}
				if m := s.MaxTS(); m != timeline.None {
					row[3] = types.Time(m)
				}
				row[5] = types.Bool(s.W() == v.g)
			}
			rows = append(rows, row)
		}
		return cols, rows, true, nil
	case "ttq_rejects":
		cols := []catalog.Column{
			{Name: "id", Type: types.BigInt}, {Name: "source", Type: types.Varchar}, {Name: "table_name", Type: types.Varchar},
			{Name: "reason", Type: types.Varchar}, {Name: "message", Type: types.Varchar}, {Name: "origin", Type: types.Varchar},
			{Name: "record", Type: types.Varchar},
		}
		var rows [][]types.Value
		err := e.Rejects(func(seq uint64, r ingest.Reject) error {
			rows = append(rows, []types.Value{types.Int(int64(seq) + 1), strOrNull(r.Source), strOrNull(r.Table),
				types.String(r.Reason), types.String(r.Message), types.String(r.Origin), types.String(string(r.Record))})
			return nil
		})
		return cols, rows, true, err
	case "ttq_epochs":
		cols := []catalog.Column{
			{Name: "view", Type: types.Varchar}, {Name: "epoch", Type: types.Timestamp},
			{Name: "rows_changed", Type: types.BigInt}, {Name: "duration_us", Type: types.BigInt},
		}
		return cols, e.epochRows(), true, nil
	case "ttq_checkpoints":
		cols := []catalog.Column{
			{Name: "table_name", Type: types.Varchar}, {Name: "checkpoint", Type: types.Timestamp},
			{Name: "has_changes", Type: types.Boolean},
		}
		var rows [][]types.Value
		cat := v.cat
		for _, n := range cat.TableNames() {
			at, changes := e.store.CheckpointList(cat.Tables[n])
			for i := range at {
				rows = append(rows, []types.Value{types.String(n), types.Time(at[i]), types.Bool(changes[i])})
			}
		}
		return cols, rows, true, nil
	}
	if fn, ok := e.extraTable(name); ok {
		cols, rows := fn()
		return cols, rows, true, nil
	}
	return nil, nil, false, nil
}

func strOrNull(s string) types.Value {
	if s == "" {
		return types.NullValue
	}
	return types.String(s)
}

// epochRows lists recent view epochs (views.go).
func (e *Engine) epochRows() [][]types.Value { return e.epochStats() }

func (e *Engine) explain(ctx context.Context, s *query.Explain) (*query.Result, error) {
	if s.View != "" {
		return e.explainView(s.View)
	}
	x := e.env()
	defer x.release()
	if !s.Timestamp {
		return query.RunExplain(ctx, x, s)
	}
	// EXPLAIN TIMESTAMP: the chosen times, G, every source's watermark and
	// which sources hold G back. A time that is not sealed is reported, not
	// failed: this is how a user asks why.
	v := x.v
	var lines []string
	st, err := query.Timestamps(x, s.Select)
	switch {
	case err == nil:
		lines = st.Lines()
	case errors.Is(err, ErrNotSealed) || errors.Is(err, ErrBeforeHorizon):
		lines = append(lines, "cannot answer: "+err.Error(), "global watermark: "+timeline.Format(v.g))
	default:
		return nil, err
	}
	for _, n := range v.cat.SourceNames() {
		src := v.st.Tracker.Sources[n]
		w := timeline.None
		if src != nil {
			w = src.W()
		}
		line := fmt.Sprintf("source %s: watermark %s", n, timeline.Format(w))
		if w == v.g {
			line += ", holds the global watermark back"
			if src != nil && src.Since != timeline.None {
				line += " (its watermark last moved when G was " + timeline.Format(src.Since) + ")"
			}
		}
		lines = append(lines, line)
	}
	if v.horizon > 0 {
		lines = append(lines, "retention horizon: "+timeline.Format(v.horizon))
	}
	rows := make([][]types.Value, len(lines))
	for i, l := range lines {
		rows[i] = []types.Value{types.String(l)}
	}
	asOf := timeline.None
	if st != nil {
		asOf = st.AsOf
	}
	return query.NewResult([]catalog.Column{{Name: "plan", Type: types.Varchar}}, rows, asOf), nil
}

// explainView answers EXPLAIN VIEW name: how the view is maintained.
func (e *Engine) explainView(name string) (*query.Result, error) {
	cat := e.Catalog()
	v, err := cat.View(name)
	if err != nil {
		return nil, err
	}
	d, err := precompute.Analyze(cat, v.Name, v.Query)
	if err != nil {
		return nil, err
	}
	lines := d.Plan(e.viewEpoch(v))
	rows := make([][]types.Value, len(lines))
	for i, l := range lines {
		rows[i] = []types.Value{types.String(l)}
	}
	return query.NewResult([]catalog.Column{{Name: "plan", Type: types.Varchar}}, rows, timeline.None), nil
}
