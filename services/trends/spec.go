package trends

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/internal/fanin"
)

// StageConfig is the trends stage's configuration (TGFLOW_TRENDS_*).
type StageConfig struct {
	MinChannels int           `env:"TGFLOW_TRENDS_MIN_CHANNELS" envDefault:"3" help:"least number of distinct channels a trend's posts come from"`
	MinCount    int           `env:"TGFLOW_TRENDS_MIN_COUNT" envDefault:"5" help:"least number of posts of the tag in the 1 h window"`
	MinScore    float64       `env:"TGFLOW_TRENDS_MIN_SCORE" envDefault:"3" help:"least burst score: (count-expected)/sqrt(expected+1), expected from the 23 h before the window"`
	Cooldown    time.Duration `env:"TGFLOW_TRENDS_COOLDOWN" envDefault:"1h" help:"least event time between two detections of one tag (a multiple of 5m)"`
	LateLimit   time.Duration `env:"TGFLOW_TRENDS_LATE_LIMIT" envDefault:"2h" help:"how far behind the newest post date a post may be and still count (a multiple of 5m)"`
	MaxSamples  int           `env:"TGFLOW_TRENDS_MAX_SAMPLES" envDefault:"5" help:"sample posts in a trends.detected fact (1–5)"`
	MinHistory  time.Duration `env:"TGFLOW_TRENDS_MIN_HISTORY" envDefault:"3h" help:"least history before a window that makes a baseline; until the log holds that much, nothing trends (at most 23h)"`
}

// Validate reports every problem at once. Zero is refused as well: the library would
// silently take its default for it.
func (c StageConfig) Validate() error {
	var errs []error
	if c.MinChannels <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TRENDS_MIN_CHANNELS: %d is not positive", c.MinChannels))
	}
	if c.MinCount <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TRENDS_MIN_COUNT: %d is not positive", c.MinCount))
	}
	if c.MinScore <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TRENDS_MIN_SCORE: %g is not positive", c.MinScore))
	}
	if c.MaxSamples <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TRENDS_MAX_SAMPLES: %d is not positive", c.MaxSamples))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"TGFLOW_TRENDS_COOLDOWN", c.Cooldown}, {"TGFLOW_TRENDS_LATE_LIMIT", c.LateLimit}, {"TGFLOW_TRENDS_MIN_HISTORY", c.MinHistory},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("env: %s: %s is not positive", d.name, d.v))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return c.Library().Validate()
}

// Library is the Machine's Config of c.
func (c StageConfig) Library() Config {
	return Config(c)
}

// Spec registers the trends stage: `tgflow trends`. Run it as a single instance: the
// machine must see every posts.tagged fact, in log order.
func Spec() services.Spec {
	return services.Spec{
		Name:      "trends",
		Doc:       "posts.tagged → trends.detected: tag bursts across channels in 1 h windows against a 23 h baseline (single instance)",
		Consumers: []string{topology.ConsumerTrends},
		Config:    func() any { return &StageConfig{} },
		New: func(_ context.Context, d services.Deps) (services.Service, error) {
			var cfg StageConfig
			if err := config.Load(&cfg, d.Env); err != nil {
				return nil, err
			}
			return NewStage(d, cfg.Library())
		},
	}
}

// Router is the trends stage's router over m.
func Router(m *Machine) *worker.Router {
	r := worker.NewRouter()
	r.Use(fanin.ContinueTrace)
	worker.On(r, m.Handle)
	return r
}

// Stage is the running trends stage.
type Stage struct {
	m     *Machine
	js    jetstream.JetStream
	stage *worker.Stage
	log   *slog.Logger
}

// NewStage builds the trends stage on the log with a new machine of cfg; Run rebuilds the
// machine from the log before it consumes.
func NewStage(d services.Deps, cfg Config) (*Stage, error) {
	if d.JS == nil {
		return nil, errors.New("trends: nil JetStream")
	}
	m, err := NewMachine(cfg)
	if err != nil {
		return nil, err
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	c, ok := topology.LookupConsumer(topology.ConsumerTrends)
	if !ok {
		return nil, errors.New("trends: no trends consumer in the topology")
	}
	st, err := worker.NewStage(d.JS, worker.Config{
		Consumer: c.Config(), Metrics: d.Metrics, Logger: log,
		// The machine's answers depend on the order of the facts: one at a time, in log order.
		Concurrency: 1,
	}, Router(m))
	if err != nil {
		return nil, err
	}
	return &Stage{m: m, js: d.JS, stage: st, log: log}, nil
}

// Run rebuilds the machine from the log (Rebuild: the state up to the consumer's ack floor
// and the cooldowns of every trend published), then consumes until ctx ends.
func (s *Stage) Run(ctx context.Context) error {
	stats, err := Rebuild(ctx, s.js, s.m, topology.ConsumerTrends, time.Now(), s.log)
	if ctx.Err() != nil {
		return nil // stopped while rebuilding: nothing was consumed
	}
	if err != nil {
		return fmt.Errorf("trends: rebuild: %w", err)
	}
	s.log.Info("trends: rebuilt from the log", "facts", stats.Facts, "trends", stats.Trends, "undecodable", stats.Undecodable, "last_seq", stats.LastSeq, "watermark", s.m.Watermark())
	return s.stage.Run(ctx)
}
