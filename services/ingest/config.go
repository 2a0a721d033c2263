package ingest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/ingest/session"
	"github.com/tgflow/tgflow/services/ingest/telegram"
)

// Config is the configuration of the ingest service, from TGFLOW_* variables.
type Config struct {
	AppID      int           `env:"TGFLOW_TG_APP_ID" help:"Telegram API app id (https://my.telegram.org); with the app hash, enables live ingest"`
	AppHash    config.Secret `env:"TGFLOW_TG_APP_HASH" help:"Telegram API app hash"`
	SessionKey config.Secret `env:"TGFLOW_SESSION_KEY" help:"AES-256 key of the stored Telegram session: 32 bytes as base64 or hex (openssl rand -base64 32)"`

	Interval         time.Duration `env:"TGFLOW_INGEST_INTERVAL" envDefault:"5m" help:"time between two ingest runs over every channel (jittered)"`
	Jitter           float64       `env:"TGFLOW_INGEST_JITTER" envDefault:"0.1" help:"fraction of the interval added or removed at random"`
	BackfillMessages int           `env:"TGFLOW_BACKFILL_MESSAGES" envDefault:"1000" help:"history read for a newly subscribed channel, in messages (0: no message limit)"`
	BackfillDays     int           `env:"TGFLOW_BACKFILL_DAYS" envDefault:"0" help:"history read for a newly subscribed channel, in days (0: no day limit); with both limits the first one reached stops"`
	RecheckMessages  int           `env:"TGFLOW_RECHECK_MESSAGES" envDefault:"100" help:"latest messages per channel refetched to find edits, deletions and new counters (0 disables)"`
	RecheckInterval  time.Duration `env:"TGFLOW_RECHECK_INTERVAL" envDefault:"1h" help:"time between two rechecks of a channel"`
	MediaMaxBytes    int64         `env:"TGFLOW_MEDIA_MAX_BYTES" envDefault:"52428800" help:"largest media file downloaded; larger ones are recorded as skipped"`
	MediaKinds       string        `env:"TGFLOW_MEDIA_KINDS" envDefault:"photo,video,animation,document" help:"media kinds downloaded (photo, video, animation, document, audio, voice, sticker); others are recorded as skipped by policy"`

	RPS             float64       `env:"TGFLOW_TG_RPS" envDefault:"3" help:"Telegram calls per second, at most"`
	ResolveInterval time.Duration `env:"TGFLOW_TG_RESOLVE_INTERVAL" envDefault:"20s" help:"least time between two username resolutions"`
	ResolvePerRun   int           `env:"TGFLOW_TG_RESOLVE_PER_RUN" envDefault:"5" help:"username resolutions per run, at most; the rest wait for the next run"`
	FloodMaxWait    time.Duration `env:"TGFLOW_TG_FLOOD_MAX_WAIT" envDefault:"1m" help:"longest FLOOD_WAIT slept through; a longer one backs the channel off instead"`

	LeaseTTL      time.Duration `env:"TGFLOW_INGEST_LEASE_TTL" envDefault:"30s" help:"scheduler lease lifetime in the leases bucket (at most 1m, the bucket's TTL); renewed every third of it"`
	BackoffMax    time.Duration `env:"TGFLOW_INGEST_BACKOFF_MAX" envDefault:"6h" help:"longest backoff of a failing channel (it starts at the interval and doubles)"`
	FailedRecheck time.Duration `env:"TGFLOW_INGEST_FAILED_RECHECK" envDefault:"24h" help:"when a private, invalid or unknown channel is looked at again"`
}

// maxLeaseTTL is the leases bucket's TTL: a lease longer than it would vanish unrenewed.
const maxLeaseTTL = time.Minute

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	hasID, hasHash := c.AppID != 0, c.AppHash != ""
	if hasID != hasHash {
		errs = append(errs, errors.New("env: TGFLOW_TG_APP_ID and TGFLOW_TG_APP_HASH must be set together"))
	}
	if c.AppID < 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TG_APP_ID: %d is not an app id", c.AppID))
	}
	if c.SessionKey != "" {
		if _, err := session.ParseKey(c.SessionKey.Reveal()); err != nil {
			errs = append(errs, fmt.Errorf("env: %w", err))
		}
	} else if hasID && hasHash {
		errs = append(errs, errors.New("env: TGFLOW_SESSION_KEY is required with Telegram credentials: the session is stored encrypted (openssl rand -base64 32)"))
	}
	pos := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("env: %s: %s must be positive", name, d))
		}
	}
	pos("TGFLOW_INGEST_INTERVAL", c.Interval)
	pos("TGFLOW_RECHECK_INTERVAL", c.RecheckInterval)
	pos("TGFLOW_TG_RESOLVE_INTERVAL", c.ResolveInterval)
	pos("TGFLOW_TG_FLOOD_MAX_WAIT", c.FloodMaxWait)
	pos("TGFLOW_INGEST_LEASE_TTL", c.LeaseTTL)
	pos("TGFLOW_INGEST_BACKOFF_MAX", c.BackoffMax)
	pos("TGFLOW_INGEST_FAILED_RECHECK", c.FailedRecheck)
	if c.LeaseTTL > maxLeaseTTL {
		errs = append(errs, fmt.Errorf("env: TGFLOW_INGEST_LEASE_TTL: %s is longer than the leases bucket's TTL (%s)", c.LeaseTTL, maxLeaseTTL))
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_INGEST_JITTER: %g is not in [0, 1)", c.Jitter))
	}
	if c.BackfillMessages < 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_BACKFILL_MESSAGES: %d is negative", c.BackfillMessages))
	}
	if c.BackfillDays < 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_BACKFILL_DAYS: %d is negative", c.BackfillDays))
	}
	if c.RecheckMessages < 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_RECHECK_MESSAGES: %d is negative", c.RecheckMessages))
	}
	if c.MediaMaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_MEDIA_MAX_BYTES: %d must be positive", c.MediaMaxBytes))
	}
	if c.RPS <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TG_RPS: %g must be positive", c.RPS))
	}
	if c.ResolvePerRun < 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TG_RESOLVE_PER_RUN: %d must be at least 1", c.ResolvePerRun))
	}
	if _, err := c.mediaKinds(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Configured reports whether live ingest can run: services.ErrNotConfigured when the
// Telegram credentials are not set (laptop mode without them skips live ingest).
func (c *Config) Configured() error {
	if c.AppID == 0 && c.AppHash == "" {
		return fmt.Errorf("%w: TGFLOW_TG_APP_ID and TGFLOW_TG_APP_HASH are not set", services.ErrNotConfigured)
	}
	return nil
}

func (c *Config) mediaKinds() ([]string, error) {
	known := map[string]bool{events.MediaPhoto: true, events.MediaVideo: true, events.MediaAnimation: true,
		events.MediaDocument: true, events.MediaAudio: true, events.MediaVoice: true, events.MediaSticker: true}
	var out []string
	for k := range strings.SplitSeq(c.MediaKinds, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if !known[k] {
			return nil, fmt.Errorf("env: TGFLOW_MEDIA_KINDS: %q is not a media kind", k)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		// An empty policy downloads nothing; every attachment is recorded as skipped.
		return []string{"none"}, nil
	}
	return out, nil
}

// Defaults returns the configuration with every default applied and no credentials, for
// tests and for code that builds a service without the environment.
func Defaults() Config {
	var c Config
	if err := config.Load(&c, map[string]string{}); err != nil {
		// The defaults are constants of this file: a failure is a bug in them.
		panic(fmt.Sprintf("ingest: the default configuration does not load: %v", err))
	}
	return c
}

// telegramConfig is the Telegram client part.
func (c *Config) telegramConfig() (telegram.Config, error) {
	kinds, err := c.mediaKinds()
	if err != nil {
		return telegram.Config{}, err
	}
	return telegram.Config{
		AppID:           c.AppID,
		AppHash:         c.AppHash.Reveal(),
		MaxBytes:        c.MediaMaxBytes,
		MediaKinds:      kinds,
		RPS:             c.RPS,
		ResolveInterval: c.ResolveInterval,
		FloodMaxWait:    c.FloodMaxWait,
	}, nil
}
