package neo4j_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/neo4j"
)

// BenchmarkRebuild measures a rebuild's replay: the log of 100k posts (each parsed, tagged
// with three tags and a topic, enriched with one or two pages, embedded; a quarter analysed
// by vision, a tenth re-tagged: ~435k facts, interleaved as the pipeline writes them) applied through Apply in batches of 2000 into an empty graph.
// TGFLOW_BENCH_NEO4J_POSTS and TGFLOW_BENCH_NEO4J_BATCH change the size.
//
//	go test -run '^$' -bench Rebuild -benchtime 1x ./projections/neo4j/
func BenchmarkRebuild(b *testing.B) {
	posts := envInt(b, "TGFLOW_BENCH_NEO4J_POSTS", 100_000)
	batch := envInt(b, "TGFLOW_BENCH_NEO4J_BATCH", 2000)
	d := newDriver(b)
	facts := rebuildFacts(posts)
	ctx := context.Background()

	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		p := newProjection(b, d)
		b.StartTimer()
		start := time.Now()
		for chunk := range slices.Chunk(facts, batch) {
			if err := p.Apply(ctx, chunk); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(start)
		b.StopTimer()
		recs := run(b, d, `MATCH (p:Post) RETURN count(p)`, nil)
		if n := recs[0].Values[0].(int64); n != int64(posts) {
			b.Fatalf("%d posts after the run, want %d", n, posts)
		}
		if cp, err := p.Checkpoint(ctx); err != nil || cp != facts[len(facts)-1].Seq {
			b.Fatalf("checkpoint %d, %v; want %d", cp, err, facts[len(facts)-1].Seq)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(len(facts)*b.N)/elapsed.Seconds(), "facts/s")
	b.ReportMetric(float64(posts*b.N)/elapsed.Seconds(), "posts/s")
	b.ReportMetric(float64(len(facts)), "facts")
}

// rebuildFacts builds the log of n posts in 50 channels: the subscriptions, then at step i
// post i is parsed, post i-25 analysed (every fourth post: one picture out of 36, with
// labels and a near-duplicate), post i-50 tagged (three tags, a topic), post i-60 re-tagged
// (every tenth: revision 1), post i-75 enriched and post i-100 embedded.
func rebuildFacts(n int) []projections.Fact {
	const visionLag, tagLag, retagLag, enrichLag, embedLag, channels = 25, 50, 60, 75, 100, 50
	vocab := []string{"ai", "chips", "economy", "elections", "markets", "science", "sport", "weather", "energy", "health", "space", "crypto"}
	topics := []string{"Technology", "Politics", "Economy", "Science", "Sport"}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	vector := make([]float32, 384) // the graph keeps only its revision and dimension
	var facts []projections.Fact
	add := func(e events.Event) {
		facts = append(facts, projections.Fact{Seq: uint64(len(facts) + 1), Event: e})
	}
	ref := func(i int) events.PostRef {
		return events.PostRef{ChannelID: events.ChannelID(1000 + i%channels), MessageID: int64(i/channels + 1)}
	}
	links := func(i int) []string {
		l := []string{fmt.Sprintf("https://site%d.example.com/a/%d", i%40, i)}
		if i%10 == 0 { // a popular page many posts link to
			l = append(l, fmt.Sprintf("https://popular.example.net/%d", i%7))
		}
		return l
	}
	for c := range channels {
		add(events.New(events.ProducerCLI, &events.ChannelSubscribed{ChannelID: events.ChannelID(1000 + c), Username: fmt.Sprintf("chan_%d", c), At: at}, at))
	}
	parsed := make([]events.Event, n)
	for step := 0; step < n+embedLag; step++ {
		if i := step; i < n {
			t := at.Add(time.Duration(i) * time.Second)
			p := &events.PostParsed{Post: events.Post{PostRef: ref(i), ChannelUsername: fmt.Sprintf("chan_%d", i%channels), Date: t,
				Text:  strings.Repeat(fmt.Sprintf("post %d about %s. ", i, vocab[i%len(vocab)]), 8),
				Links: links(i), Views: int64(i % 1000), Origin: "telegram"}}
			if i%4 == 0 {
				p.Media = []events.Media{{Kind: events.MediaPhoto, SHA256: "ab"}}
			}
			if i%25 == 0 && i > 0 {
				p.ReplyTo = &events.ReplyTo{MessageID: int64((i-channels)/channels + 1)}
			}
			parsed[i] = events.New(events.ProducerIngest, p, t, "0")
			add(parsed[i])
		}
		if i := step - visionLag; i >= 0 && i < n && i%4 == 0 {
			// Pictures repeat (i%36) and near-duplicate an earlier one (i%36 - 4).
			pic := func(k int) string { return fmt.Sprintf("%064x", k) }
			it := events.VisionItem{MediaSHA256: pic(i % 36), Labels: []string{vocab[i%len(vocab)], "photo"}, PHash: "f0f0f0f0f0f0f0f0", Width: 640, Height: 480}
			if i%36 >= 4 {
				it.NearDuplicateOf = &events.NearDuplicate{PostRef: ref(i - 4), MediaSHA256: pic(i%36 - 4), Distance: i % 7}
			}
			add(events.Derive(parsed[i], events.ProducerVision, &events.PostVisionAnalyzed{PostRef: ref(i), Items: []events.VisionItem{it},
				Provider: "local", AnalyzedAt: at.Add(time.Duration(i) * time.Second)}, at))
		}
		if i := step - tagLag; i >= 0 && i < n {
			tags := []events.Tag{{Name: vocab[i%len(vocab)], Score: 0.9}, {Name: vocab[(i/3)%len(vocab)], Score: 0.7}, {Name: vocab[(i/7)%len(vocab)], Score: 0.5}}
			add(events.Derive(parsed[i], events.ProducerTagger, &events.PostTagged{PostRef: ref(i), Trigger: events.TriggerInitial,
				Tags: tags, PostedAt: at, Links: links(i), Provider: "keyword"}, at))
		}
		if i := step - retagLag; i >= 0 && i < n && i%10 == 0 {
			// Every tenth post is re-tagged after its vision (revision 1): its edges are replaced.
			add(events.Derive(parsed[i], events.ProducerTagger, &events.PostTagged{PostRef: ref(i), Rev: events.Rev{Revision: 1}, Trigger: events.TriggerVisionRetag,
				Tags:     []events.Tag{{Name: vocab[(i+1)%len(vocab)], Score: 0.8}},
				PostedAt: at, Links: links(i), Provider: "keyword"}, at))
		}
		if i := step - enrichLag; i >= 0 && i < n {
			var pages []events.Page
			for _, u := range links(i) {
				host := strings.SplitN(strings.TrimPrefix(u, "https://"), "/", 2)[0]
				pages = append(pages, events.Page{URL: u, FinalURL: u, Domain: host, Status: 200, Title: "Page " + u, Lang: "en", FetchedAt: at.Add(time.Duration(i) * time.Second)})
			}
			add(events.Derive(parsed[i], events.ProducerEnricher, &events.PostEnriched{PostRef: ref(i), PostedAt: at, Pages: pages}, at))
		}
		if i := step - embedLag; i >= 0 && i < n {
			add(events.Derive(parsed[i], events.ProducerEmbedder, &events.PostEmbedded{PostRef: ref(i), Vector: vector, Provider: "hashing", Model: "fh-384",
				Topics: []string{topics[i%len(topics)]}, TopicsSource: events.TopicsFromEmbedding + "hashing-fh-384"}, at))
		}
	}
	return facts
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkRelated measures Related over the benchmark's graph (TGFLOW_BENCH_NEO4J_POSTS,
// default 10k here: each tag is shared by about a quarter of the posts, so every call
// aggregates thousands of connections), asking for posts in turn; it reports the mean
// latency and the mean number of results.
//
//	go test -run '^$' -bench Related -benchtime 50x ./projections/neo4j/
func BenchmarkRelated(b *testing.B) {
	posts := envInt(b, "TGFLOW_BENCH_NEO4J_POSTS", 10_000)
	d := newDriver(b)
	facts := rebuildFacts(posts)
	p := newProjection(b, d)
	ctx := context.Background()
	for chunk := range slices.Chunk(facts, 2000) {
		if err := p.Apply(ctx, chunk); err != nil {
			b.Fatal(err)
		}
	}
	results := 0
	b.ResetTimer()
	for i := range b.N {
		k := (i * 97) % posts
		rel, err := neo4j.Related(ctx, d, "", events.ChannelID(1000+k%50), int64(k/50+1), 20)
		if err != nil {
			b.Fatal(err)
		}
		results += len(rel)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
	b.ReportMetric(float64(results)/float64(b.N), "results/op")
}
