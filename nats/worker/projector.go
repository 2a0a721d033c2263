package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/tracing"
	"github.com/tgflow/tgflow/projections"
)

// Projector applies facts to a projection in log order. A failed Apply is retried in
// process, with backoff, while the batch is held (InProgress): the consumer's unacked
// window is one batch, so no later fact can overtake it and no fact is acked unapplied.
// A failure wrapping projections.ErrBackend is an outage (class "backend"); any other is a
// bug (class "bug"): retried and held the same way, so nothing is lost, but alerted on.
type Projector struct {
	*core
	proj projections.Projection
	// slots holds the batch in work, for the keep-alive.
	slots [1]slot
	// lastDelivery is the highest consumer delivery sequence this process has accounted for:
	// applied in a batch, or covered by a resync from the log (Config.Gap). It starts at the
	// consumer's delivered sequence when Run starts, so that even the first batch's missing
	// deliveries are noticed.
	lastDelivery uint64
}

// NewProjector builds a projector runner.
func NewProjector(js jetstream.JetStream, cfg Config, p projections.Projection) (*Projector, error) {
	if p == nil {
		return nil, errors.New("worker: nil projection")
	}
	c, err := newCore(js, cfg, ClassBackend, ClassBug, ClassPermanent, ClassDecode)
	if err != nil {
		return nil, err
	}
	return &Projector{core: c, proj: p}, nil
}

// delivery is a pulled message, decoded on the consume goroutine so that decoding overlaps
// applying.
type delivery struct {
	msg jetstream.Msg
	ev  events.Event
	err error
}

// Run consumes until ctx is cancelled, then finishes the batch in flight and returns. With a
// Config.Gap, it first applies from the log every fact the consumer delivered before this
// start (to a predecessor that died before applying or acking them): see resync.
func (p *Projector) Run(ctx context.Context) error {
	if p.cfg.Gap != nil {
		for attempt := 1; ; attempt++ {
			err := p.resync(ctx)
			if err == nil {
				break
			}
			delay := p.cfg.Backoff.Delay(attempt)
			p.log.WarnContext(ctx, "applying the facts delivered before the start failed; retrying", "attempt", attempt, "delay", delay, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
		}
	}
	return p.run(ctx, p.slots[:], func(work context.Context) consumer {
		in := make(chan delivery, p.cfg.Batch)
		quit := make(chan struct{})
		var done sync.WaitGroup
		done.Go(func() { p.batches(work, in, quit) })
		return consumer{
			handle: func(m jetstream.Msg) {
				ev, err := p.cfg.Registry.Decode(events.Header(m.Headers()), m.Data())
				select {
				case in <- delivery{msg: m, ev: ev, err: err}:
				case <-work.Done(): // grace over: left unacked, redelivered in order
				}
			},
			finish: func() {
				close(quit)
				done.Wait()
			},
		}
	})
}

// batches groups what is waiting into batches of at most Batch and processes them; after
// quit it processes what is already queued and returns.
func (p *Projector) batches(ctx context.Context, in <-chan delivery, quit <-chan struct{}) {
	for {
		var first delivery
		select {
		case first = <-in:
		case <-quit:
			select {
			case first = <-in:
			default:
				return
			}
		}
		batch := append(make([]delivery, 0, p.cfg.Batch), first)
	fill:
		for len(batch) < p.cfg.Batch {
			select {
			case d := <-in:
				batch = append(batch, d)
			default:
				break fill
			}
		}
		p.batchSize.Observe(float64(len(batch)))
		p.process(ctx, batch)
	}
}

// inLogOrder sorts a batch's facts by sequence and keeps one fact per sequence. A batch
// holds messages in delivery order, and JetStream sends a redelivery (an ack that did not
// arrive in time, a nak) ahead of new messages, so a batch can be [18 … 23, 11] or hold one
// fact twice; Apply takes facts in log order, each once. Every held message is still acked.
func inLogOrder(facts []projections.Fact) []projections.Fact {
	slices.SortStableFunc(facts, func(a, b projections.Fact) int { return cmp.Compare(a.Seq, b.Seq) })
	return slices.CompactFunc(facts, func(a, b projections.Fact) bool { return a.Seq == b.Seq })
}

func (p *Projector) process(ctx context.Context, batch []delivery) {
	facts := make([]projections.Fact, 0, len(batch))
	held := make([]jetstream.Msg, 0, len(batch))
	var deliveries []uint64 // consumer sequences of the batch, dead-lettered ones included
	for _, d := range batch {
		m, ev := d.msg, d.ev
		meta, err := m.Metadata()
		if err == nil {
			deliveries = append(deliveries, meta.Sequence.Consumer)
		}
		if d.err != nil {
			p.fail(ctx, m, d.err)
			continue
		}
		if err != nil {
			p.fail(ctx, m, Permanent(errors.Join(ErrNoMetadata, err)))
			continue
		}
		facts = append(facts, projections.Fact{Seq: meta.Sequence.Stream, Event: ev})
		held = append(held, m)
	}
	if len(facts) == 0 {
		p.delivered(deliveries)
		return
	}
	facts = inLogOrder(facts)
	if p.cfg.Gap != nil && p.missing(deliveries) {
		p.log.WarnContext(ctx, "deliveries missing (the server delivered facts this process never received); applying the log's facts up to the consumer's last delivery first",
			"first_seq", facts[0].Seq, "last_delivery", p.lastDelivery, "deliveries", len(deliveries))
		if err := p.resync(ctx); err != nil {
			// Left unacked, and lastDelivery not moved: the batch comes again, and the next
			// batch is seen to miss deliveries too.
			p.log.ErrorContext(ctx, "filling the gap from the log failed; the batch is left to be redelivered", "err", err)
			return
		}
	}
	sl := &p.slots[0]
	sl.holdBatch(held)
	defer sl.release()
	applyCtx, span := tracing.StartBatch(ctx, p.name, len(facts), func(i int) tracing.Fact {
		f := facts[i]
		return tracing.Fact{Seq: f.Seq, Type: f.Event.Type, Subject: f.Event.Subject, TraceParent: f.Event.TraceParent}
	})
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := p.proj.Apply(applyCtx, facts)
		p.latency.Observe(time.Since(start).Seconds())
		if err == nil {
			span.End(nil)
			break
		}
		span.Attempt(err)
		delay := p.cfg.Backoff.Delay(attempt)
		attrs := []any{"first_seq", facts[0].Seq, "facts", len(facts), "attempt", attempt, "delay", delay, "err", err}
		if errors.Is(err, projections.ErrBackend) {
			p.cfg.Metrics.Failed.WithLabelValues(p.name, string(ClassBackend)).Inc()
			p.log.WarnContext(ctx, "projection backend failed; retrying the batch", attrs...)
		} else {
			// Not an outage: the same facts will likely fail the same way. Hold them (a skipped
			// fact would make the model diverge from the log) and alert.
			p.cfg.Metrics.Failed.WithLabelValues(p.name, string(ClassBug)).Inc()
			p.log.ErrorContext(ctx, "projection apply failed with a non-backend error (a bug, not an outage); holding and retrying the batch", attrs...)
		}
		select {
		case <-ctx.Done():
			// Shutdown grace is over: leave the batch unacked; it is redelivered in order.
			span.End(ctx.Err())
			return
		case <-time.After(delay):
		}
		p.cfg.Metrics.Retried.WithLabelValues(p.name).Inc()
	}
	for _, m := range held {
		if p.cfg.BeforeAck != nil {
			if err := p.cfg.BeforeAck(m); err != nil {
				p.log.WarnContext(ctx, "ack withheld by hook", "err", err)
				continue
			}
		}
		if err := m.Ack(); err != nil {
			// Applied: the redelivered fact is at or below the model's checkpoint.
			p.log.WarnContext(ctx, "ack failed; the fact will be redelivered", "subject", m.Subject(), "err", err)
			continue
		}
		p.processed.Inc()
	}
	p.delivered(deliveries)
}

// delivered records the deliveries of a batch done with.
func (p *Projector) delivered(deliveries []uint64) {
	if len(deliveries) > 0 {
		p.lastDelivery = max(p.lastDelivery, slices.Max(deliveries))
	}
}

// resync applies from the log (Config.Gap) every fact up to the last one the consumer has
// delivered, and accounts for every delivery up to then. A delivery this process never
// received (lost in transit while a cluster moved the consumer's leader, or sent to a pull
// request of a predecessor that died) comes again only after its ack wait, and may be of any
// sequence up to the consumer's delivered one — below, inside or above the batch at hand,
// since the batch may hold redeliveries of lower facts. The facts applied meanwhile would
// move the checkpoint past it, and the projection would skip it as applied when it comes.
// Every fact ever delivered is at or below the consumer's delivered stream sequence, so
// applying the log up to there leaves nothing missing below the checkpoint.
func (p *Projector) resync(ctx context.Context) error {
	cons, err := p.js.Consumer(ctx, p.cfg.Stream, p.name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		p.lastDelivery = 0 // Run creates it; it delivers the log in order, from delivery 1
		return nil
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", p.name, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", p.name, err)
	}
	if info.Delivered.Stream > 0 {
		if err := p.cfg.Gap(ctx, info.Delivered.Stream); err != nil {
			return fmt.Errorf("apply the log up to seq %d: %w", info.Delivered.Stream, err)
		}
	}
	p.lastDelivery = max(p.lastDelivery, info.Delivered.Consumer)
	return nil
}

// missing reports whether deliveries (the consumer sequences of a batch) skip one after the
// last accounted for, or have a hole above it: each delivery, first or repeated, takes the
// next consumer sequence, and this process is the consumer's only reader. Deliveries at or
// below the last accounted for (late arrivals after a resync) are not looked at; a delivery
// that arrives after a later one looks like a skip, and the resync it causes is redundant,
// not wrong.
func (p *Projector) missing(deliveries []uint64) bool {
	next := p.lastDelivery + 1
	for _, d := range slices.Sorted(slices.Values(deliveries)) {
		switch {
		case d < next: // accounted for, or the same delivery twice
		case d > next:
			return true
		default:
			next++
		}
	}
	return false
}
