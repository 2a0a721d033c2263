package worker

import (
	"context"
	"fmt"

	"github.com/tgflow/tgflow/events"
)

// HandlerFunc handles one decoded input event and returns the facts it implies. Handlers are
// plain functions over typed events; they never see NATS.
type HandlerFunc func(ctx context.Context, in events.Event) ([]events.Event, error)

// Router maps input event types to handlers.
type Router struct {
	handlers map[events.Type]HandlerFunc
}

// NewRouter returns an empty router.
func NewRouter() *Router { return &Router{handlers: map[events.Type]HandlerFunc{}} }

// On registers a typed handler for payload type P.
func On[P events.Payload](r *Router, fn func(ctx context.Context, in events.Event, p P) ([]events.Event, error)) {
	var zero P
	t := events.Type("")
	// A nil pointer of a payload type still answers EventType.
	t = zero.EventType()
	if _, dup := r.handlers[t]; dup {
		panic(fmt.Sprintf("worker: two handlers for %s", t))
	}
	r.handlers[t] = func(ctx context.Context, in events.Event) ([]events.Event, error) {
		p, ok := in.Data.(P)
		if !ok {
			return nil, Permanent(fmt.Errorf("payload of %s is %T", in.Type, in.Data))
		}
		return fn(ctx, in, p)
	}
}

// Types lists the event types the router handles.
func (r *Router) Types() []events.Type {
	out := make([]events.Type, 0, len(r.handlers))
	for t := range r.handlers {
		out = append(out, t)
	}
	return out
}

func (r *Router) handler(t events.Type) (HandlerFunc, bool) {
	h, ok := r.handlers[t]
	return h, ok
}
