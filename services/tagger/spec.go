package tagger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/embed/topics"
	"github.com/tgflow/tgflow/services/openaicompat"
)

// Tagger kinds (TGFLOW_TAGGER).
const (
	KindLocal  = "local"
	KindOpenAI = "openai"
)

// StageConfig is the tagger stage's configuration, from TGFLOW_* variables. The tagger embeds
// nothing (the embedder stage gives a post its topics from its vector), so it reads none of
// the embedder's variables; the topic list is read for TGFLOW_TAGGER=openai, whose chat model
// chooses topics from it.
type StageConfig struct {
	Kind           string        `env:"TGFLOW_TAGGER" envDefault:"local" help:"local (hashtags, TF-IDF keywords over Snowball stems; topics come from the embedder) or openai (tags and topics from TGFLOW_OPENAI_CHAT_MODEL, the local result when its answer is invalid)"`
	ShortTextRunes int           `env:"TGFLOW_TAGGER_SHORT_TEXT" envDefault:"40" help:"a post shorter than this (in characters) with no media gets its hashtags only"`
	Concurrency    int           `env:"TGFLOW_TAGGER_CONCURRENCY" envDefault:"16" help:"posts tagged at once (each waits for a read of its record in the tagger-posts bucket; at 4 the stage waited more than it worked and held the pipeline)"`
	DFInterval     time.Duration `env:"TGFLOW_TAGGER_DF_SNAPSHOT_INTERVAL" envDefault:"1m" help:"how often the document frequencies are saved to the tagger-df bucket (and at stop)"`
	BreakerOpen    time.Duration `env:"TGFLOW_TAGGER_BREAKER_OPEN" envDefault:"30s" help:"TGFLOW_TAGGER=openai: how long the provider's circuit stays open before a trial call; inputs are held meanwhile, spending no deliveries"`
	Topics         topics.Config
	OpenAI         openaicompat.Config
}

// Validate reports every problem at once.
func (c *StageConfig) Validate() error {
	var errs []error
	switch c.Kind {
	case KindLocal:
	case KindOpenAI:
		if !c.OpenAI.Configured() {
			errs = append(errs, errors.New("env: TGFLOW_TAGGER=openai needs TGFLOW_OPENAI_BASE_URL"))
		}
		if c.OpenAI.ChatModel == "" {
			errs = append(errs, errors.New("env: TGFLOW_TAGGER=openai needs TGFLOW_OPENAI_CHAT_MODEL"))
		}
	default:
		errs = append(errs, fmt.Errorf("env: TGFLOW_TAGGER: %q is not one of local, openai", c.Kind))
	}
	if c.ShortTextRunes < 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TAGGER_SHORT_TEXT: %d is below 1", c.ShortTextRunes))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TAGGER_CONCURRENCY: %d is below 1", c.Concurrency))
	}
	if c.DFInterval <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TAGGER_DF_SNAPSHOT_INTERVAL: %s is not positive", c.DFInterval))
	}
	if c.BreakerOpen <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TAGGER_BREAKER_OPEN: %s is not positive", c.BreakerOpen))
	}
	errs = append(errs, c.Topics.Validate())
	if c.OpenAI.Configured() {
		errs = append(errs, c.OpenAI.Validate())
	}
	return errors.Join(errs...)
}

// Spec registers the tagger stage: `tgflow tagger`.
func Spec() services.Spec {
	return services.Spec{
		Name:      "tagger",
		Doc:       "posts.parsed|edited|vision.analyzed → posts.tagged: 1–5 tags per post revision (local TF-IDF by default; an OpenAI-compatible chat model, which also chooses topics, when configured)",
		Consumers: []string{topology.ConsumerTagger},
		Config:    func() any { return &StageConfig{} },
		New: func(ctx context.Context, d services.Deps) (services.Service, error) {
			var cfg StageConfig
			if err := config.Load(&cfg, d.Env); err != nil {
				return nil, err
			}
			var chat *openaicompat.Client
			if cfg.Kind == KindOpenAI {
				metrics, err := openaicompat.NewMetrics(d.Registry)
				if err != nil {
					return nil, fmt.Errorf("tagger: %w", err)
				}
				if chat, err = openaicompat.New(cfg.OpenAI, openaicompat.Options{Metrics: metrics}); err != nil {
					return nil, fmt.Errorf("tagger: %w", err)
				}
			}
			return NewStage(ctx, d, cfg, chat)
		},
	}
}

// Stage is the running tagger: the DF feed and the stage on the tagger consumer.
type Stage struct {
	breaker *worker.Breaker
	feed    *DFFeed
	handler *Handler
	stage   *worker.Stage
	log     *slog.Logger
}

// NewStage builds the tagger over the log: post state in the tagger-posts bucket, document
// frequencies from the log (restored from the tagger-df bucket), and with chat
// (TGFLOW_TAGGER=openai) tags and topics from its chat model behind a circuit breaker.
func NewStage(ctx context.Context, d services.Deps, cfg StageConfig, chat *openaicompat.Client) (*Stage, error) {
	if d.JS == nil {
		return nil, fmt.Errorf("%w: jetstream", ErrNilDependency)
	}
	if cfg.Kind == KindOpenAI && chat == nil {
		return nil, fmt.Errorf("%w: TGFLOW_TAGGER=openai without a chat client", ErrNilDependency)
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	postsKV, err := d.JS.KeyValue(ctx, PostsBucket)
	if err != nil {
		return nil, fmt.Errorf("tagger: bucket %s: %w", PostsBucket, err)
	}
	dfKV, err := d.JS.KeyValue(ctx, DFBucket)
	if err != nil {
		return nil, fmt.Errorf("tagger: bucket %s: %w", DFBucket, err)
	}
	interval := cfg.DFInterval
	if interval <= 0 {
		interval = time.Minute
	}
	feed, err := NewDFFeed(ctx, d.JS, dfKV, interval, log)
	if err != nil {
		return nil, err
	}
	concurrency := max(cfg.Concurrency, 1)
	local, err := New(Config{ShortTextRunes: cfg.ShortTextRunes}, feed.DF())
	if err != nil {
		return nil, err
	}
	var engine Engine = local
	var mws []worker.Middleware
	var breaker *worker.Breaker
	if cfg.Kind == KindOpenAI {
		list, err := cfg.Topics.List()
		if err != nil {
			return nil, err
		}
		ct, err := NewChatTagger(chat, cfg.OpenAI.ChatModel, local, list, cfg.Topics.Max, log)
		if err != nil {
			return nil, err
		}
		engine = ct
		open := cfg.BreakerOpen
		if open <= 0 {
			open = 30 * time.Second
		}
		breaker = worker.NewBreaker(gobreaker.Settings{Name: "tagger-chat", Timeout: open})
		mws = append(mws, worker.CircuitBreaker(breaker, min(5*time.Second, open)))
	}
	h, err := NewHandler(engine, NewKVPosts(postsKV))
	if err != nil {
		return nil, err
	}
	c, ok := topology.LookupConsumer(topology.ConsumerTagger)
	if !ok {
		return nil, errors.New("tagger: no tagger consumer in the topology")
	}
	if !ReadsDeletions() {
		log.Warn("tagger: the topology's tagger consumer does not read posts.deleted; deleted posts are tagged like the others")
	}
	log.Info("tagger", "kind", cfg.Kind, "df_restored_seq", feed.Restored())
	st, err := worker.NewStage(d.JS, worker.Config{
		Consumer: c.Config(), Metrics: d.Metrics, Logger: log,
		Concurrency: concurrency, Batch: max(64, 2*concurrency),
	}, h.Router(mws...))
	if err != nil {
		return nil, err
	}
	return &Stage{breaker: breaker, feed: feed, handler: h, stage: st, log: log}, nil
}

// Breaker is the circuit breaker of the chat provider (nil with the local tagger).
func (s *Stage) Breaker() *worker.Breaker { return s.breaker }

// DFFeed is the stage's document-frequency feed.
func (s *Stage) DFFeed() *DFFeed { return s.feed }

// Run follows the log for document frequencies, and once they cover what the log held at
// start, tags until ctx ends; the DF snapshot is saved at the end.
func (s *Stage) Run(ctx context.Context) error {
	fctx, stopFeed := context.WithCancel(ctx)
	var feed sync.WaitGroup
	feed.Go(func() {
		if err := s.feed.Run(fctx); err != nil {
			s.log.Error("tagger: DF feed", "err", err)
		}
	})
	defer func() {
		stopFeed()
		feed.Wait()
	}()
	select {
	case <-s.feed.Ready():
	case <-ctx.Done():
		return nil
	}
	return s.stage.Run(ctx)
}
