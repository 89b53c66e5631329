package server

import (
	"encoding/json"
	"testing"
)

func TestHeldRowsLimit(t *testing.T) {
	h := seeded(t, Config{MaxHeldRows: 1})
	code, body, _ := h.sql("SELECT product_id, COUNT(*) FROM prices GROUP BY product_id", "")
	var e errResp
	_ = json.Unmarshal(body, &e)
	if code != 413 || e.Error.Code != "query_too_large" {
		t.Fatalf("GROUP BY over the held-rows bound: %d %s", code, body)
	}
	if code, body, _ := h.sql("SELECT product_id FROM prices WHERE product_id = 'P1'", ""); code != 200 {
		t.Fatalf("a lookup under the bound: %d %s", code, body)
	}
}
