package query

import (
	"context"
	"slices"
	"strings"
	"testing"

	"ttq/catalog"
)

// sizedEnv is the test environment with made-up table sizes.
type sizedEnv struct {
	*testEnv
	versions map[string]int64
}

func (e *sizedEnv) EstimateVersions(t *catalog.Table) int64 { return e.versions[t.Name] }

// TestJoinChoice checks when a join over a whole-table scan reads the right
// table by key per row and when it hashes one scan of it, and that both
// give the same rows.
func TestJoinChoice(t *testing.T) {
	base := newTestEnv(t)
	const q = "SELECT l.listing_id, p.price FROM listings l JOIN prices p ON p.product_id = l.product_id"
	for _, tc := range []struct {
		name     string
		sql      string
		versions map[string]int64 // nil: no sizes known
		maxHeld  int64
		want     string // the join EXPLAIN names
	}{
		{"no sizes", q, nil, 0, "IndexJoin"},
		{"large, comparable tables", q, map[string]int64{"listings": 300_000, "prices": 500_000}, 0, "HashJoin"},
		{"right table over twice the left", q, map[string]int64{"listings": 300_000, "prices": 700_000}, 0, "IndexJoin"},
		{"small left table", q, map[string]int64{"listings": 40_000, "prices": 50_000}, 0, "IndexJoin"},
		{"right beyond the held-rows bound", q, map[string]int64{"listings": 300_000, "prices": 500_000}, 100_000, "IndexJoin"},
		{"left read by key", q + " WHERE l.listing_id = 'L1'", map[string]int64{"listings": 300_000, "prices": 300_000}, 0, "IndexJoin"},
		{"filtered left scan", q + " WHERE l.active = true", map[string]int64{"listings": 300_000, "prices": 300_000}, 0, "HashJoin"},
		{"left join", "SELECT l.listing_id, p.price FROM listings l LEFT JOIN prices p ON p.product_id = l.product_id", map[string]int64{"listings": 300_000, "prices": 300_000}, 0, "HashJoin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var env Env = base
			if tc.versions != nil {
				env = &sizedEnv{base, tc.versions}
			}
			st, err := Parse(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			sel := st.(*Select)
			pl, err := buildPlan(env.Catalog(), env, sel, tc.maxHeld)
			if err != nil {
				t.Fatal(err)
			}
			x := &explainer{}
			pl.root.explain(x, 0)
			plan := strings.Join(x.lines, "\n")
			if !strings.Contains(plan, tc.want) {
				t.Errorf("plan:\n%s\nwant a %s", plan, tc.want)
			}
			// Same rows whichever join runs.
			got := runRows(t, env, tc.sql, tc.maxHeld)
			want := runRows(t, base, tc.sql, 0)
			if !slices.Equal(got, want) {
				t.Errorf("rows %v, want %v", got, want)
			}
			if len(want) == 0 {
				t.Fatal("no rows: the comparison proves nothing")
			}
		})
	}
}

func runRows(t *testing.T, env Env, sql string, maxHeld int64) []string {
	t.Helper()
	st, err := Parse(sql + " ORDER BY l.listing_id")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), env, st.(*Select), Options{MaxHeldRows: maxHeld})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	var out []string
	for _, r := range res.Rows() {
		var s []string
		for _, v := range r {
			s = append(s, v.String())
		}
		out = append(out, strings.Join(s, "|"))
	}
	return out
}
