package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/internal/doctor"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/api"
)

// describing is a Registerer that records the name of every series registered through it
// (from the collectors' descriptors, so a vector nothing has observed yet counts too) and
// registers on a real registry, whose AlreadyRegistered errors the services rely on.
type describing struct {
	reg   *prometheus.Registry
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([a-zA-Z_:][a-zA-Z0-9_:]*)"`)

func (d *describing) record(c prometheus.Collector) {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
}

func (d *describing) Register(c prometheus.Collector) error {
	err := d.reg.Register(c)
	if err == nil {
		d.record(c)
	}
	return err
}

func (d *describing) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := d.Register(c); err != nil {
			panic(err)
		}
	}
}

func (d *describing) Unregister(c prometheus.Collector) bool { return d.reg.Unregister(c) }

// exportedSeries builds every service of this binary the way a process does (every
// backend and provider configured, so that each registers its series), plus what `tgflow
// doctor --listen` serves, and returns the names of every series they export, histogram
// suffixes included.
func exportedSeries(t *testing.T) map[string]bool {
	t.Helper()
	env := natstest.Start(t)
	rec := &describing{reg: prometheus.NewRegistry(), names: map[string]bool{}}
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	// Addresses nothing listens on: New builds the services without reaching them.
	cfg := map[string]string{
		"TGFLOW_TG_APP_ID": "1", "TGFLOW_TG_APP_HASH": "hash", "TGFLOW_SESSION_KEY": key,
		"TGFLOW_EMBEDDER": "hashing", "TGFLOW_TAGGER": "openai", "TGFLOW_VISION_PROVIDER": "openai",
		"TGFLOW_OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "TGFLOW_OPENAI_CHAT_MODEL": "chat", "TGFLOW_OPENAI_EMBED_MODEL": "embed",
		"TGFLOW_POSTGRES_URL": "postgres://u@127.0.0.1:1/db", "TGFLOW_QDRANT_ADDR": "127.0.0.1:1", "TGFLOW_NEO4J_URI": "bolt://127.0.0.1:1",
		"TGFLOW_HTTP_ADDR": "", "TGFLOW_EMBEDDED_PORT": "0",
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	deps := services.Deps{JS: env.JS, Logger: logx.Discard(), Metrics: worker.NewMetrics(rec), Registry: rec, Env: cfg}
	for _, spec := range registry() {
		if _, err := spec.New(ctx, deps); err != nil {
			if errors.Is(err, services.ErrNotConfigured) {
				t.Fatalf("%s is not configured by the test's environment: %v", spec.Name, err)
			}
			t.Fatalf("build %s: %v", spec.Name, err)
		}
	}
	c := &conn{NC: env.NC, JS: env.JS}
	doc := doctorRegistry(c, doctor.Options{Thresholds: doctor.DefaultThresholds()}, logx.Discard())
	families, err := doc.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		rec.names[f.GetName()] = true
	}
	rec.record(doctor.NewCollector(env.JS, doctor.Options{}, 0, logx.Discard()))
	if _, err := api.NewMetrics(rec); err != nil { // what tgflow api serves at /metrics
		t.Fatal(err)
	}
	for n := range rec.names {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			rec.names[n+suffix] = true
		}
	}
	return rec.names
}

var seriesName = regexp.MustCompile(`\btgflow_[a-z_]+\b`)

// dashboardQueries returns every PromQL expression of the committed Grafana dashboard.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/grafana/tgflow.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("docs/grafana/tgflow.json: %v", err)
	}
	var out []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q has a target without an expression", p.Title)
			}
			out = append(out, tg.Expr)
		}
	}
	return out
}

// Every series an alert rule or a dashboard panel names must be one the services export:
// the old system's alerts watched metrics nothing set.
func TestAlertsAndDashboardNameExportedSeries(t *testing.T) {
	exported := exportedSeries(t)
	rules, err := os.ReadFile("../../docs/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	// The rules file line by line (a failure names the line), the dashboard query by query.
	sources := map[string][]string{"docs/prometheus/alerts.yml": strings.Split(string(rules), "\n"), "docs/grafana/tgflow.json": dashboardQueries(t)}
	for file, exprs := range sources {
		named := 0
		for _, expr := range exprs {
			for _, name := range seriesName.FindAllString(expr, -1) {
				named++
				if !exported[name] {
					t.Errorf("%s names %s, which no service exports (in %q)", file, name, strings.TrimSpace(expr))
				}
			}
		}
		if named == 0 {
			t.Errorf("%s names no tgflow series", file)
		}
	}
	// The dashboard covers what the issue lists.
	all := strings.Join(sources["docs/grafana/tgflow.json"], "\n")
	for _, want := range []string{"tgflow_stage_processed_total", "tgflow_consumer_pending", "tgflow_stage_dead_lettered_total", "tgflow_dlq_messages",
		"tgflow_provider_calls_total", "tgflow_breaker_state", "tgflow_channel_posts", "tgflow_projection_checkpoint_seq", "tgflow_stream_last_seq"} {
		if !strings.Contains(all, want) {
			t.Errorf("the dashboard has no panel on %s", want)
		}
	}
	if !exported["tgflow_stage_processed_total"] || !exported["tgflow_consumer_pending"] || !slices.ContainsFunc(keys(exported), func(s string) bool { return strings.HasPrefix(s, "tgflow_ingest_") }) {
		t.Fatalf("the exported set misses known series: %v", keys(exported))
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
