package query

import (
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	e := newTestEnv(t)
	cases := []struct {
		name, sql string
		want      []string
	}{
		{"all at G", `SELECT * FROM prices`, []string{"P1|120|INR", "P2|55|USD", "P3|NULL|NULL"}},
		{"as of start", `SELECT product_id, price FROM prices AS OF '2026-11-25T10:00:00Z'`, []string{"P1|100", "P2|50"}},
		{"as of system time", `SELECT product_id, price FROM prices AS OF SYSTEM TIME '2026-11-25T10:00:12Z' ORDER BY product_id`, []string{"P1|120", "P2|50", "P3|NULL"}},
		{"as of after delete", `SELECT product_id FROM prices AS OF '2026-11-25T10:00:25Z'`, []string{"P1", "P3"}},
		{"as of micros", `SELECT count(*) FROM prices AS OF 1795600825000000`, []string{"2"}},
		{"as of offset", `SELECT price FROM prices AS OF '2026-11-25T11:00:05+01:00' WHERE product_id = 'P1'`, []string{"100"}},
		{"as of relative", `SELECT price FROM prices AS OF '-35s' WHERE product_id = 'P1'`, []string{"100"}},
		{"ts pseudo column", `SELECT product_id, _ts FROM prices WHERE _ts >= '2026-11-25T10:00:10Z'`, []string{"P1|2026-11-25T10:00:10Z", "P2|2026-11-25T10:00:30Z"}},
		{"null compare is unknown", `SELECT product_id FROM prices WHERE price > 0 OR price <= 0`, []string{"P1", "P2"}},
		{"not null unknown", `SELECT product_id FROM prices WHERE NOT (price > 1000)`, []string{"P1", "P2"}},
		{"is null", `SELECT product_id FROM prices WHERE price IS NULL`, []string{"P3"}},
		{"is not null", `SELECT product_id FROM prices WHERE currency IS NOT NULL AND price != 120`, []string{"P2"}},
		{"in list", `SELECT listing_id FROM listings WHERE category IN ('hats', 'socks')`, []string{"L3"}},
		{"not in with null", `SELECT listing_id FROM listings WHERE category NOT IN ('hats', NULL)`, nil},
		{"not in", `SELECT listing_id FROM listings WHERE category NOT IN ('hats')`, []string{"L1", "L2"}},
		{"between", `SELECT product_id FROM prices WHERE price BETWEEN 50 AND 100`, []string{"P2"}},
		{"not between", `SELECT product_id FROM prices WHERE price NOT BETWEEN 50 AND 100`, []string{"P1"}},
		{"like", `SELECT title FROM listings WHERE title LIKE '%shoe'`, []string{"Red shoe", "Blue shoe"}},
		{"like underscore", `SELECT title FROM listings WHERE title LIKE '_at'`, []string{"Hat"}},
		{"like escape", `SELECT title FROM listings WHERE title LIKE '%100\%'`, []string{"Sock 100%"}},
		{"not like", `SELECT listing_id FROM listings WHERE title NOT LIKE '%shoe%'`, []string{"L3", "L4"}},
		{"is true", `SELECT listing_id FROM listings WHERE active IS FALSE`, []string{"L2"}},
		{"bool column", `SELECT listing_id FROM listings WHERE active AND category = 'shoes'`, []string{"L1"}},
		{"arith", `SELECT qty * 2 + 1, qty / 4, qty % 3, -qty, qty / 0 FROM stock WHERE product_id = 'P1' AND warehouse = 'W1'`, []string{"17|2|2|-8|NULL"}},
		{"double arith", `SELECT price * 2, price - 20 FROM prices WHERE product_id = 'P1'`, []string{"240|100"}},
		{"case coalesce", `SELECT product_id, CASE WHEN price > 100 THEN 'high' WHEN price > 0 THEN 'low' ELSE 'none' END, COALESCE(currency, '?') FROM prices`, []string{"P1|high|INR", "P2|low|USD", "P3|none|?"}},
		{"functions", `SELECT UPPER(title), LENGTH(title), CONCAT(listing_id, '-', title), ROUND(2.567, 2), ABS(-3) FROM listings WHERE listing_id = 'L3'`, []string{"HAT|3|L3-Hat|2.57|3"}},
		{"select without from", `SELECT 1+1, 'a', NULL, 7/2`, []string{"2|a|NULL|3.5"}},
		{"order desc nulls last", `SELECT product_id FROM prices ORDER BY price DESC`, []string{"P1", "P2", "P3"}},
		{"order asc nulls first", `SELECT product_id FROM prices ORDER BY price`, []string{"P3", "P2", "P1"}},
		{"order by alias and position", `SELECT product_id AS id, price p FROM prices ORDER BY 2 DESC, id LIMIT 2`, []string{"P1|120", "P2|55"}},
		{"limit offset", `SELECT listing_id FROM listings ORDER BY listing_id LIMIT 1, 2`, []string{"L2", "L3"}},
		{"limit offset keyword", `SELECT listing_id FROM listings ORDER BY listing_id DESC LIMIT 2 OFFSET 1`, []string{"L3", "L2"}},
		{"order by hidden", `SELECT title FROM listings ORDER BY listing_id DESC LIMIT 1`, []string{"Sock 100%"}},
		{"distinct", `SELECT DISTINCT category FROM listings ORDER BY category`, []string{"NULL", "hats", "shoes"}},
		{"aggregates", `SELECT COUNT(*), COUNT(price), SUM(price), AVG(price), MIN(price), MAX(price), COUNT(DISTINCT currency) FROM prices`, []string{"3|2|175|87.5|55|120|2"}},
		{"aggregates empty", `SELECT COUNT(*), SUM(qty), AVG(qty), MIN(qty), MAX(qty) FROM stock WHERE qty > 100`, []string{"0|NULL|NULL|NULL|NULL"}},
		{"sum bigint", `SELECT product_id, SUM(qty) AS total, COUNT(*) n FROM stock GROUP BY product_id ORDER BY total DESC`, []string{"P1|13|2", "P2|0|1"}},
		{"group by position having", `SELECT category, COUNT(*) FROM listings GROUP BY 1 HAVING COUNT(*) > 1`, []string{"shoes|2"}},
		{"having alias", `SELECT category c, COUNT(*) AS n FROM listings GROUP BY c HAVING n >= 1 ORDER BY n DESC, c`, []string{"shoes|2", "NULL|1", "hats|1"}},
		{"group by expression", `SELECT qty > 4, COUNT(*) FROM stock GROUP BY qty > 4 ORDER BY 1`, []string{"false|1", "true|2"}},
		{"empty group by", `SELECT category, COUNT(*) FROM listings WHERE listing_id = 'X' GROUP BY category`, nil},
		{"inner join", `SELECT l.listing_id, p.price FROM listings l JOIN prices p ON l.product_id = p.product_id ORDER BY l.listing_id`, []string{"L1|120", "L2|55", "L4|NULL"}},
		{"left join", `SELECT l.listing_id, p.price FROM listings l LEFT JOIN prices p ON l.product_id = p.product_id ORDER BY 1`, []string{"L1|120", "L2|55", "L3|NULL", "L4|NULL"}},
		{"left join on filter", `SELECT l.listing_id, p.price FROM listings l LEFT JOIN prices p ON l.product_id = p.product_id AND p.price > 100 ORDER BY 1`, []string{"L1|120", "L2|NULL", "L3|NULL", "L4|NULL"}},
		{"left join where is null", `SELECT l.listing_id FROM listings l LEFT JOIN prices p ON l.product_id = p.product_id WHERE p.product_id IS NULL`, []string{"L3"}},
		{"three tables", `SELECT l.listing_id, p.price, s.warehouse, s.qty FROM listings l JOIN prices p ON p.product_id = l.product_id JOIN stock s ON s.product_id = l.product_id ORDER BY 1, 3`, []string{"L1|120|W1|8", "L1|120|W2|5", "L2|55|W1|0"}},
		{"three tables left", `SELECT l.listing_id, p.currency, s.qty FROM listings l LEFT JOIN prices p ON p.product_id = l.product_id LEFT JOIN stock s ON s.product_id = l.product_id AND s.warehouse = 'W1' ORDER BY 1`, []string{"L1|INR|8", "L2|USD|0", "L3|NULL|NULL", "L4|NULL|NULL"}},
		{"join as of", `SELECT l.listing_id, p.price FROM listings l JOIN prices p ON l.product_id = p.product_id AS OF '2026-11-25T10:00:00Z' WHERE l.category = 'shoes' ORDER BY p.price DESC`, []string{"L1|100", "L2|50"}},
		{"comma join", `SELECT l.listing_id, p.price FROM listings l, prices p WHERE l.product_id = p.product_id AND p.price > 100`, []string{"L1|120"}},
		{"using", `SELECT listing_id, qty FROM listings JOIN stock USING (product_id) WHERE warehouse = 'W2'`, []string{"L1|5"}},
		{"join aggregate", `SELECT l.category, SUM(s.qty) FROM listings l JOIN stock s ON s.product_id = l.product_id GROUP BY l.category`, []string{"shoes|13"}},
		{"self join across time", `SELECT now.product_id, before.price, now.price FROM prices now JOIN prices FOR SYSTEM_TIME AS OF '2026-11-25T10:00:00Z' before ON before.product_id = now.product_id WHERE now.price <> before.price ORDER BY 1`, []string{"P1|100|120", "P2|50|55"}},
		{"string literal with as of", `SELECT listing_id FROM listings WHERE title <> 'x AS OF y' AND listing_id = 'L1'`, []string{"L1"}},
		{"comments", "SELECT /* AS OF '2026' */ product_id -- AS OF 'x'\n FROM prices AS OF '2026-11-25T10:00:00Z' # trailing\n WHERE product_id = 'P1'", []string{"P1"}},
		{"system table", `SELECT source FROM ttq_watermarks WHERE watermark > '2026-11-25T10:00:42Z' ORDER BY watermark DESC`, []string{"inventory", "search"}},
		{"view", `SELECT product_id, price FROM cheap`, []string{"P2|55"}},
		{"view before re-insert", `SELECT product_id, price FROM cheap AS OF '2026-11-25T10:00:25Z'`, nil},
		{"history between", `SELECT product_id, price, _valid_from, _valid_to FROM prices FOR SYSTEM_TIME BETWEEN '2026-11-25T10:00:00Z' AND '2026-11-25T10:00:30Z' WHERE product_id IN ('P1', 'P2') ORDER BY product_id, _valid_from`,
			[]string{"P1|100|2026-11-25T10:00:00Z|2026-11-25T10:00:10Z", "P1|120|2026-11-25T10:00:10Z|NULL", "P2|50|2026-11-25T10:00:00Z|2026-11-25T10:00:20Z", "P2|55|2026-11-25T10:00:30Z|NULL"}},
		{"history excludes ended", `SELECT product_id, price FROM prices FOR SYSTEM_TIME FROM '2026-11-25T10:00:21Z' TO '2026-11-25T10:00:25Z' ORDER BY 1`, []string{"P1|120", "P3|NULL"}},
		{"history all", `SELECT COUNT(*) FROM prices FOR SYSTEM_TIME ALL`, []string{"5"}},
		{"history star", `SELECT * FROM stock FOR SYSTEM_TIME ALL WHERE product_id = 'P1' AND warehouse = 'W1' ORDER BY _valid_from`,
			[]string{"P1|W1|10|2026-11-25T10:00:00Z|2026-11-25T10:00:10Z", "P1|W1|8|2026-11-25T10:00:10Z|NULL"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, res := e.query(t, c.sql)
			defer res.Release()
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("%s\ngot:\n%s\nwant:\n%s", c.sql, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}
