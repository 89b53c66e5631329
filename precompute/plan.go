package precompute

import (
	"fmt"
	"strings"
	"time"
)

// Plan describes how the view is maintained, one line per step, for
// EXPLAIN VIEW: its key, the table that drives it, how a change of each
// joined table finds the view rows it affects, and what is recomputed.
func (d *Def) Plan(epoch int64) []string {
	col := func(c ColRef) string {
		r := d.Rels[c.Rel]
		return r.Alias + "." + r.Table.Columns[c.Col].Name
	}
	var key []string
	for _, k := range d.Key {
		key = append(key, d.Columns[k].Name)
	}
	lines := []string{
		fmt.Sprintf("view %s: key (%s), epoch %s", d.Name, strings.Join(key, ", "), time.Duration(epoch)*time.Microsecond),
	}
	seen := map[uint32]bool{}
	selfJoin := false
	for _, r := range d.Rels {
		if seen[r.Table.ID] {
			selfJoin = true
		}
		seen[r.Table.ID] = true
	}
	full := selfJoin || (!d.Grouped && len(d.Key) == 0)
	switch {
	case selfJoin:
		lines = append(lines, "maintenance: full recompute at each boundary with changes (a table appears twice), writing only the differences")
	case full:
		lines = append(lines, "maintenance: full recompute at each boundary with changes (an aggregate without GROUP BY), writing only the differences")
	default:
		lines = append(lines, "maintenance: incremental; changed base rows of (previous boundary, B] come from the change log (a version scan after a restart)")
	}
	root := d.Rels[0]
	lines = append(lines, fmt.Sprintf("  %s %s: driving table; a changed row re-derives the view rows of its key", root.Table.Name, root.Alias))
	for i, r := range d.Rels[1:] {
		join := "JOIN"
		if r.Left {
			join = "LEFT JOIN"
		}
		var on, how []string
		for _, e := range r.Edges {
			on = append(on, fmt.Sprintf("%s = %s", col(ColRef{Rel: i + 1, Col: e.Col}), col(ColRef{Rel: e.Other, Col: e.OtherCol})))
			other := d.Rels[e.Other].Table
			if len(other.PK) > 0 && other.PK[0] == e.OtherCol {
				how = append(how, "key-prefix reads of "+d.Rels[e.Other].Alias)
			} else {
				how = append(how, "an in-memory index on "+col(ColRef{Rel: e.Other, Col: e.OtherCol}))
			}
		}
		lines = append(lines, fmt.Sprintf("  %s %s %s ON %s: a changed row reaches its view rows through %s", join, r.Table.Name, r.Alias,
			strings.Join(on, " AND "), strings.Join(how, " and ")))
	}
	if d.Grouped {
		var g []string
		for _, c := range d.Group {
			g = append(g, col(c))
		}
		lines = append(lines, fmt.Sprintf("  GROUP BY %s: the groups of the affected rows, before and after, are recomputed whole (MIN/MAX stay right after deletes)", strings.Join(g, ", ")))
	}
	lines = append(lines, "  writes: upserts and deletes of the view rows that changed, as versions at B; progress committed after them")
	return lines
}
