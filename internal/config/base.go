package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// Base is the configuration every tgflow command shares.
type Base struct {
	NATSURL      URLs   `env:"TGFLOW_NATS_URL" help:"NATS server URL(s), comma-separated; empty runs or reuses the embedded server (laptop mode)"`
	NATSCreds    string `env:"TGFLOW_NATS_CREDS" help:"path of a NATS .creds file (per-service user)"`
	DataDir      string `env:"TGFLOW_DATA_DIR" envDefault:".tgflow" help:"laptop mode: embedded NATS store and local state"`
	EmbeddedPort int    `env:"TGFLOW_EMBEDDED_PORT" envDefault:"4222" help:"laptop mode: loopback port of the embedded NATS server (0 picks one)"`
	// StreamReplicas is read by `tgflow nats apply`: the log's, the DLQ's and every bucket's
	// replica count on a JetStream cluster.
	StreamReplicas int    `env:"TGFLOW_STREAM_REPLICAS" envDefault:"1" help:"replicas of the log, the DLQ and every bucket (tgflow nats apply); 3 or 5 on a JetStream cluster"`
	HTTPAddr       string `env:"TGFLOW_HTTP_ADDR" envDefault:"127.0.0.1:9464" help:"listen address of /metrics, /healthz and /readyz; empty disables"`
	LogLevel       string `env:"TGFLOW_LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	LogFormat      string `env:"TGFLOW_LOG_FORMAT" envDefault:"text" help:"text or json"`
}

// Validate checks values beyond their types.
func (b *Base) Validate() error {
	var errs []error
	if b.NATSURL != "" {
		for u := range strings.SplitSeq(string(b.NATSURL), ",") {
			p, err := url.Parse(strings.TrimSpace(u))
			if err != nil || p.Host == "" {
				errs = append(errs, fmt.Errorf(`env: TGFLOW_NATS_URL: %q is not a URL like nats://host:4222`, URLs(u)))
			}
		}
	}
	if _, err := b.Level(); err != nil {
		errs = append(errs, err)
	}
	if b.LogFormat != "text" && b.LogFormat != "json" {
		errs = append(errs, fmt.Errorf(`env: TGFLOW_LOG_FORMAT: %q is not "text" or "json"`, b.LogFormat))
	}
	if b.EmbeddedPort < 0 || b.EmbeddedPort > 65535 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_EMBEDDED_PORT: %d is not a port", b.EmbeddedPort))
	}
	if b.StreamReplicas < 1 || b.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_STREAM_REPLICAS: %d is not between 1 and 5 (JetStream's limit)", b.StreamReplicas))
	}
	if b.DataDir == "" {
		errs = append(errs, errors.New("env: TGFLOW_DATA_DIR: must not be empty"))
	}
	return errors.Join(errs...)
}

// Level parses LogLevel.
func (b *Base) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(b.LogLevel)); err != nil {
		return 0, fmt.Errorf(`env: TGFLOW_LOG_LEVEL: %q is not debug, info, warn or error`, b.LogLevel)
	}
	return l, nil
}

// URLs is a comma-separated list of URLs whose passwords never print.
type URLs string

// String redacts the password of each URL.
func (u URLs) String() string {
	var out []string
	for part := range strings.SplitSeq(string(u), ",") {
		p, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			if strings.Contains(part, "@") {
				out = append(out, "****")
				continue
			}
			out = append(out, part)
			continue
		}
		out = append(out, p.Redacted())
	}
	return strings.Join(out, ",")
}

// LogValue redacts passwords in slog output.
func (u URLs) LogValue() slog.Value { return slog.StringValue(u.String()) }
