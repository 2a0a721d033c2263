package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/postgres"
)

// chain is a post's tagged → enriched → embedded facts at one rev; the topics are the
// embedded fact's (posts.tagged carries other, stale ones: the read model must ignore them).
func chain(in events.Event, ref events.PostRef, rev events.Rev, trigger string, tags []string, topics []string, pages []events.Page, m int) []events.Event {
	var ts []events.Tag
	for _, t := range tags {
		ts = append(ts, events.Tag{Name: t, Score: 0.5})
	}
	tg := events.Derive(in, events.ProducerTagger, &events.PostTagged{PostRef: ref, Rev: rev, Trigger: trigger, Tags: ts, Topics: []string{"from-tagged"},
		PostedAt: tmin(0), Provider: "local"}, tmin(m))
	en := events.Derive(tg, events.ProducerEnricher, &events.PostEnriched{PostRef: ref, Rev: rev, Tags: tags, PostedAt: tmin(0), Pages: pages}, tmin(m+1))
	em := embeddedTopics(en, ref, rev, topics, m+2)
	return []events.Event{tg, en, em}
}

// embeddedTopics is a post's posts.embedded at rev with topics computed from its vector.
func embeddedTopics(in events.Event, ref events.PostRef, rev events.Rev, topics []string, m int) events.Event {
	return events.Derive(in, events.ProducerEmbedder, &events.PostEmbedded{PostRef: ref, Rev: rev, Vector: []float32{float32(rev.Revision + 1)},
		Provider: "hashing", Model: "r" + string(rune('0'+rev.Revision)), Dim: 1, Lexical: true,
		Topics: topics, TopicsSource: events.TopicsFromEmbedding + "hashing-test"}, tmin(m))
}

func TestVisionRetagSupersedes(t *testing.T) {
	pool := newPool(t)
	ref := events.PostRef{ChannelID: 9, MessageID: 1}
	p := parsed(ref, "Фото без подписи", 0, 0)
	oldPage := events.Page{URL: "https://old.example/a", Domain: "old.example", Title: "Old page title", FetchedAt: tmin(1)}
	newPage := events.Page{URL: "https://new.example/b", Domain: "new.example", Title: "Brand new title", FetchedAt: tmin(6)}
	first := chain(p, ref, events.Rev{}, events.TriggerInitial, []string{"фото"}, []string{"misc"}, []events.Page{oldPage}, 1)
	vision := events.Derive(p, events.ProducerVision, &events.PostVisionAnalyzed{PostRef: ref, Provider: "local", AnalyzedAt: tmin(4),
		Items: []events.VisionItem{{MediaSHA256: strings.Repeat("aa", 32), OCRText: "Концерт в субботу"}}}, tmin(4))
	retag := chain(vision, ref, events.Rev{Revision: 1}, events.TriggerVisionRetag, []string{"концерт", "афиша"}, []string{"music"}, []events.Page{newPage}, 5)
	// The first chain again, late (a redelivery after the retag): it changes nothing.
	late := chain(p, ref, events.Rev{}, events.TriggerInitial, []string{"устарело"}, []string{"stale"}, []events.Page{oldPage}, 9)

	check := func(t *testing.T, snap projections.Snapshot) {
		t.Helper()
		tags := where(rowsOf(t, snap, "post_tags"), "message_id", 1)
		var names []string
		for _, r := range tags {
			names = append(names, r["tag"].(string))
			field(t, r, "revision", 1)
			field(t, r, "trigger", events.TriggerVisionRetag)
		}
		slices.Sort(names)
		if strings.Join(names, ",") != "афиша,концерт" {
			t.Errorf("tags = %v, want the retag's only", names)
		}
		topics := rowsOf(t, snap, "post_topics")
		if len(topics) != 1 || topics[0]["topic"] != "music" {
			t.Errorf("topics = %v", topics)
		}
		pp := rowsOf(t, snap, "post_pages")
		if len(pp) != 1 || pp[0]["url"] != newPage.URL || pp[0]["revision"] != float64(1) {
			t.Errorf("post pages = %v", pp)
		}
		e := one(t, rowsOf(t, snap, "post_embeddings"), "embedding", "message_id", 1)
		field(t, e, "revision", 1)
		field(t, e, "model", "r1")
		doc := one(t, rowsOf(t, snap, "post_search"), "document", "message_id", 1)["document"].(string)
		for _, want := range []string{"'концерт'", "'афиш'", "'brand'", "'суббот'"} {
			if !strings.Contains(doc, want) {
				t.Errorf("document lacks %s: %s", want, doc)
			}
		}
		for _, gone := range []string{"устар", "'old'"} {
			if strings.Contains(doc, gone) {
				t.Errorf("document keeps %s of the superseded revision: %s", gone, doc)
			}
		}
	}

	t.Run("retag supersedes", func(t *testing.T) {
		evs := append(append(append([]events.Event{p}, first...), vision), retag...)
		check(t, checkBatchIndependent(t, pool, facts(evs...)))
	})
	t.Run("late old revision changes nothing", func(t *testing.T) {
		evs := append(append(append(append([]events.Event{p}, first...), vision), retag...), late...)
		check(t, checkBatchIndependent(t, pool, facts(evs...)))
	})
	t.Run("old revision arriving after the new one", func(t *testing.T) {
		// The retag chain is applied before the first chain ever arrives.
		evs := append(append(append([]events.Event{p, vision}, retag...), first...), late...)
		check(t, checkBatchIndependent(t, pool, facts(evs...)))
	})
}

// The search corpus: Russian and English posts in two channels, a post found only by the
// OCR text of its image, one only by the title of its linked page, and a deleted post.
var (
	chRU = events.ChannelID(501)
	chEN = events.ChannelID(502)

	postRelease = events.PostRef{ChannelID: chRU, MessageID: 1} // Russian, tags go/релиз, topic programming
	postWeather = events.PostRef{ChannelID: chRU, MessageID: 2} // Russian, tag погода, topic weather
	postEnglish = events.PostRef{ChannelID: chEN, MessageID: 3} // English, tag go, topic programming
	postOCR     = events.PostRef{ChannelID: chEN, MessageID: 4} // photo only; OCR text in Russian
	postPage    = events.PostRef{ChannelID: chRU, MessageID: 5} // a bare link; page title in English
	postDeleted = events.PostRef{ChannelID: chRU, MessageID: 6} // mentions a release; deleted
)

func searchCorpus() []events.Event {
	post := func(ref events.PostRef, text string, day int, links ...string) events.Event {
		p := &events.PostParsed{Post: events.Post{PostRef: ref, Date: tmin(day * 24 * 60), Text: text, Links: links}}
		return events.New(events.ProducerIngest, p, tmin(day*24*60), "p")
	}
	var evs []events.Event
	add := func(e ...events.Event) { evs = append(evs, e...) }
	// tagged adds the post's embedded fact too, which carries its topics.
	tagged := func(in events.Event, ref events.PostRef, topics []string, tags ...string) events.Event {
		var ts []events.Tag
		for _, t := range tags {
			ts = append(ts, events.Tag{Name: t})
		}
		tg := events.Derive(in, events.ProducerTagger, &events.PostTagged{PostRef: ref, Trigger: events.TriggerInitial, Tags: ts,
			PostedAt: tmin(0), Provider: "local"}, tmin(1))
		if topics != nil {
			add(embeddedTopics(tg, ref, events.Rev{}, topics, 2))
		}
		return tg
	}

	p1 := post(postRelease, "Вышел новый релиз компилятора Go 1.26 с итераторами", 1)
	add(p1, tagged(p1, postRelease, []string{"programming"}, "go", "релиз"))
	p2 := post(postWeather, "Погода в Москве: на выходных дожди и ветер", 2)
	add(p2, tagged(p2, postWeather, []string{"weather"}, "погода"))
	p3 := post(postEnglish, "The Go team published new releases of the compiler today", 3)
	add(p3, tagged(p3, postEnglish, []string{"programming"}, "go"))
	p4 := post(postOCR, "", 4)
	add(p4, events.Derive(p4, events.ProducerVision, &events.PostVisionAnalyzed{PostRef: postOCR, Provider: "local", AnalyzedAt: tmin(5),
		Items: []events.VisionItem{{MediaSHA256: strings.Repeat("0a", 32), OCRText: "БОЛЬШАЯ РАСПРОДАЖА БИЛЕТОВ"}}}, tmin(5)))
	p5 := post(postPage, "https://example.net/q", 5, "https://example.net/q")
	t5 := tagged(p5, postPage, nil)
	add(p5, t5, events.Derive(t5, events.ProducerEnricher, &events.PostEnriched{PostRef: postPage, PostedAt: tmin(0),
		Pages: []events.Page{{URL: "https://example.net/q", Domain: "example.net", Title: "Quantum computing breakthrough", Excerpt: "Physicists report", FetchedAt: tmin(6)}}}, tmin(6)))
	p6 := post(postDeleted, "Релиз отменили", 6)
	add(p6, tagged(p6, postDeleted, []string{"programming"}, "релиз"),
		events.New(events.ProducerIngest, &events.PostDeleted{PostRef: postDeleted, DeletedAt: tmin(7 * 24 * 60)}, tmin(7*24*60)))
	add(events.New(events.ProducerIngest, &events.ChannelSynced{ChannelID: chRU, Username: "ru_news", Title: "Новости", StartedAt: tmin(1), FinishedAt: tmin(2)}, tmin(2), "s1"),
		events.New(events.ProducerIngest, &events.ChannelSynced{ChannelID: chEN, Username: "en_news", Title: "News", StartedAt: tmin(1), FinishedAt: tmin(2)}, tmin(2), "s2"),
		events.New(events.ProducerIngest, &events.ChannelFailed{ChannelID: chEN, Code: "FLOOD_WAIT", Reason: "wait 30s", At: tmin(3)}, tmin(3), "f"))
	add(events.New(events.ProducerTrends, &events.TrendDetected{Tag: "go", Window: "1h", WindowStart: tmin(0), WindowEnd: tmin(60), Count: 3,
		Channels: []events.ChannelID{chRU, chEN}, Baseline: 0.1, Score: 4, Posts: []string{postRelease.Key()}}, tmin(61), "t1"),
		events.New(events.ProducerTrends, &events.TrendDetected{Tag: "погода", Window: "24h", WindowStart: tmin(0), WindowEnd: tmin(120), Count: 5,
			Channels: []events.ChannelID{chRU}, Baseline: 0.1, Score: 2, Posts: []string{postWeather.Key()}}, tmin(121), "t2"))
	return evs
}

func keys(hits []postgres.Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.Key()
	}
	return out
}

func TestSearch(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	// Every batching gives the same documents; the search runs on the one applied fact by fact
	// (each part of a post's document arrives in a batch of its own).
	checkBatchIndependent(t, pool, facts(searchCorpus()...))
	const live = "b1"
	search := func(t *testing.T, q postgres.Query) []postgres.Hit {
		t.Helper()
		hits, err := postgres.Search(ctx, pool, live, q)
		if err != nil {
			t.Fatalf("Search(%+v): %v", q, err)
		}
		return hits
	}

	tests := []struct {
		name  string
		q     postgres.Query
		want  []events.PostRef // exactly these, in this order
		marks []string         // highlighted words of the first hit's excerpt
	}{
		{name: "russian inflected word finds the stem", q: postgres.Query{Text: "релизы"}, want: []events.PostRef{postRelease}, marks: []string{"релиз"}},
		{name: "russian word in another case", q: postgres.Query{Text: "компилятором"}, want: []events.PostRef{postRelease}, marks: []string{"компилятора"}},
		{name: "upper case query and text fold", q: postgres.Query{Text: "ВЫШЕЛ ИТЕРАТОРЫ"}, want: []events.PostRef{postRelease}, marks: []string{"Вышел", "итераторами"}},
		{name: "english words stemmed", q: postgres.Query{Text: "release compilers"}, want: []events.PostRef{postEnglish}, marks: []string{"releases", "compiler"}},
		{name: "ocr text of an image", q: postgres.Query{Text: "распродажа билетов"}, want: []events.PostRef{postOCR}, marks: []string{"РАСПРОДАЖА", "БИЛЕТОВ"}},
		{name: "title of a linked page", q: postgres.Query{Text: "quantum"}, want: []events.PostRef{postPage}, marks: []string{"Quantum"}},
		{name: "a tag is searchable", q: postgres.Query{Text: "погода"}, want: []events.PostRef{postWeather}},
		{name: "or between words, text ranked above a page title", q: postgres.Query{Text: "дожди or quantum"}, want: []events.PostRef{postWeather, postPage}},
		{name: "excluded word", q: postgres.Query{Text: "go -итераторы"}, want: []events.PostRef{postEnglish}},
		{name: "deleted post is not found", q: postgres.Query{Text: "отменили"}},
		{name: "only stop words match nothing", q: postgres.Query{Text: "the"}},
		{name: "no text lists newest first", q: postgres.Query{}, want: []events.PostRef{postPage, postOCR, postEnglish, postWeather, postRelease}},
		{name: "channel id", q: postgres.Query{ChannelID: chEN}, want: []events.PostRef{postOCR, postEnglish}},
		{name: "channel username", q: postgres.Query{ChannelUsername: "@RU_news"}, want: []events.PostRef{postPage, postWeather, postRelease}},
		{name: "tag", q: postgres.Query{Tags: []string{"#Go"}}, want: []events.PostRef{postEnglish, postRelease}},
		{name: "every tag", q: postgres.Query{Tags: []string{"go", "релиз"}}, want: []events.PostRef{postRelease}},
		{name: "topic", q: postgres.Query{Topic: "weather"}, want: []events.PostRef{postWeather}},
		{name: "since", q: postgres.Query{Since: tmin(3 * 24 * 60)}, want: []events.PostRef{postPage, postOCR, postEnglish}},
		{name: "until", q: postgres.Query{Until: tmin(3 * 24 * 60)}, want: []events.PostRef{postWeather, postRelease}},
		{name: "since and until", q: postgres.Query{Since: tmin(2 * 24 * 60), Until: tmin(4 * 24 * 60)}, want: []events.PostRef{postEnglish, postWeather}},
		{name: "text with a filter", q: postgres.Query{Text: "go", ChannelID: chRU}, want: []events.PostRef{postRelease}},
		{name: "text with a topic", q: postgres.Query{Text: "go", Topic: "programming", Until: tmin(2 * 24 * 60)}, want: []events.PostRef{postRelease}},
		{name: "limit", q: postgres.Query{Limit: 2}, want: []events.PostRef{postPage, postOCR}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits := search(t, tc.q)
			var want []string
			for _, r := range tc.want {
				want = append(want, r.Key())
			}
			if got := keys(hits); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("hits = %v, want %v", got, want)
			}
			if len(hits) == 0 {
				return
			}
			h := hits[0]
			if h.Tags == nil || h.Topics == nil || h.Highlights == nil || h.Date.IsZero() || h.ChannelTitle == "" || h.ChannelUsername == "" {
				t.Errorf("hit misses fields: %+v", h)
			}
			if tc.q.Text != "" && h.Score <= 0 {
				t.Errorf("score %v for a text match", h.Score)
			}
			var marked []string
			rs := []rune(h.Excerpt)
			for _, s := range h.Highlights {
				marked = append(marked, string(rs[s.Start:s.End]))
			}
			for _, w := range tc.marks {
				if !slices.Contains(marked, w) {
					t.Errorf("excerpt %q marks %q, want %q among them", h.Excerpt, marked, w)
				}
			}
		})
	}

	t.Run("hit fields", func(t *testing.T) {
		h := search(t, postgres.Query{Text: "релиз"})[0]
		if h.ChannelTitle != "Новости" || h.ChannelUsername != "ru_news" || h.Config != "russian" ||
			strings.Join(h.Tags, ",") != "go,релиз" || strings.Join(h.Topics, ",") != "programming" || !h.Date.Equal(tmin(24*60)) {
			t.Errorf("hit = %+v", h)
		}
		if got := h.Marked("[", "]", nil); !strings.Contains(got, "новый [релиз] компилятора") {
			t.Errorf("marked excerpt = %q", got)
		}
		en := search(t, postgres.Query{Text: "compiler"})[0]
		if en.Config != "english" {
			t.Errorf("english post config = %q", en.Config)
		}
	})

	t.Run("ranked by score", func(t *testing.T) {
		hits := search(t, postgres.Query{Text: "go"})
		if got := keys(hits); len(got) != 2 || hits[0].Score < hits[1].Score {
			t.Errorf("hits %v scores %v, %v", got, hits[0].Score, hits[len(hits)-1].Score)
		}
	})

	t.Run("bad queries", func(t *testing.T) {
		for _, q := range []postgres.Query{{Limit: -1}, {Limit: postgres.MaxLimit + 1}, {Since: tmin(5), Until: tmin(5)}, {ChannelID: -100}} {
			if _, err := postgres.Search(ctx, pool, live, q); !errors.Is(err, postgres.ErrInvalidQuery) {
				t.Errorf("Search(%+v) = %v, want ErrInvalidQuery", q, err)
			}
		}
		if _, err := postgres.Search(ctx, pool, `live"; DROP`, postgres.Query{}); err == nil {
			t.Error("a bad schema name was accepted")
		}
	})

	t.Run("lookup", func(t *testing.T) {
		hits, err := postgres.Lookup(ctx, pool, live, []events.PostRef{postEnglish, {ChannelID: 1, MessageID: 1}, postDeleted, postRelease})
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(hits); strings.Join(got, " ") != postEnglish.Key()+" "+postRelease.Key() {
			t.Fatalf("lookup = %v", got)
		}
		if hits[1].Text == "" || len(hits[1].Tags) != 2 || hits[1].ChannelUsername != "ru_news" {
			t.Errorf("lookup hit = %+v", hits[1])
		}
	})

	t.Run("channels", func(t *testing.T) {
		chans, err := postgres.Channels(ctx, pool, live)
		if err != nil {
			t.Fatal(err)
		}
		if len(chans) != 2 {
			t.Fatalf("channels = %+v", chans)
		}
		byID := map[events.ChannelID]postgres.Channel{}
		for _, c := range chans {
			byID[c.ID] = c
		}
		ru, en := byID[chRU], byID[chEN]
		if ru.Title != "Новости" || ru.Posts != 3 || ru.Failing || !ru.LastSyncedAt.Equal(tmin(2)) || !ru.LastPostAt.Equal(tmin(5*24*60)) {
			t.Errorf("ru channel = %+v", ru)
		}
		if !en.Failing || en.LastErrorCode != "FLOOD_WAIT" || en.LastError != "wait 30s" || en.Posts != 2 {
			t.Errorf("en channel = %+v", en)
		}
	})

	t.Run("trends", func(t *testing.T) {
		all, err := postgres.Trends(ctx, pool, live, postgres.TrendQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 || all[0].Tag != "погода" || all[1].Tag != "go" || all[1].Count != 3 || len(all[1].Channels) != 2 {
			t.Errorf("trends = %+v", all)
		}
		one, err := postgres.Trends(ctx, pool, live, postgres.TrendQuery{Window: "1h", Since: tmin(30)})
		if err != nil || len(one) != 1 || one[0].Tag != "go" {
			t.Errorf("1h trends = %+v, %v", one, err)
		}
		none, err := postgres.Trends(ctx, pool, live, postgres.TrendQuery{Since: tmin(200)})
		if err != nil || len(none) != 0 {
			t.Errorf("trends after their windows = %+v, %v", none, err)
		}
	})

	t.Run("tags", func(t *testing.T) {
		tags, err := postgres.Tags(ctx, pool, live, postgres.TagQuery{})
		if err != nil {
			t.Fatal(err)
		}
		// The deleted post's релиз does not count.
		want := map[string]int64{"go": 2, "погода": 1, "релиз": 1}
		if len(tags) != len(want) || tags[0].Tag != "go" || tags[0].Channels != 2 {
			t.Fatalf("tags = %+v", tags)
		}
		for _, tc := range tags {
			if want[tc.Tag] != tc.Posts {
				t.Errorf("tag %s: %d posts, want %d", tc.Tag, tc.Posts, want[tc.Tag])
			}
		}
		ru, err := postgres.Tags(ctx, pool, live, postgres.TagQuery{ChannelID: chEN, Since: time.Time{}})
		if err != nil || len(ru) != 1 || ru[0].Tag != "go" {
			t.Errorf("tags of the English channel = %+v, %v", ru, err)
		}
		pre, err := postgres.Tags(ctx, pool, live, postgres.TagQuery{Prefix: "ре"})
		if err != nil || len(pre) != 1 || pre[0].Tag != "релиз" {
			t.Errorf("tags by prefix = %+v, %v", pre, err)
		}
	})
}

// TestRebuildCoversDerivedDetails rebuilds a live model holding every derived field and the
// search documents through a bulk-mode shadow: the swapped-in schema equals the live one
// table by table (what `tgflow projections verify` compares), its deferred GIN index is
// built, and Search answers from it.
func TestRebuildCoversDerivedDetails(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	fs := facts(append(fullFacts(), searchCorpus()...)...)
	live := newProjection(t, pool, "tgflow")
	apply(t, live, fs, 1)
	want := snapshot(t, live)
	for _, table := range []string{"post_search", "post_vision", "post_pages", "albums", "trends", "post_embeddings"} {
		if len(want[table]) == 0 {
			t.Fatalf("live model has no %s rows: the rebuild would compare nothing", table)
		}
	}
	sh, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, sh, fs, len(fs))
	assertSame(t, want, snapshot(t, sh))
	if err := live.Swap(ctx, sh); err != nil {
		t.Fatal(err)
	}
	assertSame(t, want, snapshot(t, live))
	if idx := strings.Join(indexes(t, pool, "tgflow"), "\n"); !strings.Contains(idx, "post_search_document") || !strings.Contains(idx, "post_vision_dup") {
		t.Errorf("indexes after the swap = %v, want the deferred ones built", idx)
	}
	hits, err := postgres.Search(ctx, pool, "tgflow", postgres.Query{Text: "распродажа"})
	if err != nil || len(hits) != 2 {
		// The OCR post of the corpus and the fully derived post, whose image says the same.
		t.Fatalf("search after the swap = %v, %v", keys(hits), err)
	}
}

func TestExcerptWindow(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	ref := events.PostRef{ChannelID: 3, MessageID: 3}
	long := strings.Repeat("Вступление без нужного слова, ", 20) + "и вот\tнаконец   ЖИРАФ  появился. " + strings.Repeat("Хвост текста. ", 40)
	p := newProjection(t, pool, "live")
	apply(t, p, facts(parsed(ref, long, 0, 0)), 1)
	hits, err := postgres.Search(ctx, pool, "live", postgres.Query{Text: "жирафы"})
	if err != nil || len(hits) != 1 {
		t.Fatalf("search = %v, %v", hits, err)
	}
	h := hits[0]
	rs := []rune(h.Excerpt)
	if !strings.HasPrefix(h.Excerpt, "…") || !strings.HasSuffix(h.Excerpt, "…") || len(rs) > postgres.ExcerptRunes+2 {
		t.Errorf("excerpt %q: want a window cut on both sides, at most %d runes", h.Excerpt, postgres.ExcerptRunes+2)
	}
	if len(h.Highlights) != 1 || string(rs[h.Highlights[0].Start:h.Highlights[0].End]) != "ЖИРАФ" {
		t.Fatalf("highlights %v of %q, want the original-case word", h.Highlights, h.Excerpt)
	}
	if !strings.Contains(h.Excerpt, "и вот наконец ЖИРАФ появился.") {
		t.Errorf("excerpt %q: white space not collapsed", h.Excerpt)
	}
	if got := h.Marked("<b>", "</b>", strings.ToUpper); !strings.Contains(got, "НАКОНЕЦ <b>ЖИРАФ</b> ПОЯВИЛСЯ") {
		t.Errorf("marked = %q", got)
	}
	// Without a text the excerpt is the start of the post, nothing highlighted.
	all, err := postgres.Search(ctx, pool, "live", postgres.Query{})
	if err != nil || len(all) != 1 || !strings.HasPrefix(all[0].Excerpt, "Вступление") || len(all[0].Highlights) != 0 {
		t.Errorf("listing = %+v, %v", all, err)
	}
}

// TestSearchFoldMatchesSQL: the projection folds documents and chooses their configuration
// in Go, Search folds queries and headlines with the SQL functions; the two must agree.
func TestSearchFoldMatchesSQL(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	newProjection(t, pool, "live")
	var every strings.Builder
	for r := rune(0); r < 0x530; r++ { // ASCII, Latin-1, Latin Extended, Greek, Cyrillic
		if r != 0 {
			every.WriteRune(r)
		}
	}
	samples := []string{
		every.String(), "", "ab", "abc", "Ёлка и ЁЖ", "Привет, World!", "Go 1.26: релиз", "hello world with one слово",
		"日本語のテキスト", "ІЇЄҐ Україна", "release news про релиз", "emoji 🎉 ТЕКСТ", "a\x01b\x02c", "Mostly English text about a релиз",
	}
	for _, s := range samples {
		var norm, config string
		err := pool.QueryRow(ctx, `SELECT live.search_norm($1), live.search_config($1)::text`, s).Scan(&norm, &config)
		if err != nil {
			t.Fatal(err)
		}
		if got := postgres.SearchFold(s); got != norm {
			g, w := []rune(got), []rune(norm)
			for i := range min(len(g), len(w)) {
				if g[i] != w[i] {
					t.Errorf("fold of %q (code point %d of %q): Go %q, SQL %q", string([]rune(s)[i]), i, s[:min(len(s), 40)], g[i], w[i])
					break
				}
			}
			if len(g) != len(w) {
				t.Errorf("fold of %q: Go gives %d code points, SQL %d", s[:min(len(s), 40)], len(g), len(w))
			}
		}
		if got := postgres.SearchConfig(s); got != config {
			t.Errorf("config of %q: Go %q, SQL %q", s, got, config)
		}
	}
}
