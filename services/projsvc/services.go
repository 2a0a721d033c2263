package projsvc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/promx"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/neo4j"
	"github.com/tgflow/tgflow/projections/postgres"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/hashing"
	"github.com/tgflow/tgflow/services/embed/use"
	"github.com/tgflow/tgflow/services/embedder"
	"github.com/tgflow/tgflow/services/openaicompat"
)

// Backend describes one projection: how to open it from the environment.
type Backend struct {
	Name     string // postgres, qdrant, neo4j
	Service  string // proj-postgres, …
	Consumer string
	Config   func() any
	// RebuildBatch is the facts per Apply of a rebuild or verify replay. Replays read an
	// ordered consumer, not the live one, so they are not bound by its ack window; large
	// batches let a post's parsed/tagged/enriched/embedded facts fold into one write.
	RebuildBatch int
	// Open returns the live projection, its batch size and a close func. It returns
	// services.ErrNotConfigured when the backend's address is not set.
	Open func(ctx context.Context, env map[string]string, log *slog.Logger) (projections.Rebuilder, int, func(), error)
}

// Backends lists every projection, in a fixed order.
func Backends() []Backend {
	return []Backend{
		{Name: "postgres", Service: "proj-postgres", Consumer: topology.ConsumerProjPostgres, RebuildBatch: 20000,
			Config: func() any { return &PostgresConfig{} }, Open: openPostgres},
		{Name: "qdrant", Service: "proj-qdrant", Consumer: topology.ConsumerProjQdrant, RebuildBatch: 2000,
			Config: func() any { return &QdrantConfig{} }, Open: openQdrant},
		{Name: "neo4j", Service: "proj-neo4j", Consumer: topology.ConsumerProjNeo4j, RebuildBatch: 5000,
			Config: func() any { return &Neo4jConfig{} }, Open: openNeo4j},
	}
}

// LookupBackend finds a backend by projection or service name.
func LookupBackend(name string) (Backend, bool) {
	for _, b := range Backends() {
		if b.Name == name || b.Service == name {
			return b, true
		}
	}
	return Backend{}, false
}

func openPostgres(ctx context.Context, env map[string]string, _ *slog.Logger) (projections.Rebuilder, int, func(), error) {
	var cfg PostgresConfig
	if err := config.Load(&cfg, env); err != nil {
		return nil, 0, nil, err
	}
	if cfg.URL == "" {
		return nil, 0, nil, fmt.Errorf("%w: TGFLOW_POSTGRES_URL is not set", services.ErrNotConfigured)
	}
	pool, err := pgxpool.New(ctx, cfg.URL.Reveal())
	if err != nil {
		// pgx errors can echo the URL: say only which variable is wrong.
		return nil, 0, nil, fmt.Errorf("env: TGFLOW_POSTGRES_URL: cannot be parsed as a Postgres URL")
	}
	p, err := postgres.New(ctx, pool, cfg.Schema)
	if err != nil {
		pool.Close()
		return nil, 0, nil, fmt.Errorf("postgres projection: %w", err)
	}
	return p, cfg.Batch, pool.Close, nil
}

func openQdrant(ctx context.Context, env map[string]string, log *slog.Logger) (projections.Rebuilder, int, func(), error) {
	var cfg QdrantConfig
	if err := config.Load(&cfg, env); err != nil {
		return nil, 0, nil, err
	}
	if cfg.Addr == "" {
		return nil, 0, nil, fmt.Errorf("%w: TGFLOW_QDRANT_ADDR is not set", services.ErrNotConfigured)
	}
	info, err := EmbedderSpace(cfg.Embedder)
	if err != nil {
		return nil, 0, nil, err
	}
	p, err := qdrant.Open(ctx, cfg.Addr, qdrant.Options{Alias: cfg.Alias, Space: SpaceOf(info), Logger: log,
		OnSkip: func(s qdrant.Space) { qdrantSkipped.WithLabelValues(s.String()).Inc() }})
	if err != nil {
		return nil, 0, nil, fmt.Errorf("qdrant projection: %w", err)
	}
	log.Info("qdrant projection", "alias", p.Alias(), "space", info.Space(), "lexical", info.Lexical)
	return p, cfg.Batch, func() {
		if err := p.Close(); err != nil {
			log.Warn("close the Qdrant connection", "err", err)
		}
	}, nil
}

// qdrantSkipped counts the embeddings the Qdrant projection skipped because they belong to
// another vector space than the configured embedder's. It is registered by the proj-qdrant
// service (registerQdrantMetrics); replays (rebuild, verify) count too.
var qdrantSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "tgflow_qdrant_skipped_embeddings_total",
	Help: "Embeddings the Qdrant projection skipped because they are of another vector space than the configured embedder's, by space.",
}, []string{"space"})

func registerQdrantMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	_, err := promx.Register(reg, qdrantSkipped)
	return err
}

// EmbedderSpace is the vector space the embedder stage configured by cfg writes, without
// loading a model: use is Universal Sentence Encoder multilingual v3 (use.Name, use.Model,
// use.Version, use.Dim); hashing and openai are built from cfg as the stage builds them
// (their constructors load nothing and dial nothing).
//
// With `use`, a model that was never pulled where pip is unavailable makes the embedder
// stage fall back to the hashing embedder (it warns): those vectors are of another space,
// and the Qdrant projection skips them until the model is pulled or TGFLOW_EMBEDDER=hashing
// is set.
func EmbedderSpace(cfg embedder.Config) (embed.Info, error) {
	switch cfg.Kind {
	case embedder.KindUSE:
		return embed.Info{Name: use.Name, Model: use.Model, Version: use.Version, Dim: use.Dim}, nil
	case embedder.KindHashing:
		e, err := hashing.New(hashing.Config{Dim: cfg.HashingDim})
		if err != nil {
			return embed.Info{}, fmt.Errorf("env: TGFLOW_HASHING_DIM: %w", err)
		}
		return e.Info(), nil
	case embedder.KindOpenAI:
		c, err := openaicompat.New(cfg.OpenAI, openaicompat.Options{})
		if err != nil {
			return embed.Info{}, fmt.Errorf("qdrant projection: the embedder's provider: %w", err)
		}
		e, err := c.Embedder(cfg.OpenAIDim)
		if err != nil {
			return embed.Info{}, fmt.Errorf("qdrant projection: the embedder's provider: %w", err)
		}
		return e.Info(), nil
	}
	return embed.Info{}, fmt.Errorf("env: TGFLOW_EMBEDDER: %q is not one of use, hashing, openai", cfg.Kind)
}

// SpaceOf is the Qdrant projection's name of the embedder's vector space.
func SpaceOf(i embed.Info) qdrant.Space {
	return qdrant.Space{Name: i.Name, Model: i.Model, Version: i.Version, Dim: i.Dim}
}

func openNeo4j(ctx context.Context, env map[string]string, _ *slog.Logger) (projections.Rebuilder, int, func(), error) {
	var cfg Neo4jConfig
	if err := config.Load(&cfg, env); err != nil {
		return nil, 0, nil, err
	}
	if cfg.URI == "" {
		return nil, 0, nil, fmt.Errorf("%w: TGFLOW_NEO4J_URI is not set", services.ErrNotConfigured)
	}
	auth := nd.NoAuth()
	if cfg.User != "" {
		auth = nd.BasicAuth(cfg.User, cfg.Password.Reveal(), "")
	}
	driver, err := nd.NewDriverWithContext(cfg.URI, auth)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("env: TGFLOW_NEO4J_URI: %w", err)
	}
	p, err := neo4j.New(ctx, driver, neo4j.Options{})
	if err != nil {
		_ = driver.Close(context.WithoutCancel(ctx))
		return nil, 0, nil, fmt.Errorf("neo4j projection: %w", err)
	}
	return p, cfg.Batch, func() { _ = driver.Close(context.WithoutCancel(ctx)) }, nil
}

// Specs returns the service specs of every projection.
func Specs() []services.Spec {
	var out []services.Spec
	for _, b := range Backends() {
		out = append(out, services.Spec{
			Name:      b.Service,
			Doc:       "projection: " + b.Name + " read model",
			Consumers: []string{b.Consumer},
			Config:    b.Config,
			New: func(_ context.Context, d services.Deps) (services.Service, error) {
				// Configuration problems stop startup; an unreachable backend does not: the
				// projector waits for it in Run.
				cfg := b.Config()
				if err := config.Load(cfg, d.Env); err != nil {
					return nil, err
				}
				if err := b.configured(cfg); err != nil {
					return nil, err
				}
				if b.Name == "qdrant" {
					if err := registerQdrantMetrics(d.Registry); err != nil {
						return nil, fmt.Errorf("proj-qdrant metrics: %w", err)
					}
				}
				return &projector{b: b, d: d}, nil
			},
		})
	}
	return out
}

func (b Backend) configured(cfg any) error {
	var missing string
	switch c := cfg.(type) {
	case *PostgresConfig:
		if c.URL == "" {
			missing = "TGFLOW_POSTGRES_URL"
		}
	case *QdrantConfig:
		if c.Addr == "" {
			missing = "TGFLOW_QDRANT_ADDR"
		}
	case *Neo4jConfig:
		if c.URI == "" {
			missing = "TGFLOW_NEO4J_URI"
		}
	}
	if missing != "" {
		return fmt.Errorf("%w: %s is not set", services.ErrNotConfigured, missing)
	}
	return nil
}

type projector struct {
	b Backend
	d services.Deps
}

// Run opens the backend, retrying with backoff while it is unreachable, then applies facts
// until ctx is cancelled. The worker's projector fills, from the log (gap), what its consumer
// delivered but this process never applied: at the start, the facts a dead predecessor was
// given; while running, deliveries lost in transit.
func (p *projector) Run(ctx context.Context) error {
	log := p.d.Logger.With("projection", p.b.Name)
	backoff := worker.Backoff{Base: time.Second, Max: time.Minute, Jitter: 0.2}
	for attempt := 1; ; attempt++ {
		c, _ := topology.LookupConsumer(p.b.Consumer)
		proj, batch, closeFn, err := p.b.Open(ctx, p.d.Env, log)
		if err == nil {
			defer closeFn()
			gap := func(ctx context.Context, seq uint64) error {
				r := Replayer{JS: p.d.JS, Consumer: c, Batch: batch, Logger: log, Live: true}
				from, err := proj.Checkpoint(ctx)
				if err != nil {
					return fmt.Errorf("%s checkpoint: %w", proj.Name(), err)
				}
				if from >= seq {
					return nil
				}
				cp, err := r.CatchUp(ctx, proj, seq, nil)
				if err != nil {
					return err
				}
				log.Info("applied from the log facts the consumer delivered that this process never applied",
					"from_seq", from+1, "through_seq", seq, "checkpoint", cp)
				return nil
			}
			run, err := worker.NewProjector(p.d.JS, worker.Config{Consumer: c.Config(), Batch: batch, Metrics: p.d.Metrics, Logger: log, Gap: gap}, proj)
			if err != nil {
				return err
			}
			return run.Run(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		delay := backoff.Delay(attempt)
		log.Warn("projector cannot start (backend unavailable?); retrying", "attempt", attempt, "delay", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}
