package worker

import (
	"context"
	"fmt"

	"github.com/tgflow/tgflow/events"
)

// HandlerFunc handles one decoded input event and returns the facts it implies. Handlers are
// plain functions over typed events; they never see NATS.
type HandlerFunc func(ctx context.Context, in events.Event) ([]events.Event, error)

// Router maps input event types to handlers, and carries the middleware wrapped around
// every one of them.
type Router struct {
	handlers    map[events.Type]HandlerFunc
	middlewares []Middleware
}

// NewRouter returns an empty router.
func NewRouter() *Router { return &Router{handlers: map[events.Type]HandlerFunc{}} }

// Use adds middleware around every handler of the router; the first added is the outermost
// of them. The runtime's own middleware (tracing, latency, recover) wraps these.
func (r *Router) Use(mws ...Middleware) { r.middlewares = append(r.middlewares, mws...) }

// On registers a typed handler for payload type P, optionally wrapped in middleware of its
// own (e.g. a timeout for one provider), inside the router's.
func On[P events.Payload](r *Router, fn func(ctx context.Context, in events.Event, p P) ([]events.Event, error), mws ...Middleware) {
	var zero P
	// A nil pointer of a payload type still answers EventType.
	t := zero.EventType()
	if _, dup := r.handlers[t]; dup {
		panic(fmt.Sprintf("worker: two handlers for %s", t))
	}
	h := func(ctx context.Context, in events.Event) ([]events.Event, error) {
		p, ok := in.Data.(P)
		if !ok {
			return nil, Permanent(fmt.Errorf("payload of %s is %T", in.Type, in.Data))
		}
		return fn(ctx, in, p)
	}
	r.handlers[t] = Chain(h, mws...)
}

// Types lists the event types the router handles.
func (r *Router) Types() []events.Type {
	out := make([]events.Type, 0, len(r.handlers))
	for t := range r.handlers {
		out = append(out, t)
	}
	return out
}
