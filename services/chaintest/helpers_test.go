package chaintest_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
)

// runSpecs builds every spec's service on env's server from the environment env, as `tgflow
// dev` does, and runs them until the returned stop is called (also at cleanup).
func runSpecs(t testing.TB, e *natstest.Env, env map[string]string, specs ...services.Spec) (stop func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	d := services.Deps{JS: e.JS, Logger: slog.New(slog.DiscardHandler), Metrics: worker.NewMetrics(reg), Registry: reg, Env: env}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range specs {
		svc, err := s.New(ctx, d)
		if err != nil {
			cancel()
			t.Fatalf("%s: %v", s.Name, err)
		}
		wg.Go(func() {
			if err := svc.Run(ctx); err != nil {
				t.Errorf("%s: %v", s.Name, err)
			}
		})
	}
	stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stop) // before the server stops
	return stop
}

// idle waits until every consumer named has been created and has nothing pending or
// unacknowledged.
func idle(t testing.TB, js jetstream.JetStream, timeout time.Duration, consumers ...string) {
	t.Helper()
	ctx := context.Background()
	natstest.Eventually(t, timeout, "consumers idle", func() bool {
		for _, name := range consumers {
			c, err := js.Consumer(ctx, topology.LogStream, name)
			if err != nil {
				return false
			}
			ci, err := c.Info(ctx)
			if err != nil || ci.NumPending != 0 || ci.NumAckPending != 0 {
				return false
			}
		}
		return true
	})
}
