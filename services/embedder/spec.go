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
	"github.com/tgflow/tgflow/services/openaicompat"
)

// Spec registers the embedder stage: `tgflow embedder`.
func Spec() services.Spec {
	return services.Spec{
		Name:      "embedder",
		Doc:       "posts.enriched → posts.embedded: one vector per post revision (USE multilingual by default)",
		Consumers: []string{topology.ConsumerEmbedder},
		Config:    func() any { return &Config{} },
		New: func(ctx context.Context, d services.Deps) (services.Service, error) {
			var cfg Config
			if err := config.Load(&cfg, d.Env); err != nil {
				return nil, err
			}
			var base config.Base
			if err := config.Load(&base, d.Env); err != nil {
				return nil, err
			}
			var metrics *openaicompat.Metrics
			if cfg.Kind == KindOpenAI {
				m, err := openaicompat.NewMetrics(d.Registry)
				if err != nil {
					return nil, fmt.Errorf("embedder: %w", err)
				}
				metrics = m
			}
			e, err := Open(ctx, cfg, base.DataDir, d.Logger, metrics)
			if err != nil {
				return nil, err
			}
			return NewStage(d, cfg, e)
		},
	}
}

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

// NewStage builds the embedder stage over e on the log.
func NewStage(d services.Deps, cfg Config, e embed.Embedder) (*Stage, error) {
	if d.JS == nil || e == nil {
		return nil, errors.New("embedder: nil dependency")
	}
	h, err := NewHandler(e, cfg.Batch, cfg.BatchWait)
	if err != nil {
		return nil, err
	}
	c, ok := topology.LookupConsumer(topology.ConsumerEmbedder)
	if !ok {
		return nil, errors.New("embedder: no embedder consumer in the topology")
	}
	info := e.Info()
	d.Logger.Info("embedder", "provider", info.Name, "model", info.Model, "version", info.Version, "dim", info.Dim, "lexical", info.Lexical)
	st, err := worker.NewStage(d.JS, worker.Config{
		Consumer: c.Config(), Metrics: d.Metrics, Logger: d.Logger,
		// Handlers wait on the batcher: as many run at once as a batch holds.
		Concurrency: cfg.Batch,
		Batch:       max(cfg.Batch, 64),
	}, Router(h, cfg.Kind == KindOpenAI))
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
