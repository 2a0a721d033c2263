package tagger_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/tagger"
)

func TestStageConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // variables named in the error; none: valid
	}{
		{name: "defaults", env: map[string]string{}},
		{name: "openai without a provider", env: map[string]string{"TGFLOW_TAGGER": "openai"},
			want: []string{"TGFLOW_OPENAI_BASE_URL", "TGFLOW_OPENAI_CHAT_MODEL"}},
		{name: "openai configured", env: map[string]string{"TGFLOW_TAGGER": "openai",
			"TGFLOW_OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "TGFLOW_OPENAI_CHAT_MODEL": "m"}},
		{name: "every bad value", env: map[string]string{"TGFLOW_TAGGER": "gpt",
			"TGFLOW_TAGGER_TOPIC_THRESHOLD": "2", "TGFLOW_TAGGER_MAX_TOPICS": "0", "TGFLOW_TAGGER_SHORT_TEXT": "0",
			"TGFLOW_TAGGER_CONCURRENCY": "0", "TGFLOW_TAGGER_DF_SNAPSHOT_INTERVAL": "0s", "TGFLOW_TAGGER_BREAKER_OPEN": "0s"},
			want: []string{"TGFLOW_TAGGER:", "TGFLOW_TAGGER_TOPIC_THRESHOLD", "TGFLOW_TAGGER_MAX_TOPICS", "TGFLOW_TAGGER_SHORT_TEXT",
				"TGFLOW_TAGGER_CONCURRENCY", "TGFLOW_TAGGER_DF_SNAPSHOT_INTERVAL", "TGFLOW_TAGGER_BREAKER_OPEN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg tagger.StageConfig
			err := config.Load(&cfg, tt.env)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			for _, v := range tt.want {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("error does not name %s: %v", v, err)
				}
			}
		})
	}
}

// TestSpecRunsTheStage builds the stage from its Spec and environment, as `tgflow tagger`
// does, and tags a post with it; without its buckets it fails naming them.
func TestSpecRunsTheStage(t *testing.T) {
	// The embedder's settings name a model that is not there: the tagger reads none of them.
	env := map[string]string{"TGFLOW_EMBEDDER": "use", "TGFLOW_MODELS_DIR": t.TempDir(), "TGFLOW_DATA_DIR": t.TempDir(), "TGFLOW_TAGGER_DF_SNAPSHOT_INTERVAL": "50ms"}
	deps := func(e *natstest.Env) services.Deps {
		reg := prometheus.NewRegistry()
		return services.Deps{JS: e.JS, Logger: slog.New(slog.DiscardHandler), Metrics: worker.NewMetrics(reg), Registry: reg, Env: env}
	}
	spec := tagger.Spec()
	if spec.Name != "tagger" || len(spec.Consumers) != 1 || spec.Consumers[0] != "tagger" {
		t.Fatalf("spec %q consumers %q", spec.Name, spec.Consumers)
	}

	bare := natstest.Start(t)
	if err := bare.JS.DeleteKeyValue(context.Background(), tagger.PostsBucket); err != nil {
		t.Fatal(err)
	}
	if _, err := spec.New(context.Background(), deps(bare)); err == nil || !strings.Contains(err.Error(), tagger.PostsBucket) {
		t.Errorf("without its bucket: %v, want an error naming %s", err, tagger.PostsBucket)
	}

	e := startLog(t)
	svc, err := spec.New(context.Background(), deps(e.Env))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := svc.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("run: %v", err)
		}
	})
	defer func() { cancel(); wg.Wait() }()
	e.publish(t, parsedEv(1, goPost, false))
	natstest.Eventually(t, 30*time.Second, "the post tagged", func() bool { return natstest.Count(t, e.JS, "posts.tagged.>") == 1 })
	got := e.tagged(t)[0]
	if !strings.Contains(strings.Join(tagNames(got), " "), "go") || len(got.Topics) != 0 {
		t.Errorf("tags %q topics %q, want go and no topics (the embedder gives them)", tagNames(got), got.Topics)
	}
}
