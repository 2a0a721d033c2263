package worker

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/time/rate"

	"github.com/tgflow/tgflow/events"
)

// ErrRateLimited marks a call that could not get a token before its context ended. It is
// transient: the input is redelivered later.
var ErrRateLimited = errors.New("rate limited")

// RateLimit lets a handler call start only when l grants a token, so every concurrent
// handler of the process sharing l stays within a provider's quota.
func RateLimit(l *rate.Limiter) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, in events.Event) ([]events.Event, error) {
			if err := l.Wait(ctx); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrRateLimited, err)
			}
			return next(ctx, in)
		}
	}
}
