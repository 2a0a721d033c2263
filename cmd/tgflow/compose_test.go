package main

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/server"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/embed/use"
	"github.com/tgflow/tgflow/services/embedder"
	"github.com/tgflow/tgflow/services/projsvc"
)

const (
	composeFile = "docker-compose.yml"
	envExample  = ".env.example"
	// tgflowBin is the binary's path in every tgflow image (Dockerfile).
	tgflowBin = "/usr/local/bin/tgflow"
)

// commandConfigs are the config structs of commands that read one without declaring it in
// their command entry (their config func is nil).
var commandConfigs = map[string][]func() any{
	"migrate": {func() any { return &projsvc.PostgresConfig{} }},
	"models":  {func() any { return &use.Config{} }},
	// openReadModels
	"api": readModelConfigs,
	// expectedHere opens the projections to read their checkpoints
	"doctor": readModelConfigs,
}

var readModelConfigs = []func() any{func() any { return &projsvc.PostgresConfig{} }, func() any { return &projsvc.QdrantConfig{} },
	func() any { return &projsvc.Neo4jConfig{} }}

// exampleEnv reads .env.example (KEY=VALUE lines); a variable it leaves empty for the
// operator (Telegram credentials) gets a placeholder, as a filled-in .env would have.
func exampleEnv(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, envExample))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", envExample, line)
		}
		if v == "" {
			v = "placeholder-" + strings.ToLower(k)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

// loadCompose loads docker-compose.yml as `docker compose --profile observability` would,
// with .env.example as its .env.
func loadCompose(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repoRoot, composeFile)},
		cli.WithName("tgflow"), cli.WithWorkingDirectory(repoRoot), cli.WithEnv(kv),
		cli.WithProfiles([]string{"*"}), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %s with %s: %v", composeFile, envExample, err)
	}
	return p
}

// isTgflow reports whether a service runs the tgflow binary (an image built from the
// Dockerfile).
func isTgflow(s types.ServiceConfig) bool { return s.Build != nil }

// oneShot reports whether a service runs once (restart "no").
func oneShot(s types.ServiceConfig) bool { return s.Restart == "no" }

func envValue(s types.ServiceConfig, name string) (string, bool) {
	v, ok := s.Environment[name]
	if !ok {
		return "", false
	}
	if v == nil {
		return "", true
	}
	return *v, true
}

// readConfigs are the config structs a tgflow service running command reads: the shared
// Base and the command's or service's own; ok is false for a command that does not exist.
func readConfigs(command string) (cfgs []any, ok bool) {
	cfgs = []any{&config.Base{}}
	if spec, found := registry().Lookup(command); found {
		if spec.Config != nil {
			cfgs = append(cfgs, spec.Config())
		}
		return cfgs, true
	}
	for _, c := range commands() {
		if c.name != command {
			continue
		}
		if c.config != nil {
			cfgs = append(cfgs, c.config())
		}
		for _, f := range commandConfigs[command] {
			cfgs = append(cfgs, f())
		}
		return cfgs, true
	}
	return nil, false
}

func hasCommand(name string) bool {
	if _, ok := registry().Lookup(name); ok {
		return true
	}
	return slices.ContainsFunc(commands(), func(c command) bool { return c.name == name })
}

// pendingAPI is true while this build has no `api` command (another change adds it): the
// api service is then reported, not failed.
func pendingAPI() bool { return !hasCommand("api") }

// TestComposeFile loads docker-compose.yml with compose-go (no Docker engine here) and checks
// it against the binary: commands, stages and their NATS users, variables, healthchecks,
// files, the Prometheus scrape list.
func TestComposeFile(t *testing.T) {
	env := exampleEnv(t)
	p := loadCompose(t, env)
	checkCompose(t, p, env)
}

func checkCompose(t *testing.T, p *types.Project, env map[string]string) {
	t.Helper()
	t.Run("commands", func(t *testing.T) { checkCommands(t, p) })
	t.Run("every service has its NATS user", func(t *testing.T) { checkServicesAndUsers(t, p, env) })
	t.Run("variables", func(t *testing.T) { checkVariables(t, p) })
	t.Run("the embedder's variables agree", func(t *testing.T) { checkEmbedderAgrees(t, p) })
	t.Run("healthchecks", func(t *testing.T) { checkHealthchecks(t, p) })
	t.Run("files", func(t *testing.T) { checkFiles(t, p) })
	t.Run("prometheus scrapes every service", func(t *testing.T) { checkScrapes(t, p) })
}

// Every tgflow container runs a real tgflow command or registered service.
func checkCommands(t *testing.T, p *types.Project) {
	for name, s := range p.Services {
		if !isTgflow(s) {
			continue
		}
		if len(s.Command) == 0 {
			t.Errorf("service %s: no command (the image's entrypoint is tgflow: it would print the usage)", name)
			continue
		}
		if hasCommand(s.Command[0]) {
			continue
		}
		if s.Command[0] == "api" && pendingAPI() {
			t.Logf("service %s: `tgflow api` is not in this build yet (expected, pending)", name)
			continue
		}
		t.Errorf("service %s: %q is not a tgflow command or service", name, strings.Join(s.Command, " "))
	}
}

// Every registered service has a container of its own name running it, connected as the
// NATS user of that name, whose permissions are exactly its own: its consumers and the facts
// of the producer the topology names for them. The NATS server gets every user's password.
func checkServicesAndUsers(t *testing.T, p *types.Project, env map[string]string) {
	for _, spec := range registry() {
		s, ok := p.Services[spec.Name]
		if !ok {
			t.Errorf("registered service %s has no compose service", spec.Name)
			continue
		}
		if !slices.Equal(s.Command, []string{spec.Name}) {
			t.Errorf("service %s runs %q, want [%s]", spec.Name, s.Command, spec.Name)
		}
		u, ok := server.Lookup(spec.Name)
		if !ok {
			t.Errorf("registered service %s has no NATS user (nats/server Users)", spec.Name)
			continue
		}
		if !slices.Equal(u.Consumers, spec.Consumers) {
			t.Errorf("NATS user %s reads consumers %v, the service reads %v", u.Name, u.Consumers, spec.Consumers)
		}
		var producer string
		for _, c := range spec.Consumers {
			tc, ok := topology.LookupConsumer(c)
			if !ok {
				t.Errorf("service %s reads consumer %s, which the topology does not declare", spec.Name, c)
				continue
			}
			producer = tc.Producer
		}
		if u.Producer != producer {
			t.Errorf("NATS user %s publishes the facts of %q, the topology's producer for its consumers is %q", u.Name, u.Producer, producer)
		}
	}
	// The doctor exporter expects every service this file runs: each registered one.
	if d, ok := p.Services["doctor"]; !ok {
		t.Error("no doctor service (tgflow doctor --listen: the dashboard's consumer, DLQ and checkpoint series)")
	} else {
		listed, _ := flagValue(d.Command, "services")
		var want []string
		for _, spec := range registry() {
			want = append(want, spec.Name)
		}
		if got := strings.Split(listed, ","); !slices.Equal(got, want) {
			t.Errorf("doctor --services %q, want every registered service %q", listed, strings.Join(want, ","))
		}
	}
	// Every long-running tgflow container and operator tool connects as the NATS user of its
	// own name (a service with no TGFLOW_NATS_URL would start an embedded server of its own).
	for name, s := range p.Services {
		if !isTgflow(s) || (oneShot(s) && !slices.Contains(s.Profiles, "tools")) {
			continue
		}
		u, ok := server.Lookup(name)
		if !ok {
			t.Errorf("service %s has no NATS user (nats/server Users)", name)
			continue
		}
		raw, _ := envValue(s, "TGFLOW_NATS_URL")
		nu, err := url.Parse(raw)
		if err != nil || nu.User == nil {
			t.Errorf("service %s: TGFLOW_NATS_URL %q names no user", name, config.URLs(raw))
			continue
		}
		pw, _ := nu.User.Password()
		if nu.User.Username() != u.Name || pw != env[u.PasswordVar()] {
			t.Errorf("service %s connects as %q with a password other than $%s, want user %s", name, nu.User.Username(), u.PasswordVar(), u.Name)
		}
	}
	nats, ok := p.Services["nats"]
	if !ok {
		t.Fatal("no nats service")
	}
	for _, u := range server.Users() {
		if v, _ := envValue(nats, u.PasswordVar()); v == "" || v != env[u.PasswordVar()] {
			t.Errorf("the nats service does not get %s (user %s) from .env", u.PasswordVar(), u.Name)
		}
	}
	if !slices.ContainsFunc(nats.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Source == filepath.Join(p.WorkingDir, "nats", "server", "nats.conf")
	}) {
		t.Error("the nats service does not mount nats/server/nats.conf")
	}
	// Every tgflow service on the log waits for the topology.
	for name, s := range p.Services {
		if raw, _ := envValue(s, "TGFLOW_NATS_URL"); isTgflow(s) && raw != "" && name != "nats-init" {
			if _, ok := s.DependsOn["nats-init"]; !ok {
				t.Errorf("service %s uses NATS but does not wait for nats-init (`tgflow nats apply`)", name)
			}
		}
	}
}

// Every variable without a default that a tgflow service reads is set in its environment
// (empty counts: it is passed from .env), and every TGFLOW_* variable set is one tgflow reads.
func checkVariables(t *testing.T, p *types.Project) {
	known := map[string]bool{}
	for _, cfg := range configs() {
		for _, v := range config.Vars(cfg) {
			known[v.Name] = true
		}
	}
	for _, fs := range commandConfigs {
		for _, f := range fs {
			for _, v := range config.Vars(f()) {
				known[v.Name] = true
			}
		}
	}
	for name, s := range p.Services {
		if !isTgflow(s) || len(s.Command) == 0 {
			continue
		}
		cfgs, ok := readConfigs(s.Command[0])
		if !ok {
			continue // checkCommands reports it
		}
		var missing []string
		for _, cfg := range cfgs {
			for _, v := range config.Vars(cfg) {
				if _, set := s.Environment[v.Name]; v.Default == "" && !set && !slices.Contains(missing, v.Name) {
					missing = append(missing, v.Name)
				}
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			t.Errorf("service %s (tgflow %s) reads %s, which have no default and are not set", name, s.Command[0], strings.Join(missing, ", "))
		}
		for k := range s.Environment {
			if strings.HasPrefix(k, "TGFLOW_") && !known[k] && !(s.Command[0] == "api" && pendingAPI()) {
				t.Errorf("service %s sets %s, which tgflow does not read", name, k)
			}
		}
	}
}

// The services that embed or hold vectors (embedder, tagger, proj-qdrant, api) read the
// embedder's variables: one vector space needs one value of each in all of them.
func checkEmbedderAgrees(t *testing.T, p *types.Project) {
	readers := 0
	for _, v := range config.Vars(&embedder.Config{}) {
		values := map[string][]string{} // value → services
		for name, s := range p.Services {
			if !isTgflow(s) || len(s.Command) == 0 {
				continue
			}
			cfgs, _ := readConfigs(s.Command[0])
			reads := slices.ContainsFunc(cfgs, func(cfg any) bool {
				return slices.ContainsFunc(config.Vars(cfg), func(x config.Var) bool { return x.Name == v.Name })
			})
			if !reads {
				continue
			}
			readers++
			val, set := envValue(s, v.Name)
			if !set {
				val = v.Default
			}
			values[val] = append(values[val], name)
		}
		if len(values) > 1 {
			t.Errorf("%s differs between services: %v", v.Name, values)
		}
	}
	if readers == 0 {
		t.Error("no service reads the embedder's variables")
	}
}

// flagValue is the value of --name in a command ("--name value" or "--name=value").
func flagValue(cmd []string, name string) (string, bool) {
	for i, a := range cmd {
		if a == "--"+name && i+1 < len(cmd) {
			return cmd[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// listenAddr is where a tgflow container serves /healthz, and whether it serves /metrics
// there too: a service on TGFLOW_HTTP_ADDR (runServices), doctor on --listen, the API on
// TGFLOW_API_ADDR (or --addr; no /metrics). from names the setting.
func listenAddr(s types.ServiceConfig) (addr, from string, metrics bool) {
	switch s.Command[0] {
	case "api":
		if v, ok := flagValue(s.Command, "addr"); ok {
			return v, "--addr", true
		}
		v, _ := envValue(s, "TGFLOW_API_ADDR")
		return v, "TGFLOW_API_ADDR", true // its /metrics is on the API's own listener
	case "doctor":
		v, _ := flagValue(s.Command, "listen")
		return v, "--listen", true
	}
	v, _ := envValue(s, "TGFLOW_HTTP_ADDR")
	_, service := registry().Lookup(s.Command[0])
	return v, "TGFLOW_HTTP_ADDR", service
}

// listenPort is the port of a listen address like 0.0.0.0:9464.
func listenPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}

// Long-running containers have a healthcheck; a tgflow one runs `tgflow health` (the
// distroless image has no shell) on /healthz of the address the service listens on.
func checkHealthchecks(t *testing.T, p *types.Project) {
	if !hasCommand("health") {
		t.Fatal("tgflow has no health command")
	}
	for name, s := range p.Services {
		if oneShot(s) {
			continue
		}
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) == 0 {
			t.Errorf("service %s has no healthcheck", name)
			continue
		}
		if !isTgflow(s) {
			continue
		}
		test := []string(hc.Test)
		if len(test) != 4 || test[0] != "CMD" || test[1] != tgflowBin || test[2] != "health" {
			t.Errorf("service %s: healthcheck %q, want [CMD %s health URL]", name, test, tgflowBin)
			continue
		}
		u, err := url.Parse(test[3])
		if err != nil || u.Hostname() != "127.0.0.1" || u.Path != "/healthz" {
			t.Errorf("service %s: healthcheck URL %q, want http://127.0.0.1:PORT/healthz", name, test[3])
			continue
		}
		if len(s.Command) == 0 {
			continue // checkCommands reports it
		}
		addr, from, _ := listenAddr(s)
		if listenPort(addr) == "" || listenPort(addr) != u.Port() {
			t.Errorf("service %s: healthcheck asks port %s, the service listens on %s=%q", name, u.Port(), from, addr)
		}
	}
}

var fromAs = regexp.MustCompile(`(?im)^FROM\s+\S+\s+AS\s+(\S+)\s*$`)

// Every file and directory the compose file mounts or builds from exists, with the build
// targets in the Dockerfile, and the Grafana dashboard in the directory Grafana is given.
func checkFiles(t *testing.T, p *types.Project) {
	dockerfiles := map[string][]string{}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s: %v", name, v.Source, err)
			}
		}
		if s.Build == nil {
			continue
		}
		df := s.Build.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if !filepath.IsAbs(df) {
			df = filepath.Join(s.Build.Context, df)
		}
		targets, seen := dockerfiles[df]
		if !seen {
			b, err := os.ReadFile(df)
			if err != nil {
				t.Errorf("service %s builds from %s: %v", name, df, err)
				continue
			}
			for _, m := range fromAs.FindAllStringSubmatch(string(b), -1) {
				targets = append(targets, m[1])
			}
			dockerfiles[df] = targets
		}
		if s.Build.Target != "" && !slices.Contains(targets, s.Build.Target) {
			t.Errorf("service %s builds target %q, which %s does not define (it has %v)", name, s.Build.Target, df, targets)
		}
	}
	grafana, ok := p.Services["grafana"]
	if !ok {
		t.Fatal("no grafana service (profile observability)")
	}
	for _, v := range grafana.Volumes {
		if v.Type == types.VolumeTypeBind && strings.HasSuffix(v.Source, filepath.Join("docs", "grafana")) {
			if _, err := os.Stat(filepath.Join(v.Source, "tgflow.json")); err != nil {
				t.Errorf("grafana is given %s, which has no tgflow.json: %v", v.Source, err)
			}
			return
		}
	}
	t.Error("grafana is not given the dashboards of docs/grafana")
}

// Prometheus (profile observability) loads the committed alert rules and scrapes /metrics of
// every tgflow service container and of doctor (the dashboard's series), and nothing else.
func checkScrapes(t *testing.T, p *types.Project) {
	prom, ok := p.Services["prometheus"]
	if !ok {
		t.Fatal("no prometheus service (profile observability)")
	}
	mounts := map[string]string{} // target → source
	for _, v := range prom.Volumes {
		if v.Type == types.VolumeTypeBind {
			mounts[v.Target] = v.Source
		}
	}
	var cfgPath string
	for _, a := range prom.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			cfgPath = mounts[v]
		}
	}
	if cfgPath == "" {
		t.Fatalf("prometheus: its --config.file is not a mounted file (%q)", prom.Command)
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", cfgPath, err)
	}
	alerts := filepath.Join(p.WorkingDir, "docs", "prometheus", "alerts.yml")
	if !slices.ContainsFunc(cfg.RuleFiles, func(f string) bool { return mounts[f] == alerts }) {
		t.Errorf("prometheus does not load docs/prometheus/alerts.yml (rule_files %v, mounts %v)", cfg.RuleFiles, mounts)
	}
	targets := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				targets[tg] = true
			}
		}
	}
	for name, s := range p.Services {
		if !isTgflow(s) || oneShot(s) || len(s.Command) == 0 {
			continue
		}
		addr, from, metrics := listenAddr(s)
		if !metrics {
			continue
		}
		if port := listenPort(addr); port == "" {
			t.Errorf("service %s serves no /metrics (%s=%q)", name, from, addr)
		} else if want := name + ":" + port; !targets[want] {
			t.Errorf("prometheus does not scrape %s", want)
		} else {
			delete(targets, want)
		}
	}
	for tg := range targets {
		t.Errorf("prometheus scrapes %s, which no service serves", tg)
	}
}
