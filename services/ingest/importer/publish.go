package importer

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
)

// publisher publishes asynchronously with Nats-Msg-Id = event id and collects the futures,
// so that every publish is known to be acknowledged (or failed) before wait returns.
type publisher struct {
	js      jetstream.JetStream
	futures []jetstream.PubAckFuture
}

func newPublisher(js jetstream.JetStream) *publisher { return &publisher{js: js} }

// Publish encodes and publishes one event.
func (p *publisher) publish(ctx context.Context, ev events.Event) error {
	h, body, err := events.Encode(ev)
	if err != nil {
		return err
	}
	subj, err := ev.NATSSubject(events.Default)
	if err != nil {
		return err
	}
	m := &nats.Msg{Subject: subj, Header: nats.Header(h), Data: body}
	m.Header.Set(nats.MsgIdHdr, ev.ID)
	return p.publishRaw(ctx, m)
}

func (p *publisher) publishRaw(ctx context.Context, m *nats.Msg) error {
	f, err := p.js.PublishMsgAsync(m)
	if err != nil {
		return fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	p.futures = append(p.futures, f)
	// Bound the memory of pending futures: settle the oldest half when many are waiting.
	if len(p.futures) >= 8192 {
		if err := p.settle(ctx, len(p.futures)/2); err != nil {
			return err
		}
	}
	return nil
}

func (p *publisher) settle(ctx context.Context, n int) error {
	for _, f := range p.futures[:n] {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.futures = append(p.futures[:0], p.futures[n:]...)
	return nil
}

// wait returns once every publish so far is acknowledged by the log.
func (p *publisher) wait(ctx context.Context) error { return p.settle(ctx, len(p.futures)) }

// PublishAll publishes events and waits until the log acknowledged all of them.
func PublishAll(ctx context.Context, js jetstream.JetStream, evs []events.Event) error {
	p := newPublisher(js)
	for _, ev := range evs {
		if err := p.publish(ctx, ev); err != nil {
			return err
		}
	}
	return p.wait(ctx)
}
