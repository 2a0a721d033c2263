package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
)

// publishTimeout bounds the wait for the log's acknowledgements of one batch.
const publishTimeout = 30 * time.Second

// publisher writes facts to the log with Nats-Msg-Id = event id and waits for every
// PubAck: a fact counts as published only once the log has acknowledged it.
type publisher struct {
	js  jetstream.JetStream
	reg *events.Registry
}

// publish sends evs and waits for all acks. dups counts facts the log already had (a
// retried batch after a crash between the publish and the cursor update).
func (p *publisher) publish(ctx context.Context, evs []events.Event) (dups int, err error) {
	if len(evs) == 0 {
		return 0, nil
	}
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	for _, e := range evs {
		h, body, err := p.reg.Encode(e)
		if err != nil {
			return 0, fmt.Errorf("publish %s: %w", e.Type, err)
		}
		subj, err := e.NATSSubject(p.reg)
		if err != nil {
			return 0, fmt.Errorf("publish %s: %w", e.Type, err)
		}
		m := &nats.Msg{Subject: subj, Header: nats.Header(h), Data: body}
		m.Header.Set(jetstream.MsgIDHeader, e.ID)
		f, err := p.js.PublishMsgAsync(m, jetstream.WithExpectStream(topology.LogStream))
		if err != nil {
			return 0, fmt.Errorf("publish %s: %w", subj, err)
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(publishTimeout)
	defer timeout.Stop()
	var errs []error
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups++
			}
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("publish %s: %w", f.Msg().Subject, err))
		case <-timeout.C:
			return dups, fmt.Errorf("publish: no ack from the log within %s", publishTimeout)
		case <-ctx.Done():
			return dups, ctx.Err()
		}
	}
	return dups, errors.Join(errs...)
}
