// Package worker is the one runtime every stage and projection uses: one consume engine
// (consume.go) pulls, decodes and calls a typed handler through its middleware (or applies
// a projection), publishes outputs through nats/publish (Nats-Msg-Id = event id), waits for
// the publish acks, then acks the input. Failures are classified: transient → NakWithDelay
// with exponential backoff and jitter; permanent or undecodable → a DLQ record, then Term;
// deliveries exhausted → DLQ as well. A stage may only publish the types the topology
// assigns to it. Long work is kept alive with InProgress; shutdown drains what was already
// pulled.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
)

// Config configures a stage or projector runner.
type Config struct {
	// Consumer is the durable consumer's config, normally topology.Consumer.Config(). The
	// runner creates or updates it on start; it never invents a consumer name.
	Consumer jetstream.ConsumerConfig
	// Stream is the log stream (default topology.LogStream).
	Stream string
	// Producer, when set, must be the producer the topology assigns to the stage's consumer
	// (the runtime takes it from there; see NewPipeline). Projectors leave it empty.
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
	// Gap, for a projector, applies to the projection, straight from the log, every fact of
	// the consumer's filters up to and including seq that it does not hold (projsvc:
	// Replayer.CatchUp). The projector calls it when it starts, up to the consumer's last
	// delivery (facts a dead predecessor was given), and whenever the consumer's delivery
	// sequence skips: the server delivered facts this process never received (lost in transit,
	// e.g. while a cluster moved the consumer's leader). Those come again only after their ack
	// wait, behind later facts that would move the checkpoint past them, and would be skipped
	// as applied. Without Gap, a projector is safe only where no delivery can be lost.
	Gap func(ctx context.Context, seq uint64) error
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

// core is what stages and projectors share: the config, the consume engine (consume.go),
// failure handling and the dead-letter queue.
type core struct {
	cfg  Config
	js   jetstream.JetStream
	dlq  *publish.Publisher
	name string
	log  *slog.Logger
	// Series bound to this stage's label once, off the per-message path.
	processed prometheus.Counter
	latency   prometheus.Observer
	batchSize prometheus.Observer
	dups      prometheus.Counter
}

func newCore(js jetstream.JetStream, cfg Config, classes ...Class) (*core, error) {
	if js == nil {
		return nil, errors.New("worker: nil JetStream")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	dlq, err := publish.New(js, publish.Options{Stream: topology.DLQStream, Registry: cfg.Registry})
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	name := cfg.Consumer.Durable
	// Create every series at zero so rate() and increase() alerts see a stage that has not
	// failed yet, instead of no series at all.
	for _, class := range classes {
		cfg.Metrics.Failed.WithLabelValues(name, string(class))
		cfg.Metrics.DeadLettered.WithLabelValues(name, string(class))
	}
	cfg.Metrics.Retried.WithLabelValues(name)
	return &core{cfg: cfg, js: js, dlq: dlq, name: name, log: cfg.Logger.With("stage", name),
		processed: cfg.Metrics.Processed.WithLabelValues(name),
		latency:   cfg.Metrics.Latency.WithLabelValues(name),
		batchSize: cfg.Metrics.BatchSize.WithLabelValues(name),
		dups:      cfg.Metrics.Duplicates.WithLabelValues(name),
	}, nil
}

// fail handles a message whose processing failed: a transient failure is redelivered after
// a growing delay until MaxDeliver; anything else, or a transient failure whose deliveries
// cannot be counted, is dead-lettered.
func (c *core) fail(ctx context.Context, m jetstream.Msg, err error) {
	class := Classify(err)
	c.cfg.Metrics.Failed.WithLabelValues(c.name, string(class)).Inc()
	if class != ClassTransient {
		c.deadLetter(ctx, m, class, err)
		return
	}
	meta, merr := m.Metadata()
	if merr != nil {
		// Without the delivery count the retries cannot be bounded: retrying as if this
		// were delivery 1 would never end. The DLQ keeps the message for a replay.
		c.deadLetter(ctx, m, ClassPermanent, fmt.Errorf("%w: %w (after: %w)", ErrNoMetadata, merr, err))
		return
	}
	delivered := meta.NumDelivered
	if max := c.cfg.Consumer.MaxDeliver; max > 0 && delivered >= uint64(max) {
		c.deadLetter(ctx, m, ClassExhausted, fmt.Errorf("deliveries exhausted (%d): %w", delivered, err))
		return
	}
	delay := c.cfg.Backoff.Delay(int(delivered))
	c.log.WarnContext(ctx, "transient failure, retrying", "subject", m.Subject(), "stream_seq", meta.Sequence.Stream, "deliveries", delivered, "delay", delay, "err", err)
	if nerr := m.NakWithDelay(delay); nerr != nil {
		// Not lost: unacknowledged, the message comes back after its ack wait.
		c.log.ErrorContext(ctx, "nak failed; the message is redelivered after its ack wait instead", "subject", m.Subject(), "stream_seq", meta.Sequence.Stream, "err", nerr)
		return
	}
	c.cfg.Metrics.Retried.WithLabelValues(c.name).Inc()
}

// ErrNoMetadata marks a message whose JetStream metadata (delivery count, sequence) could not
// be read.
var ErrNoMetadata = errors.New("message metadata unreadable")

// deadLetter publishes the message with its reason to the DLQ, then terminates it. If the
// DLQ publish fails the message is naked instead: it is never dropped.
func (c *core) deadLetter(ctx context.Context, m jetstream.Msg, class Class, reason error) {
	dl := deadLetterMsg(c.name, class, reason.Error(), m)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	f, err := c.dlq.Send(dl)
	if err == nil {
		_, err = c.dlq.Await(pctx, []jetstream.PubAckFuture{f})
	}
	if err != nil {
		c.log.ErrorContext(ctx, "dead-letter publish failed; will retry the message", "subject", m.Subject(), "class", class, "reason", reason, "err", err)
		if nerr := m.NakWithDelay(c.cfg.Backoff.Delay(1)); nerr != nil {
			c.log.ErrorContext(ctx, "nak failed too; the message is redelivered after its ack wait", "subject", m.Subject(), "err", nerr)
		}
		return
	}
	c.log.ErrorContext(ctx, "dead-lettered", "subject", m.Subject(), "class", class, "reason", reason)
	if err := m.TermWithReason(string(class)); err != nil {
		// The DLQ has it; a redelivery would add a second DLQ entry with the same Msg-Id,
		// which the DLQ stream drops.
		c.log.WarnContext(ctx, "term failed; the message may be redelivered once more", "subject", m.Subject(), "err", err)
	}
	c.cfg.Metrics.DeadLettered.WithLabelValues(c.name, string(class)).Inc()
}
