package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
)

// ErrNotProducer marks an output the stage may not publish: the topology assigns its type
// to another producer, or it claims another producer. Such an output is a bug in the
// stage, so the input is dead-lettered as permanent and nothing is published.
var ErrNotProducer = errors.New("output not produced by this stage")

// Pipeline is a stage without NATS: decode, route to the handler through the middleware,
// and check that every output is one this stage produces. The Stage runtime runs every
// message through it; tests (see nats/worker/stagetest) run it directly.
type Pipeline struct {
	consumer string
	producer string
	outputs  []events.Type
	reg      *events.Registry
	handlers map[events.Type]HandlerFunc
}

// NewPipeline builds the pipeline of the stage reading the topology consumer named
// consumer. Its producer, and so the types it may emit, come from the topology; outer
// middleware (the runtime's) wraps the router's. A nil reg means events.Default.
func NewPipeline(consumer string, r *Router, reg *events.Registry, outer ...Middleware) (*Pipeline, error) {
	if r == nil {
		return nil, errors.New("worker: nil router")
	}
	if reg == nil {
		reg = events.Default
	}
	c, ok := topology.LookupConsumer(consumer)
	if !ok {
		return nil, fmt.Errorf("worker: consumer %q is not declared in the topology", consumer)
	}
	if c.Kind != topology.KindStage || c.Producer == "" {
		return nil, fmt.Errorf("worker: consumer %s is not a stage with a producer", consumer)
	}
	p := &Pipeline{consumer: consumer, producer: c.Producer, reg: reg, handlers: map[events.Type]HandlerFunc{}}
	for _, s := range reg.Specs() {
		if s.Producer == c.Producer {
			p.outputs = append(p.outputs, s.Type)
		}
	}
	var errs []error
	for t, h := range r.handlers {
		if !slices.Contains(c.Inputs, t) {
			errs = append(errs, fmt.Errorf("handler for %s, which consumer %s does not read", t, consumer))
			continue
		}
		mws := append(slices.Clone(outer), r.middlewares...)
		p.handlers[t] = Chain(h, mws...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	return p, nil
}

// Consumer is the stage's topology consumer.
func (p *Pipeline) Consumer() string { return p.consumer }

// Producer is the stage's producer, from the topology.
func (p *Pipeline) Producer() string { return p.producer }

// Outputs are the event types the stage may emit.
func (p *Pipeline) Outputs() []events.Type { return slices.Clone(p.outputs) }

// Decode decodes a log message; an undecodable one is an *events.DecodeError.
func (p *Pipeline) Decode(h events.Header, body []byte) (events.Event, error) {
	return p.reg.Decode(h, body)
}

// Handle runs the handler of in's type and checks its outputs. An input without a handler
// and an output the stage does not produce are permanent failures.
func (p *Pipeline) Handle(ctx context.Context, in events.Event) ([]events.Event, error) {
	h, ok := p.handlers[in.Type]
	if !ok {
		return nil, Permanent(fmt.Errorf("stage %s has no handler for %s", p.consumer, in.Type))
	}
	if ProducerOf(ctx) != p.producer {
		ctx = WithProducer(ctx, p.producer)
	}
	out, err := h(ctx, in)
	if err != nil {
		return nil, err
	}
	for _, o := range out {
		if err := p.owns(o); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *Pipeline) owns(o events.Event) error {
	if !slices.Contains(p.outputs, o.Type) {
		owner := "no stage"
		if s, ok := p.reg.Lookup(o.Type); ok {
			owner = s.Producer
		}
		return Permanent(fmt.Errorf("%w: stage %s emitted %s, which the topology assigns to %s", ErrNotProducer, p.consumer, o.Type, owner))
	}
	if o.Producer() != p.producer {
		return Permanent(fmt.Errorf("%w: output %s claims producer %q, stage %s is %q", ErrNotProducer, o.Type, o.Producer(), p.consumer, p.producer))
	}
	return nil
}
