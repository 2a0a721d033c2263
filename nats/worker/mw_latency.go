package worker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
)

// Latency observes each handler call's duration, failed or not, in seconds.
func Latency(obs prometheus.Observer) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, in events.Event) ([]events.Event, error) {
			start := time.Now()
			defer func() { obs.Observe(time.Since(start).Seconds()) }()
			return next(ctx, in)
		}
	}
}
