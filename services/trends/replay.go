package trends

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/logtail"
	"github.com/tgflow/tgflow/nats/topology"
)

// fetchWait bounds one fetch of a replay.
const fetchWait = 5 * time.Second

// ErrReplay wraps every failure to read the log back.
var ErrReplay = errors.New("trends: replay")

// ReplayStats says what a replay read.
type ReplayStats struct {
	// Facts and Trends are the posts.tagged and trends.detected facts applied.
	Facts, Trends int
	// Undecodable counts facts that did not decode (the live consumer dead-lettered them).
	Undecodable int
	// LastSeq is the stream sequence of the last message read (trends.detected facts are
	// read past the ack floor, up to the end of the log).
	LastSeq uint64
}

func filters() ([]string, error) {
	var out []string
	for _, t := range []events.Type{events.TypePostTagged, events.TypeTrendDetected} {
		s, ok := events.Lookup(t)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not registered", ErrReplay, t)
		}
		out = append(out, s.Filter())
	}
	return out, nil
}

// ReplayStart is where the replay of a cold start at now begins: Lookback before the date
// of the newest posts.tagged fact on the log (or before now, whichever is earlier). Every
// fact about a post is stored no earlier than the post's date, so this reaches every fact
// a window still evaluated can read, even after a quiet spell.
func ReplayStart(ctx context.Context, js jetstream.JetStream, m *Machine, now time.Time) (time.Time, error) {
	s, ok := events.Lookup(events.TypePostTagged)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: %s is not registered", ErrReplay, events.TypePostTagged)
	}
	newest := now
	cons, err := js.OrderedConsumer(ctx, topology.LogStream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{s.Filter()},
		DeliverPolicy:     jetstream.DeliverLastPolicy,
		InactiveThreshold: logtail.InactiveThreshold,
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: newest fact: %w", ErrReplay, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: newest fact: %w", ErrReplay, err)
	}
	if info.NumPending > 0 {
		msg, err := cons.Next(jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: newest fact: %w", ErrReplay, err)
		}
		ev, err := events.Decode(events.Header(msg.Headers()), msg.Data())
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: newest fact: %w", ErrReplay, err)
		}
		if p, ok := ev.Data.(*events.PostTagged); ok && p.PostedAt.Before(newest) {
			newest = p.PostedAt
		}
	}
	return newest.Add(-m.Lookback()), nil
}

// Replay restores m from the log with an ordered consumer, in log order, from the facts
// stored at or after from: every posts.tagged fact (Restore) up to and including stream
// sequence upTo — the trends consumer's ack floor, so that the facts it will deliver again
// are observed live (0: up to the end of the log when the replay starts) — and every
// trends.detected fact (Fired: the cooldowns) up to the end of the log when the replay
// starts. A trend is stored after the post that completed it, so the last trends published
// before a stop lie beyond the ack floor; the consumer does not deliver them again (it
// reads posts.tagged), and without them a tag would be detected a second time within its
// cooldown. Fired is idempotent, so the trend a redelivered post finds again is refused by
// its own cooldown.
func Replay(ctx context.Context, js jetstream.JetStream, m *Machine, from time.Time, upTo uint64, log *slog.Logger) (ReplayStats, error) {
	var st ReplayStats
	if log == nil {
		log = slog.Default()
	}
	subjects, err := filters()
	if err != nil {
		return st, err
	}
	stream, err := js.Stream(ctx, topology.LogStream)
	if err != nil {
		return st, fmt.Errorf("%w: %w", ErrReplay, err)
	}
	end := stream.CachedInfo().State.LastSeq
	if upTo == 0 || upTo > end {
		upTo = end
	}
	start := from.UTC()
	cons, err := js.OrderedConsumer(ctx, topology.LogStream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    subjects,
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &start,
		InactiveThreshold: logtail.InactiveThreshold,
	})
	if err != nil {
		return st, fmt.Errorf("%w: %w", ErrReplay, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("%w: %w", ErrReplay, err)
	}
	if info.NumPending == 0 || end == 0 {
		return st, nil
	}
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			return st, fmt.Errorf("%w: %w", ErrReplay, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return st, fmt.Errorf("%w: %w", ErrReplay, err)
			}
			seq := md.Sequence.Stream
			if seq > end {
				return st, nil
			}
			st.LastSeq = seq
			ev, err := events.Decode(events.Header(msg.Headers()), msg.Data())
			if err != nil {
				st.Undecodable++
				log.Warn("trends replay: an undecodable fact is skipped", "seq", seq, "subject", msg.Subject(), "err", err)
			} else {
				switch p := ev.Data.(type) {
				case *events.PostTagged:
					if seq <= upTo {
						m.Restore(p)
						st.Facts++
					}
				case *events.TrendDetected:
					m.Fired(p)
					st.Trends++
				}
			}
			if seq >= end || md.NumPending == 0 {
				return st, nil
			}
		}
		if err := batch.Error(); err != nil {
			return st, fmt.Errorf("%w: %w", ErrReplay, err)
		}
		if n == 0 {
			return st, fmt.Errorf("%w: nothing received at sequence %d with messages pending", ErrReplay, st.LastSeq)
		}
	}
}

// Handle is the stage's handler: Observe, and the trends.detected facts to publish.
func (m *Machine) Handle(_ context.Context, _ events.Event, p *events.PostTagged) ([]events.Event, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var out []events.Event
	for _, t := range m.Observe(p) {
		out = append(out, Event(t))
	}
	return out, nil
}

// Rebuild is the stage's start: it restores m from the log up to the ack floor of the
// durable consumer named consumer (topology.ConsumerTrends), from ReplayStart at now, with
// the cooldowns of every trend on the log (Replay), so a cold start and a long-running
// instance publish the same facts. A
// consumer that does not exist yet or has acked nothing has processed nothing: its first
// deliveries rebuild the state, and nothing is replayed.
func Rebuild(ctx context.Context, js jetstream.JetStream, m *Machine, consumer string, now time.Time, log *slog.Logger) (ReplayStats, error) {
	c, err := js.Consumer(ctx, topology.LogStream, consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return ReplayStats{}, nil
	}
	if err != nil {
		return ReplayStats{}, fmt.Errorf("%w: consumer %s: %w", ErrReplay, consumer, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return ReplayStats{}, fmt.Errorf("%w: consumer %s: %w", ErrReplay, consumer, err)
	}
	floor := info.AckFloor.Stream
	if floor == 0 {
		return ReplayStats{}, nil
	}
	from, err := ReplayStart(ctx, js, m, now)
	if err != nil {
		return ReplayStats{}, err
	}
	return Replay(ctx, js, m, from, floor, log)
}
