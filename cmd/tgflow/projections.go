package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/embeddedpg"
	"github.com/tgflow/tgflow/migrations"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/projsvc"
)

func runProjections(ctx context.Context, a *app, args []string) (err error) {
	if len(args) == 0 {
		return fmt.Errorf("%w: tgflow projections rebuild NAME | verify NAME | status", errUsage)
	}
	sub := args[0]
	fs := newFlags("projections "+sub, a)
	batchFlag := fs.Int("batch", 0, "rebuild/verify: facts per apply (default: the backend's, e.g. 20000 for postgres)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	b, log, err := a.base()
	if err != nil {
		return err
	}
	var backends []projsvc.Backend
	switch sub {
	case "rebuild", "verify":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: tgflow projections %s postgres|qdrant|neo4j", errUsage, sub)
		}
		be, ok := projsvc.LookupBackend(fs.Arg(0))
		if !ok {
			return fmt.Errorf("%w: no projection %q", errUsage, fs.Arg(0))
		}
		backends = []projsvc.Backend{be}
	case "status":
		backends = projsvc.Backends()
	default:
		return fmt.Errorf("%w: unknown projections subcommand %q", errUsage, sub)
	}
	c, err := connect(ctx, b, "projections", log)
	if err != nil {
		return err
	}
	defer c.Close()
	if sub == "status" || backends[0].Name == "postgres" {
		// Laptop mode: the embedded Postgres of the data dir (a rebuild may create it).
		pg, pgErr := laptopPostgres(ctx, a, b, log, sub == "rebuild")
		if pgErr != nil && !(errors.Is(pgErr, embeddedpg.ErrNoCluster) && sub != "rebuild") {
			return pgErr
		}
		defer func() { err = errors.Join(err, pg.Close()) }() // the named result
	}

	if sub == "status" {
		var st []projsvc.Status
		for _, be := range backends {
			p, _, closeFn, err := be.Open(ctx, a.env, log)
			if err != nil {
				st = append(st, projsvc.Status{Name: be.Name, Consumer: be.Consumer, Err: err})
				continue
			}
			s := projsvc.StatusOf(ctx, c.JS, be.Name, be.Consumer, p, 2*time.Second)
			closeFn()
			st = append(st, s)
		}
		projsvc.PrintStatus(a.stdout, st)
		return nil
	}

	be := backends[0]
	p, _, closeFn, err := be.Open(ctx, a.env, log)
	if err != nil {
		return err
	}
	defer closeFn()
	cons, ok := topology.LookupConsumer(be.Consumer)
	if !ok {
		return fmt.Errorf("projection %s: consumer %s is not declared in the topology", be.Name, be.Consumer)
	}
	batch := be.RebuildBatch
	if *batchFlag > 0 {
		batch = *batchFlag
	}
	r := projsvc.Replayer{JS: c.JS, Consumer: cons, Batch: batch, Logger: log}
	prog := projsvc.NewProgress(a.stderr, be.Name+" "+sub, log)
	start := time.Now()
	switch sub {
	case "rebuild":
		if err := projsvc.Rebuild(ctx, r, p, prog); err != nil {
			return fmt.Errorf("rebuild %s (the live model is untouched; run again to resume): %w", be.Name, err)
		}
		return reportRebuild(ctx, a.stdout, be.Name, p, time.Since(start))
	default: // verify
		diff, err := projsvc.Verify(ctx, r, p, prog)
		if err != nil {
			return err
		}
		if len(diff) > 0 {
			for _, d := range diff {
				fmt.Fprintln(a.stdout, "differs:", d)
			}
			return fmt.Errorf("verify %s: %d section(s) differ from a rebuild", be.Name, len(diff))
		}
		fmt.Fprintf(a.stdout, "verify %s: live model equals a rebuild from the log (%s)\n", be.Name, time.Since(start).Round(time.Millisecond))
		return nil
	}
}

// runMigrate applies or lists the Postgres read schema's migrations.
func runMigrate(ctx context.Context, a *app, args []string) (err error) {
	if len(args) == 0 || (args[0] != "up" && args[0] != "status") {
		return fmt.Errorf("%w: tgflow migrate up|status", errUsage)
	}
	if err := parseFlags(newFlags("migrate "+args[0], a), args[1:]); err != nil {
		return err // no flags: -h prints that, anything else is a usage error
	}
	b, log, err := a.base()
	if err != nil {
		return err
	}
	// Laptop mode: the embedded Postgres of the data dir (up creates it).
	pg, pgErr := laptopPostgres(ctx, a, b, log, args[0] == "up")
	if pgErr != nil && !(errors.Is(pgErr, embeddedpg.ErrNoCluster) && args[0] != "up") {
		return pgErr
	}
	defer func() { err = errors.Join(err, pg.Close()) }() // the named result
	var cfg projsvc.PostgresConfig
	if err := config.Load(&cfg, a.env); err != nil {
		return err
	}
	if cfg.URL == "" {
		return fmt.Errorf("%w: TGFLOW_POSTGRES_URL is not set", services.ErrNotConfigured)
	}
	pool, err := pgxpool.New(ctx, cfg.URL.Reveal())
	if err != nil {
		return fmt.Errorf("env: TGFLOW_POSTGRES_URL: cannot be parsed as a Postgres URL")
	}
	defer pool.Close()
	if args[0] == "up" {
		res, err := migrations.UpResults(ctx, pool, cfg.Schema)
		if err != nil {
			return err
		}
		if len(res) == 0 {
			fmt.Fprintf(a.stdout, "schema %s is up to date\n", cfg.Schema)
		}
		for _, r := range res {
			fmt.Fprintf(a.stdout, "applied %v\n", r)
		}
		return nil
	}
	return migrations.Status(ctx, pool, cfg.Schema, a.stdout)
}

// reportRebuild prints how far a finished rebuild reached. The swap is done; a checkpoint
// that cannot be read is reported as such, never as "up to log seq 0".
func reportRebuild(ctx context.Context, w io.Writer, name string, p interface {
	Checkpoint(context.Context) (uint64, error)
}, took time.Duration) error {
	cp, err := p.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("rebuilt %s and swapped it in, but its checkpoint cannot be read: %w", name, err)
	}
	fmt.Fprintf(w, "rebuilt %s up to log seq %d in %s and swapped it in\n", name, cp, took.Round(time.Millisecond))
	return nil
}
