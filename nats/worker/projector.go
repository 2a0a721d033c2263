package worker

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/projections"
)

// Projector applies facts to a projection in log order. A failed Apply is retried in
// process, with backoff, while the batch is held (InProgress): the consumer's unacked
// window is one batch, so no later fact can overtake it and no fact is acked unapplied.
type Projector struct {
	*core
	proj projections.Projection
}

// NewProjector builds a projector runner.
func NewProjector(js jetstream.JetStream, cfg Config, p projections.Projection) (*Projector, error) {
	if p == nil {
		return nil, errors.New("worker: nil projection")
	}
	c, err := newCore(js, cfg)
	if err != nil {
		return nil, err
	}
	return &Projector{core: c, proj: p}, nil
}

// Run consumes until ctx is cancelled, then finishes the batch in flight and returns.
func (p *Projector) Run(ctx context.Context) error {
	return p.run(ctx, p.process, func() {})
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
	for _, d := range batch {
		m, ev := d.msg, d.ev
		if d.err != nil {
			p.cfg.Metrics.Failed.WithLabelValues(p.name, string(ClassDecode)).Inc()
			p.deadLetter(ctx, m, ClassDecode, d.err)
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			p.deadLetter(ctx, m, ClassPermanent, err)
			continue
		}
		facts = append(facts, projections.Fact{Seq: meta.Sequence.Stream, Event: ev})
		held = append(held, m)
	}
	if len(facts) == 0 {
		return
	}
	facts = inLogOrder(facts)
	stop := p.keepAlive(held)
	defer stop()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := p.proj.Apply(ctx, facts)
		p.latency.Observe(time.Since(start).Seconds())
		if err == nil {
			break
		}
		p.cfg.Metrics.Failed.WithLabelValues(p.name, string(ClassTransient)).Inc()
		delay := p.cfg.Backoff.Delay(attempt)
		p.log.ErrorContext(ctx, "apply failed; retrying the batch", "first_seq", facts[0].Seq, "facts", len(facts), "attempt", attempt, "delay", delay, "err", err)
		select {
		case <-ctx.Done():
			// Shutdown grace is over: leave the batch unacked; it is redelivered in order.
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
			p.log.WarnContext(ctx, "ack failed", "err", err)
			continue
		}
		p.processed.Inc()
	}
}
