package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/benchpipe"
	"github.com/tgflow/tgflow/services/embed/use"
	"github.com/tgflow/tgflow/services/embedder"
	"github.com/tgflow/tgflow/services/enricher"
	"github.com/tgflow/tgflow/services/projsvc"
	"github.com/tgflow/tgflow/services/tagger"
)

func init() {
	register(command{"bench", "pipeline [--posts N] [--embedder hashing,use] [--rate R] [--rate-posts N] [--cpuprofile FILE] [--stages] | chaos [--posts N] [--duration D] | dev [--posts N] [--embedder hashing|use]",
		"measure the text pipeline end to end on an embedded NATS server into Postgres (posts/s, p50/p99 latency, peak RSS) against its ceiling (the same topology with no-op stages)",
		runBench, nil})
}

// benchSubcommands maps each `tgflow bench` subcommand to its implementation; another
// file adds one from its init.
var benchSubcommands = map[string]func(ctx context.Context, a *app, args []string) error{
	"pipeline": runBenchPipeline,
}

func runBench(ctx context.Context, a *app, args []string) error {
	names := slices.Sorted(maps.Keys(benchSubcommands))
	if len(args) == 0 {
		return fmt.Errorf("%w: bench needs a subcommand: %s", errUsage, strings.Join(names, ", "))
	}
	run, ok := benchSubcommands[args[0]]
	if !ok {
		return fmt.Errorf("%w: bench has no subcommand %q (%s)", errUsage, args[0], strings.Join(names, ", "))
	}
	return run(ctx, a, args[1:])
}

func runBenchPipeline(ctx context.Context, a *app, args []string) (err error) {
	fs := newFlags("bench pipeline", a)
	posts := fs.Int("posts", 3000, "posts published at once for the throughput figure")
	kinds := fs.String("embedder", "hashing", "embedders to measure, comma-separated: hashing, use (each reported on its own line)")
	rate := fs.Float64("rate", 0, "if > 0: after the throughput phase, offer --rate-posts more posts at this many posts/s; the latency figures are then this phase's")
	ratePosts := fs.Int("rate-posts", 0, "posts of the --rate phase (default: 10 s worth)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (go tool pprof) to this file; samples carry the labels mode (ceiling, pipeline) and service (-tagfocus)")
	stages := fs.Bool("stages", false, "also print, per run, each stage's and projector's handler (Apply) time and batches over the throughput phase")
	dataDir := fs.String("data-dir", "", "data directory of laptop mode's embedded Postgres, used when TGFLOW_POSTGRES_URL is unset (overrides TGFLOW_DATA_DIR)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *posts <= 0 {
		return fmt.Errorf("%w: --posts must be positive", errUsage)
	}
	if *rate < 0 {
		return fmt.Errorf("%w: --rate must not be negative", errUsage)
	}
	if *rate > 0 && *ratePosts <= 0 {
		*ratePosts = max(1, int(*rate*10))
	}
	var embedders []string
	for k := range strings.SplitSeq(*kinds, ",") {
		switch k = strings.TrimSpace(k); k {
		case embedder.KindHashing, embedder.KindUSE:
			embedders = append(embedders, k)
		default:
			return fmt.Errorf("%w: --embedder: %q is not hashing or use", errUsage, k)
		}
	}
	b, log, err := a.base()
	if err != nil {
		return err
	}
	if *dataDir != "" {
		b.DataDir = *dataDir
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close() // nothing was written
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			err = errors.Join(err, f.Close())
		}()
	}
	tmp, err := os.MkdirTemp("", "tgflow-bench-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()

	// The read model: TGFLOW_POSTGRES_URL, or laptop mode's embedded Postgres; a schema of
	// this run's own, dropped at the end.
	if a.env["TGFLOW_POSTGRES_URL"] == "" {
		if err := os.MkdirAll(b.DataDir, 0o755); err != nil {
			return err
		}
	}
	pg, err := laptopPostgres(ctx, a, b, log, true)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, pg.Close()) }()
	pgURL := a.env["TGFLOW_POSTGRES_URL"]

	run := func(mode benchpipe.Mode, env map[string]string, specs []services.Spec, name string) (benchpipe.Result, error) {
		dir, err := os.MkdirTemp(tmp, name)
		if err != nil {
			return benchpipe.Result{}, err
		}
		r, err := benchpipe.Run(ctx, benchpipe.Options{Mode: mode, Posts: *posts, Rate: *rate, RatePosts: *ratePosts,
			Env: env, TempDir: dir, Logger: log, Specs: specs})
		if err != nil {
			return r, fmt.Errorf("%s: %w", name, err)
		}
		printBench(a, name, r)
		if *stages {
			printStages(a, r)
		}
		return r, nil
	}
	fmt.Fprintf(a.stdout, "bench pipeline: %d posts at once", *posts)
	if *rate > 0 {
		fmt.Fprintf(a.stdout, ", then %d posts at %g posts/s for the latency", *ratePosts, *rate)
	}
	fmt.Fprintln(a.stdout)
	ceil, err := run(benchpipe.ModeCeiling, nil, nil, "ceiling")
	if err != nil {
		return err
	}
	specs := []services.Spec{tagger.Spec(), enricher.Spec(), embedder.Spec()}
	for _, s := range projsvc.Specs() {
		if s.Name == "proj-postgres" {
			specs = append(specs, s)
		}
	}
	for _, kind := range embedders {
		env := maps.Clone(a.env)
		env["TGFLOW_EMBEDDER"] = kind
		env["TGFLOW_POSTGRES_URL"] = pgURL
		env["TGFLOW_DATA_DIR"] = filepath.Join(tmp, "data-"+kind)
		schema := fmt.Sprintf("bench_%s_%d", kind, time.Now().UnixNano())
		env["TGFLOW_POSTGRES_SCHEMA"] = schema
		if kind == embedder.KindUSE {
			dir, ok, err := benchModelsDir(a, b)
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintf(a.stdout, "%-18s skipped: the USE model is not in %s (tgflow models pull, or set TGFLOW_MODELS_DIR)\n", "pipeline (use)", dir)
				continue
			}
			env["TGFLOW_MODELS_DIR"] = dir
		}
		r, runErr := run(benchpipe.ModePipeline, env, specs, "pipeline ("+kind+")")
		if err := dropSchema(context.WithoutCancel(ctx), pgURL, schema); err != nil {
			runErr = errors.Join(runErr, err)
		}
		if runErr != nil {
			return runErr
		}
		withServer := ""
		if r.ServerCPUOK {
			withServer = fmt.Sprintf(" (%.2f counting the Postgres server's CPU)", float64(r.Posts)/(r.CPU+r.ServerCPU).Seconds()/ceil.PostsPerCPUS)
		}
		fmt.Fprintf(a.stdout, "%-18s %.2f of the ceiling's posts/s, %.2f of its posts/cpu-s%s\n", "ratio ("+kind+")",
			r.PostsPerS/ceil.PostsPerS, r.PostsPerCPUS/ceil.PostsPerCPUS, withServer)
	}
	return nil
}

// printBench prints one run's figures on one line.
func printBench(a *app, name string, r benchpipe.Result) {
	at := "all at once"
	if r.LatencyAt > 0 {
		at = fmt.Sprintf("at %g posts/s", r.LatencyAt)
	}
	rss := "peak RSS"
	if !r.PeakRSSNew {
		rss = "process peak RSS"
	}
	server := ""
	if r.ServerCPUOK {
		server = fmt.Sprintf("; Postgres server CPU %s (%.0f posts/cpu-s with it)", r.ServerCPU.Round(time.Millisecond),
			float64(r.Posts)/(r.CPU+r.ServerCPU).Seconds())
	}
	fmt.Fprintf(a.stdout, "%-18s %6.0f posts/s, %6.0f posts/cpu-s (%d posts in %s, %s CPU); latency p50 %s p99 %s max %s (%s, %d posts); %s %d MiB%s\n",
		name, r.PostsPerS, r.PostsPerCPUS, r.Posts, r.Wall.Round(time.Millisecond), r.CPU.Round(time.Millisecond), r.Latency.P50.Round(time.Millisecond),
		r.Latency.P99.Round(time.Millisecond), r.Latency.Max.Round(time.Millisecond), at, r.Latency.N, rss, r.PeakRSS>>20, server)
}

// printStages prints what each runner did over a run's throughput phase: busy is the share
// of the wall time spent in its handler (a stage with Concurrency > 1 may exceed 1: its
// handlers' times add up); a projector's batches are what waited for it each time.
func printStages(a *app, r benchpipe.Result) {
	for _, s := range r.Stages {
		line := fmt.Sprintf("  %-20s %6d calls, %8s in the handler (busy %.2f of the wall time)",
			s.Name, s.Calls, s.Busy.Round(time.Millisecond), s.Busy.Seconds()/r.Wall.Seconds())
		if s.Batches > 0 {
			line += fmt.Sprintf("; %d batches of %.0f messages on average", s.Batches, s.Msgs/float64(s.Batches))
		}
		fmt.Fprintln(a.stdout, line)
	}
}

// benchModelsDir is where the USE model is looked for: TGFLOW_MODELS_DIR (default <data
// dir>/models), then the user cache (~/.cache/tgflow/models). ok says it is complete there.
func benchModelsDir(a *app, b *config.Base) (dir string, ok bool, err error) {
	var cfg use.Config
	if err := config.Load(&cfg, a.env); err != nil {
		return "", false, err
	}
	dirs := []string{cfg.Resolve(b.DataDir)}
	if cfg.ModelsDir == "" {
		if cache, err := os.UserCacheDir(); err == nil {
			dirs = append(dirs, filepath.Join(cache, "tgflow", "models"))
		}
	}
	for _, d := range dirs {
		st, err := use.Check(d)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return d, false, err
		}
		if err == nil && st.OK() {
			return d, true, nil
		}
	}
	return strings.Join(dirs, " nor "), false, nil
}

// dropSchema removes a run's read model.
func dropSchema(ctx context.Context, url, schema string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return errors.New("bench: TGFLOW_POSTGRES_URL cannot be parsed as a Postgres URL")
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("bench: drop schema %s: %w", schema, err)
	}
	return nil
}
