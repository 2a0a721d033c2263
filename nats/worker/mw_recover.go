package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/tgflow/tgflow/events"
)

// ErrPanic marks a handler that panicked. It is transient: the input is retried, and after
// the consumer's MaxDeliver it is dead-lettered with the panic as the reason.
var ErrPanic = errors.New("handler panic")

// Recover turns a handler panic into an ErrPanic error, logging the stack.
func Recover(log *slog.Logger) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, in events.Event) (out []events.Event, err error) {
			defer func() {
				if r := recover(); r != nil {
					log.ErrorContext(ctx, "handler panic", "type", in.Type, "id", in.ID, "panic", r, "stack", string(debug.Stack()))
					out, err = nil, fmt.Errorf("%w: %v", ErrPanic, r)
				}
			}()
			return next(ctx, in)
		}
	}
}
