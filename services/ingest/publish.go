package ingest

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/publish"
)

// publisher is ingest's handle on the one log publisher (nats/publish): a fact counts as
// published only once the log has acknowledged it.
type publisher struct {
	js  jetstream.JetStream
	reg *events.Registry
}

// publish sends evs and waits for all acks. dups counts facts the log already had (a
// retried batch after a crash between the publish and the cursor update).
func (p *publisher) publish(ctx context.Context, evs []events.Event) (dups int, err error) {
	pub, err := publish.New(p.js, publish.Options{Registry: p.reg})
	if err != nil {
		return 0, err
	}
	return pub.Publish(ctx, evs)
}
