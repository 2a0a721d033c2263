package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/tgflow/tgflow/events"
)

// ErrCircuitOpen marks a call refused because the provider's circuit is open. It is
// transient: the input is redelivered after a delay.
var ErrCircuitOpen = errors.New("circuit open")

// Breaker is a circuit breaker around one provider, shared by every handler that calls it.
type Breaker = gobreaker.CircuitBreaker[[]events.Event]

// NewBreaker returns a breaker with s. Unless s says otherwise, only transient failures
// count against the provider: a permanent one (a rejected input) means it answered. Its state
// is exported as tgflow_breaker_state{breaker=s.Name} by every Metrics of the process.
func NewBreaker(s gobreaker.Settings) *Breaker {
	if s.IsSuccessful == nil {
		s.IsSuccessful = func(err error) bool { return err == nil || Classify(err) != ClassTransient }
	}
	b := gobreaker.NewCircuitBreaker[[]events.Event](s)
	trackBreaker(b)
	return b
}

// CircuitBreaker runs each handler call through b, so a dead provider is not waited on by
// every message. While b is open (or half-open and saturated), a call is retried every hold
// for as long as ctx lasts — the runtime keeps the input alive meanwhile, so an outage
// spends none of its deliveries and dead-letters nothing — and when ctx ends (shutdown,
// or a Timeout middleware outside this one) it fails with the transient ErrCircuitOpen: the
// input is redelivered later. hold ≤ 0 fails at once with ErrCircuitOpen.
func CircuitBreaker(b *Breaker, hold time.Duration) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, in events.Event) ([]events.Event, error) {
			for {
				out, err := b.Execute(func() ([]events.Event, error) { return next(ctx, in) })
				if !errors.Is(err, gobreaker.ErrOpenState) && !errors.Is(err, gobreaker.ErrTooManyRequests) {
					return out, err
				}
				open := fmt.Errorf("%w (%s): %w", ErrCircuitOpen, b.Name(), err)
				if hold <= 0 {
					return nil, open
				}
				t := time.NewTimer(hold)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil, open
				case <-t.C:
				}
			}
		}
	}
}
