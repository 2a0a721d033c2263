package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/tgflow/tgflow/nats/worker"
)

func breakerState(t *testing.T, reg *prometheus.Registry, name string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "tgflow_breaker_state" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "breaker" && l.GetValue() == name {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// Every breaker of the process is exported with its state: closed 0, open 2.
func TestBreakerStateIsExported(t *testing.T) {
	reg := prometheus.NewRegistry()
	worker.NewMetrics(reg)
	const name = "test-breaker-state"
	b := worker.NewBreaker(gobreaker.Settings{Name: name, Timeout: time.Hour,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 }})
	if v, ok := breakerState(t, reg, name); !ok || v != 0 {
		t.Fatalf("closed breaker: %v (exported %v), want 0", v, ok)
	}
	r := handlerOf(func(context.Context) error { return errors.New("503") })
	r.Use(worker.CircuitBreaker(b, 0))
	if _, err := pipeline(t, r).Handle(context.Background(), parsed(1, 1, "x")); err == nil {
		t.Fatal("no error")
	}
	if v, ok := breakerState(t, reg, name); !ok || v != 2 {
		t.Fatalf("open breaker: %v (exported %v), want 2", v, ok)
	}
}
