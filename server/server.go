// Package server is ttq's HTTP API: SQL, ingest, watermarks, health and
// Prometheus metrics over one open engine.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ttq/engine"
)

// Config bounds what one request may cost. Zero values take the defaults.
type Config struct {
	// AuthToken, when set, is required as "Authorization: Bearer <token>"
	// on every /v1 route: the admin token, which may do everything.
	AuthToken string
	// ReadToken, when set, is a second token that may only read: SELECT,
	// SHOW, DESCRIBE and EXPLAIN through /v1/sql, and /v1/watermarks. DDL
	// and /v1/ingest answer it 403. It needs AuthToken (New panics
	// without it: a server whose writes need no token would be
	// pointless to protect with one for reads).
	ReadToken string
	// TLS, when set, makes Serve speak HTTPS (HTTP/2 included) with it.
	TLS *tls.Config
	// MaxIngestBytes bounds the body of POST /v1/ingest (default 64 MiB).
	MaxIngestBytes int64
	// MaxSQLBytes bounds the body of POST /v1/sql (default 1 MiB).
	MaxSQLBytes int64
	// QueryTimeout bounds one statement, waiting for a slot included
	// (default 30s). A request may ask for less, never for more.
	QueryTimeout time.Duration
	// MaxWait bounds the "wait" option of /v1/sql (default: QueryTimeout).
	MaxWait time.Duration
	// MaxResultRows bounds the rows of one result (default 1,000,000).
	MaxResultRows int64
	// MaxResultBytes bounds the encoded body of one result (default 256 MiB).
	MaxResultBytes int64
	// MaxHeldRows bounds the rows one statement may hold in memory for
	// sorting, grouping, DISTINCT and hash joins (default 5,000,000):
	// the per-query memory limit.
	MaxHeldRows int64
	// MaxConcurrentQueries is how many statements run at once (default
	// 2*GOMAXPROCS); more wait up to QueueTimeout for a slot, then get 429.
	MaxConcurrentQueries int
	// QueueTimeout is how long a statement waits for a free slot (default 1s).
	QueueTimeout time.Duration
	// MaxConcurrentIngest is how many POST /v1/ingest requests are read and
	// applied at once (default 4). More wait, without their bodies being
	// read, up to IngestQueueTimeout for a slot, then get 429: producers are
	// slowed down instead of the server's memory growing.
	MaxConcurrentIngest int
	// IngestQueueTimeout is how long an ingest request waits for a slot
	// (default 10s).
	IngestQueueTimeout time.Duration
	// IngestReadTimeout bounds how long the body of an ingest request may
	// stall (no bytes arrive) while it holds a slot (default 30s); then the
	// request ends with 408 and what was read before is applied.
	IngestReadTimeout time.Duration
	// DiskFree reports the free bytes of the data directory's disk
	// (DiskFreeOf); with MinFreeDisk > 0, ingest and DDL are refused with
	// 507 while less than MinFreeDisk is free. Reads are never refused.
	DiskFree    func() (int64, error)
	MinFreeDisk int64
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout configure
	// the http.Server made by Serve (defaults 10s, 0 = none, 0 = none, 2m).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// Logger receives request errors and recovered panics (default slog.Default()).
	Logger *slog.Logger
	// ShutdownTimeout is how long Serve lets in-flight requests finish
	// once its context ends (default 20s).
	ShutdownTimeout time.Duration
	// Components are other parts of the process (the Kafka daemon) whose
	// state /healthz reports and whose metrics /metrics exports.
	Components []Component
}

// Component is a part of the process besides the HTTP server that reports
// its health and metrics through it.
type Component interface {
	// Name keys the component in the /healthz body ("kafka").
	Name() string
	// Health returns a JSON-encodable state, and whether the component is
	// working (false: /healthz still answers 200, since queries are served
	// from sealed data, but its body says "degraded").
	Health() (state any, ok bool)
	// Collector exports the component's metrics; nil for none.
	Collector() prometheus.Collector
}

// Defaults of Config.
const (
	DefaultMaxIngestBytes = 64 << 20
	DefaultMaxSQLBytes    = 1 << 20
	DefaultQueryTimeout   = 30 * time.Second
	DefaultMaxResultRows  = 1_000_000
	DefaultMaxResultBytes = 256 << 20
	DefaultMaxHeldRows    = 5_000_000
	DefaultQueueTimeout   = time.Second

	DefaultMaxConcurrentIngest = 4
	DefaultIngestQueueTimeout  = 10 * time.Second
	DefaultIngestReadTimeout   = 30 * time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxIngestBytes <= 0 {
		c.MaxIngestBytes = DefaultMaxIngestBytes
	}
	if c.MaxSQLBytes <= 0 {
		c.MaxSQLBytes = DefaultMaxSQLBytes
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.MaxWait <= 0 {
		c.MaxWait = c.QueryTimeout
	}
	if c.MaxResultRows <= 0 {
		c.MaxResultRows = DefaultMaxResultRows
	}
	if c.MaxResultBytes <= 0 {
		c.MaxResultBytes = DefaultMaxResultBytes
	}
	if c.MaxHeldRows <= 0 {
		c.MaxHeldRows = DefaultMaxHeldRows
	}
	if c.MaxConcurrentQueries <= 0 {
		c.MaxConcurrentQueries = 2 * runtime.GOMAXPROCS(0)
	}
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = DefaultQueueTimeout
	}
	if c.MaxConcurrentIngest <= 0 {
		c.MaxConcurrentIngest = DefaultMaxConcurrentIngest
	}
	if c.IngestQueueTimeout <= 0 {
		c.IngestQueueTimeout = DefaultIngestQueueTimeout
	}
	if c.IngestReadTimeout <= 0 {
		c.IngestReadTimeout = DefaultIngestReadTimeout
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 20 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server serves one engine over HTTP. It does not own the engine: the
// caller closes it after Shutdown.
type Server struct {
	e       *engine.Engine
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	handler http.Handler
	tokens  tokens

	slots       chan struct{} // one token per running statement
	ingestSlots chan struct{} // one token per ingest request being read and applied

	ready    atomic.Bool
	stopping chan struct{} // closed when Shutdown starts
	stopped  chan struct{} // closed when Shutdown is done
	stopOnce sync.Once

	// base is the parent of every request context; cancelled when a
	// graceful shutdown runs out of time, so running queries stop.
	base       context.Context
	cancelBase context.CancelFunc

	mu  sync.Mutex // guards srv
	srv *http.Server

	idPrefix string
	idSeq    atomic.Uint64

	// beforeExec, when set (tests), runs with the statement's context
	// after it got its slot.
	beforeExec func(ctx context.Context)
}

// New makes a server for e. It is ready to serve requests through Handler
// right away; Serve adds the listener and lifecycle.
func New(e *engine.Engine, cfg Config) *Server {
	cfg = cfg.withDefaults()
	if cfg.ReadToken != "" && cfg.AuthToken == "" {
		panic("server: a ReadToken needs an AuthToken")
	}
	s := &Server{
		tokens:      newTokens(cfg.AuthToken, cfg.ReadToken),
		e:           e,
		cfg:         cfg,
		log:         cfg.Logger,
		slots:       make(chan struct{}, cfg.MaxConcurrentQueries),
		ingestSlots: make(chan struct{}, cfg.MaxConcurrentIngest),
		stopping:    make(chan struct{}),
		stopped:     make(chan struct{}),
		idPrefix:    newIDPrefix(),
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.metrics = newMetrics(e, cfg.MaxConcurrentQueries, cfg.MaxConcurrentIngest)
	s.registerDiskMetric()
	for _, c := range cfg.Components {
		if col := c.Collector(); col != nil {
			s.metrics.reg.MustRegister(col)
		}
	}
	s.handler = s.routes()
	s.ready.Store(true)
	return s
}

func newIDPrefix() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return hex.EncodeToString(b[:])
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on ln until ctx ends or Shutdown is called, then shuts down
// gracefully: in-flight requests get up to ShutdownTimeout to finish. It
// returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.base },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		TLSConfig:         s.cfg.TLS,
	}
	s.mu.Lock()
	select {
	case <-s.stopping:
		s.mu.Unlock()
		ln.Close()
		return nil
	default:
	}
	s.srv = srv
	s.mu.Unlock()

	done := make(chan error, 1)
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
			defer cancel()
			done <- s.Shutdown(sctx)
		case <-s.stopping:
			done <- nil
		}
	}()
	var err error
	if s.cfg.TLS != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		s.Shutdown(context.Background())
		<-done
		return err
	}
	<-s.stopped
	return <-done
}

// Shutdown stops accepting connections, fails readiness, tells waiting
// requests to give up and waits for in-flight requests to finish. When ctx
// ends first, running statements are cancelled and connections closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	first := false
	s.stopOnce.Do(func() { close(s.stopping); first = true })
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if !first {
		select {
		case <-s.stopped:
		case <-ctx.Done():
		}
		return nil
	}
	defer close(s.stopped)
	defer s.cancelBase()
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		s.cancelBase()
		srv.Close()
		return fmt.Errorf("server: in-flight requests did not finish in time, cancelled them: %w", err)
	}
	return nil
}

// route is one path's handlers by method, and the role it needs.
type route struct {
	methods map[string]http.HandlerFunc
	need    role // roleNone: open to all
}

// viewChangesRoute stands for every /v1/views/{name}/changes path.
const viewChangesRoute = "/v1/views/{name}/changes"

func (s *Server) routes() http.Handler {
	table := map[string]*route{
		// /v1/sql refuses statements that write to a read-only token itself.
		"/v1/sql":        {methods: map[string]http.HandlerFunc{http.MethodPost: s.handleSQL}, need: roleRead},
		"/v1/ingest":     {methods: map[string]http.HandlerFunc{http.MethodPost: s.handleIngest}, need: roleAdmin},
		"/v1/watermarks": {methods: map[string]http.HandlerFunc{http.MethodGet: s.handleWatermarks}, need: roleRead},
		"/healthz":       {methods: map[string]http.HandlerFunc{http.MethodGet: s.handleHealthz}},
		"/readyz":        {methods: map[string]http.HandlerFunc{http.MethodGet: s.handleReadyz}},
		"/metrics":       {methods: map[string]http.HandlerFunc{http.MethodGet: s.metrics.handler().ServeHTTP}},
		"/v1/export":     {methods: map[string]http.HandlerFunc{http.MethodGet: s.handleExport}, need: roleRead},
		// GET /v1/views/{name}/changes: a view's change feed.
		viewChangesRoute: {methods: map[string]http.HandlerFunc{http.MethodGet: s.handleViewChanges}, need: roleRead},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := s.requestID()
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		defer s.recoverPanic(w, r)
		path := r.URL.Path
		if strings.HasPrefix(path, "/v1/views/") && strings.HasSuffix(path, "/changes") && strings.Count(path, "/") == 4 {
			path = viewChangesRoute
		}
		rt, ok := table[path]
		if !ok {
			if strings.HasPrefix(r.URL.Path, "/v1/") {
				if _, ok := s.authenticate(w, r, roleRead); !ok {
					return
				}
			}
			writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route %s (routes: POST /v1/sql, POST /v1/ingest, GET /v1/watermarks, GET /v1/views/NAME/changes, GET /v1/export, GET /healthz, GET /readyz, GET /metrics)", r.URL.Path))
			return
		}
		if rt.need != roleNone {
			if r, ok = s.authenticate(w, r, rt.need); !ok {
				return
			}
		}
		h, ok := rt.methods[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = rt.methods[http.MethodGet]
		}
		if !ok {
			var allow []string
			for m := range rt.methods {
				allow = append(allow, m)
			}
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
			return
		}
		h(w, r)
	})
}

type requestIDKey struct{}

func (s *Server) requestID() string {
	return s.idPrefix + "-" + strconv.FormatUint(s.idSeq.Add(1), 10)
}

func requestIDOf(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

// recoverPanic turns a panic of a handler into a 500 with a generic message;
// the stack goes to the log, never to the client.
func (s *Server) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.log.Error("panic serving request", "request_id", requestIDOf(r), "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	writeError(w, http.StatusInternalServerError, "internal", "internal error (request "+requestIDOf(r)+"); the server log has the details")
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if len(s.cfg.Components) == 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
		return
	}
	// Alive as long as it answers: a component in trouble degrades
	// ingest, not the sealed answers the server keeps serving.
	body := map[string]any{"status": "ok"}
	for _, c := range s.cfg.Components {
		state, ok := c.Health()
		body[c.Name()] = state
		if !ok {
			body["status"] = "degraded"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ready\n"))
}
