package albums

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/internal/fanin"
)

// StageConfig is the albums stage's configuration (TGFLOW_ALBUMS_*).
type StageConfig struct {
	Deadline    time.Duration `env:"TGFLOW_ALBUMS_DEADLINE" envDefault:"10m" help:"how long after an album (version) was first seen its summary is written even if some image has no vision result; the missing items are listed"`
	Tick        time.Duration `env:"TGFLOW_ALBUMS_TICK" envDefault:"30s" help:"how often open albums are checked for an expired deadline or an unconfirmed summary, and old rendezvous entries swept"`
	Grace       time.Duration `env:"TGFLOW_ALBUMS_GRACE" envDefault:"2m" help:"how long a claimed summary may stay unconfirmed before it is looked up on the log and, when absent, published again"`
	PendingTTL  time.Duration `env:"TGFLOW_ALBUMS_PENDING_TTL" envDefault:"24h" help:"how long a post's vision result waits for an albums.parsed naming it"`
	MaxOCRChars int           `env:"TGFLOW_ALBUMS_MAX_OCR_CHARS" envDefault:"8000" help:"longest OCR text of an album summary, in characters"`
	MaxLabels   int           `env:"TGFLOW_ALBUMS_MAX_LABELS" envDefault:"20" help:"most labels of an album summary"`
	Concurrency int           `env:"TGFLOW_ALBUMS_CONCURRENCY" envDefault:"8" help:"inputs handled at once (the state is compare-and-set, so any number is safe)"`
}

// Validate reports every problem at once. Zero is refused as well: the library would
// silently take its default for it.
func (c StageConfig) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"TGFLOW_ALBUMS_DEADLINE", c.Deadline}, {"TGFLOW_ALBUMS_TICK", c.Tick},
		{"TGFLOW_ALBUMS_GRACE", c.Grace}, {"TGFLOW_ALBUMS_PENDING_TTL", c.PendingTTL},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("env: %s: %s is not positive", d.name, d.v))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"TGFLOW_ALBUMS_MAX_OCR_CHARS", c.MaxOCRChars}, {"TGFLOW_ALBUMS_MAX_LABELS", c.MaxLabels},
		{"TGFLOW_ALBUMS_CONCURRENCY", c.Concurrency},
	} {
		if n.v <= 0 {
			errs = append(errs, fmt.Errorf("env: %s: %d is not positive", n.name, n.v))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return c.Library().Validate()
}

// Library is the Assembler's Config of c.
func (c StageConfig) Library() Config {
	return Config{Deadline: c.Deadline, Grace: c.Grace, PendingTTL: c.PendingTTL, MaxOCRChars: c.MaxOCRChars, MaxLabels: c.MaxLabels}
}

// Spec registers the albums stage: `tgflow albums`.
func Spec() services.Spec {
	return services.Spec{
		Name:      "albums",
		Doc:       "albums.parsed + posts.vision.analyzed → albums.assembled: one summary per album version, when every image is analysed or at a deadline",
		Consumers: []string{topology.ConsumerAlbums},
		Config:    func() any { return &StageConfig{} },
		New: func(ctx context.Context, d services.Deps) (services.Service, error) {
			var cfg StageConfig
			if err := config.Load(&cfg, d.Env); err != nil {
				return nil, err
			}
			return NewStage(ctx, d, cfg, cfg.Library())
		},
	}
}

// Router is the albums stage's router over a: one handler per input type.
func Router(a *Assembler) *worker.Router {
	r := worker.NewRouter()
	r.Use(fanin.ContinueTrace)
	worker.On(r, a.AlbumParsed)
	worker.On(r, a.VisionAnalyzed)
	return r
}

// Stage is the running albums stage: the consumer and the deadline ticker.
type Stage struct {
	a     *Assembler
	pub   *publish.Publisher
	stage *worker.Stage
	tick  time.Duration
	log   *slog.Logger
}

// NewStage builds the albums stage on the log with the cfg of the stage (the tick and the
// concurrency) and lib, the Assembler's config (lib.Now may be a test's clock).
func NewStage(ctx context.Context, d services.Deps, cfg StageConfig, lib Config) (*Stage, error) {
	if d.JS == nil {
		return nil, errors.New("albums: nil JetStream")
	}
	if cfg.Tick <= 0 {
		return nil, fmt.Errorf("%w: tick %s is not positive", ErrConfig, cfg.Tick)
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	kv, err := d.JS.KeyValue(ctx, topology.BucketAlbums)
	if err != nil {
		return nil, fmt.Errorf("albums: bucket %s: %w", topology.BucketAlbums, err)
	}
	a, err := New(kv, d.JS, lib, log)
	if err != nil {
		return nil, err
	}
	pub, err := publish.New(d.JS, publish.Options{})
	if err != nil {
		return nil, fmt.Errorf("albums: %w", err)
	}
	c, ok := topology.LookupConsumer(topology.ConsumerAlbums)
	if !ok {
		return nil, errors.New("albums: no albums consumer in the topology")
	}
	st, err := worker.NewStage(d.JS, worker.Config{
		Consumer: c.Config(), Metrics: d.Metrics, Logger: log,
		Concurrency: max(cfg.Concurrency, 1),
	}, Router(a))
	if err != nil {
		return nil, err
	}
	return &Stage{a: a, pub: pub, stage: st, tick: cfg.Tick, log: log}, nil
}

// Run consumes and ticks until ctx ends. A failed tick is logged and retried at the next
// one: Tick's work (a deadline summary, a lost publish) stays due until it succeeds.
func (s *Stage) Run(ctx context.Context) error {
	tctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.ticker(tctx) })
	err := s.stage.Run(ctx)
	stop()
	wg.Wait()
	return err
}

func (s *Stage) ticker(ctx context.Context) {
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.a.Tick(ctx, s.pub)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			s.log.Error("albums: tick", "published", n, "err", err)
		case n > 0:
			s.log.Info("albums: tick", "published", n)
		}
	}
}
