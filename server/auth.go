package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// role is what a request's token allows.
type role int

const (
	// roleNone: no valid token.
	roleNone role = iota
	// roleRead may run SELECT, SHOW, DESCRIBE and EXPLAIN and read the
	// watermarks; no DDL, no ingest.
	roleRead
	// roleAdmin may do everything.
	roleAdmin
)

type roleKey struct{}

func roleOf(r *http.Request) role {
	ro, _ := r.Context().Value(roleKey{}).(role)
	return ro
}

// tokens holds the digests of the configured tokens, so that comparing
// them takes the same time whatever the length or content of the token
// presented.
type tokens struct {
	admin, read [sha256.Size]byte
	hasAdmin    bool
	hasRead     bool
}

func newTokens(admin, read string) tokens {
	t := tokens{hasAdmin: admin != "", hasRead: read != ""}
	if t.hasAdmin {
		t.admin = sha256.Sum256([]byte(admin))
	}
	if t.hasRead {
		t.read = sha256.Sum256([]byte(read))
	}
	return t
}

// check returns the role of a presented token. Both digests are always
// compared, in constant time.
func (t tokens) check(presented string) role {
	d := sha256.Sum256([]byte(presented))
	isAdmin := subtle.ConstantTimeCompare(d[:], t.admin[:]) & boolInt(t.hasAdmin)
	isRead := subtle.ConstantTimeCompare(d[:], t.read[:]) & boolInt(t.hasRead)
	switch {
	case isAdmin == 1:
		return roleAdmin
	case isRead == 1:
		return roleRead
	}
	return roleNone
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// authenticate finds the role of the request's bearer token; with no token
// configured every request is admin. It returns the request with its role
// in the context, or writes 401/403 and returns false. Neither the token
// presented nor the configured ones are ever written to the log or into an
// answer.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, need role) (*http.Request, bool) {
	ro := roleAdmin
	if s.tokens.hasAdmin || s.tokens.hasRead {
		h := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(h, " ")
		if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
			s.log.Warn("request without a bearer token", "request_id", requestIDOf(r), "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="ttq"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "this server needs a token: send Authorization: Bearer <token>")
			return r, false
		}
		if ro = s.tokens.check(strings.TrimSpace(token)); ro == roleNone {
			s.log.Warn("request with a token that is not valid", "request_id", requestIDOf(r), "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			writeError(w, http.StatusForbidden, "forbidden", "the bearer token is not valid for this server")
			return r, false
		}
	}
	if ro < need {
		s.log.Warn("read-only token refused", "request_id", requestIDOf(r), "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
		writeError(w, http.StatusForbidden, "forbidden", "this token may only read (SELECT, SHOW, DESCRIBE, EXPLAIN, watermarks); "+r.Method+" "+r.URL.Path+" needs the admin token")
		return r, false
	}
	return r.WithContext(context.WithValue(r.Context(), roleKey{}, ro)), true
}
