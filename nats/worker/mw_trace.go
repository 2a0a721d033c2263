package worker

import (
	"context"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/internal/tracing"
)

// Tracing runs the handler inside a span parented by the input's traceparent (see
// internal/tracing) and puts the trace id into ctx, so every log line the handler writes
// with a *Context logger method carries it. When tracing is on, the outputs carry the
// handler's span as their traceparent, so the next stage's span is its child; when it is
// off, the outputs are left as the handler made them.
func Tracing() Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, in events.Event) ([]events.Event, error) {
			ctx, span := tracing.StartHandle(ctx, ProducerOf(ctx), in)
			defer span.End()
			out, err := next(traceCtx(ctx, in), in)
			tracing.Fail(span, err)
			if tp := tracing.TraceParent(span); tp != "" {
				for i := range out {
					out[i].TraceParent = tp
				}
			}
			return out, err
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
