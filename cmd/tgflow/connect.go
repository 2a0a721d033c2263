package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/embedded"
	"github.com/tgflow/tgflow/nats/topology"
)

// conn is a NATS connection, and the embedded server when this process runs one.
type conn struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Server *embedded.Server
	URL    string
	log    *slog.Logger
}

// Close drains the connection (pending publishes and acks are flushed), then stops the
// embedded server if this process runs one.
func (c *conn) Close() {
	if c.NC != nil {
		if err := c.NC.Drain(); err != nil && c.log != nil {
			c.log.Warn("NATS drain failed: messages not yet flushed may be lost", "url", config.URLs(c.URL), "err", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !c.NC.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		c.NC.Close()
	}
	if c.Server != nil {
		c.Server.Stop()
	}
}

// connect reaches the configured NATS server. With no TGFLOW_NATS_URL it uses laptop mode:
// an embedded server on TGFLOW_EMBEDDED_PORT over TGFLOW_DATA_DIR, or the one a running
// `tgflow dev` already serves there.
func connect(ctx context.Context, b *config.Base, name string, log *slog.Logger) (*conn, error) {
	opts := []nats.Option{nats.Name("tgflow-" + name), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
	if b.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(b.NATSCreds))
	}
	c := &conn{URL: string(b.NATSURL), log: log}
	if c.URL == "" && b.EmbeddedPort != 0 {
		probe := fmt.Sprintf("nats://127.0.0.1:%d", b.EmbeddedPort)
		if nc, err := nats.Connect(probe, append(opts, nats.Timeout(500*time.Millisecond), nats.MaxReconnects(0))...); err == nil {
			nc.Close()
			c.URL = probe
			log.Info("using the embedded NATS server of a running tgflow", "url", probe)
		}
	}
	if c.URL == "" {
		s, err := embedded.Start(embedded.Options{DataDir: b.DataDir, Port: b.EmbeddedPort})
		if err != nil {
			return nil, err
		}
		c.Server, c.URL = s, s.ClientURL()
		log.Info("embedded NATS server started", "url", c.URL, "data_dir", absPath(b.DataDir))
		// Other tools find the server here (its port may have been picked at random); a
		// stale file would send them to a server that is gone.
		if err := os.WriteFile(filepath.Join(b.DataDir, "nats.url"), []byte(c.URL+"\n"), 0o644); err != nil {
			c.Close()
			return nil, fmt.Errorf("record the embedded server's URL: %w", err)
		}
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connect to NATS at %s: %w", config.URLs(c.URL), err)
	}
	c.NC = nc
	c.JS, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.JS.AccountInfo(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("JetStream at %s: %w", config.URLs(c.URL), err)
	}
	if c.Server != nil {
		// Laptop mode just works: the streams and buckets exist before any command uses them.
		if _, err := topology.Apply(ctx, c.JS, topology.ApplyOptions{Consumers: []string{}}); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// absPath is p made absolute for a log line, or p itself when the working directory is gone.
func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}
