// Package fanin holds what the stages whose facts have many inputs (albums, trends) share.
//
// Such a stage's library makes its facts with events.New and the stage's producer: the id
// derives from what the fact is about (an album version, a tag's window), not from the
// input that happened to complete it, so the same fact found again — a redelivery, a
// replay, a second instance — is the same fact, and the log's dedup keeps one.
package fanin

import (
	"context"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/worker"
)

// ContinueTrace is router middleware that makes each fact a handler returns continue the
// trace of the input that completed it (events.New starts a trace of its own: the fact has
// many inputs). Only the trace changes, never the id, so a fact found again is still the
// same fact. An input without a trace leaves the fact's own trace.
func ContinueTrace(next worker.HandlerFunc) worker.HandlerFunc {
	return func(ctx context.Context, in events.Event) ([]events.Event, error) {
		out, err := next(ctx, in)
		if events.TraceID(in.TraceParent) == "" {
			return out, err
		}
		for i, o := range out {
			if o.Data != nil {
				out[i].TraceParent = events.Derive(in, o.Producer(), o.Data, o.Time).TraceParent
			}
		}
		return out, err
	}
}
