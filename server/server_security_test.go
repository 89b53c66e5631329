package server

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

const (
	adminToken = "adm-5b2f0c7e1d-SECRET"
	readToken  = "rd-9a41e6c3f2-SECRET"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// as runs a request with the given Authorization header value ("" for none).
func (h *harness) as(auth, method, path, body string) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.ts.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// TestTokenRoles: the admin token may do everything; the read token may
// read (SELECT, SHOW, DESCRIBE, EXPLAIN, watermarks) and gets 403 for DDL,
// however it is written, and for ingest, which then changes nothing.
func TestTokenRoles(t *testing.T) {
	logs := &syncBuffer{}
	h := seeded(t, Config{AuthToken: adminToken, ReadToken: readToken, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	admin, read := "Bearer "+adminToken, "bearer "+readToken

	reads := []string{
		"SELECT product_id, price FROM prices ORDER BY product_id",
		"  select count(*) from prices AS OF '2026-11-25T10:00:05Z'",
		"SHOW TABLES",
		"SHOW SOURCES",
		"DESCRIBE prices",
		"EXPLAIN SELECT * FROM prices",
		"SELECT * FROM ttq_watermarks",
		"SELECT '; DROP TABLE prices; --' AS s",
	}
	for _, q := range reads {
		for _, tok := range []string{admin, read} {
			if code, b := h.as(tok, "POST", "/v1/sql", q); code != 200 {
				t.Errorf("%s with %s: %d %s", q, tok[:9], code, b)
			}
		}
	}
	writes := []string{
		"CREATE SOURCE s2",
		"create table t2 (k BIGINT PRIMARY KEY) SOURCE pricing",
		"/* a comment first */ CREATE SOURCE s3",
		"-- a comment line\nCREATE SOURCE s6",
		"(CREATE SOURCE s4)",
		"CREATE VIEW v AS SELECT product_id FROM prices",
		"DROP TABLE stock",
		"DROP SOURCE inventory",
		// Not statements ttq has, but of no kind known to read: refused to
		// the read token rather than left to the engine.
		"TRUNCATE prices",
		"SET GLOBAL x = 1",
		"INSERT INTO prices VALUES ('P9', 1)",
	}
	for _, q := range writes {
		code, b := h.as(read, "POST", "/v1/sql", q)
		if code == http.StatusBadRequest && strings.Contains(string(b), "syntax_error") {
			continue // never reaches the catalog either way
		}
		wantError(t, "read token: "+q, code, b, http.StatusForbidden, "forbidden", "only read")
	}
	code, b := h.as(read, "GET", "/v1/watermarks", "")
	if code != 200 {
		t.Errorf("watermarks with the read token: %d %s", code, b)
	}
	code, b = h.as(read, "POST", "/v1/ingest", `{"source":"pricing","table":"prices","op":"upsert","ts":"2026-11-25T10:00:09Z","data":{"product_id":"P9","price":1}}`+"\n")
	wantError(t, "ingest with the read token", code, b, http.StatusForbidden, "forbidden", "admin token")

	// Nothing the read token tried changed the store.
	if r := h.mustSQL("SHOW TABLES"); len(r.Rows) != 2 {
		t.Errorf("tables after the read token's DDL: %v", r.Rows)
	}
	if r := h.mustSQL("SHOW SOURCES"); len(r.Rows) != 2 {
		t.Errorf("sources after the read token's DDL: %v", r.Rows)
	}
	if r := h.mustSQL("SELECT COUNT(*) FROM ttq_rejects"); r.Rows[0][0].(interface{ String() string }).String() != "0" {
		t.Errorf("the refused ingest left rejects: %v", r.Rows)
	}
	// The admin token still writes.
	if code, b := h.as(admin, "POST", "/v1/sql", "CREATE SOURCE s5"); code != 200 {
		t.Errorf("admin DDL: %d %s", code, b)
	}

	// No token, a wrong token, a token of another length, a prefix of the
	// real one, the other scheme.
	for _, auth := range []string{"", "Bearer wrong-WRONGTOKEN", "Bearer " + adminToken + "x", "Bearer " + adminToken[:8], "Basic " + adminToken, adminToken} {
		code, b := h.as(auth, "POST", "/v1/sql", "SHOW TABLES")
		if auth == "" || !strings.HasPrefix(auth, "Bearer ") {
			wantError(t, "auth "+auth, code, b, http.StatusUnauthorized, "unauthorized")
		} else {
			wantError(t, "auth "+auth, code, b, http.StatusForbidden, "forbidden", "not valid")
		}
	}
	// Health and metrics stay open; unknown /v1 routes need a token first.
	if code, _ := h.as("", "GET", "/healthz", ""); code != 200 {
		t.Errorf("healthz without a token: %d", code)
	}
	if code, _ := h.as("", "GET", "/v1/nope", ""); code != http.StatusUnauthorized {
		t.Errorf("unknown /v1 route without a token: %d, want 401", code)
	}

	// The refusals were logged, without any token.
	out := logs.String()
	if !strings.Contains(out, "read-only token refused") || !strings.Contains(out, "not valid") {
		t.Errorf("refusals not logged:\n%s", out)
	}
	for _, secret := range []string{adminToken, readToken, "WRONGTOKEN", adminToken[:8]} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains a token (%q):\n%s", secret, out)
		}
	}
}

func TestTokenCheck(t *testing.T) {
	tk := newTokens("admin", "read")
	for tok, want := range map[string]role{"admin": roleAdmin, "read": roleRead, "": roleNone, "Admin": roleNone, "admin ": roleNone, "rea": roleNone} {
		if got := tk.check(tok); got != want {
			t.Errorf("check(%q) = %d, want %d", tok, got, want)
		}
	}
	// Unset tokens match nothing, not even the empty token.
	if got := newTokens("admin", "").check(""); got != roleNone {
		t.Errorf("empty token against an unset read token: %d", got)
	}
}

func TestReadTokenNeedsAdminToken(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New with only a read token did not panic")
		}
	}()
	New(nil, Config{ReadToken: "r"})
}
