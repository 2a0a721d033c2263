package importer

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/publish"
)

// PublishAll publishes events through the one log publisher (nats/publish) and waits until
// the log acknowledged all of them.
func PublishAll(ctx context.Context, js jetstream.JetStream, evs []events.Event) error {
	pub, err := publish.New(js, publish.Options{})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	b := pub.Batch()
	for _, ev := range evs {
		if err := b.Add(ctx, ev); err != nil {
			return err
		}
	}
	_, err = b.Wait(ctx)
	return err
}
