package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tgflow/tgflow/events"
)

// ErrTimeout marks a handler call that ran out of its Timeout. It is transient.
var ErrTimeout = errors.New("handler timed out")

// Timeout gives each handler call at most d (e.g. the patience one model provider gets).
// The handler must honour ctx; a call that failed because d passed returns ErrTimeout.
func Timeout(d time.Duration) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, in events.Event) ([]events.Event, error) {
			tctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			out, err := next(tctx, in)
			if err != nil && ctx.Err() == nil && errors.Is(tctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%w after %s: %w", ErrTimeout, d, err)
			}
			return out, err
		}
	}
}
