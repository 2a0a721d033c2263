package worker

import (
	"context"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
)

// Tracing puts the input's trace id into ctx, so every log line the handler writes with
// a *Context logger method carries it.
func Tracing() Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, in events.Event) ([]events.Event, error) {
			return next(traceCtx(ctx, in), in)
		}
	}
}

// traceCtx is ctx with in's trace id (the runtime's own failure lines use it as well).
func traceCtx(ctx context.Context, in events.Event) context.Context {
	return traceParentCtx(ctx, in.TraceParent)
}

func traceParentCtx(ctx context.Context, traceparent string) context.Context {
	return logx.WithTrace(ctx, events.TraceID(traceparent))
}
