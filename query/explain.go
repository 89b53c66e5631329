package query

import (
	"context"
	"fmt"
	"strings"

	"ttq/catalog"
	"ttq/timeline"
	"ttq/types"
)

// explainer collects the lines of a plan.
type explainer struct {
	lines []string
}

func (e *explainer) line(depth int, format string, args ...any) {
	e.lines = append(e.lines, strings.Repeat("  ", depth)+fmt.Sprintf(format, args...))
}

// planColumns is the schema of EXPLAIN's result.
var planColumns = []catalog.Column{{Name: "plan", Type: types.Varchar}}

// RunExplain returns the plan of e.Select as one VARCHAR column "plan", one
// row per line; EXPLAIN TIMESTAMP gives the times the statement reads.
func RunExplain(ctx context.Context, env Env, e *Explain) (res *Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("%w: explaining: %v (please report this)", ErrInternal, r)
		}
	}()
	if e.Timestamp {
		ts, err := Timestamps(env, e.Select)
		if err != nil {
			return nil, err
		}
		return NewResult(planColumns, rowsOf(ts.Lines()), ts.AsOf), nil
	}
	pl, err := buildPlan(env.Catalog(), env, e.Select, 0)
	if err != nil {
		return nil, err
	}
	x := &explainer{}
	x.line(0, "as of %s (global watermark %s)", timeline.Format(pl.stmtTime), timeline.Format(pl.g))
	for _, n := range pl.notes {
		x.line(0, "note: %s", n)
	}
	pl.root.explain(x, 0)
	return NewResult(planColumns, rowsOf(x.lines), pl.asOf), nil
}

func rowsOf(lines []string) [][]types.Value {
	rows := make([][]types.Value, len(lines))
	for i, l := range lines {
		rows[i] = []types.Value{types.String(l)}
	}
	return rows
}

// TableTime is the time one FROM item is read at.
type TableTime struct {
	Alias string
	Name  string
	Kind  string // "table", "view", "history", "system"
	// At is the snapshot read (a view's epoch boundary); for history the end
	// of the range.
	At int64
	// Asked is the instant asked for a view; From starts a history range.
	Asked, From int64
}

// StatementTimes says which times a SELECT reads, for EXPLAIN TIMESTAMP.
type StatementTimes struct {
	AsOf      int64 // the statement's effective time
	Watermark int64 // the global watermark G
	Tables    []TableTime
}

// Timestamps resolves the times s would read without running it.
func Timestamps(env Env, s *Select) (*StatementTimes, error) {
	pl, err := buildPlan(env.Catalog(), env, s, 0)
	if err != nil {
		return nil, err
	}
	out := &StatementTimes{AsOf: pl.stmtTime, Watermark: pl.g}
	for _, sc := range pl.scans {
		t := TableTime{Alias: sc.alias, Name: sc.name, At: sc.ts, Asked: sc.ts, From: sc.from}
		switch sc.kind {
		case srcTable:
			t.Kind = "table"
		case srcView:
			t.Kind, t.Asked = "view", sc.asked
		case srcHistory:
			t.Kind = "history"
		case srcSystem:
			t.Kind, t.At, t.Asked = "system", timeline.None, timeline.None
		default:
			continue
		}
		out.Tables = append(out.Tables, t)
	}
	return out, nil
}

// Lines renders the times one per line.
func (st *StatementTimes) Lines() []string {
	lines := []string{
		"as of: " + timeline.Format(st.AsOf),
		"global watermark: " + timeline.Format(st.Watermark),
	}
	for _, t := range st.Tables {
		switch t.Kind {
		case "view":
			lines = append(lines, fmt.Sprintf("%s (view %s): epoch %s for %s", t.Alias, t.Name, timeline.Format(t.At), timeline.Format(t.Asked)))
		case "history":
			lines = append(lines, fmt.Sprintf("%s (%s): history [%s, %s]", t.Alias, t.Name, timeline.Format(t.From), timeline.Format(t.At)))
		case "system":
			lines = append(lines, fmt.Sprintf("%s (%s): system table, current state", t.Alias, t.Name))
		default:
			lines = append(lines, fmt.Sprintf("%s (%s): %s", t.Alias, t.Name, timeline.Format(t.At)))
		}
	}
	return lines
}
