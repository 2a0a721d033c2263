package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/services/api"
	"github.com/tgflow/tgflow/services/search"
)

// Every route is timed by route and status (search latency is route /api/search), and the
// series are served at /metrics for Prometheus.
func TestRequestsAreTimedAndServed(t *testing.T) {
	f := newFixture(t, api.Config{})
	m, err := api.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Addr: "127.0.0.1:0", Rate: 1000, Burst: 1000, Timeout: 5 * time.Second},
		api.Deps{Search: &search.Service{FullText: f.ft}, Store: f.store, Log: f.log, Metrics: m}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	get := func(target string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.RemoteAddr = "192.0.2.1:1234"
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/api/search?q=go"); code != 200 {
		t.Fatalf("search: %d", code)
	}
	if code, _ := get("/api/search?limit=9999"); code != 400 {
		t.Fatalf("bad search: %d, want 400", code)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`tgflow_api_request_seconds_count{code="200",route="/api/search"} 1`,
		`tgflow_api_request_seconds_count{code="400",route="/api/search"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	if code, _ := get("/metrics"); code != 200 {
		t.Errorf("second /metrics: %d", code)
	}
	// Without Metrics there is no /metrics.
	if r := f.get(t, "/metrics"); r.status != http.StatusNotFound {
		t.Errorf("/metrics without metrics: %d, want 404", r.status)
	}
}
