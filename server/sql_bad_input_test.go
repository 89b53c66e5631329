package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestBadSQL: every bad statement is answered with one clear error of the
// right kind, and none changes the store.
func TestBadSQL(t *testing.T) {
	h := seeded(t, Config{})
	cases := []struct {
		name, sql string
		status    int
		code, msg string
	}{
		{"injection as a second statement", "SELECT * FROM prices WHERE currency = ''; DROP TABLE prices; --'", 400, "one_statement", "one statement"},
		{"two statements", "SELECT 1; DROP TABLE prices", 400, "one_statement", ""},
		{"unterminated single quote", "SELECT 'abc", 400, "syntax_error", "unterminated"},
		{"unterminated double quote", `SELECT * FROM prices WHERE currency = "EUR`, 400, "syntax_error", "unterminated"},
		{"unterminated after an escaped quote", "SELECT * FROM prices WHERE currency = 'it''s", 400, "syntax_error", "unterminated"},
		{"unterminated comment", "SELECT 1 /* open", 400, "syntax_error", ""},
		{"AS OF words", "SELECT * FROM prices AS OF 'yesterday'", 400, "bad_time", "RFC 3339"},
		{"AS OF nonsense", "SELECT * FROM prices AS OF 'x'", 400, "bad_time", ""},
		{"AS OF impossible date", "SELECT * FROM prices AS OF '2026-13-45T99:00:00Z'", 400, "bad_time", ""},
		{"AS OF negative number", "SELECT * FROM prices AS OF -5", 400, "bad_time", "'-30s'"},
		{"AS OF beyond int64", "SELECT * FROM prices AS OF 99999999999999999999", 400, "bad_time", "microsecond"},
		{"AS OF huge duration", "SELECT * FROM prices AS OF '-9999999999999999h'", 400, "bad_time", ""},
		{"AS OF NULL", "SELECT * FROM prices AS OF NULL", 400, "syntax_error", "time literal"},
		{"AS OF expression", "SELECT * FROM prices AS OF 1+1", 400, "syntax_error", ""},
		{"AS OF nothing", "SELECT * FROM prices AS OF", 400, "syntax_error", "time literal"},
		{"AS OF twice", "SELECT * FROM prices AS OF AS OF 1", 400, "syntax_error", ""},
		{"AS OF the far future", "SELECT * FROM prices AS OF '9999-12-31T23:59:59Z'", 409, "not_sealed", "global watermark"},
		{"history range reversed", "SELECT * FROM prices FOR SYSTEM_TIME BETWEEN '2026-11-25T10:00:04Z' AND '2026-11-25T10:00:01Z'", 400, "bad_time", "swap"},
		{"unknown column", "SELECT nope FROM prices", 400, "unknown_column", "nope"},
		{"unknown column in WHERE", "SELECT product_id FROM prices WHERE nope = 1", 400, "unknown_column", "WHERE"},
		{"unknown column in ORDER BY", "SELECT product_id FROM prices ORDER BY nope", 400, "unknown_column", "ORDER BY"},
		{"unknown column in GROUP BY", "SELECT COUNT(*) FROM prices GROUP BY nope", 400, "unknown_column", "GROUP BY"},
		{"unknown column in ON", "SELECT p.product_id FROM prices p JOIN stock s ON p.nope = s.product_id", 400, "unknown_column", "ON"},
		{"unknown alias", "SELECT x.product_id FROM prices p", 400, "unknown_column", "no table or alias x"},
		{"unknown table", "SELECT * FROM nope", 404, "unknown_table", "SHOW TABLES"},
		{"string compared with BIGINT", "SELECT * FROM prices WHERE qty = 'abc'", 400, "type_mismatch", ""},
		{"negative LIMIT", "SELECT * FROM prices LIMIT -1", 400, "syntax_error", "non-negative"},
		{"LIMIT beyond int64", "SELECT * FROM prices LIMIT 99999999999999999999", 400, "syntax_error", "non-negative"},
		{"100,000 nested parentheses", "SELECT " + strings.Repeat("(", 100_000) + "1" + strings.Repeat(")", 100_000) + " FROM prices", 400, "syntax_error", "nesting"},
		{"DDL of an unknown type", "CREATE TABLE t (k BLOB PRIMARY KEY) SOURCE pricing", 400, "", ""},
		{"DROP of an unknown table", "DROP TABLE nope", 404, "unknown_table", ""},
		{"empty", "   ", 400, "empty", ""},
		{"only a comment", "-- nothing", 400, "empty", ""},
		{"NUL bytes", "SELECT \x00 FROM prices", 400, "syntax_error", ""},
		{"an empty MySQL-specific comment", "/*!*/", 400, "unsupported", "MySQL-specific"},
		{"a point lookup with an empty MySQL-specific comment", "SELECT price FROM prices WHERE product_id = 'P1' /*!*/", 400, "unsupported", "MySQL-specific"},
	}
	for _, c := range cases {
		code, b, _ := h.sql(c.sql, "")
		if c.code == "" {
			if code < 400 || code >= 500 {
				t.Errorf("%s: status %d %s, want a 4xx", c.name, code, b)
			}
			continue
		}
		wantError(t, c.name, code, b, c.status, c.code, c.msg)
		var e errResp
		json.Unmarshal(b, &e)
		if strings.Contains(e.Error.Message, "\n") {
			t.Errorf("%s: the message is not one line: %q", c.name, e.Error.Message)
		}
	}
	if r := h.mustSQL("SELECT COUNT(*) FROM prices"); fmt.Sprint(r.Rows) != "[[3]]" {
		t.Errorf("prices after the bad statements: %v", r.Rows)
	}
	// A request larger than --max-sql-body.
	code, b, _ := h.sql("SELECT '"+strings.Repeat("x", DefaultMaxSQLBytes)+"'", "")
	wantError(t, "2 MiB statement", code, b, http.StatusRequestEntityTooLarge, "body_too_large")
}

// TestStrangeButValidSQL: inputs that look hostile but are valid SQL are
// answered as data.
func TestStrangeButValidSQL(t *testing.T) {
	h := seeded(t, Config{})
	if code, b := h.ingest(up(`{"product_id":"Q1","currency":"'; DROP TABLE prices; --"}`)+"\n"+`{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:07Z"}`+"\n"+`{"source":"inventory","op":"watermark","ts":"2026-11-25T10:00:07Z"}`+"\n", ""); code != 200 {
		t.Fatal(string(b))
	}
	for _, c := range []struct{ sql, want string }{
		// An injection string inside a literal is just a string.
		{"SELECT product_id FROM prices WHERE currency = '''; DROP TABLE prices; --'", `[["Q1"]]`},
		{"SELECT '; DROP TABLE prices; --' AS s", `[["; DROP TABLE prices; --"]]`},
		{`SELECT product_id FROM prices WHERE currency = '\'; DROP TABLE prices; --'`, `[["Q1"]]`},
		{"SELECT COUNT(*) FROM prices WHERE product_id = 'P1' OR '1'='1'", `[[4]]`},
		{"SELECT COUNT(*) FROM prices", `[[4]]`},
		// Deep but linear expressions evaluate.
		{"SELECT product_id FROM prices WHERE " + strings.Repeat("NOT ", 100_000) + "product_id = 'P1'", `[["P1"]]`},
		{"SELECT COUNT(*) FROM prices WHERE " + orChain(20_000), `[[3]]`},
		// Odd numbers.
		{"SELECT 99999999999999999999999 AS n", `[[1e+23]]`},
		{"SELECT 1/0 AS n", `[[null]]`},
		// A LIKE pattern that backtracks in naive matchers.
		{"SELECT COUNT(*) FROM prices WHERE currency LIKE '" + strings.Repeat("%a", 30) + "%b'", `[[0]]`},
		// AS OF long before the first update: nothing existed then.
		{"SELECT COUNT(*) FROM prices AS OF '-1000000h'", `[[0]]`},
	} {
		start := time.Now()
		r := h.mustSQL(c.sql)
		got, _ := json.Marshal(r.Rows)
		if string(got) != c.want {
			t.Errorf("%.80s: %s, want %s", c.sql, got, c.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%.80s took %s", c.sql, d)
		}
	}
}

func orChain(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("product_id = 'P%d'", i)
	}
	return strings.Join(parts, " OR ")
}

// TestLongINList: IN lists of 10,000 (and 100,000) items answer correctly
// and fast.
func TestLongINList(t *testing.T) {
	h := seeded(t, Config{})
	for _, n := range []int{10_000, 100_000} {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf("'P%d'", i)
		}
		start := time.Now()
		r := h.mustSQL("SELECT COUNT(*) FROM prices WHERE product_id IN (" + strings.Join(items, ",") + ")")
		d := time.Since(start)
		if fmt.Sprint(r.Rows) != "[[3]]" {
			t.Errorf("IN of %d: %v, want 3", n, r.Rows)
		}
		t.Logf("IN list of %d items: %s", n, d)
		if d > 5*time.Second {
			t.Errorf("IN list of %d items took %s", n, d)
		}
	}
}

// TestCrossJoinLimits joins a 1,000-row table with itself four times (10^12
// rows). Joins stream (only each right side, a base table, is held): the
// rows limit stops a plain SELECT or a DISTINCT at once, the time limit
// stops COUNT(*). ORDER BY and GROUP BY hold every row or group they have
// read until the time limit stops them: the test measures the live heap
// that took (docs/BAD_INPUT.md: no row or memory bound applies there yet).
func TestCrossJoinLimits(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := seeded(t, Config{MaxResultRows: 10_000, QueryTimeout: timeout})
	var body strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&body, `{"source":"inventory","table":"stock","op":"upsert","ts":"2026-11-25T10:00:11Z","data":{"product_id":"X%d","warehouse":"W","qty":%d}}`+"\n", i, i)
	}
	body.WriteString(`{"source":"inventory","op":"watermark","ts":"2026-11-25T10:00:12Z"}` + "\n" + `{"source":"pricing","op":"watermark","ts":"2026-11-25T10:00:12Z"}` + "\n")
	if code, b := h.ingest(body.String(), ""); code != 200 {
		t.Fatal(string(b))
	}
	const cross = " FROM stock a, stock b, stock c, stock d"
	for _, c := range []struct {
		name, sql string
		status    int
		code      string
	}{
		{"rows", "SELECT a.qty, b.qty, c.qty, d.qty" + cross, 413, "result_too_large"},
		{"count", "SELECT COUNT(*)" + cross, 504, "query_timeout"},
		{"count, CROSS JOIN spelling", "SELECT COUNT(*) FROM stock a CROSS JOIN stock b CROSS JOIN stock c CROSS JOIN stock d", 504, "query_timeout"},
		{"count, ON 1=1", "SELECT COUNT(*) FROM stock a JOIN stock b ON 1=1 JOIN stock c ON 1=1 JOIN stock d ON 1=1", 504, "query_timeout"},
		{"order by", "SELECT a.qty, b.qty" + cross + " ORDER BY a.qty DESC LIMIT 5", 504, "query_timeout"},
		{"group by", "SELECT a.qty, b.qty, c.qty, COUNT(*)" + cross + " GROUP BY a.qty, b.qty, c.qty LIMIT 5", 504, "query_timeout"},
		{"distinct", "SELECT DISTINCT a.qty, b.qty, c.qty, d.qty" + cross, 413, "result_too_large"},
	} {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		stop := make(chan struct{})
		peak := heapPeak(stop)
		start := time.Now()
		code, b, _ := h.sql(c.sql, "")
		d := time.Since(start)
		close(stop)
		grew := int64(<-peak) - int64(before.HeapAlloc)
		wantError(t, c.name, code, b, c.status, c.code)
		t.Logf("%-28s %d %s after %s; heap grew by up to %d MiB", c.name, code, c.code, d.Round(time.Millisecond), grew>>20)
		if d > timeout+3*time.Second {
			t.Errorf("%s: stopped only after %s", c.name, d)
		}
	}
}
