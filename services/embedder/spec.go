package embedder

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/topics"
	"github.com/tgflow/tgflow/services/openaicompat"
)

// StageConfig is the embedder stage's configuration: the embedder (the vector space, which
// the services reading vectors share: Config) and the topic list its vectors are matched
// against.
type StageConfig struct {
	Embedder Config
	Topics   topics.Config
}

// Validate reports every problem at once.
func (c *StageConfig) Validate() error {
	return errors.Join(c.Embedder.Validate(), c.Topics.Validate())
}

// Spec registers the embedder stage: `tgflow embedder`.
func Spec() services.Spec {
	return services.Spec{
		Name:      "embedder",
		Doc:       "posts.enriched → posts.embedded: one vector per post revision (USE multilingual by default) and the post's topics (cosine of the vector to the topic list, or the chat tagger's)",
		Consumers: []string{topology.ConsumerEmbedder},
		Config:    func() any { return &StageConfig{} },
		New: func(ctx context.Context, d services.Deps) (services.Service, error) {
			var cfg StageConfig
			if err := config.Load(&cfg, d.Env); err != nil {
				return nil, err
			}
			var base config.Base
			if err := config.Load(&base, d.Env); err != nil {
				return nil, err
			}
			var metrics *openaicompat.Metrics
			if cfg.Embedder.Kind == KindOpenAI {
				m, err := openaicompat.NewMetrics(d.Registry)
				if err != nil {
					return nil, fmt.Errorf("embedder: %w", err)
				}
				metrics = m
			}
			e, err := Open(ctx, cfg.Embedder, base.DataDir, d.Logger, metrics)
			if err != nil {
				return nil, err
			}
			return NewStage(ctx, d, cfg, e)
		},
	}
}

// inFlightBatches is how many batches the stage's handlers fill at once.
const inFlightBatches = 2

// Stage is the running embedder.
type Stage struct {
	h     *Handler
	stage *worker.Stage
}

// Router is the embedder's router over h: one handler, and for a remote provider a breaker
// so that an outage holds the inputs instead of spending their deliveries.
func Router(h *Handler, remote bool) *worker.Router {
	r := worker.NewRouter()
	if remote {
		r.Use(worker.CircuitBreaker(worker.NewBreaker(gobreaker.Settings{Name: "embedder", Timeout: 30 * time.Second}), 5*time.Second))
	}
	worker.On(r, h.Handle)
	return r
}

// NewStage builds the embedder stage over e on the log. A local embedder embeds the topic
// descriptions here, once; a remote one on its first post (a provider down at start delays
// the posts, not the stage).
func NewStage(ctx context.Context, d services.Deps, cfg StageConfig, e embed.Embedder) (*Stage, error) {
	if d.JS == nil || e == nil {
		return nil, errors.New("embedder: nil dependency")
	}
	list, err := cfg.Topics.List()
	if err != nil {
		return nil, err
	}
	h, err := NewHandler(e, cfg.Embedder.Batch, cfg.Embedder.BatchWait, list, topics.Options{Threshold: cfg.Topics.Threshold, Max: cfg.Topics.Max})
	if err != nil {
		return nil, err
	}
	remote := cfg.Embedder.Kind == KindOpenAI
	if !remote {
		m, err := h.Topics(ctx)
		if err != nil {
			h.Close()
			return nil, err
		}
		o := m.Options()
		d.Logger.Info("embedder: topics", "source", m.Source(), "topics", len(list), "threshold", o.Threshold, "max", o.Max)
	}
	c, ok := topology.LookupConsumer(topology.ConsumerEmbedder)
	if !ok {
		return nil, errors.New("embedder: no embedder consumer in the topology")
	}
	info := e.Info()
	d.Logger.Info("embedder", "provider", info.Name, "model", info.Model, "version", info.Version, "dim", info.Dim, "lexical", info.Lexical)
	st, err := worker.NewStage(d.JS, worker.Config{
		Consumer: c.Config(), Metrics: d.Metrics, Logger: d.Logger,
		// Handlers wait on the batcher. Twice as many run at once as a batch holds, so that
		// one batch gathers (its handlers decode, publish, ack) while the other is embedded:
		// with one batch in flight the cores idle between batches (USE spreads one batch
		// over every core, but the handlers' I/O runs while no batch is being embedded).
		Concurrency: inFlightBatches * cfg.Embedder.Batch,
		Batch:       max(inFlightBatches*cfg.Embedder.Batch, 64),
	}, Router(h, remote))
	if err != nil {
		h.Close()
		return nil, err
	}
	return &Stage{h: h, stage: st}, nil
}

// Run consumes until ctx ends.
func (s *Stage) Run(ctx context.Context) error {
	defer s.h.Close()
	return s.stage.Run(ctx)
}
