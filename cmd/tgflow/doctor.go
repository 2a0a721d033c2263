package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/doctor"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/projsvc"
)

func init() {
	register(command{"doctor",
		"[--json] [--listen ADDR] [--services a,b] [--stall-after 5m] [--dead-after 1m] [--lag-max 10000] [--stuck-after 30m] [--max-stuck 20] [--dlq-max 0] [--full-ratio 0.9] [--min-free-disk 1073741824]",
		"check consumers (stalled, dead, unknown, lagging), the DLQ, stuck posts, log size and disk, channels, projection checkpoints; exit 0 healthy, 1 unhealthy, 2 cannot connect",
		runDoctor, nil})
}

// errDoctorUnhealthy is doctor's verdict as an error: exit status 1.
var errDoctorUnhealthy = errors.New("unhealthy")

// cannotConnect is exit status 2 (see exitCoder in main.go).
type cannotConnect struct{ err error }

func (e cannotConnect) Error() string { return "cannot connect: " + e.err.Error() }
func (e cannotConnect) Unwrap() error { return e.err }
func (e cannotConnect) ExitCode() int { return 2 }

func runDoctor(ctx context.Context, a *app, args []string) error {
	fs := newFlags("doctor", a)
	def := doctor.DefaultThresholds()
	asJSON := fs.Bool("json", false, "JSON output")
	listen := fs.String("listen", "", "serve doctor's findings as Prometheus series on ADDR/metrics (re-checked at each scrape) until interrupted")
	only := fs.String("services", "", "comma-separated services expected here (default: those configured in this environment)")
	var th doctor.Thresholds
	fs.DurationVar(&th.StallAfter, "stall-after", def.StallAfter, "work pending, pulls waiting, nothing delivered for this long: stalled")
	fs.DurationVar(&th.DeadAfter, "dead-after", def.DeadAfter, "work pending, nobody pulling, idle this long: dead")
	fs.Uint64Var(&th.LagMax, "lag-max", def.LagMax, "more pending messages than this: lagging")
	fs.DurationVar(&th.StuckAfter, "stuck-after", def.StuckAfter, "a fact older than this not yet processed by a consumer expected here: a stuck post")
	fs.IntVar(&th.MaxStuck, "max-stuck", def.MaxStuck, "stuck facts listed per consumer, at most")
	fs.IntVar(&th.DLQMax, "dlq-max", def.DLQMax, "more dead letters than this: unhealthy")
	fs.Float64Var(&th.FullRatio, "full-ratio", def.FullRatio, "a stream or the account store above this fraction of its limit: unhealthy")
	fs.Uint64Var(&th.MinFreeDisk, "min-free-disk", def.MinFreeDisk, "laptop mode: less free disk (bytes) where the log is stored: unhealthy")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: tgflow doctor takes no arguments", errUsage)
	}
	b, log, err := a.base()
	if err != nil {
		return err
	}
	reg := registry()
	if *only != "" {
		if reg, err = selectServices(reg, *only); err != nil {
			return err
		}
	}
	expected, checkpoints, closeAll, err := expectedHere(ctx, a, reg, *only != "")
	defer closeAll()
	if err != nil {
		return err
	}
	c, err := connect(ctx, b, "doctor", log)
	if err != nil {
		return cannotConnect{err}
	}
	defer c.Close()
	opts := doctor.Options{Thresholds: th, Expected: expected, Checkpoints: checkpoints}
	if c.Server != nil || b.NATSURL == "" {
		// Laptop mode: the log is stored under the data dir, on this machine.
		opts.StoreDir = absPath(filepath.Clean(b.DataDir))
		if _, err := os.Stat(opts.StoreDir); err != nil {
			opts.StoreDir = ""
		}
	}
	if *listen != "" {
		var ready atomic.Bool
		ready.Store(true)
		stop, err := serveHTTP(ctx, *listen, doctorRegistry(c, opts, log), c.NC, &ready, log)
		if err != nil {
			return err
		}
		defer stop()
		<-ctx.Done()
		return nil
	}
	rep, err := doctor.Run(ctx, c.JS, opts)
	if err != nil {
		return err
	}
	if *asJSON {
		err = rep.WriteJSON(a.stdout)
	} else {
		err = rep.WriteText(a.stdout)
	}
	if err != nil {
		return err
	}
	if !rep.Healthy {
		n := 0
		for _, p := range rep.Problems {
			if p.Severity == doctor.SeverityFail {
				n++
			}
		}
		return fmt.Errorf("%w: %d problem(s)", errDoctorUnhealthy, n)
	}
	return nil
}

// doctorRegistry is what `tgflow doctor --listen` serves: the process collectors and
// doctor's series (the Grafana dashboard's lag, DLQ, checkpoint and channel panels).
func doctorRegistry(c *conn, opts doctor.Options, log *slog.Logger) *prometheus.Registry {
	reg := newMetricsRegistry()
	reg.MustRegister(doctor.NewCollector(c.JS, opts, 20*time.Second, log))
	return reg
}

// expectedHere lists the consumers of the services expected to run where doctor runs, and
// opens the configured read models' checkpoints. A service is expected when it is
// configured in this environment (a projection has its database, ingest its Telegram
// credentials), or when --services names it (named is true).
func expectedHere(ctx context.Context, a *app, reg services.Registry, named bool) ([]string, map[string]doctor.CheckpointFunc, func(), error) {
	var closers []func()
	closeAll := func() {
		for _, f := range closers {
			f()
		}
	}
	_, log, err := a.base()
	if err != nil {
		return nil, nil, closeAll, err
	}
	expected := []string{}
	checkpoints := map[string]doctor.CheckpointFunc{}
	var skipped []string
	for _, s := range reg {
		if be, ok := projsvc.LookupBackend(s.Name); ok {
			p, _, closeFn, err := be.Open(ctx, a.env, log)
			switch {
			case errors.Is(err, services.ErrNotConfigured) && !named:
				skipped = append(skipped, s.Name)
			case err != nil:
				// Configured (or named) but not openable: expected, and its checkpoint says why.
				expected = append(expected, s.Consumers...)
				checkpoints[be.Consumer] = func(context.Context) (uint64, error) { return 0, err }
			default:
				closers = append(closers, closeFn)
				expected = append(expected, s.Consumers...)
				checkpoints[be.Consumer] = p.Checkpoint
			}
			continue
		}
		if !named && s.Config != nil {
			cfg := s.Config()
			if err := config.Load(cfg, a.env); err != nil {
				return nil, nil, closeAll, fmt.Errorf("%s: %w", s.Name, err)
			}
			if c, ok := cfg.(interface{ Configured() error }); ok && errors.Is(c.Configured(), services.ErrNotConfigured) {
				skipped = append(skipped, s.Name)
				continue
			}
		}
		expected = append(expected, s.Consumers...)
	}
	if len(skipped) > 0 {
		log.Debug("doctor: services not configured here are not expected", "services", strings.Join(skipped, ","))
	}
	return expected, checkpoints, closeAll, nil
}
