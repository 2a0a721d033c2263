package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/api"
	"github.com/tgflow/tgflow/services/search"
)

func init() {
	register(command{
		name:   "api",
		args:   "[--addr HOST:PORT]",
		doc:    "serve the read models over HTTP: JSON under /api (OpenAPI at /api/openapi.json) and a web page at / for search, posts, trends and channels (TGFLOW_API_ADDR)",
		run:    runAPI,
		config: func() any { return &api.Config{} },
	})
}

func runAPI(ctx context.Context, a *app, args []string) error {
	fs := newFlags("api", a)
	addr := fs.String("addr", "", "listen address (overrides TGFLOW_API_ADDR)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: tgflow api takes no arguments", errUsage)
	}
	var cfg api.Config
	if err := config.Load(&cfg, a.env); err != nil {
		return err
	}
	if *addr != "" {
		cfg.Addr = *addr
	}
	b, log, err := a.base()
	if err != nil {
		return err
	}
	rm, err := openReadModels(ctx, a, b, log)
	if err != nil {
		return err
	}
	defer rm.Close()
	if rm.Pool == nil {
		return fmt.Errorf("%w: tgflow api needs the Postgres read model (TGFLOW_POSTGRES_URL)", services.ErrNotConfigured)
	}
	c, err := connect(ctx, b, "api", log)
	if err != nil {
		return err
	}
	defer c.Close()
	ready := []api.Check{{Name: "nats", Check: func(context.Context) error {
		if !c.NC.IsConnected() {
			return errors.New("not connected to NATS")
		}
		return nil
	}}}
	if q, ok := rm.Service.Semantic.(*search.Qdrant); ok {
		ready = append(ready, api.Check{Name: "qdrant", Check: func(ctx context.Context) error {
			_, err := q.Spaces(ctx)
			return err
		}})
	}
	if g, ok := rm.Service.Graph.(search.Neo4j); ok {
		ready = append(ready, api.Check{Name: "neo4j", Check: g.Driver.VerifyConnectivity})
	}
	metrics, err := api.NewMetrics(newMetricsRegistry())
	if err != nil {
		return err
	}
	srv, err := api.New(cfg, api.Deps{
		Search:  rm.Service,
		Store:   api.PGStore{Pool: rm.Pool, Schema: rm.Schema},
		Log:     api.NATSLog{JS: c.JS},
		Ready:   ready,
		Metrics: metrics,
	}, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("env: TGFLOW_API_ADDR: listen on %s: %w", cfg.Addr, err)
	}
	backends := []string{"postgres"}
	if rm.Service.Semantic != nil {
		backends = append(backends, "qdrant")
	}
	if rm.Service.Graph != nil {
		backends = append(backends, "neo4j")
	}
	fmt.Fprintf(a.stdout, "tgflow api: http://%s/ (search: %v; JSON under /api, OpenAPI at /api/openapi.json, Prometheus series at /metrics)\n", ln.Addr(), backends)
	log.Info("api listening", "addr", ln.Addr().String(), "backends", backends)
	return srv.Serve(ctx, ln)
}
