package chaintest_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services/embed/hashing"
	"github.com/tgflow/tgflow/services/embed/topics"
	"github.com/tgflow/tgflow/services/embedder"
	"github.com/tgflow/tgflow/services/enricher"
	"github.com/tgflow/tgflow/services/enricher/fetch"
	"github.com/tgflow/tgflow/services/tagger"
)

// The stage benchmarks call each stage's handler on the bench posts, as the runtime does
// (without the log): allocs/op is the handler's allocations per post, ns/op its time per
// post. The runtime's own share (decode, publish, ack) is in the chain benchmarks'
// allocs/post, which include everything the process does (the embedded server too).

// benchChain computes the facts of the chain for the bench posts, once per benchmark: the
// inputs of each stage's handler.
type benchChain struct {
	parsed   []events.Event
	tagged   []events.Event
	enriched []events.Event
}

func newBenchChain(b *testing.B, n int) *benchChain {
	b.Helper()
	c := &benchChain{}
	tg := benchTagger(b)
	en := benchEnricher(b)
	ctx := context.Background()
	for i := range n {
		in := benchPost(i)
		out, err := tg.Parsed(worker.WithProducer(ctx, events.ProducerTagger), in, in.Data.(*events.PostParsed))
		if err != nil || len(out) != 1 {
			b.Fatalf("tag: %v (%d facts)", err, len(out))
		}
		enr, err := en.Handle(worker.WithProducer(ctx, events.ProducerEnricher), out[0], out[0].Data.(*events.PostTagged))
		if err != nil || len(enr) != 1 {
			b.Fatalf("enrich: %v (%d facts)", err, len(enr))
		}
		c.parsed, c.tagged, c.enriched = append(c.parsed, in), append(c.tagged, out[0]), append(c.enriched, enr[0])
	}
	return c
}

// benchTagger is the local tagger as the stage builds it (it embeds nothing), posts kept in
// memory.
func benchTagger(b *testing.B) *tagger.Handler {
	b.Helper()
	tg, err := tagger.New(tagger.Config{}, tagger.NewMemoryDF())
	if err != nil {
		b.Fatal(err)
	}
	h, err := tagger.NewHandler(tg, tagger.NewMemoryPosts())
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// noFetch is a fetcher for posts without links: it is called with none.
type noFetch struct{}

func (noFetch) FetchAll(_ context.Context, links []string) ([]fetch.Result, error) {
	if len(links) > 0 {
		return nil, errors.New("bench posts have no links")
	}
	return nil, nil
}

func benchEnricher(b *testing.B) *enricher.Handler {
	b.Helper()
	h, err := enricher.NewHandler(noFetch{})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

const stageBenchPosts = 512

func BenchmarkStageTagger(b *testing.B) {
	c := newBenchChain(b, stageBenchPosts)
	h := benchTagger(b)
	ctx := worker.WithProducer(context.Background(), events.ProducerTagger)
	b.ReportAllocs()
	i := 0
	cpu0 := cpuTime(b)
	for b.Loop() {
		in := c.parsed[i%len(c.parsed)]
		if _, err := h.Parsed(ctx, in, in.Data.(*events.PostParsed)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportPosts(b, b.N, cpu0)
}

func BenchmarkStageEnricher(b *testing.B) {
	c := newBenchChain(b, stageBenchPosts)
	h := benchEnricher(b)
	ctx := worker.WithProducer(context.Background(), events.ProducerEnricher)
	b.ReportAllocs()
	i := 0
	cpu0 := cpuTime(b)
	for b.Loop() {
		in := c.tagged[i%len(c.tagged)]
		if _, err := h.Handle(ctx, in, in.Data.(*events.PostTagged)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportPosts(b, b.N, cpu0)
}

// BenchmarkStageEmbedder runs the embedder's handler with the hashing embedder (256
// dimensions, the stage's default) and batches of one: a post at a time, no waiting for a
// batch to fill. It includes matching the vector against the shipped topic list.
func BenchmarkStageEmbedder(b *testing.B) {
	c := newBenchChain(b, stageBenchPosts)
	emb, err := hashing.New(hashing.Config{})
	if err != nil {
		b.Fatal(err)
	}
	h, err := embedder.NewHandler(emb, 1, time.Millisecond, nil, topics.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	ctx := worker.WithProducer(context.Background(), events.ProducerEmbedder)
	b.ReportAllocs()
	i := 0
	cpu0 := cpuTime(b)
	for b.Loop() {
		in := c.enriched[i%len(c.enriched)]
		if _, err := h.Handle(ctx, in, in.Data.(*events.PostEnriched)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportPosts(b, b.N, cpu0)
}

// cpuTime is the CPU time (user + system) the process has used so far: on a shared
// machine it is the robust figure, since it does not count the time the process waited
// for a core.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportPosts reports posts/s of wall time and CPU µs per post since cpu0.
func reportPosts(b *testing.B, posts int, cpu0 time.Duration) {
	b.Helper()
	b.ReportMetric(float64(posts)/b.Elapsed().Seconds(), "posts/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(posts), "cpu-µs/post")
}
