package importer

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/publish"
)

// publisher streams the importer's writes through the one log publisher (nats/publish):
// facts into the log, ledger entries into the ledger bucket's stream, each acknowledged
// before wait returns.
type publisher struct {
	js     jetstream.JetStream
	stream string // "" for the log
	batch  *publish.Batch
}

func newPublisher(js jetstream.JetStream) *publisher { return &publisher{js: js} }

// start binds the publisher to a stream on its first write.
func (p *publisher) start(stream string) error {
	if p.batch != nil {
		if stream != p.stream {
			return fmt.Errorf("import: a publisher of stream %q cannot write to %q", p.stream, stream)
		}
		return nil
	}
	p.stream = stream
	pub, err := publish.New(p.js, publish.Options{Stream: stream})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	p.batch = pub.Batch()
	return nil
}

// publish publishes one event to the log.
func (p *publisher) publish(ctx context.Context, ev events.Event) error {
	if err := p.start(""); err != nil {
		return err
	}
	return p.batch.Add(ctx, ev)
}

// publishRaw publishes a KV entry ($KV.<bucket>.<key>) into its bucket's stream.
func (p *publisher) publishRaw(ctx context.Context, m *nats.Msg) error {
	rest, ok := strings.CutPrefix(m.Subject, "$KV.")
	bucket, _, found := strings.Cut(rest, ".")
	if !ok || !found {
		return fmt.Errorf("import: %s is not a KV subject", m.Subject)
	}
	if err := p.start("KV_" + bucket); err != nil {
		return err
	}
	return p.batch.AddMsg(ctx, m)
}

// wait returns once every publish so far is acknowledged, with the number of them the
// stream already had (duplicate Nats-Msg-Id), since the publisher was made.
func (p *publisher) wait(ctx context.Context) (dups int, err error) {
	if p.batch == nil {
		return 0, nil
	}
	return p.batch.Wait(ctx)
}

// PublishAll publishes events and waits until the log acknowledged all of them.
func PublishAll(ctx context.Context, js jetstream.JetStream, evs []events.Event) error {
	p := newPublisher(js)
	for _, ev := range evs {
		if err := p.publish(ctx, ev); err != nil {
			return err
		}
	}
	_, err := p.wait(ctx)
	return err
}
