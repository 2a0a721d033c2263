package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tgflow/tgflow/cmd/tgflow/internal/proctest"
)

func init() { benchSubcommands["chaos"] = runBenchChaos }

// runBenchChaos is the long fault run: the corpus fed once under faults and once without,
// every service as its own process (the same code as cmd/tgflow/internal/proctest's TestFaultRunLosesNothing).
func runBenchChaos(ctx context.Context, a *app, args []string) error {
	fs := newFlags("bench chaos", a)
	posts := fs.Int("posts", 3000, "posts in the generated corpus (with albums, links, images, edits, deletions)")
	duration := fs.Duration("duration", 2*time.Minute, "keep killing and restarting services at least this long")
	dir := fs.String("dir", "", "where binaries, stores and each process's log go (default: a new temporary directory, kept)")
	natsServer := fs.String("nats-server", "", "nats-server binary (default: built from the module with go build)")
	tgflowBin := fs.String("tgflow", "", "tgflow binary the services run (default: built from the module with go build)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *posts < 10 || *duration < 0 {
		return fmt.Errorf("%w: tgflow bench chaos [--posts N>=10] [--duration D]", errUsage)
	}
	pgURL := a.env["TGFLOW_POSTGRES_URL"]
	if pgURL == "" {
		return fmt.Errorf("%w: TGFLOW_POSTGRES_URL is not set: bench chaos creates two databases on that server (and drops them)", errUsage)
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "tgflow-chaos-")
		if err != nil {
			return err
		}
		*dir = d
	}
	fmt.Fprintf(a.stdout, "bench chaos: %d posts, faults for at least %v; binaries, stores and logs in %s\n", *posts, *duration, *dir)
	start := time.Now()
	return proctest.RunOutside("bench-chaos", *dir, a.stdout, func(r *proctest.Runner) {
		bins := map[string]string{"tgflow": *tgflowBin, "nats": *natsServer}
		if bins["tgflow"] == "" {
			bins["tgflow"] = proctest.Build(r, *dir, "github.com/tgflow/tgflow/cmd/tgflow")
		}
		if bins["nats"] == "" {
			bins["nats"] = proctest.Build(r, *dir, "github.com/nats-io/nats-server/v2")
		}
		pages := proctest.PageServer()
		r.Cleanup(pages.Close)
		corpus := proctest.NewCorpus(proctest.CorpusOptions{Posts: *posts, Channels: max(6, *posts/200), PageURL: pages.URL, Seed: uint64(start.UnixNano())})
		r.Logf("corpus: %d posts, %d edits, %d deletions, %d albums, %d images, %d facts",
			corpus.Posts, corpus.Edits, corpus.Deletes, corpus.Albums, len(corpus.Images), len(corpus.Facts))
		t0 := time.Now()
		faulted := proctest.RunCorpus(r, bins, corpus, chaosDB(ctx, r, pgURL, "faulted"), true, *duration)
		faultedTook := time.Since(t0)
		t0 = time.Now()
		clean := proctest.RunCorpus(r, bins, corpus, chaosDB(ctx, r, pgURL, "clean"), false, 0)
		diffs := proctest.Compare(clean, faulted)
		for _, d := range diffs {
			r.Error(d)
		}
		total := 0
		for _, n := range faulted.Facts {
			total += n
		}
		r.Logf("\nbench chaos: %s", map[bool]string{true: "PASS", false: "FAIL"}[!r.Failed()])
		r.Logf("  faulted run: %v, %d service kills + 1 nats-server restart, %d facts on the log", faultedTook.Round(time.Second), faulted.Kills, total)
		r.Logf("  fault-free run: %v", time.Since(t0).Round(time.Second))
		r.Logf("  restarts: %s", strings.Join(faulted.Recoveries, "; "))
		r.Logf("  differences from the fault-free run: %d", len(diffs))
		r.Logf("  logs: %s", filepath.Join(*dir, "*", "*.log"))
	})
}

// chaosDB creates a database for one run on the server of pgURL, dropped when the run ends.
func chaosDB(ctx context.Context, r *proctest.Runner, pgURL, label string) string {
	cfg, err := pgx.ParseConfig(pgURL)
	if err != nil {
		r.Fatalf("TGFLOW_POSTGRES_URL: %v", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		r.Fatalf("connect to Postgres: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	name := fmt.Sprintf("tgflow_chaos_%s_%d", label, time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		r.Fatalf("create database %s: %v", name, err)
	}
	r.Cleanup(func() {
		c, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			r.Logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			r.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(pgURL)
	if err != nil || u.Scheme == "" {
		r.Fatalf("TGFLOW_POSTGRES_URL must be a postgres:// URL for bench chaos")
	}
	u.Path = "/" + name
	return u.String()
}
