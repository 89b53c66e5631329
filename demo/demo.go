// Package demo holds the seeded shop scenario that `ttq demo` walks through
// and the README's first command loads: three sources on their own clocks.
package demo

import (
	_ "embed"
)

// Schema declares the sources and tables of the shop.
//
//go:embed schema.sql
var Schema string

// Updates is the shop's update stream as NDJSON envelopes.
//
//go:embed updates.ndjson
var Updates string

// Step is one stop of the walk: what it shows, and the SQL that shows it.
type Step struct {
	Say string
	SQL string
}

// Walk is the scripted tour `ttq demo` prints.
var Walk = []Step{
	{"Each source promises completeness up to its watermark; the global watermark G is their minimum.",
		"SELECT source, watermark, holds_global FROM ttq_watermarks"},
	{"Listings with their price AS OF 10:00:05, exactly as the shop looked at that instant.",
		"SELECT l.listing_id, l.title, p.price FROM listings l LEFT JOIN prices p ON l.product_id = p.product_id AS OF '2026-11-25T10:00:05Z' ORDER BY l.listing_id"},
	{"The same question a little earlier: the sale title and the 99.0 price had not happened yet.",
		"SELECT l.listing_id, l.title, p.price FROM listings l LEFT JOIN prices p ON l.product_id = p.product_id AS OF '2026-11-25T10:00:02Z' ORDER BY l.listing_id"},
	{"A primary-key lookup is a direct read at the snapshot; _ts is the commit time of the visible version.",
		"SELECT product_id, price, _ts FROM prices AS OF '2026-11-25T10:00:04Z' WHERE product_id = 'P1'"},
	{"Stock per product, three sources joined at one instant.",
		"SELECT l.title, SUM(s.qty) AS in_stock, p.price FROM listings l JOIN prices p ON l.product_id = p.product_id JOIN stock s ON s.product_id = l.product_id AS OF '2026-11-25T10:00:07Z' GROUP BY l.title, p.price ORDER BY l.title"},
	{"Without AS OF a query reads at G, the newest sealed instant.",
		"SELECT category, COUNT(*) AS listings, AVG(p.price) AS avg_price FROM listings l JOIN prices p ON l.product_id = p.product_id WHERE l.active GROUP BY category ORDER BY category"},
	{"A precomputed view (the search index's document) is maintained once per epoch; AS OF reads the last epoch at or before it.",
		"SELECT * FROM listing_docs AS OF '2026-11-25T10:00:05.5Z' ORDER BY listing_id"},
	{"At G the index document shows the later price; a search indexer follows these changes with: go run ./cmd/ttq changes --data ttq-data listing_docs",
		"SELECT listing_id, price FROM listing_docs WHERE listing_id = 'L2'"},
	{"Nothing is silently dropped: late and malformed records are kept with their reason.",
		"SELECT reason, origin, message FROM ttq_rejects ORDER BY id"},
}
