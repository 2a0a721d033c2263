package openaicompat

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/internal/promx"
)

// Call outcomes (the outcome label).
const (
	outcomeOK          = "ok"
	outcomeUnavailable = "unavailable"
	outcomeInvalid     = "invalid_answer"
	outcomeRejected    = "rejected"
	outcomeBudget      = "budget"
)

// Metrics are the provider series: calls by outcome, latency, tokens.
type Metrics struct {
	Calls   *prometheus.CounterVec
	Latency *prometheus.HistogramVec
	Tokens  *prometheus.CounterVec
}

// NewMetrics registers the provider series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tgflow_provider_calls_total",
			Help: "Model provider calls by provider, operation and outcome (ok, unavailable, invalid_answer, rejected, budget).",
		}, []string{"provider", "op", "outcome"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tgflow_provider_call_seconds",
			Help:    "Model provider call latency, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}, []string{"provider", "op"}),
		Tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tgflow_provider_tokens_total",
			Help: "Tokens reported used by the model provider.",
		}, []string{"provider"}),
	}
	var err error
	if m.Calls, err = promx.Register(reg, m.Calls); err != nil {
		return nil, err
	}
	if m.Latency, err = promx.Register(reg, m.Latency); err != nil {
		return nil, err
	}
	if m.Tokens, err = promx.Register(reg, m.Tokens); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) observe(provider, op, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.Calls.WithLabelValues(provider, op, outcome).Inc()
	if d > 0 {
		m.Latency.WithLabelValues(provider, op).Observe(d.Seconds())
	}
}

func (m *Metrics) tokens(provider string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.Tokens.WithLabelValues(provider).Add(float64(n))
}

func outcomeOf(err error) string {
	switch {
	case errors.Is(err, ErrInvalidAnswer):
		return outcomeInvalid
	case errors.Is(err, ErrRejected):
		return outcomeRejected
	default:
		return outcomeUnavailable
	}
}
