package enricher

import (
	"context"
	"errors"
	"fmt"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/enricher/fetch"
)

// Config is the enricher's configuration: the fetch policy, and how many posts are
// enriched at once.
type Config struct {
	Fetch       fetch.Config
	Concurrency int `env:"TGFLOW_ENRICH_CONCURRENCY" envDefault:"16" help:"posts enriched at once (their pages are fetched with TGFLOW_FETCH_CONCURRENCY connections in all)"`
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Concurrency <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_ENRICH_CONCURRENCY: %d is not positive", c.Concurrency))
	}
	return errors.Join(errs...)
}

// Spec registers the enricher stage: `tgflow enricher`.
func Spec() services.Spec {
	return services.Spec{
		Name:      "enricher",
		Doc:       "posts.tagged → posts.enriched: fetch the linked pages safely, extract readable text",
		Consumers: []string{topology.ConsumerEnricher},
		Config:    func() any { return &Config{} },
		New: func(ctx context.Context, d services.Deps) (services.Service, error) {
			var cfg Config
			if err := config.Load(&cfg, d.Env); err != nil {
				return nil, err
			}
			if d.JS == nil {
				return nil, errors.New("enricher: nil JetStream")
			}
			kv, err := d.JS.KeyValue(ctx, topology.BucketPages)
			if err != nil {
				return nil, fmt.Errorf("enricher: KV bucket %s: %w", topology.BucketPages, err)
			}
			obj, err := d.JS.ObjectStore(ctx, topology.ObjectPages)
			if err != nil {
				return nil, fmt.Errorf("enricher: object store %s: %w", topology.ObjectPages, err)
			}
			cache, err := fetch.NewKVCache(kv, obj)
			if err != nil {
				return nil, fmt.Errorf("enricher: %w", err)
			}
			f, err := fetch.New(cfg.Fetch, fetch.WithCache(cache), fetch.WithLogger(d.Logger))
			if err != nil {
				return nil, fmt.Errorf("enricher: %w", err)
			}
			return NewStage(d, cfg, f)
		},
	}
}

// NewStage builds the enricher stage over f on the log.
func NewStage(d services.Deps, cfg Config, f Fetcher) (*worker.Stage, error) {
	h, err := NewHandler(f)
	if err != nil {
		return nil, err
	}
	c, ok := topology.LookupConsumer(topology.ConsumerEnricher)
	if !ok {
		return nil, errors.New("enricher: no enricher consumer in the topology")
	}
	return worker.NewStage(d.JS, worker.Config{
		Consumer: c.Config(), Metrics: d.Metrics, Logger: d.Logger,
		Concurrency: cfg.Concurrency,
	}, Router(h))
}
