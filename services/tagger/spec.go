package tagger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/hashing"
	"github.com/tgflow/tgflow/services/embedder"
	"github.com/tgflow/tgflow/services/openaicompat"
)

// Tagger kinds (TGFLOW_TAGGER).
const (
	KindLocal  = "local"
	KindOpenAI = "openai"
)

// StageConfig is the tagger stage's configuration, from TGFLOW_* variables. The embedder
// used for topics is chosen by the embedder stage's variables (TGFLOW_EMBEDDER, …); a
// lexical one is replaced by a LexicalTopicDim hashing embedder for topics.
type StageConfig struct {
	Kind           string        `env:"TGFLOW_TAGGER" envDefault:"local" help:"local (hashtags, TF-IDF keywords over Snowball stems, topics by embedding similarity) or openai (tags and topics from TGFLOW_OPENAI_CHAT_MODEL, the local result when its answer is invalid)"`
	TopicsFile     string        `env:"TGFLOW_TAGGER_TOPICS" help:"path of a JSON topic list [{\"name\",\"ru\",\"en\"}]; empty: the shipped list of 30"`
	TopicThreshold float64       `env:"TGFLOW_TAGGER_TOPIC_THRESHOLD" envDefault:"0" help:"least cosine similarity of a post to a topic; 0: the default of the embedder's kind (0.13 lexical, 0.3 semantic)"`
	MaxTopics      int           `env:"TGFLOW_TAGGER_MAX_TOPICS" envDefault:"3" help:"topics per post, at most"`
	ShortTextRunes int           `env:"TGFLOW_TAGGER_SHORT_TEXT" envDefault:"40" help:"a post shorter than this (in characters) with no media gets its hashtags only"`
	Concurrency    int           `env:"TGFLOW_TAGGER_CONCURRENCY" envDefault:"4" help:"posts tagged at once"`
	DFInterval     time.Duration `env:"TGFLOW_TAGGER_DF_SNAPSHOT_INTERVAL" envDefault:"1m" help:"how often the document frequencies are saved to the tagger-df bucket (and at stop)"`
	BreakerOpen    time.Duration `env:"TGFLOW_TAGGER_BREAKER_OPEN" envDefault:"30s" help:"TGFLOW_TAGGER=openai: how long the provider's circuit stays open before a trial call; inputs are held meanwhile, spending no deliveries"`
	Embedder       embedder.Config
}

// Validate reports every problem at once.
func (c *StageConfig) Validate() error {
	var errs []error
	switch c.Kind {
	case KindLocal:
	case KindOpenAI:
		if !c.Embedder.OpenAI.Configured() {
			errs = append(errs, errors.New("env: TGFLOW_TAGGER=openai needs TGFLOW_OPENAI_BASE_URL"))
		}
		if c.Embedder.OpenAI.ChatModel == "" {
			errs = append(errs, errors.New("env: TGFLOW_TAGGER=openai needs TGFLOW_OPENAI_CHAT_MODEL"))
		}
	default:
		errs = append(errs, fmt.Errorf("env: TGFLOW_TAGGER: %q is not one of local, openai", c.Kind))
	}
	if c.TopicThreshold < -1 || c.TopicThreshold > 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TAGGER_TOPIC_THRESHOLD: %v is outside [-1, 1]", c.TopicThreshold))
	}
	if c.MaxTopics < 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TAGGER_MAX_TOPICS: %d is below 1", c.MaxTopics))
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
	if err := c.Embedder.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// taggerConfig is the library's configuration (topics read from TopicsFile).
func (c *StageConfig) taggerConfig() (Config, error) {
	cfg := Config{TopicThreshold: c.TopicThreshold, MaxTopics: c.MaxTopics, ShortTextRunes: c.ShortTextRunes}
	if c.TopicsFile != "" {
		f, err := os.Open(c.TopicsFile)
		if err != nil {
			return Config{}, fmt.Errorf("%w: TGFLOW_TAGGER_TOPICS: %w", ErrConfig, err)
		}
		defer f.Close()
		topics, err := LoadTopics(f)
		if err != nil {
			return Config{}, fmt.Errorf("TGFLOW_TAGGER_TOPICS %s: %w", c.TopicsFile, err)
		}
		cfg.Topics = topics
	}
	return cfg, nil
}

// Spec registers the tagger stage: `tgflow tagger`.
func Spec() services.Spec {
	return services.Spec{
		Name:      "tagger",
		Doc:       "posts.parsed|edited|vision.analyzed → posts.tagged: 1–5 tags and topics per post revision (local TF-IDF by default, an OpenAI-compatible chat model when configured)",
		Consumers: []string{topology.ConsumerTagger},
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
			if cfg.Kind == KindOpenAI || cfg.Embedder.Kind == embedder.KindOpenAI {
				m, err := openaicompat.NewMetrics(d.Registry)
				if err != nil {
					return nil, fmt.Errorf("tagger: %w", err)
				}
				metrics = m
			}
			emb, err := embedder.Open(ctx, cfg.Embedder, base.DataDir, d.Logger, metrics)
			if err != nil {
				return nil, err
			}
			var chat *openaicompat.Client
			if cfg.Kind == KindOpenAI {
				if chat, err = openaicompat.New(cfg.Embedder.OpenAI, openaicompat.Options{Metrics: metrics}); err != nil {
					return nil, fmt.Errorf("tagger: %w", err)
				}
			}
			return NewStage(ctx, d, cfg, emb, chat)
		},
	}
}

// topicEmbedder is the embedder topics are matched with: emb, or for a lexical emb a
// hashing embedder of LexicalTopicDim dimensions (at the embedder stage's usual 256 the hash
// collisions drown the signal; see LexicalTopicDim).
func topicEmbedder(emb embed.Embedder) (embed.Embedder, error) {
	if !emb.Info().Lexical || emb.Info().Dim >= LexicalTopicDim {
		return emb, nil
	}
	return hashing.New(hashing.Config{Dim: LexicalTopicDim})
}

// Stage is the running tagger: the DF feed and the stage on the tagger consumer.
type Stage struct {
	breaker *worker.Breaker
	feed    *DFFeed
	handler *Handler
	stage   *worker.Stage
	log     *slog.Logger
	// closeBatcher stops the topic embedder's batcher (when there is one) once Run is done.
	closeBatcher func()
}

// NewStage builds the tagger over the log: post state in the tagger-posts bucket, document
// frequencies from the log (restored from the tagger-df bucket), topics by emb, and with
// chat (TGFLOW_TAGGER=openai) tags and topics from its chat model behind a circuit breaker.
func NewStage(ctx context.Context, d services.Deps, cfg StageConfig, emb embed.Embedder, chat *openaicompat.Client) (*Stage, error) {
	if d.JS == nil || emb == nil {
		return nil, fmt.Errorf("%w: jetstream or embedder", ErrNilDependency)
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
	tcfg, err := cfg.taggerConfig()
	if err != nil {
		return nil, err
	}
	temb, err := topicEmbedder(emb)
	if err != nil {
		return nil, fmt.Errorf("tagger: topic embedder: %w", err)
	}
	concurrency := max(cfg.Concurrency, 1)
	var batched *batchedEmbedder
	if !temb.Info().Lexical && concurrency > 1 {
		// A model (USE, a provider) embeds the concurrent posts' texts together; the lexical
		// embedder costs the same either way.
		batched = newBatchedEmbedder(temb, concurrency)
		temb = batched
	}
	closeBatcher := func() {
		if batched != nil {
			batched.Close()
		}
	}
	built := false
	defer func() {
		if !built {
			closeBatcher()
		}
	}()
	local, err := New(ctx, tcfg, feed.DF(), temb)
	if err != nil {
		return nil, err
	}
	var engine Engine = local
	var mws []worker.Middleware
	var breaker *worker.Breaker
	if cfg.Kind == KindOpenAI {
		ct, err := NewChatTagger(chat, cfg.Embedder.OpenAI.ChatModel, local, log)
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
	ti := temb.Info()
	log.Info("tagger", "kind", cfg.Kind, "topic_embedder", ti.Name, "topic_dim", ti.Dim, "lexical", ti.Lexical, "df_restored_seq", feed.Restored())
	st, err := worker.NewStage(d.JS, worker.Config{
		Consumer: c.Config(), Metrics: d.Metrics, Logger: log,
		Concurrency: concurrency, Batch: max(64, 2*concurrency),
	}, h.Router(mws...))
	if err != nil {
		return nil, err
	}
	built = true
	return &Stage{breaker: breaker, feed: feed, handler: h, stage: st, log: log, closeBatcher: closeBatcher}, nil
}

// Breaker is the circuit breaker of the chat provider (nil with the local tagger).
func (s *Stage) Breaker() *worker.Breaker { return s.breaker }

// DFFeed is the stage's document-frequency feed.
func (s *Stage) DFFeed() *DFFeed { return s.feed }

// Run follows the log for document frequencies, and once they cover what the log held at
// start, tags until ctx ends; the DF snapshot is saved at the end.
func (s *Stage) Run(ctx context.Context) error {
	defer s.closeBatcher()
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
