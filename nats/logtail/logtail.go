// Package logtail follows the log from a point with an ordered consumer: the one way a
// stage rebuilds in-memory state that is derived from the log (document frequencies, the
// near-duplicate index, trend windows) and then keeps it current. An ordered consumer is
// ephemeral and server-managed: it leaves no durable consumer behind.
package logtail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/nats/topology"
)

// InactiveThreshold is how long the server keeps an ordered reader of the log whose process
// is gone (SIGKILL, a lost node) before deleting it. Every reader of the log sets it (nats.go's
// default is 5 minutes), so that a killed process leaks its readers for a minute at most.
const InactiveThreshold = time.Minute

// From says where following starts: after a sequence, at a time, or at the beginning.
type From struct {
	// AfterSeq > 0 starts at AfterSeq+1 (state restored from a snapshot at AfterSeq).
	AfterSeq uint64
	// Since, when set (and AfterSeq is 0), starts at the first fact stored at or after it.
	Since time.Time
}

// Options say what to follow.
type Options struct {
	// Stream is the stream (default topology.LogStream).
	Stream string
	// Filters are the subjects followed.
	Filters []string
	From    From
	// Logger receives what does not fail the follow (default slog.Default()).
	Logger *slog.Logger
	// CaughtUp, when set, is called once when the reader has read everything that was in
	// the stream when it started (at once when there was nothing to read).
	CaughtUp func()
}

// Follow reads every message matching opts in log order and calls fn with its stream
// sequence until ctx ends (returning nil) or fn or the reader fails.
func Follow(ctx context.Context, js jetstream.JetStream, opts Options, fn func(seq uint64, m jetstream.Msg) error) error {
	if js == nil || fn == nil {
		return errors.New("logtail: nil JetStream or callback")
	}
	if len(opts.Filters) == 0 {
		return errors.New("logtail: no filter subjects")
	}
	if opts.Stream == "" {
		opts.Stream = topology.LogStream
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: opts.Filters, InactiveThreshold: InactiveThreshold}
	switch {
	case opts.From.AfterSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, opts.From.AfterSeq+1
	case !opts.From.Since.IsZero():
		t := opts.From.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	oc, err := js.OrderedConsumer(ctx, opts.Stream, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("logtail: open reader: %w", err)
	}
	// The server would drop the reader after InactiveThreshold; deleting it at once keeps
	// the consumer count of the log exact (doctor and the tests count consumers).
	defer func() {
		if ci := oc.CachedInfo(); ci != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := js.DeleteConsumer(dctx, opts.Stream, ci.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				// Not a failure of the follow: the server drops the reader after InactiveThreshold.
				opts.Logger.Warn("logtail: delete the reader", "consumer", ci.Name, "err", err)
			}
		}
	}()
	caughtUp := func() {
		if opts.CaughtUp != nil {
			opts.CaughtUp()
			opts.CaughtUp = nil
		}
	}
	info, err := oc.Info(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("logtail: reader info: %w", err)
	}
	if info.NumPending == 0 {
		caughtUp()
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return fmt.Errorf("logtail: reader: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("logtail: reader: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("logtail: metadata: %w", err)
		}
		if err := fn(meta.Sequence.Stream, m); err != nil {
			return err
		}
		if meta.NumPending == 0 {
			caughtUp()
		}
	}
}
