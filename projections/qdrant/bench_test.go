package qdrant_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/projections/qdrant/qdranttest"
)

// BenchmarkApply measures the projection's write throughput: 20k posts, each with its
// posts.parsed, posts.tagged and posts.embedded (384 dimensions) facts, interleaved as a
// pipeline writes them (the tags and the vector of a post arrive some posts later), applied
// in batches of 500. Sub-benchmarks: inprocess (the in-process server) and real (the Qdrant
// of TGFLOW_TEST_QDRANT_ADDR; skipped without it).
//
//	go test -run '^$' -bench Apply -benchtime 1x ./projections/qdrant/
func BenchmarkApply(b *testing.B) {
	const (
		posts = 20_000
		dim   = 384
		batch = 500
	)
	facts := benchFacts(posts, dim)
	qdranttest.Each(b, func(b *testing.B, addr string, real bool) {
		client, err := qdranttest.Connect(addr)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = client.Close() })
		ctx := context.Background()

		var elapsed time.Duration
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			alias := freshName("bench")
			p, err := qdrant.New(ctx, client, qdrant.Options{Alias: alias, Space: qdrant.Space{Name: "hashing", Dim: dim}})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			for chunk := range slices.Chunk(facts, batch) {
				if err := p.Apply(ctx, chunk); err != nil {
					b.Fatal(err)
				}
			}
			elapsed += time.Since(start)
			b.StopTimer()
			info, err := client.GetCollectionInfo(ctx, alias)
			if err != nil || info.GetPointsCount() != posts {
				b.Fatalf("after the run: %d points, %v; want %d", info.GetPointsCount(), err, posts)
			}
			if err := p.Close(); err != nil {
				b.Fatal(err)
			}
			dropAlias(b, client, alias)
			b.StartTimer()
		}
		b.ReportMetric(float64(len(facts)*b.N)/elapsed.Seconds(), "facts/s")
		b.ReportMetric(float64(posts*b.N)/elapsed.Seconds(), "points/s")
	})
}

// benchFacts builds the log of n posts: at step i post i is parsed, post i-50 tagged and
// post i-100 embedded.
func benchFacts(n, dim int) []projections.Fact {
	const tagLag, embedLag = 50, 100
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := []string{"ai", "chips", "economy", "elections", "markets", "science", "sport", "weather"}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	parsed := make([]events.Event, n)
	var facts []projections.Fact
	add := func(e events.Event) {
		facts = append(facts, projections.Fact{Seq: uint64(len(facts) + 1), Event: e})
	}
	ref := func(i int) events.PostRef {
		return events.PostRef{ChannelID: events.ChannelID(1000 + i%50), MessageID: int64(i + 1)}
	}
	for step := 0; step < n+embedLag; step++ {
		if i := step; i < n {
			t := at.Add(time.Duration(i) * time.Second)
			p := &events.PostParsed{Post: events.Post{PostRef: ref(i), ChannelUsername: fmt.Sprintf("chan%d", i%50), Date: t,
				Text:  strings.Repeat(fmt.Sprintf("post %d about %s. ", i, vocab[i%len(vocab)]), 12),
				Links: []string{fmt.Sprintf("https://site%d.example.com/a/%d", i%20, i)}, Origin: "telegram"}}
			if i%4 == 0 {
				p.Media = []events.Media{{Kind: events.MediaPhoto, SHA256: "ab"}}
			}
			parsed[i] = events.New(events.ProducerIngest, p, t, "0")
			add(parsed[i])
		}
		if i := step - tagLag; i >= 0 && i < n {
			tags := []events.Tag{{Name: vocab[i%len(vocab)]}, {Name: vocab[(i/3)%len(vocab)]}, {Name: vocab[(i/7)%len(vocab)]}}
			add(events.Derive(parsed[i], events.ProducerTagger, &events.PostTagged{PostRef: ref(i), Trigger: events.TriggerInitial,
				Tags: tags, PostedAt: at, Provider: "keyword"}, at))
		}
		if i := step - embedLag; i >= 0 && i < n {
			v := make([]float32, dim)
			for j := range v {
				v[j] = rng.Float32()*2 - 1
			}
			add(events.Derive(parsed[i], events.ProducerEmbedder, &events.PostEmbedded{PostRef: ref(i), Vector: v, Provider: "hashing"}, at))
		}
	}
	return facts
}
