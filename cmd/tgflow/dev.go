package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/embeddedpg"
	"github.com/tgflow/tgflow/internal/tracing"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/embedder"
)

func runDev(ctx context.Context, a *app, args []string) (err error) {
	fs := newFlags("dev", a)
	dataDir := fs.String("data-dir", "", "data directory of the embedded NATS server and Postgres (overrides TGFLOW_DATA_DIR)")
	untilIdle := fs.Bool("until-idle", false, "exit 0 once no consumer has pending or unacknowledged messages, with a summary")
	idleTimeout := fs.Duration("idle-timeout", 10*time.Minute, "with --until-idle: give up (exit 1) after this long")
	only := fs.String("services", "", "comma-separated subset of services to run (default: all)")
	withSample := fs.Bool("sample", false, "import the bundled sample channels before the services start")
	noPostgres := fs.Bool("no-postgres", false, "with TGFLOW_POSTGRES_URL unset: run no embedded Postgres (the Postgres projection is off)")
	pprofAddr := fs.String("pprof", "", "serve Go's profiles (net/http/pprof, e.g. /debug/pprof/heap) on this address, e.g. 127.0.0.1:6060 (tgflow bench dev reads the heap profile there)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	b, log, err := a.base()
	if err != nil {
		return err
	}
	if *dataDir != "" {
		b.DataDir = *dataDir
	}
	reg, err := selectServices(registry(), *only)
	if err != nil {
		return err
	}
	if err := validateConfigs(reg, a.env); err != nil {
		return err
	}
	var mem devMemory
	if err := config.Load(&mem, a.env); err != nil {
		return err
	}
	restoreLimit := applyDevMemoryLimit(mem, a.env, log)
	defer restoreLimit()
	embedPG := !*noPostgres && a.env["TGFLOW_POSTGRES_URL"] == ""
	if embedPG {
		if err := config.Load(&embeddedpg.Config{}, a.env); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(b.DataDir, 0o755); err != nil {
		return err
	}
	if *pprofAddr != "" {
		stop, err := servePprof(ctx, *pprofAddr, log)
		if err != nil {
			return fmt.Errorf("--pprof: %w", err)
		}
		defer stop()
	}
	log.Info("tgflow dev starting", config.LogAttrs(b)...)
	c, err := connect(ctx, b, "dev", log)
	if err != nil {
		return err
	}
	defer c.Close()
	opts := runOptions{untilIdle: *untilIdle, idleTimeout: *idleTimeout, dataDir: b.DataDir}
	if embedPG {
		// Laptop mode's read model: the projector, and every later command over this data
		// dir (search, api, projections, migrate), use this server.
		pg, pgErr := laptopPostgres(ctx, a, b, log, true)
		if pgErr != nil {
			return fmt.Errorf("%w (--no-postgres runs without it)", pgErr)
		}
		defer func() { err = errors.Join(err, pg.Close()) }() // the named result
		opts.pg = pg
	}
	rep, err := topology.Apply(ctx, c.JS, topology.ApplyOptions{Consumers: reg.Consumers()})
	if err != nil {
		return err
	}
	for _, ch := range rep {
		log.Debug("topology", "kind", ch.Kind, "name", ch.Name, "action", ch.Action, "note", ch.Note)
	}
	if *withSample {
		if err := importSample(ctx, c.JS, a.stdout, log); err != nil {
			return err
		}
	}
	return runServices(ctx, a, b, c, log, reg, opts)
}

// runOptions are how runServices runs and what its summary says.
type runOptions struct {
	untilIdle   bool
	idleTimeout time.Duration
	dataDir     string             // laptop mode's data dir; empty for a single service
	pg          *embeddedpg.Server // the embedded Postgres, when this run uses one
}

func selectServices(reg services.Registry, only string) (services.Registry, error) {
	if only == "" {
		return reg, nil
	}
	var out services.Registry
	for n := range strings.SplitSeq(only, ",") {
		s, ok := reg.Lookup(strings.TrimSpace(n))
		if !ok {
			return nil, fmt.Errorf("%w: no service %q in this build", errUsage, n)
		}
		out = append(out, s)
	}
	return out, nil
}

// validateConfigs parses the configuration of every service in reg, so that a bad value
// stops the command before it connects, serves /metrics or starts anything, with every
// problem listed. (Each service's New parses its own config again from the same variables.)
func validateConfigs(reg services.Registry, env map[string]string) error {
	var errs []error
	for _, s := range reg {
		if s.Config == nil {
			continue
		}
		if err := config.Load(s.Config(), env); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// runService runs one service: the microservices-mode entry point.
func runService(ctx context.Context, a *app, spec services.Spec, args []string) error {
	fs := newFlags(spec.Name, a)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	b, log, err := a.base()
	if err != nil {
		return err
	}
	if err := validateConfigs(services.Registry{spec}, a.env); err != nil {
		return err
	}
	log.Info("tgflow "+spec.Name+" starting", config.LogAttrs(b)...)
	c, err := connect(ctx, b, spec.Name, log)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := waitForLog(ctx, c.JS, log); err != nil {
		return err
	}
	return runServices(ctx, a, b, c, log, services.Registry{spec}, runOptions{})
}

// waitForLog checks that the log stream exists, and waits while the server cannot answer: a
// service started while a JetStream cluster elects the log's leader would otherwise exit (a
// cluster test saw six do so, and the pipeline stalled behind them).
func waitForLog(ctx context.Context, js jetstream.JetStream, log *slog.Logger) error {
	backoff := worker.Backoff{Base: 250 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2}
	for attempt := 1; ; attempt++ {
		_, err := js.Stream(ctx, topology.LogStream)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !worker.Unanswered(err) {
			return fmt.Errorf("log stream %s: %w (run `tgflow nats apply` first)", topology.LogStream, err)
		}
		delay := backoff.Delay(attempt)
		log.Warn("the log stream does not answer yet; retrying", "attempt", attempt, "delay", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

func runServices(ctx context.Context, a *app, b *config.Base, c *conn, log *slog.Logger, reg services.Registry, o runOptions) error {
	metricsReg := newMetricsRegistry()
	// Tracing (off unless OTEL_* asks for it): one service name per process.
	traceName := "dev"
	if len(reg) == 1 {
		traceName = reg[0].Name
	}
	shutdownTracing, err := tracing.Setup(ctx, a.env, traceName)
	if err != nil {
		return err
	}
	defer func() {
		if err := shutdownTracing(context.WithoutCancel(ctx)); err != nil {
			log.Warn("tracing: spans not flushed", "err", err)
		}
	}()
	deps := services.Deps{JS: c.JS, Logger: log, Metrics: worker.NewMetrics(metricsReg), Registry: metricsReg, Env: a.env}
	var ready atomic.Bool
	stopHTTP, err := serveHTTP(ctx, b.HTTPAddr, metricsReg, c.NC, &ready, log)
	if err != nil {
		return err
	}
	defer stopHTTP()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	type running struct {
		spec services.Spec
		svc  services.Service
	}
	var runs []running
	var off []skipped
	for _, spec := range reg {
		svc, err := spec.New(runCtx, deps)
		if errors.Is(err, services.ErrNotConfigured) {
			log.Info("service not configured", "service", spec.Name, "reason", err)
			off = append(off, skipped{spec.Name, err})
			continue
		}
		if err != nil {
			return fmt.Errorf("start %s: %w", spec.Name, err)
		}
		runs = append(runs, running{spec, svc})
	}
	// Said once, each with the variable that turns it on; not a warning per service.
	printSkipped(a.stderr, off)
	sum := summaryInput{dataDir: o.dataDir, natsURL: c.URL, embeddedPort: b.EmbeddedPort, external: b.NATSURL != "", pg: o.pg, off: off, env: a.env}
	if len(runs) == 0 {
		if len(reg) == 0 {
			fmt.Fprintln(a.stdout, "no service is registered in this build yet: the log, DLQ, buckets and media store are ready.")
		} else {
			fmt.Fprintln(a.stdout, "no service could run (each was skipped, see above): the log, DLQ, buckets and media store are ready.")
		}
		if !o.untilIdle {
			<-ctx.Done()
		}
		return printSummary(context.WithoutCancel(ctx), a.stdout, c.JS, sum)
	}
	var consumers []string
	errs := make(chan error, len(runs))
	var wg sync.WaitGroup
	for _, r := range runs {
		consumers = append(consumers, r.spec.Consumers...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := r.svc.Run(runCtx)
			switch {
			case err == nil:
			case errors.Is(err, services.ErrNeedsOperator) && len(runs) > 1:
				// e.g. ingest without a usable Telegram session: the rest of the system runs on.
				log.Error("service stopped until an operator acts; the others keep running", "service", r.spec.Name, "err", err)
				fmt.Fprintf(a.stderr, "%s stopped: %v (the other services keep running)\n", r.spec.Name, err)
			default:
				errs <- fmt.Errorf("%s: %w", r.spec.Name, err)
				cancel()
			}
		}()
	}
	ready.Store(true)
	var idleErr error
	if o.untilIdle {
		idleErr = waitIdle(runCtx, c.JS, consumers, o.idleTimeout)
	} else {
		go releaseWhenIdle(runCtx, c.JS, consumers, log)
		<-runCtx.Done()
	}
	cancel()
	wg.Wait()
	close(errs)
	var all []error
	for e := range errs {
		all = append(all, e)
	}
	if idleErr != nil {
		all = append(all, idleErr)
	}
	if o.untilIdle {
		sum.consumers = consumers
		if err := printSummary(context.WithoutCancel(ctx), a.stdout, c.JS, sum); err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// waitIdle returns once every consumer has nothing pending or unacknowledged and the log
// has not grown, over several consecutive polls.
func waitIdle(ctx context.Context, js jetstream.JetStream, consumers []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastSeq uint64
	var lastErr error // why a consumer could not be read, for the timeout message
	quiet := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
		busy, err := pollBusy(ctx, js, consumers, &lastSeq)
		var cerr consumerErr
		switch {
		case errors.As(err, &cerr):
			lastErr = err
		case err != nil:
			return err
		}
		if busy {
			quiet = 0
		} else if quiet++; quiet >= 4 {
			return nil
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return fmt.Errorf("not idle after %s (last problem: %w)", timeout, lastErr)
			}
			return fmt.Errorf("not idle after %s", timeout)
		}
	}
}

// consumerErr is a consumer that could not be read: the poll counts it as busy.
type consumerErr struct{ error }

func (e consumerErr) Unwrap() error { return e.error }

// pollBusy reports whether the log grew since *lastSeq (which it moves to the log's last
// sequence) or a consumer has anything pending or unacknowledged. An unreadable consumer
// counts as busy and is returned as a consumerErr; an unreadable log is an error.
func pollBusy(ctx context.Context, js jetstream.JetStream, consumers []string, lastSeq *uint64) (bool, error) {
	s, err := js.Stream(ctx, topology.LogStream)
	if err != nil {
		return false, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return false, err
	}
	busy := info.State.LastSeq != *lastSeq
	*lastSeq = info.State.LastSeq
	var cerr error
	for _, name := range consumers {
		ci, err := consumerInfo(ctx, js, name)
		if err != nil {
			busy, cerr = true, consumerErr{fmt.Errorf("consumer %s: %w", name, err)}
			continue
		}
		if ci.NumPending > 0 || ci.NumAckPending > 0 {
			busy = true
		}
	}
	return busy, cerr
}

// idlePoll is how often a running dev asks whether its pipeline went idle.
var idlePoll = 5 * time.Second

// releaseWhenIdle returns the heap's free memory to the operating system each time the
// pipeline goes idle (nothing pending on any consumer and the log unchanged over two polls):
// a laptop keeps what a burst of work freed otherwise, since an idle process allocates
// nothing and so runs no collection that would let the scavenger give it back.
func releaseWhenIdle(ctx context.Context, js jetstream.JetStream, consumers []string, log *slog.Logger) {
	var lastSeq uint64
	quiet, released := 0, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(idlePoll):
		}
		busy, err := pollBusy(ctx, js, consumers, &lastSeq)
		if err != nil {
			if ctx.Err() == nil {
				log.Debug("idle check", "err", err)
			}
			busy = true
		}
		if busy {
			quiet, released = 0, false
			continue
		}
		if quiet++; quiet >= 2 && !released {
			debug.FreeOSMemory()
			released = true
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			log.Info("pipeline idle: free memory returned to the system", "heap_in_use_mib", ms.HeapInuse>>20, "heap_released_mib", ms.HeapReleased>>20)
		}
	}
}

func consumerInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.ConsumerInfo, error) {
	cons, err := js.Consumer(ctx, topology.LogStream, name)
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}

// servePprof serves net/http/pprof's handlers on addr until stop is called: profiles of a
// running dev (heap, goroutines, CPU) without a rebuild.
func servePprof(ctx context.Context, addr string, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serveMux(ctx, addr, mux, "pprof server", "/debug/pprof", log)
}

// devMemory is laptop mode's memory setting.
type devMemory struct {
	MemoryLimit string `env:"TGFLOW_DEV_MEMORY_LIMIT" help:"laptop mode: the Go runtime's soft memory limit of tgflow dev (as GOMEMLIMIT: 256MiB, 1GiB, off), so that the garbage collector frees the embedded NATS server's block caches before the heap doubles; default 256MiB, 512MiB with the use embedder (its model holds about 200 MB of heap); GOMEMLIMIT, when set, wins"`
}

// Dev's default memory limits (see devMemory): the heap of the use embedder's model comes
// on top of the rest (tgflow bench dev, 2,000 posts: 248 MiB live heap with use, 36 MiB
// with hashing).
const (
	devMemoryLimit    = "256MiB"
	devMemoryLimitUSE = "512MiB"
)

// limit is the configured limit, or the default for the embedder of env.
func (c devMemory) limit(env map[string]string) string {
	switch {
	case c.MemoryLimit != "":
		return c.MemoryLimit
	case env["TGFLOW_EMBEDDER"] == "" || env["TGFLOW_EMBEDDER"] == embedder.KindUSE:
		return devMemoryLimitUSE
	}
	return devMemoryLimit
}

// Validate checks the limit's syntax.
func (c *devMemory) Validate() error {
	if c.MemoryLimit == "" {
		return nil
	}
	if _, err := parseMemoryLimit(c.MemoryLimit); err != nil {
		return fmt.Errorf("env: TGFLOW_DEV_MEMORY_LIMIT: %w", err)
	}
	return nil
}

// errMemoryLimit marks a memory limit that cannot be read.
var errMemoryLimit = errors.New("not a memory limit (e.g. 256MiB, 1GiB, off)")

// parseMemoryLimit reads a limit in GOMEMLIMIT's syntax: bytes with an optional unit (B,
// KiB, MiB, GiB, TiB), or "off" (no limit: math.MaxInt64).
func parseMemoryLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return math.MaxInt64, nil
	}
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	shift := uint(0)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64>>shift {
		return 0, errMemoryLimit
	}
	return n << shift, nil
}

// applyDevMemoryLimit sets the Go runtime's soft memory limit of this process to
// TGFLOW_DEV_MEMORY_LIMIT unless GOMEMLIMIT is set (the runtime applied that one already),
// and returns what restores the previous limit. A soft limit makes the collector run
// earlier as the heap nears it instead of letting the heap double (GOGC=100); it never
// refuses an allocation, so nothing is lost: above it the collector only works harder
// (at most about half the CPU, by the runtime's own cap).
func applyDevMemoryLimit(c devMemory, env map[string]string, log *slog.Logger) (restore func()) {
	if v := env["GOMEMLIMIT"]; v != "" {
		log.Info("memory limit from GOMEMLIMIT", "limit", v)
		return func() {}
	}
	text := c.limit(env)
	limit, err := parseMemoryLimit(text)
	if err != nil { // Validate refused it already
		return func() {}
	}
	prev := debug.SetMemoryLimit(limit)
	log.Info("memory limit", "limit", text, "from", "TGFLOW_DEV_MEMORY_LIMIT")
	return func() { debug.SetMemoryLimit(prev) }
}
