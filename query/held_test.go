package query

import (
	"context"
	"errors"
	"testing"
)

func TestMaxHeldRowsBoundsMemory(t *testing.T) {
	e := newTestEnv(t)
	for _, sql := range []string{
		"SELECT product_id FROM prices ORDER BY price",
		"SELECT currency, COUNT(*) FROM prices GROUP BY currency, product_id",
		"SELECT DISTINCT product_id FROM prices",
		"SELECT l.title, s.qty FROM listings l JOIN stock s ON s.warehouse = l.product_id",
	} {
		st, err := ParseSelect(sql)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(context.Background(), e, st, Options{MaxHeldRows: 1}); !errors.Is(err, ErrTooMuchHeld) {
			t.Errorf("%s with 1 held row allowed: %v, want ErrTooMuchHeld", sql, err)
		}
		if _, err := Run(context.Background(), e, st, Options{MaxHeldRows: 100}); err != nil {
			t.Errorf("%s with 100 held rows allowed: %v", sql, err)
		}
	}
	// Streaming plans hold nothing, whatever the bound.
	st, _ := ParseSelect("SELECT * FROM listings WHERE active")
	if _, err := Run(context.Background(), e, st, Options{MaxHeldRows: 1}); err != nil {
		t.Errorf("a streaming scan hit the held-rows bound: %v", err)
	}
}
