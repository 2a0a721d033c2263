package worker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// consumer is what a runner plugs into the consume engine.
type consumer struct {
	// handle is called on nats.go's consume goroutine for every pulled message. It must
	// return once work is done (the grace period is over) rather than block forever.
	handle func(jetstream.Msg)
	// finish is called once no handle call is running or will run: it waits for the
	// runner's goroutines to process what they were given.
	finish func()
}

// run is the one consume engine of stages and projectors: create or update the durable
// consumer, stream its messages to the runner, keep long work alive (slots), and when ctx
// ends drain what was already pulled, give in-flight work ShutdownTimeout, let the runner
// finish, and flush the acks. start gets the work context: it outlives ctx by the grace
// period. A closed connection ends run with an error.
func (c *core) run(ctx context.Context, slots []slot, start func(work context.Context) consumer) error {
	cons, err := c.createConsumer(ctx)
	if err != nil && ctx.Err() != nil {
		return nil // stopped while starting
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.name, err)
	}
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopKeepAlive := c.keepAlive(slots)
	defer stopKeepAlive()

	r := start(work)
	fatal := make(chan error, 1)
	cc, err := cons.Consume(r.handle, jetstream.PullMaxMessages(c.cfg.Batch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			switch {
			case errors.Is(err, jetstream.ErrNoHeartbeat):
			case errors.Is(err, nats.ErrConnectionClosed):
				select {
				case fatal <- err:
				default:
				}
			default:
				c.log.Warn("pull", "err", err)
			}
		}))
	if err != nil {
		r.finish()
		return fmt.Errorf("consumer %s: consume: %w", c.name, err)
	}
	c.log.Info("consuming", "filters", c.cfg.Consumer.FilterSubjects, "batch", c.cfg.Batch, "concurrency", c.cfg.Concurrency)
	var runErr error
	select {
	case <-ctx.Done():
		cc.Drain()
	case err := <-fatal:
		// Nothing pulled can be acked any more: stop at once, the server redelivers.
		runErr = fmt.Errorf("consumer %s: %w", c.name, err)
		c.log.Error("connection closed; stopping", "err", err)
		cc.Stop()
		cancelWork()
	}
	grace := time.AfterFunc(c.cfg.ShutdownTimeout, cancelWork)
	defer grace.Stop()
	select {
	case <-cc.Closed():
	case <-work.Done():
		if runErr == nil {
			c.log.Warn("shutdown grace period over; unfinished messages will be redelivered")
		}
		cc.Stop()
	}
	r.finish()
	if err := c.js.Conn().FlushTimeout(5 * time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		c.log.Warn("flush acks on shutdown", "err", err)
	}
	c.log.Info("stopped")
	return runErr
}

// createBackoff paces the attempts to create the durable consumer while the server cannot
// answer.
var createBackoff = Backoff{Base: 250 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2}

// createConsumer creates or updates the durable consumer, and tries again for as long as the
// server cannot answer: a JetStream cluster electing the consumer's or the stream's leader
// lets the request time out, finds no responder, or says it is unavailable (a SIGKILLed
// node made both stages of a cluster test exit this way, and the pipeline stalled). A
// request the server answers with a refusal (a bad config, no such stream) is returned.
func (c *core) createConsumer(ctx context.Context) (jetstream.Consumer, error) {
	for attempt := 1; ; attempt++ {
		cons, err := c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, c.cfg.Consumer)
		if err == nil || ctx.Err() != nil || !Unanswered(err) {
			return cons, err
		}
		delay := createBackoff.Delay(attempt)
		c.log.Warn("cannot create the consumer yet (the server did not answer); retrying", "attempt", attempt, "delay", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// Unanswered reports whether a JetStream API request failed because no server could answer
// it for now (a timeout, no responder, a 5xx API error: a cluster electing a leader), rather
// than because the server refused it.
func Unanswered(err error) bool {
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok {
		return apiErr.Code >= 500 // 503: JetStream (or its cluster) temporarily unavailable
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders)
}

// slot is one unit of work in flight (a stage's message, a projector's held batch), watched
// by the keep-alive ticker.
type slot struct {
	msg   atomic.Pointer[jetstream.Msg]
	batch atomic.Pointer[[]jetstream.Msg]
	// since is when the work started or was last kept alive (unix nanoseconds).
	since atomic.Int64
}

func (s *slot) hold(m jetstream.Msg) {
	s.since.Store(time.Now().UnixNano())
	s.msg.Store(&m)
}

func (s *slot) holdBatch(ms []jetstream.Msg) {
	s.since.Store(time.Now().UnixNano())
	s.batch.Store(&ms)
}

func (s *slot) release() {
	s.msg.Store(nil)
	s.batch.Store(nil)
}

// keepAlive sends InProgress for work held longer than InProgressEvery, and again every
// InProgressEvery while it lasts, until the returned stop is called.
func (c *core) keepAlive(slots []slot) (stop func()) {
	done := make(chan struct{})
	every := c.cfg.InProgressEvery
	go func() {
		t := time.NewTicker(every / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				for i := range slots {
					c.touch(&slots[i], now, every)
				}
			}
		}
	}()
	return func() { close(done) }
}

func (c *core) touch(s *slot, now time.Time, every time.Duration) {
	since := s.since.Load()
	if now.Sub(time.Unix(0, since)) < every {
		return
	}
	var msgs []jetstream.Msg
	if m := s.msg.Load(); m != nil {
		msgs = []jetstream.Msg{*m}
	} else if b := s.batch.Load(); b != nil {
		msgs = *b
	}
	if len(msgs) == 0 || !s.since.CompareAndSwap(since, now.UnixNano()) {
		return // idle, or new work started meanwhile
	}
	for _, m := range msgs {
		if err := m.InProgress(); err != nil {
			c.log.Warn("keep-alive failed; the message may be redelivered while still in work (its outputs are deduplicated)",
				"subject", m.Subject(), "err", err)
		}
	}
}
