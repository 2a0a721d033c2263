package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/publish"
)

// Stage runs a router of typed handlers on one durable consumer. Messages stream through
// the consume engine: decode, handle (Pipeline: middleware, output check), encode and
// publish asynchronously on nats.go's callback goroutine (or on Concurrency workers), while
// one acker goroutine acks each input once the log has acknowledged all of its outputs.
type Stage struct {
	*core
	pipe    *Pipeline
	pub     *publish.Publisher
	pending chan pendingAck
	// pubCounters caches the published series per output type (acker goroutine only).
	pubCounters map[events.Type]prometheus.Counter
}

type pendingAck struct {
	msg     jetstream.Msg
	trace   string // the input's traceparent, for log lines
	futures []jetstream.PubAckFuture
	types   []events.Type
}

// NewStage builds a stage runner for the topology consumer cfg.Consumer names. Its
// producer, and so the only output types it may publish, come from the topology. The
// runtime middleware (tracing, latency, recover) wraps the router's.
func NewStage(js jetstream.JetStream, cfg Config, router *Router) (*Stage, error) {
	if router == nil {
		return nil, errors.New("worker: nil router")
	}
	c, err := newCore(js, cfg, ClassTransient, ClassPermanent, ClassDecode, ClassExhausted)
	if err != nil {
		return nil, err
	}
	pipe, err := NewPipeline(c.name, router, c.cfg.Registry, Tracing(), Latency(c.latency), Recover(c.log))
	if err != nil {
		return nil, err
	}
	if cfg.Producer != "" && cfg.Producer != pipe.Producer() {
		return nil, fmt.Errorf("worker: stage %s is configured as producer %q, the topology says %q", c.name, cfg.Producer, pipe.Producer())
	}
	pub, err := publish.New(js, publish.Options{Stream: c.cfg.Stream, Registry: c.cfg.Registry, Duplicates: c.dups})
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	return &Stage{core: c, pipe: pipe, pub: pub, pubCounters: map[events.Type]prometheus.Counter{}}, nil
}

// Pipeline is the stage's NATS-free part.
func (s *Stage) Pipeline() *Pipeline { return s.pipe }

// Run consumes until ctx is cancelled, then drains: the messages already pulled are
// handled, their outputs published and their inputs acked before Run returns.
func (s *Stage) Run(ctx context.Context) error {
	slots := make([]slot, s.cfg.Concurrency)
	return s.run(ctx, slots, func(work context.Context) consumer {
		work = WithProducer(work, s.pipe.Producer())
		s.pending = make(chan pendingAck, 4*s.cfg.Batch)
		quitAcker := make(chan struct{})
		var ackerDone sync.WaitGroup
		ackerDone.Go(func() { s.acker(work, quitAcker) })
		finishAcker := func() {
			close(quitAcker)
			ackerDone.Wait()
		}
		if s.cfg.Concurrency == 1 {
			return consumer{
				handle: func(m jetstream.Msg) { s.processOne(work, &slots[0], m) },
				finish: finishAcker,
			}
		}
		queue := make(chan jetstream.Msg)
		quit := make(chan struct{})
		var workers sync.WaitGroup
		for i := range slots {
			workers.Go(func() {
				for {
					select {
					case m := <-queue:
						s.processOne(work, &slots[i], m)
					case <-quit:
						return
					}
				}
			})
		}
		return consumer{
			handle: func(m jetstream.Msg) {
				select {
				case queue <- m:
				case <-work.Done(): // grace over: left unacked, redelivered
				}
			},
			finish: func() {
				close(quit)
				workers.Wait()
				finishAcker()
			},
		}
	})
}

func (s *Stage) processOne(ctx context.Context, sl *slot, m jetstream.Msg) {
	ev, err := s.pipe.Decode(events.Header(m.Headers()), m.Data())
	if err != nil {
		s.fail(ctx, m, err)
		return
	}
	sl.hold(m)
	out, err := s.pipe.Handle(ctx, ev)
	sl.release()
	if err != nil {
		s.fail(traceCtx(ctx, ev), m, err)
		return
	}
	s.publish(ctx, m, ev, out)
}

// publish sends the outputs of one input asynchronously and queues the input's ack until
// the log has acknowledged every output. All outputs are encoded before any is sent, so
// an invalid one publishes nothing.
func (s *Stage) publish(ctx context.Context, in jetstream.Msg, ev events.Event, out []events.Event) {
	msgs := make([]*nats.Msg, 0, len(out))
	types := make([]events.Type, 0, len(out))
	for _, o := range out {
		m, err := s.pub.Msg(o)
		if err != nil {
			s.fail(traceCtx(ctx, ev), in, Permanent(fmt.Errorf("handler output: %w", err)))
			return
		}
		msgs = append(msgs, m)
		types = append(types, o.Type)
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := s.pub.Send(m)
		if err != nil {
			s.fail(traceCtx(ctx, ev), in, err)
			return
		}
		futures = append(futures, f)
	}
	select {
	case s.pending <- pendingAck{msg: in, trace: ev.TraceParent, futures: futures, types: types}:
	case <-ctx.Done(): // grace over: left unacked, redelivered; the outputs deduplicate
	}
}

func (s *Stage) published(t events.Type) prometheus.Counter {
	c, ok := s.pubCounters[t]
	if !ok {
		c = s.cfg.Metrics.Published.WithLabelValues(s.name, string(t))
		s.pubCounters[t] = c
	}
	return c
}

// acker waits, in order, for each input's publish acks and then acks the input. After quit
// it acks what is already queued and returns.
func (s *Stage) acker(ctx context.Context, quit <-chan struct{}) {
	for {
		select {
		case p := <-s.pending:
			s.ack(ctx, p)
		case <-quit:
			for {
				select {
				case p := <-s.pending:
					s.ack(ctx, p)
				default:
					return
				}
			}
		}
	}
}

func (s *Stage) ack(ctx context.Context, p pendingAck) {
	if _, err := s.pub.Await(ctx, p.futures); err != nil {
		s.fail(traceParentCtx(ctx, p.trace), p.msg, err)
		return
	}
	for _, t := range p.types {
		s.published(t).Inc()
	}
	if s.cfg.BeforeAck != nil {
		if err := s.cfg.BeforeAck(p.msg); err != nil {
			s.log.WarnContext(traceParentCtx(ctx, p.trace), "ack withheld by hook", "err", err)
			return
		}
	}
	if err := p.msg.Ack(); err != nil {
		// The outputs are in the log: a redelivery republishes them as duplicates.
		s.log.WarnContext(traceParentCtx(ctx, p.trace), "ack failed; the input will be redelivered", "subject", p.msg.Subject(), "err", err)
		return
	}
	s.processed.Inc()
}
