// Package publish is the one way facts reach the log: each event is encoded, sent with
// Nats-Msg-Id = event id and the expected stream set, and counts as published only once the
// log has acknowledged it. A repeated id within the log's duplicate window is acknowledged as
// a duplicate and stored once; the publisher counts those. The stage runtime, ingest and the
// export importer all publish through it.
package publish

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/tracing"
	"github.com/tgflow/tgflow/nats/topology"
)

// MsgIDHeader carries the event id: the log drops a second message with the same id within
// its duplicate window.
const MsgIDHeader = jetstream.MsgIDHeader

// DefaultAckTimeout bounds the wait for the log's acknowledgements of one Await.
const DefaultAckTimeout = 30 * time.Second

// ErrAckTimeout is returned when the log did not acknowledge a publish in time: the fact may
// or may not be stored, so the caller must publish it again (the id makes that safe).
var ErrAckTimeout = errors.New("no publish ack from the log")

// Options configure a Publisher.
type Options struct {
	// Stream is the stream every message must land in (default topology.LogStream); a
	// subject that no stream or another stream takes is refused by the server.
	Stream string
	// AckTimeout bounds one Await (default DefaultAckTimeout).
	AckTimeout time.Duration
	// Registry encodes events (default events.Default).
	Registry *events.Registry
	// Duplicates, when set, counts the facts the log already had.
	Duplicates prometheus.Counter
}

// Validate reports every problem of the options at once.
func (o Options) Validate() error {
	var errs []error
	if o.AckTimeout < 0 {
		errs = append(errs, fmt.Errorf("negative ack timeout %s", o.AckTimeout))
	}
	return errors.Join(errs...)
}

// Publisher publishes to one stream. It is safe for concurrent use.
type Publisher struct {
	js         jetstream.JetStream
	stream     string
	ackTimeout time.Duration
	reg        *events.Registry
	dupMetric  prometheus.Counter
	dups       atomic.Int64
}

// New returns a publisher on js.
func New(js jetstream.JetStream, o Options) (*Publisher, error) {
	if js == nil {
		return nil, errors.New("publish: nil JetStream")
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if o.Stream == "" {
		o.Stream = topology.LogStream
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.Registry == nil {
		o.Registry = events.Default
	}
	return &Publisher{js: js, stream: o.Stream, ackTimeout: o.AckTimeout, reg: o.Registry, dupMetric: o.Duplicates}, nil
}

// Msg encodes ev as the log message: its subject from the registry, the CloudEvents
// headers, Nats-Msg-Id = ev.ID. An invalid event is an error wrapping events.ErrInvalid.
func (p *Publisher) Msg(ev events.Event) (*nats.Msg, error) {
	h, body, err := p.reg.Encode(ev)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ev.Type, err)
	}
	subj, err := ev.NATSSubject(p.reg)
	if err != nil {
		return nil, fmt.Errorf("subject of %s: %w", ev.Type, err)
	}
	m := &nats.Msg{Subject: subj, Header: nats.Header(h), Data: body}
	m.Header.Set(MsgIDHeader, ev.ID)
	return m, nil
}

// Send publishes m asynchronously into the publisher's stream; Await waits for the ack.
func (p *Publisher) Send(m *nats.Msg) (jetstream.PubAckFuture, error) {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header.Set(jetstream.ExpectedStreamHeader, p.stream)
	f, err := p.js.PublishMsgAsync(m)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	return f, nil
}

// Await waits until the log acknowledged every future, at most the ack timeout in all, and
// returns how many were duplicates. Every failed publish is reported (joined); a timeout
// wraps ErrAckTimeout.
func (p *Publisher) Await(ctx context.Context, futures []jetstream.PubAckFuture) (dups int, err error) {
	var errs []error
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		p.countDuplicates(dups)
	}()
	for _, f := range futures {
		// Usually acknowledged already: no timer needed.
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups++
			}
			continue
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("publish %s: %w", f.Msg().Subject, err))
			continue
		default:
		}
		if timer == nil {
			timer = time.NewTimer(p.ackTimeout)
		}
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups++
			}
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("publish %s: %w", f.Msg().Subject, err))
		case <-timer.C:
			return dups, fmt.Errorf("publish %s: %w within %s", f.Msg().Subject, ErrAckTimeout, p.ackTimeout)
		case <-ctx.Done():
			return dups, fmt.Errorf("publish %s: %w", f.Msg().Subject, ctx.Err())
		}
	}
	return dups, errors.Join(errs...)
}

func (p *Publisher) countDuplicates(n int) {
	if n == 0 {
		return
	}
	p.dups.Add(int64(n))
	if p.dupMetric != nil {
		p.dupMetric.Add(float64(n))
	}
}

// Publish encodes every event first (an invalid one publishes nothing), sends them and
// waits for the log's acks. dups counts facts the log already had.
func (p *Publisher) Publish(ctx context.Context, evs []events.Event) (dups int, err error) {
	if len(evs) == 0 {
		return 0, nil
	}
	msgs := make([]*nats.Msg, 0, len(evs))
	spans := make([]trace.Span, 0, len(evs))
	defer func() {
		for _, s := range spans {
			tracing.Fail(s, err)
			s.End()
		}
	}()
	for _, ev := range evs {
		ev, span := tracing.StartPublish(ctx, ev)
		spans = append(spans, span)
		m, err := p.Msg(ev)
		if err != nil {
			return 0, err
		}
		msgs = append(msgs, m)
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := p.Send(m)
		if err != nil {
			// What was sent is still awaited, so its outcome is counted.
			d, werr := p.Await(ctx, futures)
			return d, errors.Join(err, werr)
		}
		futures = append(futures, f)
	}
	return p.Await(ctx, futures)
}

// Duplicates is how many publishes so far the log reported as already stored.
func (p *Publisher) Duplicates() int64 { return p.dups.Load() }

// maxPending bounds the futures a Batch keeps before settling the oldest half: below
// nats.go's default async publish limit (4000), which otherwise stalls the publisher.
const maxPending = 2048

// Batch streams many publishes and waits for them together: Add sends at once, and Wait
// returns when the log has acknowledged everything added. Not safe for concurrent use.
type Batch struct {
	p       *Publisher
	futures []jetstream.PubAckFuture
	dups    int
}

// Batch starts a batch.
func (p *Publisher) Batch() *Batch { return &Batch{p: p} }

// Add publishes ev.
func (b *Batch) Add(ctx context.Context, ev events.Event) (err error) {
	ev, span := tracing.StartPublish(ctx, ev)
	defer func() {
		tracing.Fail(span, err)
		span.End()
	}()
	m, err := b.p.Msg(ev)
	if err != nil {
		return err
	}
	return b.AddMsg(ctx, m)
}

// AddMsg publishes a prepared message (e.g. a KV entry on a publisher for the bucket's stream).
func (b *Batch) AddMsg(ctx context.Context, m *nats.Msg) error {
	f, err := b.p.Send(m)
	if err != nil {
		return err
	}
	b.futures = append(b.futures, f)
	// Bound the memory of pending futures: settle the oldest half when many are waiting.
	if len(b.futures) >= maxPending {
		return b.settle(ctx, len(b.futures)/2)
	}
	return nil
}

func (b *Batch) settle(ctx context.Context, n int) error {
	d, err := b.p.Await(ctx, b.futures[:n])
	b.dups += d
	if err != nil {
		return err
	}
	b.futures = append(b.futures[:0], b.futures[n:]...)
	return nil
}

// Wait returns once everything added is acknowledged, with the number of duplicates.
func (b *Batch) Wait(ctx context.Context) (dups int, err error) {
	err = b.settle(ctx, len(b.futures))
	return b.dups, err
}
