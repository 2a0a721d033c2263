package vision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sony/gobreaker/v2"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/logtail"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
)

// ErrNilDependency is a stage built without one of its dependencies.
var ErrNilDependency = errors.New("vision: nil dependency")

// Handler turns post versions into posts.vision.analyzed facts with an Analyzer.
type Handler struct {
	a *Analyzer
}

// NewHandler returns the stage's handler over a.
func NewHandler(a *Analyzer) (*Handler, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: analyzer", ErrNilDependency)
	}
	return &Handler{a: a}, nil
}

// handle analyses one post version: one fact, or nothing for a post without images. An
// unreachable media store or provider is returned as is (transient: the input is retried).
func (h *Handler) handle(ctx context.Context, in events.Event, p *events.Post) ([]events.Event, error) {
	f, err := h.a.Analyze(ctx, p)
	switch {
	case errors.Is(err, ErrNoImages):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return []events.Event{worker.Derive(ctx, in, f, in.Time)}, nil
}

// Router is the stage's router: a handler for posts.parsed, and for posts.edited when the
// topology's vision consumer reads it (an edit can replace the media of a post; the fact
// carries the version it analysed). mws (the provider's circuit breaker) wrap every handler.
func (h *Handler) Router(mws ...worker.Middleware) *worker.Router {
	r := worker.NewRouter()
	r.Use(mws...)
	worker.On(r, func(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
		return h.handle(ctx, in, &p.Post)
	})
	if ReadsEdits() {
		worker.On(r, func(ctx context.Context, in events.Event, p *events.PostEdited) ([]events.Event, error) {
			return h.handle(ctx, in, &p.Post)
		})
	}
	return r
}

// ReadsEdits reports whether the topology's vision consumer reads posts.edited.
func ReadsEdits() bool {
	c, ok := topology.LookupConsumer(topology.ConsumerVision)
	return ok && slices.Contains(c.Inputs, events.TypePostEdited)
}

// Stage is the running vision stage: the near-duplicate index fed from the log, and the
// stage on the vision consumer.
type Stage struct {
	feed  *IndexFeed
	stage *worker.Stage
	log   *slog.Logger
}

// NewStage builds the vision stage over the media objects: OCR with Tesseract unless
// cfg.OCR is off, descriptions from desc when set (behind a circuit breaker), and
// near-duplicates linked through an index fed from the log's posts.vision.analyzed.
func NewStage(ctx context.Context, d services.Deps, cfg StageConfig, objects Objects, desc Describer) (*Stage, error) {
	if d.JS == nil || objects == nil {
		return nil, fmt.Errorf("%w: jetstream or media store", ErrNilDependency)
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := Options{Objects: objects, Describer: desc, Index: NewIndex()}
	if cfg.OCR {
		t, err := NewTesseract(TesseractConfig{Binary: cfg.Tesseract, Languages: cfg.OCRLanguages, Timeout: cfg.OCRTimeout, MaxProcs: cfg.OCRProcs})
		if err != nil {
			return nil, err
		}
		// Without tesseract the stage still runs: each item says "OCR unavailable".
		if info, err := TesseractStatus(ctx, cfg.Tesseract, cfg.OCRLanguages); err != nil {
			log.Warn("vision: OCR unavailable; images are analysed without text", "err", err)
		} else {
			log.Info("vision: OCR", "tesseract", info.Binary, "version", info.Version, "languages", cfg.OCRLanguages)
		}
		opts.OCR = t
	}
	a, err := NewAnalyzer(cfg.Library(), opts)
	if err != nil {
		return nil, err
	}
	h, err := NewHandler(a)
	if err != nil {
		return nil, err
	}
	var mws []worker.Middleware
	if desc != nil {
		open := cfg.BreakerOpen
		if open <= 0 {
			open = 30 * time.Second
		}
		mws = append(mws, worker.CircuitBreaker(worker.NewBreaker(gobreaker.Settings{Name: "vision", Timeout: open}), min(5*time.Second, open)))
	}
	c, ok := topology.LookupConsumer(topology.ConsumerVision)
	if !ok {
		return nil, errors.New("vision: no vision consumer in the topology")
	}
	provider := ProviderLocal
	if desc != nil {
		provider = desc.Name() + "/" + desc.Model()
	}
	log.Info("vision", "provider", provider, "ocr", cfg.OCR, "near_threshold", cfg.NearThreshold, "reads_edits", ReadsEdits())
	concurrency := max(cfg.Concurrency, 1)
	st, err := worker.NewStage(d.JS, worker.Config{
		Consumer: c.Config(), Metrics: d.Metrics, Logger: log,
		Concurrency: concurrency, Batch: max(16, 2*concurrency),
	}, h.Router(mws...))
	if err != nil {
		return nil, err
	}
	return &Stage{feed: NewIndexFeed(d.JS, opts.Index, log), stage: st, log: log}, nil
}

// Index is the stage's near-duplicate index.
func (s *Stage) Index() *Index { return s.feed.ix }

// Run replays posts.vision.analyzed into the index, then consumes posts until ctx ends
// while the index follows the log.
func (s *Stage) Run(ctx context.Context) error {
	fctx, stopFeed := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.feed.Run(fctx) })
	defer func() { stopFeed(); wg.Wait() }()
	// Analyse nothing before the index holds every fact the log had at start: a post
	// analysed earlier would miss its links, and a restart would link differently.
	select {
	case <-ctx.Done():
		return nil
	case <-s.feed.Ready():
	}
	s.log.Info("vision: near-duplicate index replayed", "images", s.feed.ix.Len(), "seq", s.feed.ix.Seq())
	return s.stage.Run(ctx)
}

// analyzedSubjects is what the index is fed from.
const analyzedSubjects = "posts.vision.analyzed.>"

// feedRetry is the pause before the feed reopens its reader after a failure.
const feedRetry = 2 * time.Second

// IndexFeed keeps an Index in step with the log's posts.vision.analyzed facts.
//
// Why a reader of the log and not the handler: the runtime publishes a handler's outputs
// after it returns, and only the log assigns them their sequence. Adding a fact in the
// handler would need a stand-in for that sequence (the input's order), could index a fact
// the log then refuses or never gets (a failed publish, a shutdown), and would index a
// redelivered post a second time — the live index would then differ from one rebuilt from
// the log. An ordered consumer reading posts.vision.analyzed.> in log order, from the
// start and then live, gives every fact its true sequence, exactly once: the live index is
// the rebuilt one by construction. The price is a short lag (the time for a published
// fact to reach the reader): two posts of the same picture analysed at the same moment
// are not linked to each other, exactly as with concurrent handlers in any design.
type IndexFeed struct {
	js  jetstream.JetStream
	ix  *Index
	log *slog.Logger

	mu      sync.Mutex
	ready   chan struct{}
	readyOK bool
}

// NewIndexFeed returns a feed of ix that is not running yet.
func NewIndexFeed(js jetstream.JetStream, ix *Index, log *slog.Logger) *IndexFeed {
	if log == nil {
		log = slog.Default()
	}
	return &IndexFeed{js: js, ix: ix, log: log, ready: make(chan struct{})}
}

// Ready is closed once the index holds every fact the log held when the feed started.
func (f *IndexFeed) Ready() <-chan struct{} { return f.ready }

func (f *IndexFeed) markReady() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.readyOK {
		f.readyOK = true
		close(f.ready)
	}
}

// Run follows the log until ctx ends. A failure of the reader is logged and the reader
// reopened after the last indexed sequence.
func (f *IndexFeed) Run(ctx context.Context) {
	for {
		err := f.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		f.log.Warn("vision: the index reader failed; reopening it", "after_seq", f.ix.Seq(), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(feedRetry):
		}
	}
}

// follow reads posts.vision.analyzed after the index's sequence until ctx ends or the
// reader fails.
func (f *IndexFeed) follow(ctx context.Context) error {
	return logtail.Follow(ctx, f.js, logtail.Options{
		Filters:  []string{analyzedSubjects},
		From:     logtail.From{AfterSeq: f.ix.Seq()},
		Logger:   f.log,
		CaughtUp: f.markReady,
	}, func(seq uint64, m jetstream.Msg) error {
		f.add(seq, m)
		return nil
	})
}

// add indexes one fact. An undecodable fact or an unparsable hash is logged and skipped:
// the fact is in the log for good, and the rest of it (or the next facts) still count.
func (f *IndexFeed) add(seq uint64, m jetstream.Msg) {
	ev, err := events.Default.Decode(events.Header(m.Headers()), m.Data())
	if err != nil {
		f.log.Warn("vision: the index reader skips an undecodable fact", "seq", seq, "subject", m.Subject(), "err", err)
		return
	}
	fact, ok := ev.Data.(*events.PostVisionAnalyzed)
	if !ok {
		f.log.Warn("vision: the index reader skips a fact that is not posts.vision.analyzed", "seq", seq, "type", ev.Type)
		return
	}
	if err := f.ix.AddFact(seq, fact); err != nil {
		f.log.Warn("vision: the index skips images of a fact", "seq", seq, "post", fact.Key(), "err", err)
	}
}
