package albums

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/logtail"
	"github.com/tgflow/tgflow/nats/topology"
)

// fetchWait bounds one fetch of the log scan.
const fetchWait = 2 * time.Second

// onLog reports whether the log holds ev (by its Nats-Msg-Id), reading the facts on ev's
// subject stored since since with an ordered consumer.
func (a *Assembler) onLog(ctx context.Context, ev events.Event, since time.Time) (bool, error) {
	subj, err := ev.NATSSubject(events.Default)
	if err != nil {
		return false, err
	}
	t := since.UTC()
	cons, err := a.js.OrderedConsumer(ctx, topology.LogStream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subj},
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &t,
		InactiveThreshold: logtail.InactiveThreshold,
	})
	if err != nil {
		return false, fmt.Errorf("look up %s on the log: %w", ev.ID, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("look up %s on the log: %w", ev.ID, err)
	}
	if info.NumPending == 0 {
		return false, nil
	}
	for {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			return false, fmt.Errorf("look up %s on the log: %w", ev.ID, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if m.Headers().Get(jetstream.MsgIDHeader) == ev.ID {
				return true, nil
			}
			md, err := m.Metadata()
			if err != nil {
				return false, fmt.Errorf("look up %s on the log: %w", ev.ID, err)
			}
			if md.NumPending == 0 {
				return false, nil
			}
		}
		if err := batch.Error(); err != nil {
			return false, fmt.Errorf("look up %s on the log: %w", ev.ID, err)
		}
		if n == 0 {
			return false, fmt.Errorf("look up %s on the log: %w", ev.ID, errNoProgress)
		}
	}
}

var errNoProgress = errors.New("the log scan received nothing while messages were pending")

// unmarshal decodes a KV entry's JSON value.
func unmarshal(e jetstream.KeyValueEntry, v any) error {
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrState, e.Key(), err)
	}
	return nil
}

// duplicateWindow is the log's duplicate window (how long it answers "duplicate" to a
// repeated Nats-Msg-Id), read from the stream's config.
func (a *Assembler) duplicateWindow(ctx context.Context) (time.Duration, error) {
	s, err := a.js.Stream(ctx, topology.LogStream)
	if err != nil {
		return 0, fmt.Errorf("log stream: %w", err)
	}
	return s.CachedInfo().Config.Duplicates, nil
}
