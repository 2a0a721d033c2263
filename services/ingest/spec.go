package ingest

import (
	"context"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	tdtelegram "github.com/gotd/td/telegram"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/ingest/media"
	"github.com/tgflow/tgflow/services/ingest/session"
	"github.com/tgflow/tgflow/services/ingest/telegram"
)

// Spec registers the ingest service: `tgflow ingest`. Without Telegram credentials its New
// returns services.ErrNotConfigured, so laptop mode skips live ingest.
func Spec() services.Spec {
	return services.Spec{
		Name:      "ingest",
		Doc:       "follow Telegram channels: backfill, incremental reads, edits/deletions recheck, media → object store",
		Consumers: []string{topology.ConsumerIngest},
		Config:    func() any { return &Config{} },
		New: func(ctx context.Context, d services.Deps) (services.Service, error) {
			var cfg Config
			if err := config.Load(&cfg, d.Env); err != nil {
				return nil, err
			}
			if err := cfg.Configured(); err != nil {
				return nil, err
			}
			tg, err := NewTelegram(ctx, cfg, d.JS, tdtelegram.Options{}, d)
			if err != nil {
				return nil, err
			}
			return New(ctx, cfg, d, tg)
		},
	}
}

// NewTelegram builds the Telegram client of ingest: the encrypted session in the
// tg-session bucket, media into the media object store. opts are extra gotd options (tests
// point them at tgtest); their SessionStorage, when set, replaces the KV storage.
func NewTelegram(ctx context.Context, cfg Config, js jetstream.JetStream, opts tdtelegram.Options, d services.Deps) (*telegram.Client, error) {
	if err := cfg.Configured(); err != nil {
		return nil, err
	}
	if opts.SessionStorage == nil {
		st, err := SessionStorage(ctx, cfg, js)
		if err != nil {
			return nil, err
		}
		opts.SessionStorage = st
	}
	obs, err := js.ObjectStore(ctx, topology.ObjectMedia)
	if err != nil {
		return nil, fmt.Errorf("ingest: object store %s: %w", topology.ObjectMedia, err)
	}
	store, err := media.NewStore(obs, media.Config{MaxBytes: cfg.MediaMaxBytes})
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	tc, err := cfg.telegramConfig()
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	tc.Options = opts
	tc.Media = store
	tc.Logger = d.Logger
	return telegram.New(tc)
}

// SessionStorage is the encrypted session storage of ingest in the tg-session bucket.
func SessionStorage(ctx context.Context, cfg Config, js jetstream.JetStream) (*session.Storage, error) {
	key, err := session.ParseKey(cfg.SessionKey.Reveal())
	if err != nil {
		return nil, fmt.Errorf("env: %w", err)
	}
	kv, err := js.KeyValue(ctx, topology.BucketSession)
	if err != nil {
		return nil, fmt.Errorf("ingest: bucket %s: %w", topology.BucketSession, err)
	}
	return session.NewStorage(kv, key, session.DefaultName)
}

// Login logs the Telegram account of ingest in (`tgflow login [qr|phone]`) and stores the
// session encrypted in the tg-session bucket. method is "qr" (default) or "phone"; the 2FA
// password is asked for when the account has one. Answers are read from in, prompts and
// the QR code written to out.
func Login(ctx context.Context, js jetstream.JetStream, env map[string]string, in io.Reader, out io.Writer, method string) error {
	var cfg Config
	if err := config.Load(&cfg, env); err != nil {
		return err
	}
	if err := cfg.Configured(); err != nil {
		return err
	}
	st, err := SessionStorage(ctx, cfg, js)
	if err != nil {
		return err
	}
	return session.Login(ctx, session.LoginOptions{
		AppID:   cfg.AppID,
		AppHash: cfg.AppHash.Reveal(),
		Storage: st,
		Method:  method,
		In:      in,
		Out:     out,
	})
}
