package worker

import (
	"context"
	"time"

	"github.com/tgflow/tgflow/events"
)

type producerKey struct{}

// WithProducer returns ctx naming the producer whose outputs Derive makes. The runtime (and
// Pipeline) set it from the topology; handlers never name their producer themselves.
func WithProducer(ctx context.Context, producer string) context.Context {
	return context.WithValue(ctx, producerKey{}, producer)
}

// ProducerOf is the producer ctx names ("" when none).
func ProducerOf(ctx context.Context) string {
	p, _ := ctx.Value(producerKey{}).(string)
	return p
}

// Derive makes an output of the running stage from its input: events.Derive with the
// stage's producer, which the topology assigns and the runtime puts in ctx. Outside a stage
// (no producer in ctx) the output names no producer, and the runtime refuses it.
func Derive(ctx context.Context, in events.Event, p events.Payload, at time.Time) events.Event {
	return events.Derive(in, ProducerOf(ctx), p, at)
}
