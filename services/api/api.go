// Package api is `tgflow api`: the read models over HTTP as JSON, and a small server-rendered
// web page on the same routes' data. It only reads: Postgres through a read-only session,
// Qdrant and Neo4j through search, the log through subject-filtered direct gets.
//
// The routes are listed once (Server.Routes) and documented in openapi.json, which is
// served at /api/openapi.json; a test checks the two agree and that every answer matches
// the document's schema. Every parameter is validated: a bad one is a 400 whose body says
// what is wrong ({"error": "...", "problems": ["limit: 500 is out of range 1..50", ...]}).
// Each client (remote IP) is rate-limited (429 with Retry-After), pages of results are
// bounded (search.MaxLimit), and each request has a deadline.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/services/search"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the committed OpenAPI document.
func OpenAPI() []byte { return openAPI }

// Check is one readiness check: nil when its backend answers.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Deps are what the server reads.
type Deps struct {
	Search Searcher
	Store  Store
	Log    Log
	// Ready lists the readiness checks; /readyz fails while any fails.
	Ready []Check
	// Metrics, when set, times every route (tgflow_api_request_seconds) and serves the
	// series at GET /metrics.
	Metrics *Metrics
}

// Server serves the API and the web page.
type Server struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	limit *limiters
	pages *template.Template
	h     http.Handler
}

// Route is one route of the server.
type Route struct {
	Method, Path string
	// API routes are documented in openapi.json; the others serve the web page.
	API bool
}

// Routes lists every route, API and web page.
func Routes() []Route {
	return []Route{
		{"GET", "/api/search", true},
		{"GET", "/api/posts/{channel}/{id}", true},
		{"GET", "/api/channels", true},
		{"GET", "/api/trends", true},
		{"GET", "/api/tags", true},
		{"GET", "/api/openapi.json", true},
		{"GET", "/healthz", true},
		{"GET", "/readyz", true},
		{"GET", "/{$}", false},
		{"GET", "/posts/{channel}/{id}", false},
		{"GET", "/trends", false},
		{"GET", "/channels", false},
		{"GET", "/static/", false},
	}
}

// New returns a server over deps.
func New(cfg Config, deps Deps, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var missing []string
	if deps.Search == nil {
		missing = append(missing, "Search")
	}
	if deps.Store == nil {
		missing = append(missing, "Store")
	}
	if deps.Log == nil {
		missing = append(missing, "Log")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("api: missing dependencies: %s", strings.Join(missing, ", "))
	}
	if log == nil {
		log = slog.Default()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: deps, log: log, limit: newLimiters(cfg.Rate, cfg.Burst), pages: pages}
	static, err := fs.Sub(webFS, "web/static")
	if err != nil {
		return nil, fmt.Errorf("api: static files: %w", err)
	}
	handlers := map[string]http.Handler{
		"/api/search":               http.HandlerFunc(s.apiSearch),
		"/api/posts/{channel}/{id}": http.HandlerFunc(s.apiPost),
		"/api/channels":             http.HandlerFunc(s.apiChannels),
		"/api/trends":               http.HandlerFunc(s.apiTrends),
		"/api/tags":                 http.HandlerFunc(s.apiTags),
		"/api/openapi.json":         http.HandlerFunc(s.apiOpenAPI),
		"/healthz":                  http.HandlerFunc(s.healthz),
		"/readyz":                   http.HandlerFunc(s.readyz),
		"/{$}":                      http.HandlerFunc(s.pageSearch),
		"/posts/{channel}/{id}":     http.HandlerFunc(s.pagePost),
		"/trends":                   http.HandlerFunc(s.pageTrends),
		"/channels":                 http.HandlerFunc(s.pageChannels),
		"/static/":                  http.StripPrefix("/static/", http.FileServerFS(static)),
	}
	mux := http.NewServeMux()
	for _, rt := range Routes() {
		h, ok := handlers[rt.Path]
		if !ok {
			return nil, fmt.Errorf("api: no handler for %s %s", rt.Method, rt.Path)
		}
		if rt.Path != "/healthz" && rt.Path != "/readyz" {
			h = s.limit.limit(h)
		}
		mux.Handle(rt.Method+" "+rt.Path, deps.Metrics.observe(rt.Path, h))
	}
	if mh := deps.Metrics.handler(); mh != nil {
		mux.Handle("GET /metrics", mh) // for Prometheus, outside the documented API
	}
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "no such page: "+r.Method+" "+r.URL.Path, nil)
	})
	s.h = s.recover(s.deadline(headers(mux)))
	return s, nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.h }

// Serve serves on ln until ctx ends, then shuts down within 10 s.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      s.cfg.Timeout + 5*time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: serve: %w", err)
	}
	return nil
}

// headers sets what every answer carries: no sniffing, no framing, scripts only from the
// server itself.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) deadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("api: handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeError(w, r, http.StatusInternalServerError, "internal error", nil)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// errorBody is the body of every error answer.
type errorBody struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal error: encode the answer"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if _, err := w.Write(append(b, '\n')); err != nil {
		// The client went away; nothing to tell it.
		return
	}
}

func writeError(w http.ResponseWriter, r *http.Request, status int, msg string, problems []string) {
	if !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && acceptsHTML(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintln(w, msg)
		for _, p := range problems {
			fmt.Fprintln(w, "  "+p)
		}
		return
	}
	writeJSON(w, status, errorBody{Error: msg, Problems: problems})
}

func acceptsHTML(r *http.Request) bool { return strings.Contains(r.Header.Get("Accept"), "text/html") }

// problems splits a joined validation error into its lines, without the sentinel's prefix.
func problems(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimPrefix(line, search.ErrInvalid.Error()+": ")
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// fail answers an error from a backend or a validation.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, search.ErrInvalid):
		writeError(w, r, http.StatusBadRequest, "bad request", problems(err))
	case errors.Is(err, ErrNotFound):
		writeError(w, r, http.StatusNotFound, err.Error(), nil)
	case errors.Is(err, search.ErrSpaceMismatch), errors.Is(err, search.ErrNoBackend):
		s.log.Error("api: search is misconfigured", "path", r.URL.Path, "err", err)
		writeError(w, r, http.StatusServiceUnavailable, err.Error(), nil)
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("api: request timed out", "path", r.URL.Path, "err", err)
		writeError(w, r, http.StatusServiceUnavailable, "the backends did not answer within "+s.cfg.Timeout.String(), nil)
	case errors.Is(err, ErrUnavailable), errors.Is(err, projections.ErrBackend), isConnectError(err):
		s.log.Warn("api: backend unavailable", "path", r.URL.Path, "err", err)
		writeError(w, r, http.StatusServiceUnavailable, "a backend is unavailable; retry later", nil)
	case errors.Is(err, context.Canceled):
		// The client left.
	default:
		s.log.Error("api: request failed", "path", r.URL.Path, "err", err)
		writeError(w, r, http.StatusInternalServerError, "internal error", nil)
	}
}

// isConnectError reports a database that could not be reached (down, refused, timed out).
func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || pgconn.Timeout(err)
}
