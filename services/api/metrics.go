package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tgflow/tgflow/internal/promx"
)

// Metrics are the API's series, served on its own listener at /metrics.
type Metrics struct {
	reg      prometheus.Gatherer
	requests *prometheus.HistogramVec
}

// NewMetrics registers the API's series on reg (a *prometheus.Registry also serves them).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	h, err := promx.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tgflow_api_request_seconds",
		Help:    "Time to answer an API or page request, by route and status code (route /api/search is search latency).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "code"}))
	if err != nil {
		return nil, err
	}
	m := &Metrics{requests: h}
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.reg = g
	}
	return m, nil
}

// observe wraps a route's handler to time it.
func (m *Metrics) observe(route string, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		m.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

// handler serves the series, or nil when the registerer cannot gather.
func (m *Metrics) handler() http.Handler {
	if m == nil || m.reg == nil {
		return nil
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
