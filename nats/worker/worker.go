// Package worker is the one runtime every stage and projection uses: pull in batches,
// decode, call a typed handler (or apply a projection), publish outputs with Nats-Msg-Id =
// event id and wait for the publish acks, then ack the input. Failures are classified:
// transient → NakWithDelay with exponential backoff and jitter; permanent or undecodable →
// a DLQ record, then Term; deliveries exhausted → DLQ as well. Long handlers are kept alive
// with InProgress; shutdown drains what was already pulled.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/topology"
)

// Config configures a stage or projector runner.
type Config struct {
	// Consumer is the durable consumer's config, normally topology.Consumer.Config(). The
	// runner creates or updates it on start; it never invents a consumer name.
	Consumer jetstream.ConsumerConfig
	// Stream is the log stream (default topology.LogStream).
	Stream string
	// Producer names what a stage publishes (the CloudEvents source). Projectors leave it empty.
	Producer string
	// Batch is the most messages handled together (default 128).
	Batch int
	// Concurrency is how many handlers run at once within a batch (default 1).
	Concurrency int
	// Backoff is the redelivery delay policy for transient failures.
	Backoff Backoff
	// InProgressEvery is how often a running batch tells the server it is still being worked
	// on (default AckWait/3).
	InProgressEvery time.Duration
	// ShutdownTimeout bounds how long in-flight work may take after the stop signal (default 30s).
	ShutdownTimeout time.Duration
	Registry        *events.Registry
	Metrics         *Metrics
	Logger          *slog.Logger
	// BeforeAck is a test hook called after the outputs are acknowledged by the log (or the
	// projection applied) and before the input is acked. Returning an error leaves the input
	// unacknowledged, as a crash at that point would.
	BeforeAck func(msg jetstream.Msg) error
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = topology.LogStream
	}
	if c.Batch <= 0 {
		c.Batch = 128
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Backoff == (Backoff{}) {
		c.Backoff = DefaultBackoff
	}
	if c.InProgressEvery <= 0 {
		ack := c.Consumer.AckWait
		if ack <= 0 {
			ack = 30 * time.Second
		}
		c.InProgressEvery = ack / 3
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Registry == nil {
		c.Registry = events.Default
	}
	if c.Metrics == nil {
		c.Metrics = DefaultMetrics()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem of the config at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Consumer.Durable == "" {
		errs = append(errs, errors.New("consumer has no durable name"))
	}
	if c.Consumer.Name != "" && c.Consumer.Name != c.Consumer.Durable {
		errs = append(errs, fmt.Errorf("consumer name %q differs from durable %q", c.Consumer.Name, c.Consumer.Durable))
	}
	if len(c.Consumer.FilterSubjects) == 0 && c.Consumer.FilterSubject == "" {
		errs = append(errs, fmt.Errorf("consumer %s has no filter subjects", c.Consumer.Durable))
	}
	if c.Batch > c.Consumer.MaxAckPending && c.Consumer.MaxAckPending > 0 {
		errs = append(errs, fmt.Errorf("batch %d exceeds consumer max ack pending %d", c.Batch, c.Consumer.MaxAckPending))
	}
	return errors.Join(errs...)
}

// core is the fetch loop shared by stages and projectors.
type core struct {
	cfg  Config
	js   jetstream.JetStream
	name string
	log  *slog.Logger
	// Series bound to this stage's label once, off the per-message path.
	processed prometheus.Counter
	latency   prometheus.Observer
	batchSize prometheus.Observer
}

func newCore(js jetstream.JetStream, cfg Config) (*core, error) {
	if js == nil {
		return nil, errors.New("worker: nil JetStream")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	name := cfg.Consumer.Durable
	// Create every series at zero so rate() and increase() alerts see a stage that has not
	// failed yet, instead of no series at all.
	for _, class := range []Class{ClassTransient, ClassPermanent, ClassDecode, ClassExhausted} {
		cfg.Metrics.Failed.WithLabelValues(name, string(class))
		cfg.Metrics.DeadLettered.WithLabelValues(name, string(class))
	}
	cfg.Metrics.Retried.WithLabelValues(name)
	return &core{cfg: cfg, js: js, name: name, log: cfg.Logger.With("stage", name),
		processed: cfg.Metrics.Processed.WithLabelValues(name),
		latency:   cfg.Metrics.Latency.WithLabelValues(name),
		batchSize: cfg.Metrics.BatchSize.WithLabelValues(name),
	}, nil
}

// run pulls batches and hands each to process until ctx is cancelled, then drains the
// messages already pulled, waits for finish, and returns.
// delivery is a pulled message, decoded on the reader goroutine so that decoding overlaps
// handling and publishing.
type delivery struct {
	msg jetstream.Msg
	ev  events.Event
	err error
}

func (c *core) run(ctx context.Context, process func(ctx context.Context, batch []delivery), finish func()) error {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, c.cfg.Consumer)
	if err != nil && ctx.Err() != nil {
		return nil // stopped while starting
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.name, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(c.cfg.Batch), jetstream.WithMessagesErrOnMissingHeartbeat(false))
	if err != nil {
		return fmt.Errorf("consumer %s: messages: %w", c.name, err)
	}
	msgs := make(chan delivery, c.cfg.Batch)
	readErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			switch {
			case err == nil:
				ev, derr := c.cfg.Registry.Decode(events.Header(m.Headers()), m.Data())
				msgs <- delivery{msg: m, ev: ev, err: derr}
			case errors.Is(err, jetstream.ErrMsgIteratorClosed):
				return
			case errors.Is(err, nats.ErrConnectionClosed):
				readErr <- fmt.Errorf("consumer %s: %w", c.name, err)
				return
			default:
				c.log.Warn("pull failed", "err", err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()

	// Handlers keep running while the pulled messages drain; the grace period bounds them.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(ctx, func() {
		it.Drain()
		time.AfterFunc(c.cfg.ShutdownTimeout, cancelWork)
	})
	defer stopDrain()

	c.log.Info("consuming", "filters", c.cfg.Consumer.FilterSubjects, "batch", c.cfg.Batch, "concurrency", c.cfg.Concurrency)
	for m := range msgs {
		batch := append(make([]delivery, 0, c.cfg.Batch), m)
	fill:
		for len(batch) < c.cfg.Batch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		c.batchSize.Observe(float64(len(batch)))
		process(work, batch)
	}
	finish()
	if err := c.js.Conn().FlushTimeout(5 * time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		c.log.Warn("flush acks on shutdown", "err", err)
	}
	select {
	case err := <-readErr:
		return err
	default:
	}
	c.log.Info("stopped")
	return nil
}

// keepAlive sends InProgress for msgs every InProgressEvery until the returned stop is called.
func (c *core) keepAlive(msgs []jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(c.cfg.InProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done) }
}

// fail handles a message whose processing failed.
func (c *core) fail(ctx context.Context, m jetstream.Msg, err error) {
	class := Classify(err)
	meta, _ := m.Metadata()
	var delivered uint64 = 1
	if meta != nil {
		delivered = meta.NumDelivered
	}
	c.cfg.Metrics.Failed.WithLabelValues(c.name, string(class)).Inc()
	if class == ClassTransient {
		max := c.cfg.Consumer.MaxDeliver
		if max <= 0 || delivered < uint64(max) {
			delay := c.cfg.Backoff.Delay(int(delivered))
			c.log.WarnContext(ctx, "transient failure, retrying", "subject", m.Subject(), "deliveries", delivered, "delay", delay, "err", err)
			if nerr := m.NakWithDelay(delay); nerr != nil {
				c.log.WarnContext(ctx, "nak failed", "err", nerr)
			}
			c.cfg.Metrics.Retried.WithLabelValues(c.name).Inc()
			return
		}
		class = ClassExhausted
		err = fmt.Errorf("deliveries exhausted (%d): %w", delivered, err)
	}
	c.deadLetter(ctx, m, class, err)
}

// deadLetter publishes the message with its reason to the DLQ, then terminates it. If the
// DLQ publish fails the message is naked instead: it is never dropped.
func (c *core) deadLetter(ctx context.Context, m jetstream.Msg, class Class, reason error) {
	dl := deadLetterMsg(c.name, class, reason.Error(), m)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.js.PublishMsg(pctx, dl); err != nil {
		c.log.ErrorContext(ctx, "dead-letter publish failed; will retry the message", "subject", m.Subject(), "err", err)
		_ = m.NakWithDelay(c.cfg.Backoff.Delay(1))
		return
	}
	c.log.ErrorContext(ctx, "dead-lettered", "subject", m.Subject(), "class", class, "reason", reason)
	if err := m.TermWithReason(string(class)); err != nil {
		c.log.WarnContext(ctx, "term failed", "err", err)
	}
	c.cfg.Metrics.DeadLettered.WithLabelValues(c.name, string(class)).Inc()
}

func (c *core) traceCtx(ctx context.Context, ev events.Event) context.Context {
	return logx.WithTrace(ctx, events.TraceID(ev.TraceParent))
}
