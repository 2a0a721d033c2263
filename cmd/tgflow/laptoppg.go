package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/embeddedpg"
)

// laptopPostgres gives a command of laptop mode the embedded Postgres of the data dir when
// TGFLOW_POSTGRES_URL is unset (or empty): the one a running tgflow (dev) serves there, or one
// this process starts, and sets TGFLOW_POSTGRES_URL in a.env so that every service and
// projection of the process uses it. The caller closes the server (a server it started stops
// then; a found one keeps running). With TGFLOW_POSTGRES_URL set it returns nil, nil (Close
// of a nil server is a no-op). create=false uses only an existing cluster and returns
// embeddedpg.ErrNoCluster otherwise (reading commands must not create an empty one).
func laptopPostgres(ctx context.Context, a *app, b *config.Base, log *slog.Logger, create bool) (*embeddedpg.Server, error) {
	if a.env["TGFLOW_POSTGRES_URL"] != "" {
		return nil, nil
	}
	var cfg embeddedpg.Config
	if err := config.Load(&cfg, a.env); err != nil {
		return nil, err
	}
	s, err := embeddedpg.Open(ctx, embeddedpg.Options{
		Dir: laptopPostgresDir(b.DataDir), CacheDir: cfg.Cache, OSUser: cfg.OSUser, NoCreate: !create, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	a.env["TGFLOW_POSTGRES_URL"] = s.URL()
	return s, nil
}

// laptopPostgresDir is where laptop mode's Postgres lives in a data dir.
func laptopPostgresDir(dataDir string) string { return filepath.Join(dataDir, "postgres") }

// defaultDataDir is TGFLOW_DATA_DIR's default.
const defaultDataDir = ".tgflow"
