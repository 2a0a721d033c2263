package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
)

// Stage runs a router of typed handlers on one durable consumer. Messages stream through
// nats.go's Consume callback: decode, handle, encode and publish asynchronously there (or
// on Concurrency workers), while one acker goroutine acks each input once the log has
// acknowledged all of its outputs.
type Stage struct {
	*core
	router  *Router
	pending chan pendingAck
	// pubCounters caches the published series per output type (acker goroutine only).
	pubCounters map[events.Type]prometheus.Counter
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

// slot is one handler goroutine's message in flight, watched by the keep-alive ticker.
type slot struct {
	msg   atomic.Pointer[jetstream.Msg]
	since atomic.Int64
}

// Run consumes until ctx is cancelled, then drains: the messages already pulled are
// handled, their outputs published and their inputs acked before Run returns.
func (s *Stage) Run(ctx context.Context) error {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, s.cfg.Stream, s.cfg.Consumer)
	if err != nil && ctx.Err() != nil {
		return nil // stopped while starting
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", s.name, err)
	}
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	s.pending = make(chan pendingAck, 4*s.cfg.Batch)
	var ackerDone sync.WaitGroup
	ackerDone.Add(1)
	go func() {
		defer ackerDone.Done()
		s.acker()
	}()

	slots := make([]slot, s.cfg.Concurrency)
	stopKeepAlive := s.keepAliveSlots(slots)
	defer stopKeepAlive()

	var handle func(jetstream.Msg)
	var workers sync.WaitGroup
	var queue chan jetstream.Msg
	if s.cfg.Concurrency == 1 {
		handle = func(m jetstream.Msg) { s.processOne(work, &slots[0], m) }
	} else {
		queue = make(chan jetstream.Msg)
		for i := range slots {
			workers.Add(1)
			go func() {
				defer workers.Done()
				for m := range queue {
					s.processOne(work, &slots[i], m)
				}
			}()
		}
		handle = func(m jetstream.Msg) { queue <- m }
	}

	cc, err := cons.Consume(handle, jetstream.PullMaxMessages(s.cfg.Batch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) {
				s.log.Warn("pull", "err", err)
			}
		}))
	if err != nil {
		close(s.pending)
		ackerDone.Wait()
		return fmt.Errorf("consumer %s: consume: %w", s.name, err)
	}
	s.log.Info("consuming", "filters", s.cfg.Consumer.FilterSubjects, "concurrency", s.cfg.Concurrency)
	<-ctx.Done()
	cc.Drain()
	time.AfterFunc(s.cfg.ShutdownTimeout, cancelWork)
	select {
	case <-cc.Closed():
	case <-work.Done():
		s.log.Warn("shutdown grace period over; unfinished messages will be redelivered")
	}
	if queue != nil {
		close(queue)
		workers.Wait()
	}
	close(s.pending)
	ackerDone.Wait()
	if err := s.js.Conn().FlushTimeout(5 * time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Warn("flush acks on shutdown", "err", err)
	}
	s.log.Info("stopped")
	return nil
}

// keepAliveSlots sends InProgress for any handler running longer than InProgressEvery.
func (s *Stage) keepAliveSlots(slots []slot) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(s.cfg.InProgressEvery / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				for i := range slots {
					m := slots[i].msg.Load()
					if m != nil && now.Sub(time.Unix(0, slots[i].since.Load())) >= s.cfg.InProgressEvery {
						_ = (*m).InProgress()
					}
				}
			}
		}
	}()
	return func() { close(done) }
}

func (s *Stage) processOne(ctx context.Context, sl *slot, m jetstream.Msg) {
	ev, err := s.cfg.Registry.Decode(events.Header(m.Headers()), m.Data())
	if err != nil {
		s.cfg.Metrics.Failed.WithLabelValues(s.name, string(ClassDecode)).Inc()
		s.deadLetter(ctx, m, ClassDecode, err)
		return
	}
	hctx := s.traceCtx(ctx, ev)
	sl.since.Store(time.Now().UnixNano())
	sl.msg.Store(&m)
	out, err := s.handle(hctx, ev)
	sl.msg.Store(nil)
	if err != nil {
		s.fail(hctx, m, err)
		return
	}
	s.publish(hctx, m, out)
}

func (s *Stage) handle(ctx context.Context, ev events.Event) (out []events.Event, err error) {
	h, ok := s.router.handler(ev.Type)
	if !ok {
		return nil, Permanent(fmt.Errorf("stage %s has no handler for %s", s.name, ev.Type))
	}
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
		s.latency.Observe(time.Since(start).Seconds())
	}()
	return h(ctx, ev)
}

// publish sends the outputs of one input asynchronously and queues the input's ack until
// the log has acknowledged every output. All outputs are encoded before any is sent, so
// an invalid one publishes nothing.
func (s *Stage) publish(ctx context.Context, in jetstream.Msg, out []events.Event) {
	msgs := make([]*nats.Msg, 0, len(out))
	types := make([]events.Type, 0, len(out))
	for _, o := range out {
		if p := o.Producer(); p != s.cfg.Producer {
			s.deadLetter(ctx, in, ClassPermanent, fmt.Errorf("output %s claims producer %q, stage is %q", o.Type, p, s.cfg.Producer))
			return
		}
		h, body, err := s.cfg.Registry.Encode(o)
		if err == nil {
			var subj string
			if subj, err = o.NATSSubject(s.cfg.Registry); err == nil {
				m := &nats.Msg{Subject: subj, Header: nats.Header(h), Data: body}
				m.Header.Set(nats.MsgIdHdr, o.ID)
				msgs = append(msgs, m)
				types = append(types, o.Type)
				continue
			}
		}
		s.deadLetter(ctx, in, ClassPermanent, fmt.Errorf("handler output: %w", err))
		return
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := s.js.PublishMsgAsync(m)
		if err != nil {
			s.fail(ctx, in, fmt.Errorf("publish %s: %w", m.Subject, err))
			return
		}
		futures = append(futures, f)
	}
	s.pending <- pendingAck{msg: in, ctx: ctx, futures: futures, types: types}
}

func (s *Stage) published(t events.Type) prometheus.Counter {
	c, ok := s.pubCounters[t]
	if !ok {
		c = s.cfg.Metrics.Published.WithLabelValues(s.name, string(t))
		s.pubCounters[t] = c
	}
	return c
}

// acker waits, in order, for each input's publish acks and then acks the input.
func (s *Stage) acker() {
	timeout := time.NewTimer(time.Hour)
	timeout.Stop()
	for p := range s.pending {
		var perr error
		for _, f := range p.futures {
			select {
			case <-f.Ok():
				continue // usually acknowledged already: no timer needed
			default:
			}
			timeout.Reset(30 * time.Second)
			select {
			case <-f.Ok():
			case err := <-f.Err():
				perr = err
			case <-timeout.C:
				perr = errors.New("no publish ack within 30s")
			}
			timeout.Stop()
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
