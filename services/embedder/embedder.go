// Package embedder is the embedder stage: posts.enriched → posts.embedded, exactly one
// vector per enriched revision, computed from the post's text, tags, what its images say
// and the pages it links to (Compose). The vector's space is named in the fact (provider,
// model, model version, dim): a change of embedder is a new space, never a mix.
//
// The fact also carries the post's topics, the one place the read models take them from:
// those a chat tagger chose (posts.enriched passes on posts.tagged's topics with a
// topics_source), else the topics of the vector itself (package topics: cosine to the topic
// descriptions, embedded once per process by the same embedder). A post is embedded once.
package embedder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/hashing"
	"github.com/tgflow/tgflow/services/embed/topics"
	"github.com/tgflow/tgflow/services/embed/use"
	"github.com/tgflow/tgflow/services/openaicompat"
)

// Embedder kinds (TGFLOW_EMBEDDER).
const (
	KindUSE     = "use"
	KindHashing = "hashing"
	KindOpenAI  = "openai"
)

// Config is the embedder's configuration.
type Config struct {
	Kind       string        `env:"TGFLOW_EMBEDDER" envDefault:"use" help:"use (Universal Sentence Encoder multilingual, local), hashing (lexical fallback, local) or openai (TGFLOW_OPENAI_*)"`
	HashingDim int           `env:"TGFLOW_HASHING_DIM" envDefault:"256" help:"dimension of the hashing embedder's vectors"`
	OpenAIDim  int           `env:"TGFLOW_OPENAI_EMBED_DIM" envDefault:"1536" help:"dimension of the OpenAI-compatible embeddings model's vectors"`
	Batch      int           `env:"TGFLOW_EMBED_BATCH" envDefault:"32" help:"texts embedded together, at most"`
	BatchWait  time.Duration `env:"TGFLOW_EMBED_BATCH_WAIT" envDefault:"20ms" help:"longest wait for a partial batch to fill while no other batch is being embedded (while one is, it keeps filling)"`
	Models     use.Config
	OpenAI     openaicompat.Config
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	switch c.Kind {
	case KindUSE, KindHashing:
	case KindOpenAI:
		if !c.OpenAI.Configured() {
			errs = append(errs, errors.New("env: TGFLOW_EMBEDDER=openai needs TGFLOW_OPENAI_BASE_URL"))
		}
		if c.OpenAI.EmbedModel == "" {
			errs = append(errs, errors.New("env: TGFLOW_EMBEDDER=openai needs TGFLOW_OPENAI_EMBED_MODEL"))
		}
	default:
		errs = append(errs, fmt.Errorf("env: TGFLOW_EMBEDDER: %q is not one of use, hashing, openai", c.Kind))
	}
	if c.HashingDim < 16 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_HASHING_DIM: %d is below 16", c.HashingDim))
	}
	if c.OpenAIDim <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_OPENAI_EMBED_DIM: %d is not positive", c.OpenAIDim))
	}
	if c.Batch <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_EMBED_BATCH: %d is not positive", c.Batch))
	}
	if c.OpenAI.Configured() {
		if err := c.OpenAI.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Open returns the configured embedder. With `use` and no model on disk it pulls the model
// (pip); only when pip is unavailable does it fall back to the hashing embedder, and it
// says so: the fallback is a different, lexical vector space.
func Open(ctx context.Context, cfg Config, dataDir string, log *slog.Logger, metrics *openaicompat.Metrics) (embed.Embedder, error) {
	switch cfg.Kind {
	case KindHashing:
		return hashing.New(hashing.Config{Dim: cfg.HashingDim})
	case KindOpenAI:
		c, err := openaicompat.New(cfg.OpenAI, openaicompat.Options{Metrics: metrics})
		if err != nil {
			return nil, err
		}
		return c.Embedder(cfg.OpenAIDim)
	}
	dir := cfg.Models.Resolve(dataDir)
	e, err := use.Load(dir)
	if err == nil {
		return e, nil
	}
	log.Info("USE model not loaded; pulling it", "models_dir", dir, "reason", err)
	if _, perr := use.Pull(ctx, dir, use.PullOptions{}); perr != nil {
		if errors.Is(perr, use.ErrNoPip) {
			log.Warn("the USE model was never pulled and pip is unavailable: embedding with the LEXICAL hashing embedder instead (a different vector space); run `tgflow models pull` to fix",
				"models_dir", dir)
			return hashing.New(hashing.Config{Dim: cfg.HashingDim})
		}
		return nil, fmt.Errorf("embedder: pull the USE model into %s: %w", dir, perr)
	}
	return use.Load(dir)
}

// placeholder is embedded for a revision with nothing to say (a bare photo): every
// revision gets its one vector, and all such posts sit together.
const placeholder = "[media]"

// Handler embeds enriched revisions.
type Handler struct {
	batch  *embed.Batcher
	info   embed.Info
	now    func() time.Time
	topics topicsOnce
}

// topicsOnce builds the topic matcher on first use, once: a remote embedder that cannot embed
// the topic descriptions yet fails that post (retried later) instead of the stage's start.
type topicsOnce struct {
	emb  embed.Embedder
	list []topics.Topic
	opts topics.Options
	mu   sync.Mutex
	m    *topics.Matcher
}

func (o *topicsOnce) get(ctx context.Context) (*topics.Matcher, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m != nil {
		return o.m, nil
	}
	m, err := topics.NewMatcher(ctx, o.emb, o.list, o.opts)
	if err != nil {
		return nil, fmt.Errorf("embedder: topics: %w", err)
	}
	o.m = m
	return m, nil
}

// NewHandler embeds through e, gathering concurrent posts into batches, and gives each
// vector its topics from list (nil: the shipped list) with options o.
func NewHandler(e embed.Embedder, batch int, wait time.Duration, list []topics.Topic, o topics.Options) (*Handler, error) {
	if e == nil {
		return nil, errors.New("embedder: nil embedder")
	}
	if list == nil {
		var err error
		if list, err = topics.Default(); err != nil {
			return nil, err
		}
	}
	if err := topics.Validate(list); err != nil {
		return nil, err
	}
	if _, err := o.WithDefaults(e.Info()); err != nil {
		return nil, err
	}
	return &Handler{batch: embed.NewBatcher(e, batch, wait), info: e.Info(), now: time.Now,
		topics: topicsOnce{emb: e, list: list, opts: o}}, nil
}

// Topics returns the handler's topic matcher, embedding the topic descriptions on the first
// call (a failed call is tried again on the next).
func (h *Handler) Topics(ctx context.Context) (*topics.Matcher, error) { return h.topics.get(ctx) }

// Close stops the batcher.
func (h *Handler) Close() { h.batch.Close() }

// Info is the vector space this handler writes.
func (h *Handler) Info() embed.Info { return h.info }

// Handle computes the one posts.embedded of an enriched revision.
func (h *Handler) Handle(ctx context.Context, in events.Event, p *events.PostEnriched) ([]events.Event, error) {
	text := Compose(p)
	bare := text == ""
	if bare {
		text = placeholder
	}
	vec, err := h.batch.EmbedOne(ctx, text)
	switch {
	case err == nil:
	case errors.Is(err, embed.ErrInvalidInput), errors.Is(err, openaicompat.ErrRejected):
		return nil, worker.Permanent(fmt.Errorf("embed %s: %w", p.Key(), err))
	default:
		return nil, fmt.Errorf("embed %s: %w", p.Key(), err)
	}
	topicNames, source, err := h.topicsOf(ctx, p, vec, bare)
	if err != nil {
		return nil, fmt.Errorf("topics of %s: %w", p.Key(), err)
	}
	sum := sha256.Sum256([]byte(text))
	out := &events.PostEmbedded{
		PostRef:         p.PostRef,
		Rev:             p.Rev,
		Vector:          vec,
		Provider:        h.info.Name,
		Model:           h.info.Model,
		EmbedderVersion: h.info.Version,
		Dim:             h.info.Dim,
		Lexical:         h.info.Lexical,
		InputSHA256:     hex.EncodeToString(sum[:]),
		Topics:          topicNames,
		TopicsSource:    source,
	}
	return []events.Event{worker.Derive(ctx, in, out, h.now())}, nil
}

// topicsOf are the post's topics and who chose them: a chat tagger's choice passed on
// untouched (its source names it), else the topics of the post's vector; a revision with
// nothing to say (bare) is about no topic.
func (h *Handler) topicsOf(ctx context.Context, p *events.PostEnriched, vec []float32, bare bool) ([]string, string, error) {
	if p.TopicsSource != "" {
		return p.Topics, p.TopicsSource, nil
	}
	m, err := h.Topics(ctx)
	if err != nil {
		return nil, "", err
	}
	if bare {
		return nil, m.Source(), nil
	}
	return m.Match(vec), m.Source(), nil
}
