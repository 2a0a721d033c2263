package tracing_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/internal/tracing"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/projections/postgres"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// recorder installs an in-memory exporter as the global tracer provider for one test.
func recorder(t *testing.T) *tracetest.InMemoryExporter {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(prev)
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return exp
}

func runStage(t *testing.T, env *natstest.Env, m *worker.Metrics, name string, r *worker.Router) {
	t.Helper()
	c, _ := topology.LookupConsumer(name)
	s, err := worker.NewStage(env.JS, worker.Config{Consumer: c.Config(), Metrics: m, Logger: logx.Discard()}, r)
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, s.Run)
}

func runUntilCleanup(t *testing.T, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// One post runs through ingest's publish, three stages on the stage runtime and the
// Postgres projector; its spans form one trace: publish → tagger → enricher → embedder →
// the projection's span of each of its facts, each span the child of the one before.
func TestOnePostIsOneTraceFromIngestToPostgres(t *testing.T) {
	exp := recorder(t)
	env := natstest.Start(t)
	m := worker.NewMetrics(prometheus.NewRegistry())

	tagger := worker.NewRouter()
	worker.On(tagger, func(_ context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
		return []events.Event{events.Derive(in, events.ProducerTagger, &events.PostTagged{PostRef: p.PostRef, Trigger: events.TriggerInitial,
			Tags: []events.Tag{{Name: "go"}}, PostedAt: p.Date, Text: p.Text, Provider: "test"}, t0)}, nil
	})
	enricher := worker.NewRouter()
	worker.On(enricher, func(_ context.Context, in events.Event, p *events.PostTagged) ([]events.Event, error) {
		return []events.Event{events.Derive(in, events.ProducerEnricher, &events.PostEnriched{PostRef: p.PostRef, Rev: p.Rev,
			Tags: []string{"go"}, PostedAt: p.PostedAt, Text: p.Text}, t0)}, nil
	})
	embedder := worker.NewRouter()
	worker.On(embedder, func(_ context.Context, in events.Event, p *events.PostEnriched) ([]events.Event, error) {
		return []events.Event{events.Derive(in, events.ProducerEmbedder, &events.PostEmbedded{PostRef: p.PostRef, Rev: p.Rev,
			Vector: []float32{1, 0}, Provider: "test"}, t0)}, nil
	})
	runStage(t, env, m, topology.ConsumerTagger, tagger)
	runStage(t, env, m, topology.ConsumerEnricher, enricher)
	runStage(t, env, m, topology.ConsumerEmbedder, embedder)

	pool, err := pgxpool.New(context.Background(), testenv.NewPostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	proj, err := postgres.New(context.Background(), pool, "tgflow")
	if err != nil {
		t.Fatal(err)
	}
	pc, _ := topology.LookupConsumer(topology.ConsumerProjPostgres)
	projector, err := worker.NewProjector(env.JS, worker.Config{Consumer: pc.Config(), Batch: 100, Metrics: m, Logger: logx.Discard()}, proj)
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, projector.Run)

	// Ingest publishes the post (two posts: their traces must not mix).
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var posts []events.Event
	for i := int64(1); i <= 2; i++ {
		posts = append(posts, events.PostEvent(&events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: 42, MessageID: i}, Date: t0, Text: fmt.Sprintf("post %d", i)}}))
	}
	if _, err := pub.Publish(context.Background(), posts); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, "both posts embedded and projected", func() bool {
		cp, err := proj.Checkpoint(context.Background())
		return err == nil && cp == 8
	})
	// The projector ends a batch's spans right after Apply; wait for the last fact's span.
	natstest.Eventually(t, 10*time.Second, "projection spans", func() bool {
		n := 0
		for _, s := range exp.GetSpans() {
			if strings.HasPrefix(s.Name, topology.ConsumerProjPostgres+" apply org.") {
				n++
			}
		}
		return n == 8
	})

	spans := exp.GetSpans()
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	for _, post := range posts {
		var root tracetest.SpanStub
		for _, s := range spans {
			if s.Name == "publish "+string(events.TypePostParsed) && attr(s, tracing.AttrSubject) == post.Subject {
				root = s
			}
		}
		if !root.SpanContext.IsValid() {
			t.Fatalf("no publish span of %s among %d spans", post.Subject, len(spans))
		}
		traceID := root.SpanContext.TraceID()
		if traceID.String() != events.TraceID(post.TraceParent) {
			t.Errorf("%s: the publish span is in trace %s, the fact's traceparent names %s", post.Subject, traceID, events.TraceID(post.TraceParent))
		}
		var chain []string
		for _, s := range spans {
			if s.SpanContext.TraceID() != traceID {
				continue
			}
			if attr(s, tracing.AttrSubject) != post.Subject {
				t.Errorf("trace of %s holds a span of %s: %s", post.Subject, attr(s, tracing.AttrSubject), s.Name)
			}
			if s.Name != root.Name {
				parent, ok := byID[s.Parent.SpanID()]
				if !ok {
					t.Errorf("%s: span %q has no recorded parent", post.Subject, s.Name)
					continue
				}
				chain = append(chain, parent.Name+" → "+s.Name)
			}
		}
		want := []string{
			"publish org.tgflow.post.parsed.v1 → tagger handle org.tgflow.post.parsed.v1",
			"tagger handle org.tgflow.post.parsed.v1 → enricher handle org.tgflow.post.tagged.v1",
			"enricher handle org.tgflow.post.tagged.v1 → embedder handle org.tgflow.post.enriched.v1",
			"publish org.tgflow.post.parsed.v1 → proj-postgres-v1 apply org.tgflow.post.parsed.v1",
			"tagger handle org.tgflow.post.parsed.v1 → proj-postgres-v1 apply org.tgflow.post.tagged.v1",
			"enricher handle org.tgflow.post.tagged.v1 → proj-postgres-v1 apply org.tgflow.post.enriched.v1",
			"embedder handle org.tgflow.post.enriched.v1 → proj-postgres-v1 apply org.tgflow.post.embedded.v1",
		}
		for _, w := range want {
			if !slices.Contains(chain, w) {
				t.Errorf("%s: no %q in the trace:\n%s", post.Subject, w, strings.Join(chain, "\n"))
			}
		}
		if len(chain) != len(want) {
			t.Errorf("%s: %d parent links, want %d:\n%s", post.Subject, len(chain), len(want), strings.Join(chain, "\n"))
		}
	}
	// Every projection fact span is linked to its batch span, and the batch to the facts.
	for _, s := range spans {
		if !strings.HasPrefix(s.Name, topology.ConsumerProjPostgres+" apply org.") {
			continue
		}
		if len(s.Links) != 1 {
			t.Fatalf("%s: %d links, want the batch", s.Name, len(s.Links))
		}
		b, ok := byID[s.Links[0].SpanContext.SpanID()]
		if !ok || b.Name != topology.ConsumerProjPostgres+" apply batch" || len(b.Links) == 0 {
			t.Fatalf("%s is linked to %q (%d links)", s.Name, b.Name, len(b.Links))
		}
	}
}

func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}
