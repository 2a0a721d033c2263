package search_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	qd "github.com/qdrant/go-client/qdrant"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/postgres"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/use/usetest"
	"github.com/tgflow/tgflow/services/search"
	"github.com/tgflow/tgflow/services/search/searchtest"
)

// randomVectors stands in for the embedder when filling Qdrant with many posts: unit
// vectors at random in the USE space (so that the real USE embedder may query them).
// Rankings over them mean nothing; the latency of an HNSW search over 512 dimensions does
// not depend on what the vectors say.
type randomVectors struct {
	info embed.Info
	rng  *rand.Rand
}

func (r *randomVectors) Info() embed.Info { return r.info }
func (r *randomVectors) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i := range texts {
		v := make([]float32, r.info.Dim)
		var n float64
		for j := range v {
			x := r.rng.NormFloat64()
			v[j] = float32(x)
			n += x * x
		}
		n = math.Sqrt(n)
		for j := range v {
			v[j] /= float32(n)
		}
		out[i] = v
	}
	return out, nil
}

// synthetic is n posts made of the corpus's words: each post 12 to 40 words drawn from the
// vocabulary of its channel's language, tags and topics from the corpus, dates over a year.
func synthetic(c *searchtest.Corpus, n int, rng *rand.Rand) *searchtest.Corpus {
	vocab := map[string][]string{}
	var tags, topics []string
	for _, p := range c.Posts {
		vocab[p.Lang] = append(vocab[p.Lang], strings.Fields(p.Text)...)
		tags = append(tags, p.Tags...)
		topics = append(topics, p.Topics...)
	}
	out := &searchtest.Corpus{Channels: c.Channels}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		ch := c.Channels[i%len(c.Channels)]
		words := make([]string, 12+rng.IntN(29))
		for j := range words {
			words[j] = vocab[ch.Lang][rng.IntN(len(vocab[ch.Lang]))]
		}
		out.Posts = append(out.Posts, searchtest.Post{
			ChannelID: ch.ID, MessageID: int64(1000 + i/len(c.Channels)), Lang: ch.Lang,
			Date:   start.Add(time.Duration(i) * 365 * 24 * time.Hour / time.Duration(n)),
			Text:   strings.Join(words, " "),
			Tags:   []string{tags[rng.IntN(len(tags))], tags[rng.IntN(len(tags))]},
			Topics: []string{topics[rng.IntN(len(topics))]},
		})
	}
	for i := range out.Posts { // two equal tags are one tag
		out.Posts[i].Tags = slices.Compact(slices.Sorted(slices.Values(out.Posts[i].Tags)))
	}
	return out
}

var bench struct {
	once sync.Once
	err  error
	svcs map[string]*search.Service
	n    int
	// indexed and points are Qdrant's counts when the measures began.
	indexed, points uint64
}

// benchPosts is the number of synthetic posts (TGFLOW_SEARCH_BENCH_POSTS, default 100000).
func benchPosts(b *testing.B) int {
	n := 100_000
	if s := os.Getenv("TGFLOW_SEARCH_BENCH_POSTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 100 {
			b.Fatalf("TGFLOW_SEARCH_BENCH_POSTS=%q: want a number ≥ 100", s)
		}
		n = v
	}
	return n
}

// fill applies the synthetic posts' facts to Postgres and Qdrant in chunks (the vectors of
// 100k posts would not fit in memory at once).
func fill(b *testing.B, n int) map[string]*search.Service {
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	b.Logf("seed %d, %d posts", seed, n)
	rng := rand.New(rand.NewPCG(seed, 1))
	c, err := searchtest.Load()
	if err != nil {
		b.Fatal(err)
	}
	emb := usetest.Load(b)
	syn := synthetic(c, n, rng)
	syn.Posts = append(syn.Posts, c.Posts...) // the corpus's own posts too: the quality queries still have their answers

	url := testenv.NewPostgresDB(b)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	pgp, err := postgres.New(ctx, pool, "tgflow")
	if err != nil {
		b.Fatal(err)
	}
	addr := testenv.Require(b, "Qdrant", testenv.EnvQdrantAddr)
	client, err := qdrant.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Close() })
	base := fmt.Sprintf("searchbench%d", seed%1_000_000)
	info := emb.Info()
	qp, err := qdrant.New(ctx, client, qdrant.Options{Alias: base, Space: qdrant.Space{Name: info.Name, Model: info.Model, Version: info.Version, Dim: info.Dim}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dropBench(b, client, base) })
	vecs := &randomVectors{info: info, rng: rng}
	var seq uint64
	start := time.Now()
	const chunk = 2000
	for i := 0; i < len(syn.Posts); i += chunk {
		part := &searchtest.Corpus{Channels: syn.Channels, Posts: syn.Posts[i:min(i+chunk, len(syn.Posts))]}
		evs, err := part.Events(ctx, vecs)
		if err != nil {
			b.Fatal(err)
		}
		var facts []projections.Fact
		for _, e := range evs {
			if e.Type == events.TypeChannelSubscribed || e.Type == events.TypeChannelSynced {
				if i > 0 {
					continue // once is enough
				}
			}
			seq++
			facts = append(facts, projections.Fact{Seq: seq, Event: e})
		}
		for f := range slices.Chunk(facts, 500) {
			if err := pgp.Apply(ctx, f); err != nil {
				b.Fatalf("postgres apply: %v", err)
			}
			if err := qp.Apply(ctx, f); err != nil {
				b.Fatalf("qdrant apply: %v", err)
			}
		}
	}
	b.Logf("filled %d posts (%d facts) in %s", len(syn.Posts), seq, time.Since(start).Round(time.Second))
	bench.indexed, bench.points = waitIndexed(ctx, b, client, base, info)
	pg := search.Postgres{DB: pool, Schema: "tgflow"}
	sem := &search.Qdrant{Client: client, Base: base}
	return map[string]*search.Service{
		"postgres": {FullText: pg, Hydrator: pg},
		"qdrant":   {Semantic: sem, Embedder: emb, Hydrator: pg},
		"fused":    {FullText: pg, Semantic: sem, Embedder: emb, Hydrator: pg},
	}
}

// waitIndexed waits up to 5 minutes for Qdrant to index the collection (a search scans
// the segments not indexed yet) and returns how many vectors it indexed. On a loaded
// machine the optimizer may leave a last segment for long: the benchmark then measures what
// a reader would meet, and reports the indexed share.
func waitIndexed(ctx context.Context, b *testing.B, client *qd.Client, base string, info embed.Info) (indexed, points uint64) {
	name := qdrant.AliasFor(base, qdrant.Space{Name: info.Name, Model: info.Model, Version: info.Version, Dim: info.Dim})
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ci, err := client.GetCollectionInfo(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		indexed, points = ci.GetIndexedVectorsCount(), ci.GetPointsCount()
		if ci.GetStatus() == qd.CollectionStatus_Green || time.Now().After(deadline) {
			b.Logf("qdrant %s: %s, %d of %d vectors indexed", name, ci.GetStatus(), indexed, points)
			return indexed, points
		}
		time.Sleep(2 * time.Second)
	}
}

func dropBench(b *testing.B, client *qd.Client, base string) {
	ctx := context.Background()
	cols, err := client.ListCollections(ctx)
	if err != nil {
		b.Logf("cleanup: %v", err)
		return
	}
	for _, c := range cols {
		if strings.HasPrefix(c, base+"_") || strings.HasPrefix(c, "tgflow_meta_"+base+"_") {
			if err := client.DeleteCollection(ctx, c); err != nil {
				b.Logf("cleanup %s: %v", c, err)
			}
		}
	}
}

// BenchmarkSearchLatency measures one search per iteration over TGFLOW_SEARCH_BENCH_POSTS
// synthetic posts (default 100k) plus the corpus, cycling through the corpus's queries,
// for each backend and fused; it reports p50 and p99 in milliseconds. The fill happens
// once, before the first timed search. Run it alone:
//
//	go test ./services/search -run '^$' -bench SearchLatency -benchtime 200x
func BenchmarkSearchLatency(b *testing.B) {
	bench.once.Do(func() { bench.n = benchPosts(b); bench.svcs = fill(b, bench.n) })
	if bench.svcs == nil {
		b.Fatal("the fill failed")
	}
	c, err := searchtest.Load()
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"postgres", "qdrant", "fused"} {
		b.Run(name, func(b *testing.B) {
			svc := bench.svcs[name]
			var lat []time.Duration
			i := 0
			for b.Loop() {
				q := c.Queries[i%len(c.Queries)]
				i++
				t0 := time.Now()
				if _, err := svc.Search(context.Background(), search.Query{Text: q.Q, Limit: 10}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(bench.n), "posts")
			if name != "postgres" && bench.points > 0 {
				b.ReportMetric(float64(bench.indexed)/float64(bench.points), "qdrant-indexed")
			}
		})
	}
}
