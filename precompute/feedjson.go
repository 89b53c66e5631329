package precompute

import (
	"encoding/json"

	"ttq/catalog"
	"ttq/timeline"
)

// feedRecord is one NDJSON line of a change feed.
type feedRecord struct {
	Op    string         `json:"op"`    // upsert, delete or progress
	Epoch string         `json:"epoch"` // the boundary, RFC 3339
	Key   map[string]any `json:"key,omitempty"`
	Row   map[string]any `json:"row,omitempty"`
}

// EncodeChange renders c as one NDJSON line (with its newline): upserts
// carry the whole row and its key, deletes the key, progress records only
// the epoch they complete. Values are JSON numbers, strings, booleans or
// null; times are RFC 3339 strings.
func EncodeChange(v *catalog.View, c Change) ([]byte, error) {
	rec := feedRecord{Op: c.Kind, Epoch: timeline.Format(c.Epoch)}
	if c.Key != nil {
		rec.Key = map[string]any{}
		for i, k := range v.PK {
			if i < len(c.Key) {
				rec.Key[v.Columns[k].Name] = c.Key[i]
			}
		}
	}
	if c.Row != nil {
		rec.Row = map[string]any{}
		for i, col := range v.Columns {
			rec.Row[col.Name] = c.Row[i]
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
