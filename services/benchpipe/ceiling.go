package benchpipe

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/projections"
)

// ceiling builds the no-op topology: the tagger, enricher and embedder consumers, each
// re-emitting one minimal valid fact of its output type per input through the same runtime
// (decode, handler, encode, publish with dedup id, wait for the ack, ack), and the
// proj-postgres consumer applying through a projection that only records what it saw.
func ceiling(js jetstream.JetStream, m *worker.Metrics, log *slog.Logger, tr *tracker) (map[string]func(context.Context) error, error) {
	tag := worker.NewRouter()
	worker.On(tag, func(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
		return []events.Event{worker.Derive(ctx, in, &events.PostTagged{PostRef: p.PostRef, Rev: events.Rev{Version: p.EditDate},
			Trigger: events.TriggerInitial, Tags: []events.Tag{{Name: "bench"}}, PostedAt: p.Date, Provider: "noop"}, time.Now())}, nil
	})
	enrich := worker.NewRouter()
	worker.On(enrich, func(ctx context.Context, in events.Event, p *events.PostTagged) ([]events.Event, error) {
		return []events.Event{worker.Derive(ctx, in, &events.PostEnriched{PostRef: p.PostRef, Rev: p.Rev, Tags: []string{"bench"},
			PostedAt: p.PostedAt}, time.Now())}, nil
	})
	embed := worker.NewRouter()
	worker.On(embed, func(ctx context.Context, in events.Event, p *events.PostEnriched) ([]events.Event, error) {
		return []events.Event{worker.Derive(ctx, in, &events.PostEmbedded{PostRef: p.PostRef, Rev: p.Rev, Vector: []float32{1},
			Dim: 1, Provider: "noop"}, time.Now())}, nil
	})
	out := map[string]func(context.Context) error{}
	for _, s := range []struct {
		consumer string
		r        *worker.Router
	}{{topology.ConsumerTagger, tag}, {topology.ConsumerEnricher, enrich}, {topology.ConsumerEmbedder, embed}} {
		c, ok := topology.LookupConsumer(s.consumer)
		if !ok {
			return nil, fmt.Errorf("%w: no consumer %s in the topology", ErrBench, s.consumer)
		}
		st, err := worker.NewStage(js, worker.Config{Consumer: c.Config(), Batch: 256, Metrics: m, Logger: log}, s.r)
		if err != nil {
			return nil, fmt.Errorf("%w: no-op %s: %w", ErrBench, s.consumer, err)
		}
		out["no-op "+s.consumer] = st.Run
	}
	c, ok := topology.LookupConsumer(topology.ConsumerProjPostgres)
	if !ok {
		return nil, fmt.Errorf("%w: no consumer %s in the topology", ErrBench, topology.ConsumerProjPostgres)
	}
	// The batch of proj-postgres (TGFLOW_PROJ_BATCH's default).
	pr, err := worker.NewProjector(js, worker.Config{Consumer: c.Config(), Batch: 500, Metrics: m, Logger: log}, &noopProjection{tr: tr})
	if err != nil {
		return nil, fmt.Errorf("%w: no-op projection: %w", ErrBench, err)
	}
	out["no-op projection"] = pr.Run
	return out, nil
}

// noopProjection acknowledges every batch; a posts.embedded fact marks its post done.
type noopProjection struct {
	tr   *tracker
	last atomic.Uint64
}

func (*noopProjection) Name() string { return "noop" }

func (p *noopProjection) Apply(_ context.Context, facts []projections.Fact) error {
	if len(facts) == 0 {
		return nil
	}
	if err := projections.CheckOrder(facts); err != nil {
		return err
	}
	now := time.Now()
	for _, f := range facts {
		if f.Seq <= p.last.Load() {
			continue // applied before (a redelivery)
		}
		if e, ok := f.Event.Data.(*events.PostEmbedded); ok {
			p.tr.finished(key{e.ChannelID, e.MessageID}, now)
		}
	}
	p.last.Store(facts[len(facts)-1].Seq)
	return nil
}

func (p *noopProjection) Checkpoint(context.Context) (uint64, error) { return p.last.Load(), nil }

func (*noopProjection) Snapshot(context.Context) (projections.Snapshot, error) {
	return projections.Snapshot{}, nil
}

func (*noopProjection) Close() error { return nil }
