package chaintest_test

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/benchpipe"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/use/usetest"
	"github.com/tgflow/tgflow/services/embedder"
	"github.com/tgflow/tgflow/services/enricher"
	"github.com/tgflow/tgflow/services/tagger"
)

// EnvBenchPosts overrides the number of posts one run of a chain benchmark sends.
const EnvBenchPosts = "TGFLOW_BENCH_CHAIN_POSTS"

// benchPost is post number i of tgflow bench pipeline's corpus (one corpus for both).
func benchPost(i int) events.Event { return benchpipe.Post(i) }

func benchPosts(b *testing.B, def int) int {
	if v := os.Getenv(EnvBenchPosts); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q is not a positive number", EnvBenchPosts, v)
		}
		return n
	}
	return def
}

// run is what one chain run measured: wall time, the process's CPU time and heap
// allocations (the embedded server's included) from the stages' start until the last post
// is embedded.
type run struct {
	wall, cpu time.Duration
	allocs    uint64
}

func (r *run) add(o run) { r.wall, r.cpu, r.allocs = r.wall+o.wall, r.cpu+o.cpu, r.allocs+o.allocs }

// report reports posts/s of wall time, posts per CPU second (×2 is what this 2-core
// machine would do if the chain had it to itself), and allocations per post.
func (r run) report(b *testing.B, posts int) {
	b.ReportMetric(float64(posts)/r.wall.Seconds(), "posts/s")
	b.ReportMetric(float64(posts)/r.cpu.Seconds(), "posts/cpu-s")
	b.ReportMetric(float64(r.allocs)/float64(posts), "allocs/post")
	b.ReportMetric(0, "ns/op")
}

// chainRun publishes n posts.parsed facts on a fresh server, builds the tagger, enricher
// and embedder from env (as `tgflow dev` does), then measures them from their start until
// the n-th posts.embedded is on the log.
func chainRun(b *testing.B, env map[string]string, n int) run {
	b.Helper()
	env = withProcessEnv(env)
	e := natstest.Start(b)
	ctx := context.Background()
	pub, err := publish.New(e.JS, publish.Options{})
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = benchPost(i)
	}
	for len(evs) > 0 {
		k := min(len(evs), 500)
		if _, err := pub.Publish(ctx, evs[:k]); err != nil {
			b.Fatal(err)
		}
		evs = evs[k:]
	}
	reg := prometheus.NewRegistry()
	d := services.Deps{JS: e.JS, Logger: slog.New(slog.DiscardHandler), Metrics: worker.NewMetrics(reg), Registry: reg, Env: env}
	var svcs []services.Service
	for _, s := range []services.Spec{tagger.Spec(), enricher.Spec(), embedder.Spec()} {
		svc, err := s.New(ctx, d)
		if err != nil {
			b.Fatalf("%s: %v", s.Name, err)
		}
		svcs = append(svcs, svc)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs0 := ms.Mallocs
	cpu0 := cpuTime(b)
	start := time.Now()
	for _, svc := range svcs {
		wg.Go(func() {
			pprof.Do(rctx, pprof.Labels("phase", "chain"), func(rctx context.Context) {
				if err := svc.Run(rctx); err != nil {
					b.Error(err)
				}
			})
		})
	}
	deadline := start.Add(10 * time.Minute)
	for natstest.Count(b, e.JS, "posts.embedded.>") < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d posts embedded after 10 minutes", natstest.Count(b, e.JS, "posts.embedded.>"), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := run{wall: time.Since(start), cpu: cpuTime(b) - cpu0}
	runtime.ReadMemStats(&ms)
	r.allocs = ms.Mallocs - mallocs0
	cancel()
	wg.Wait()
	dlq, err := e.JS.Stream(ctx, topology.DLQStream)
	if err != nil {
		b.Fatal(err)
	}
	if di, err := dlq.Info(ctx); err != nil || di.State.Msgs != 0 {
		b.Fatalf("DLQ holds %v messages (err %v)", di.State.Msgs, err)
	}
	return r
}

// BenchmarkChainHashing is the text chain parsed → tagged → enriched → embedded on the
// embedded server with the hashing embedder: posts/s from the stages' start until every
// post is embedded (default 3,000 posts per run; TGFLOW_BENCH_CHAIN_POSTS).
func BenchmarkChainHashing(b *testing.B) {
	n := benchPosts(b, 3000)
	env := map[string]string{"TGFLOW_EMBEDDER": "hashing", "TGFLOW_DATA_DIR": b.TempDir()}
	var total run
	for range b.N {
		total.add(chainRun(b, env, n))
	}
	total.report(b, n*b.N)
}

// BenchmarkChainUSE is the chain with the USE embedder (the default), against the
// standalone throughput of the same embedder in the same run: the texts the embedder stage
// embeds (Compose: each post's text and tags, as the local tagger tags it) embedded in
// batches of the stage's size (32) with every core, as the embedder stage's batcher calls
// it. ratio = chain posts/s ÷ standalone texts/s (ratio-cpu: the same per CPU second, the
// figure a busy shared machine disturbs least); the standalone is measured before and after
// the chain and averaged, and its embedder is warmed up first, untimed, as the stage's is
// (by the topic descriptions). ratio-plain compares with the posts' bare
// texts instead (shorter: no tags), the figure reported before topics moved to the embedder.
func BenchmarkChainUSE(b *testing.B) {
	n := benchPosts(b, 1000)
	dir := usetest.ModelsDir(b)
	env := map[string]string{"TGFLOW_EMBEDDER": "use", "TGFLOW_MODELS_DIR": dir, "TGFLOW_DATA_DIR": b.TempDir()}
	var cfg embedder.StageConfig
	cfg.Embedder.Kind, cfg.Embedder.Batch = embedder.KindUSE, 32
	cfg.Embedder.Models.ModelsDir = dir
	e, err := embedder.Open(context.Background(), cfg.Embedder, b.TempDir(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	plain := make([]string, n)
	for i := range plain {
		plain[i] = benchPost(i).Data.(*events.PostParsed).Text
	}
	composed := make([]string, n)
	for i, ev := range newBenchChain(b, n).enriched {
		composed[i] = embedder.Compose(ev.Data.(*events.PostEnriched))
	}
	// The stage's embedder is warm when the chain starts (it embedded the topic descriptions
	// in NewStage); warm this one too (scratch buffers, pages of the weights), untimed.
	if _, err := e.Embed(context.Background(), composed[:min(len(composed), 2*cfg.Embedder.Batch)]); err != nil {
		b.Fatal(err)
	}
	var chain, alone, alonePlain run
	for range b.N {
		// The standalone run brackets the chain run (half before, half after: each embeds
		// the texts once, so the standalone figure is per 2n texts): the machine is shared,
		// and a load that changes during the iteration then weighs on both sides alike.
		alone.add(standalone(b, e, composed, cfg.Embedder.Batch))
		alonePlain.add(standalone(b, e, plain, cfg.Embedder.Batch))
		chain.add(chainRun(b, env, n))
		alone.add(standalone(b, e, composed, cfg.Embedder.Batch))
	}
	chain.report(b, n*b.N)
	alone.wall, alone.cpu = alone.wall/2, alone.cpu/2
	posts := float64(n * b.N)
	b.ReportMetric(posts/alone.wall.Seconds(), "standalone-texts/s")
	b.ReportMetric(posts/alone.cpu.Seconds(), "standalone-texts/cpu-s")
	b.ReportMetric(alone.wall.Seconds()/chain.wall.Seconds(), "ratio")
	b.ReportMetric(alone.cpu.Seconds()/chain.cpu.Seconds(), "ratio-cpu")
	b.ReportMetric(alonePlain.wall.Seconds()/chain.wall.Seconds(), "ratio-plain")
}

// standalone embeds texts in batches of size batch, all batches at once (the embedder
// spreads its work over GOMAXPROCS).
func standalone(b *testing.B, e embed.Embedder, texts []string, batch int) run {
	b.Helper()
	ctx := context.Background()
	cpu0 := cpuTime(b)
	start := time.Now()
	var wg sync.WaitGroup
	pprof.Do(ctx, pprof.Labels("phase", "standalone"), func(ctx context.Context) {
		for i := 0; i < len(texts); i += batch {
			wg.Go(func() {
				if _, err := e.Embed(ctx, texts[i:min(i+batch, len(texts))]); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	})
	return run{wall: time.Since(start), cpu: cpuTime(b) - cpu0}
}

// withProcessEnv is env plus the stages' TGFLOW_* variables of the process environment
// (not the tests' TGFLOW_TEST_* and TGFLOW_BENCH_*), so a run can try another setting:
// TGFLOW_TAGGER_CONCURRENCY=32 go test -bench ChainUSE.
func withProcessEnv(env map[string]string) map[string]string {
	out := maps.Clone(env)
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TGFLOW_") && !strings.HasPrefix(k, "TGFLOW_TEST_") && !strings.HasPrefix(k, "TGFLOW_BENCH_") {
			if _, set := out[k]; !set {
				out[k] = v
			}
		}
	}
	return out
}
