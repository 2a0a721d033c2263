package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
)

// Stage runs a router of typed handlers on one durable consumer.
type Stage struct {
	*core
	router  *Router
	pending chan pendingAck
	wg      sync.WaitGroup
	// pubCounters caches the published series per output type (acker goroutine only).
	pubCounters map[events.Type]prometheus.Counter
}

func (s *Stage) published(t events.Type) prometheus.Counter {
	c, ok := s.pubCounters[t]
	if !ok {
		c = s.cfg.Metrics.Published.WithLabelValues(s.name, string(t))
		s.pubCounters[t] = c
	}
	return c
}

type pendingAck struct {
	msg     jetstream.Msg
	ctx     context.Context
	futures []jetstream.PubAckFuture
	types   []events.Type
}

// NewStage builds a stage runner. The router must handle every type the consumer reads.
func NewStage(js jetstream.JetStream, cfg Config, router *Router) (*Stage, error) {
	if router == nil {
		return nil, errors.New("worker: nil router")
	}
	if cfg.Producer == "" {
		return nil, errors.New("worker: a stage needs a producer name")
	}
	c, err := newCore(js, cfg)
	if err != nil {
		return nil, err
	}
	return &Stage{core: c, router: router, pubCounters: map[events.Type]prometheus.Counter{}}, nil
}

// Run consumes until ctx is cancelled, then finishes in-flight work and returns.
func (s *Stage) Run(ctx context.Context) error {
	s.pending = make(chan pendingAck, 4*s.cfg.Batch)
	s.wg.Add(1)
	go s.acker()
	return s.run(ctx, s.process, func() {
		close(s.pending)
		s.wg.Wait()
	})
}

type item struct {
	msg jetstream.Msg
	ev  events.Event
	ctx context.Context
	out []events.Event
	err error
}

func (s *Stage) process(ctx context.Context, batch []delivery) {
	items := make([]*item, 0, len(batch))
	for _, d := range batch {
		if d.err != nil {
			s.cfg.Metrics.Failed.WithLabelValues(s.name, string(ClassDecode)).Inc()
			s.deadLetter(ctx, d.msg, ClassDecode, d.err)
			continue
		}
		items = append(items, &item{msg: d.msg, ev: d.ev, ctx: s.traceCtx(ctx, d.ev)})
	}
	if len(items) == 0 {
		return
	}
	msgs := make([]jetstream.Msg, len(items))
	for i, it := range items {
		msgs[i] = it.msg
	}
	stop := s.keepAlive(msgs)
	s.handleAll(items)
	stop()
	for _, it := range items {
		if it.err != nil {
			s.fail(it.ctx, it.msg, it.err)
			continue
		}
		s.publish(it)
	}
}

func (s *Stage) handleAll(items []*item) {
	if s.cfg.Concurrency == 1 || len(items) == 1 {
		for _, it := range items {
			s.handle(it)
		}
		return
	}
	next := make(chan *item)
	var wg sync.WaitGroup
	for range min(s.cfg.Concurrency, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				s.handle(it)
			}
		}()
	}
	for _, it := range items {
		next <- it
	}
	close(next)
	wg.Wait()
}

func (s *Stage) handle(it *item) {
	h, ok := s.router.handler(it.ev.Type)
	if !ok {
		it.err = Permanent(fmt.Errorf("stage %s has no handler for %s", s.name, it.ev.Type))
		return
	}
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			it.err = fmt.Errorf("handler panic: %v", r)
		}
		s.latency.Observe(time.Since(start).Seconds())
	}()
	it.out, it.err = h(it.ctx, it.ev)
}

// publish sends the outputs of one input asynchronously and queues the input's ack until
// the log has acknowledged every output.
func (s *Stage) publish(it *item) {
	msgs := make([]*nats.Msg, 0, len(it.out))
	types := make([]events.Type, 0, len(it.out))
	for _, o := range it.out {
		if p := o.Producer(); p != s.cfg.Producer {
			s.deadLetter(it.ctx, it.msg, ClassPermanent, fmt.Errorf("output %s claims producer %q, stage is %q", o.Type, p, s.cfg.Producer))
			return
		}
		h, body, err := s.cfg.Registry.Encode(o)
		if err != nil {
			s.deadLetter(it.ctx, it.msg, ClassPermanent, fmt.Errorf("handler output: %w", err))
			return
		}
		subj, err := o.NATSSubject(s.cfg.Registry)
		if err != nil {
			s.deadLetter(it.ctx, it.msg, ClassPermanent, fmt.Errorf("handler output: %w", err))
			return
		}
		m := &nats.Msg{Subject: subj, Header: nats.Header(h), Data: body}
		m.Header.Set(nats.MsgIdHdr, o.ID)
		msgs = append(msgs, m)
		types = append(types, o.Type)
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := s.js.PublishMsgAsync(m)
		if err != nil {
			s.fail(it.ctx, it.msg, fmt.Errorf("publish %s: %w", m.Subject, err))
			return
		}
		futures = append(futures, f)
	}
	s.pending <- pendingAck{msg: it.msg, ctx: it.ctx, futures: futures, types: types}
}

// acker waits, in order, for each input's publish acks and then acks the input.
func (s *Stage) acker() {
	defer s.wg.Done()
	for p := range s.pending {
		var perr error
		for _, f := range p.futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				perr = err
			case <-time.After(30 * time.Second):
				perr = errors.New("no publish ack within 30s")
			}
		}
		if perr != nil {
			s.fail(p.ctx, p.msg, fmt.Errorf("publish: %w", perr))
			continue
		}
		for _, t := range p.types {
			s.published(t).Inc()
		}
		if s.cfg.BeforeAck != nil {
			if err := s.cfg.BeforeAck(p.msg); err != nil {
				s.log.WarnContext(p.ctx, "ack withheld by hook", "err", err)
				continue
			}
		}
		if err := p.msg.Ack(); err != nil {
			s.log.WarnContext(p.ctx, "ack failed", "err", err)
			continue
		}
		s.processed.Inc()
	}
}
