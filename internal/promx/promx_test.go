package promx_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/internal/promx"
)

func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "tgflow_test_total", Help: "h"}
	a, err := promx.Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	b, err := promx.Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	a.Inc()
	if a != b {
		t.Error("a second registration did not return the registered collector")
	}
	// Same name, different labels: a real conflict is reported.
	if _, err := promx.Register(reg, prometheus.NewCounterVec(opts, []string{"x"})); err == nil {
		t.Error("a conflicting collector was accepted")
	}
}
