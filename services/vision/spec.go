package vision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/ingest/media"
	"github.com/tgflow/tgflow/services/openaicompat"
)

// Providers of the stage (TGFLOW_VISION_PROVIDER).
const (
	ProviderLocal  = "local"
	ProviderOpenAI = "openai"
)

// StageConfig is the vision stage's configuration, from TGFLOW_* variables.
type StageConfig struct {
	Provider      string        `env:"TGFLOW_VISION_PROVIDER" envDefault:"local" help:"local (formats, colours, pHash/dHash, Tesseract OCR; offline) or openai (the same, plus a description, labels and objects of each image from TGFLOW_VISION_MODEL over TGFLOW_OPENAI_*)"`
	Model         string        `env:"TGFLOW_VISION_MODEL" help:"TGFLOW_VISION_PROVIDER=openai: the vision model; empty: TGFLOW_OPENAI_CHAT_MODEL"`
	MaxImages     int           `env:"TGFLOW_VISION_MAX_IMAGES" envDefault:"10" help:"distinct images analysed per post; the rest are recorded with reason limit"`
	MaxBytes      int64         `env:"TGFLOW_VISION_MAX_BYTES" envDefault:"20971520" help:"largest image file read from the media store, in bytes; a larger one is recorded with reason too_large"`
	MaxPixels     int           `env:"TGFLOW_VISION_MAX_PIXELS" envDefault:"40000000" help:"largest decoded image, width × height"`
	NearThreshold int           `env:"TGFLOW_VISION_NEAR_THRESHOLD" envDefault:"10" help:"largest pHash Hamming distance (1–32 of 64 bits) linking an image to an earlier one of another post as a near-duplicate; -1 turns linking off"`
	OCR           bool          `env:"TGFLOW_VISION_OCR" envDefault:"true" help:"recognise the text of images with Tesseract"`
	Tesseract     string        `env:"TGFLOW_VISION_TESSERACT" envDefault:"tesseract" help:"the tesseract executable, a path or a name looked up in PATH"`
	OCRLanguages  string        `env:"TGFLOW_VISION_OCR_LANGUAGES" envDefault:"rus+eng" help:"tesseract -l argument; every language must be installed (tesseract-ocr-rus, tesseract-ocr-eng)"`
	OCRTimeout    time.Duration `env:"TGFLOW_VISION_OCR_TIMEOUT" envDefault:"30s" help:"longest run of tesseract on one image"`
	OCRProcs      int           `env:"TGFLOW_VISION_OCR_PROCS" envDefault:"0" help:"tesseract processes running at once, at most; 0: the CPU count"`
	Concurrency   int           `env:"TGFLOW_VISION_CONCURRENCY" envDefault:"4" help:"posts analysed at once"`
	BreakerOpen   time.Duration `env:"TGFLOW_VISION_BREAKER_OPEN" envDefault:"30s" help:"TGFLOW_VISION_PROVIDER=openai: how long the provider's circuit stays open before a trial call; inputs are held meanwhile, spending no deliveries"`
	OpenAI        openaicompat.Config
}

// Validate reports every problem at once.
func (c *StageConfig) Validate() error {
	var errs []error
	switch c.Provider {
	case ProviderLocal:
	case ProviderOpenAI:
		if !c.OpenAI.Configured() {
			errs = append(errs, errors.New("env: TGFLOW_VISION_PROVIDER=openai needs TGFLOW_OPENAI_BASE_URL"))
		}
		if c.model() == "" {
			errs = append(errs, errors.New("env: TGFLOW_VISION_PROVIDER=openai needs TGFLOW_VISION_MODEL or TGFLOW_OPENAI_CHAT_MODEL"))
		}
	default:
		errs = append(errs, fmt.Errorf("env: TGFLOW_VISION_PROVIDER: %q is not one of local, openai", c.Provider))
	}
	if c.MaxImages < 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_VISION_MAX_IMAGES: %d is below 1", c.MaxImages))
	}
	if c.MaxBytes < 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_VISION_MAX_BYTES: %d is below 1", c.MaxBytes))
	}
	if c.MaxPixels < 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_VISION_MAX_PIXELS: %d is below 1", c.MaxPixels))
	}
	// The library reads a zero threshold as its default, so 0 cannot mean "exact copies
	// only": it is refused rather than silently widened to the default.
	if c.NearThreshold == 0 || c.NearThreshold < -1 || c.NearThreshold > 32 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_VISION_NEAR_THRESHOLD: %d is not -1 or in [1, 32]", c.NearThreshold))
	}
	if c.OCR {
		if c.Tesseract == "" {
			errs = append(errs, errors.New("env: TGFLOW_VISION_TESSERACT is empty while TGFLOW_VISION_OCR is on"))
		}
		if c.OCRLanguages == "" {
			errs = append(errs, errors.New("env: TGFLOW_VISION_OCR_LANGUAGES is empty while TGFLOW_VISION_OCR is on"))
		}
	}
	if c.OCRTimeout <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_VISION_OCR_TIMEOUT: %s is not positive", c.OCRTimeout))
	}
	if c.OCRProcs < 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_VISION_OCR_PROCS: %d is negative", c.OCRProcs))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_VISION_CONCURRENCY: %d is below 1", c.Concurrency))
	}
	if c.BreakerOpen <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_VISION_BREAKER_OPEN: %s is not positive", c.BreakerOpen))
	}
	if c.OpenAI.Configured() {
		if err := c.OpenAI.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// model is the vision model of the openai provider.
func (c *StageConfig) model() string {
	if c.Model != "" {
		return c.Model
	}
	return c.OpenAI.ChatModel
}

// Library is the Analyzer's configuration.
func (c *StageConfig) Library() Config {
	return Config{MaxImages: c.MaxImages, MaxBytes: c.MaxBytes, MaxPixels: c.MaxPixels,
		NearThreshold: c.NearThreshold, DisableOCR: !c.OCR}
}

// Spec registers the vision stage: `tgflow vision`.
func Spec() services.Spec {
	return services.Spec{
		Name:      "vision",
		Doc:       "posts.parsed → posts.vision.analyzed: formats, colours, perceptual hashes, OCR and near-duplicates of the images of a post (and descriptions from an OpenAI-compatible vision model when configured)",
		Consumers: []string{topology.ConsumerVision},
		Config:    func() any { return &StageConfig{} },
		New: func(ctx context.Context, d services.Deps) (services.Service, error) {
			var cfg StageConfig
			if err := config.Load(&cfg, d.Env); err != nil {
				return nil, err
			}
			if d.JS == nil {
				return nil, fmt.Errorf("%w: jetstream", ErrNilDependency)
			}
			obs, err := d.JS.ObjectStore(ctx, topology.ObjectMedia)
			if err != nil {
				return nil, fmt.Errorf("vision: object store %s: %w", topology.ObjectMedia, err)
			}
			// The store only reads here; its MaxBytes bounds Put, which this stage never calls.
			store, err := media.NewStore(obs, media.Config{})
			if err != nil {
				return nil, fmt.Errorf("vision: %w", err)
			}
			var desc Describer
			if cfg.Provider == ProviderOpenAI {
				metrics, err := openaicompat.NewMetrics(d.Registry)
				if err != nil {
					return nil, fmt.Errorf("vision: %w", err)
				}
				client, err := openaicompat.New(cfg.OpenAI, openaicompat.Options{Metrics: metrics})
				if err != nil {
					return nil, fmt.Errorf("vision: %w", err)
				}
				if desc, err = NewOpenAIDescriber(client, cfg.model()); err != nil {
					return nil, fmt.Errorf("vision: %w", err)
				}
			}
			return NewStage(ctx, d, cfg, store, desc)
		},
	}
}
