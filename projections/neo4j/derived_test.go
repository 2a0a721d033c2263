package neo4j_test

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
)

// Builders of derived facts for the tests of this file.

// taggedScored is posts.tagged with scored tags; the topics a (chat) tagger may put there are
// not the read model's: fromTagger topics are set to tell that they are ignored.
func taggedScored(ch events.ChannelID, msg int64, rev events.Rev, tags []string, fromTagger ...string) events.Event {
	var ts []events.Tag
	for i, n := range tags {
		ts = append(ts, events.Tag{Name: n, Score: 0.9 - 0.1*float64(i)})
	}
	return events.New(events.ProducerTagger, &events.PostTagged{PostRef: events.PostRef{ChannelID: ch, MessageID: msg}, Rev: rev,
		Trigger: events.TriggerInitial, Tags: ts, Topics: fromTagger, PostedAt: t0, Provider: "keyword"}, t0, fmt.Sprint(rev, tags, fromTagger))
}

// embeddedTopics is posts.embedded of rev carrying the post's topics.
func embeddedTopics(ch events.ChannelID, msg int64, rev events.Rev, topics ...string) events.Event {
	return events.New(events.ProducerEmbedder, &events.PostEmbedded{PostRef: events.PostRef{ChannelID: ch, MessageID: msg}, Rev: rev,
		Vector: []float32{1, 0, 0, 0}, Provider: "hashing", Model: "fh-4", EmbedderVersion: "2", Dim: 4, Lexical: true,
		Topics: topics, TopicsSource: events.TopicsFromEmbedding + "hashing-fh-4-2-4"}, t0, fmt.Sprint("emb", rev, topics))
}

// img is one analysed image: sha, labels, and optionally the earlier image it nearly
// duplicates (of post dupOf) at distance dist.
type img struct {
	sha    string
	labels []string
	dupOf  string
	dupRef events.PostRef
	dist   int
}

func vision(ch events.ChannelID, msg int64, rev events.Rev, analyzedMin int, imgs ...img) events.Event {
	var items []events.VisionItem
	for _, im := range imgs {
		it := events.VisionItem{MediaSHA256: im.sha, Labels: im.labels, Description: "picture " + im.sha[:4], PHash: "f0f0f0f0f0f0f0f0",
			DHash: "0f0f0f0f0f0f0f0f", Width: 640, Height: 480, Format: "jpeg", Colors: []string{"#ff0000"}, OCRText: "text of " + im.sha[:4], OCRConfidence: 0.93}
		if im.dupOf != "" {
			it.NearDuplicateOf = &events.NearDuplicate{PostRef: im.dupRef, MediaSHA256: im.dupOf, Distance: im.dist}
		}
		items = append(items, it)
	}
	at := t0.Add(time.Duration(analyzedMin) * time.Minute)
	return events.New(events.ProducerVision, &events.PostVisionAnalyzed{PostRef: events.PostRef{ChannelID: ch, MessageID: msg}, Rev: rev,
		Items: items, Provider: "local", Model: "tesseract", AnalyzedAt: at}, at, fmt.Sprint(rev, analyzedMin, msg))
}

func sha(c string) string { return strings.Repeat(c, 64)[:64] }

func pref(ch events.ChannelID, msg int64) events.PostRef {
	return events.PostRef{ChannelID: ch, MessageID: msg}
}

// targets returns the sorted end refs of the edges of typ leaving ref.
func targets(t *testing.T, snap projections.Snapshot, typ, ref string) []string {
	t.Helper()
	var out []string
	for _, e := range edgesFrom(t, snap, typ, ref) {
		out = append(out, e.to)
	}
	slices.Sort(out)
	return out
}

func wantTargets(t *testing.T, snap projections.Snapshot, typ, ref string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := targets(t, snap, typ, ref); !slices.Equal(got, want) {
		t.Errorf("%s -%s-> %v, want %v", ref, typ, got, want)
	}
}

// checkBatches applies facts into a fresh graph in batches of 1, 2, 3 and all at once,
// requires the same snapshot each time and checks the first.
func checkBatches(t *testing.T, facts []projections.Fact, check func(t *testing.T, snap projections.Snapshot)) projections.Snapshot {
	t.Helper()
	d := newDriver(t)
	var want projections.Snapshot
	for _, size := range []int{1, 2, 3, len(facts)} {
		p := newProjection(t, d)
		apply(t, p, facts, size)
		got := snapshot(t, p)
		if want == nil {
			want = got
			check(t, got)
			continue
		}
		assertSame(t, want, got)
	}
	return want
}

const chX, chY events.ChannelID = 61, 62

// derivedLog is a log touching every derived fact: tags with topics, pages, images with
// labels and a near-duplicate, an album (parsed under an export's synthetic id and a real
// one, then assembled), a trend with sample posts.
func derivedLog() []projections.Fact {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	albumParsed := &events.AlbumParsed{ChannelID: chX, GroupedID: 900, Items: []events.AlbumItem{{MessageID: 3, MediaSHA256: sha("c")}, {MessageID: 4, MediaSHA256: sha("d")}},
		Caption: "Two photos", PostedAt: at(2)}
	exportParsed := &events.AlbumParsed{ChannelID: chX, GroupedID: -5, Items: []events.AlbumItem{{MessageID: 3}, {MessageID: 4}}, Caption: "Two photos", PostedAt: at(2), Inferred: true}
	assembled := &events.AlbumAssembled{ChannelID: chX, GroupedID: 900, MessageIDs: []int64{3, 4}, Outcome: events.AlbumDeadline, Missing: []int64{4},
		Summary: "Two photos: a cat", Labels: []string{"cat", "sofa", "cat"}, At: at(12), GroupedIDs: []int64{-5, 900}, Version: "v1", ItemCount: 2,
		CoverMessageID: 3, Caption: "Two photos", PostedAt: at(2), Descriptions: []string{"a cat on a sofa"}, OCRText: "meow"}
	trend := &events.TrendDetected{Tag: "go", Window: "1h", WindowStart: at(0), WindowEnd: at(60), Count: 3, Channels: []events.ChannelID{chX, chY},
		Baseline: 0.2, Score: 7.5, Posts: []string{pref(chX, 1).Key(), pref(chY, 7).Key(), "not-a-key"}, Expected: 0.4, Method: "poisson"}
	return seq(
		parsed(chX, 1, 0, "Go 1.26 released"),
		parsed(chY, 2, 0, "Go release notes"),
		taggedScored(chX, 1, events.Rev{}, []string{"go", "release"}, "FromTagger"),
		taggedScored(chY, 2, events.Rev{}, []string{"go"}),
		embeddedTopics(chY, 2, events.Rev{}, "Programming"),
		enriched(chX, 1, events.Rev{}, events.Page{URL: "https://go.dev/blog/go1.26", Domain: "go.dev", Title: "Go 1.26", Status: 200, FetchedAt: at(1),
			Site: "The Go Blog", Byline: "The Go Team", Excerpt: "Today the Go team released Go 1.26.", Text: "full text stays out of the graph", WordCount: 812},
			events.Page{URL: "http://10.0.0.1/x", Domain: "10.0.0.1", Reason: "ssrf", Error: "refused: private address"}),
		events.New(events.ProducerEmbedder, &events.PostEmbedded{PostRef: pref(chX, 1), Vector: []float32{1, 0, 0, 0}, Provider: "hashing", Model: "fh-4",
			EmbedderVersion: "2", Dim: 4, Lexical: true, Topics: []string{"Technology", "Programming"}, TopicsSource: events.TopicsFromEmbedding + "hashing-fh-4-2-4"}, at(3)),
		vision(chX, 1, events.Rev{}, 3, img{sha: sha("a"), labels: []string{"gopher", "logo"}}),
		vision(chY, 2, events.Rev{}, 4, img{sha: sha("b"), labels: []string{"gopher"}, dupOf: sha("a"), dupRef: pref(chX, 1), dist: 4},
			img{sha: sha("a"), labels: []string{"gopher", "logo"}, dupOf: sha("a"), dupRef: pref(chX, 1)}),
		events.New(events.ProducerIngest, exportParsed, at(2), "export"),
		events.New(events.ProducerIngest, albumParsed, at(2)),
		events.New(events.ProducerAlbums, assembled, at(12)),
		events.New(events.ProducerTrends, trend, at(13)),
	)
}

func TestDerivedFactsInTheGraph(t *testing.T) {
	p1, p2 := postRef(pref(chX, 1)), postRef(pref(chY, 2))
	imgA, imgB := "Image:"+sha("a"), "Image:"+sha("b")
	checkBatches(t, derivedLog(), func(t *testing.T, snap projections.Snapshot) {
		t.Run("tags and topics", func(t *testing.T) {
			wantTargets(t, snap, "TAGGED", p1, "Tag:go", "Tag:release")
			wantTargets(t, snap, "ABOUT", p1, "Topic:Technology", "Topic:Programming")
			wantTargets(t, snap, "ABOUT", p2, "Topic:Programming")
			for _, e := range edgesFrom(t, snap, "ABOUT", p1) {
				pos := map[string]float64{"Topic:Technology": 0, "Topic:Programming": 1}[e.to]
				field(t, "ABOUT", e.props, "position", pos)
				field(t, "ABOUT", e.props, "version", 0)
				field(t, "ABOUT", e.props, "revision", 0)
			}
			one(t, snap, "Topic", "Topic:Technology")
			if _, ok := nodes(t, snap, "Topic")["Topic:FromTagger"]; ok {
				t.Errorf("posts.tagged's topics made a Topic node")
			}
			field(t, "post", one(t, snap, "Post", p1), "topics", []string{"Technology", "Programming"})
			field(t, "post", one(t, snap, "Post", p1), "topics_source", events.TopicsFromEmbedding+"hashing-fh-4-2-4")
		})
		t.Run("pages on domains", func(t *testing.T) {
			wantTargets(t, snap, "LINKS_TO", p1, "Page:https://go.dev/blog/go1.26", "Page:http://10.0.0.1/x")
			wantTargets(t, snap, "ON", "Page:https://go.dev/blog/go1.26", "Domain:go.dev")
			pg := one(t, snap, "Page", "Page:https://go.dev/blog/go1.26")
			for k, v := range map[string]any{"site": "The Go Blog", "byline": "The Go Team", "excerpt": "Today the Go team released Go 1.26.",
				"word_count": 812, "reason": nil, "text": nil} {
				field(t, "page", pg, k, v)
			}
			bad := one(t, snap, "Page", "Page:http://10.0.0.1/x")
			field(t, "refused page", bad, "reason", "ssrf")
			field(t, "refused page", bad, "error", "refused: private address")
		})
		t.Run("post properties of the derived parts", func(t *testing.T) {
			p := one(t, snap, "Post", p1)
			for k, v := range map[string]any{"tags_provider": "keyword", "tags_model": nil, "topics": []string{"Technology", "Programming"},
				"embedding_provider": "hashing", "embedding_model": "fh-4", "embedding_dim": 4, "embedding_embedder_version": "2", "embedding_lexical": true,
				"vision_provider": "local", "vision_model": "tesseract", "vision_items": 1, "vision_labels": []string{"gopher", "logo"}, "vision_analyzed_at": at(3)} {
				field(t, "post", p, k, v)
			}
		})
		t.Run("images, labels, near duplicates", func(t *testing.T) {
			wantTargets(t, snap, "HAS_IMAGE", p1, imgA)
			wantTargets(t, snap, "HAS_IMAGE", p2, imgA, imgB)
			for _, e := range edgesFrom(t, snap, "HAS_IMAGE", p2) {
				field(t, "HAS_IMAGE", e.props, "position", map[string]int{imgB: 0, imgA: 1}[e.to])
				field(t, "HAS_IMAGE", e.props, "revision", 0)
			}
			a := one(t, snap, "Image", imgA)
			field(t, "image a", a, "sha256", sha("a"))
			field(t, "image a", a, "width", 640)
			field(t, "image a", a, "height", 480)
			field(t, "image a", a, "format", "jpeg")
			field(t, "image a", a, "phash", "f0f0f0f0f0f0f0f0")
			field(t, "image a", a, "dhash", "0f0f0f0f0f0f0f0f")
			field(t, "image a", a, "colors", []string{"#ff0000"})
			field(t, "image a", a, "ocr_text", "text of aaaa")
			field(t, "image a", a, "ocr_confidence", 0.93)
			field(t, "image a", a, "description", "picture aaaa")
			field(t, "image a", a, "provider", "local")
			field(t, "image a", a, "model", "tesseract")
			// The newest analysis of image a is the one of post 2 (minute 4).
			field(t, "image a", a, "analyzed_at", at(4))
			field(t, "image a", a, "error", nil)
			wantTargets(t, snap, "LABELED", imgA, "Label:gopher", "Label:logo")
			wantTargets(t, snap, "LABELED", imgB, "Label:gopher")
			nd := edgesFrom(t, snap, "NEAR_DUPLICATE", imgB)
			if len(nd) != 1 || nd[0].to != imgA {
				t.Fatalf("NEAR_DUPLICATE from b: %v, want one to a", nd)
			}
			field(t, "NEAR_DUPLICATE", nd[0].props, "distance", 4)
			if self := edgesFrom(t, snap, "NEAR_DUPLICATE", imgA); len(self) != 0 {
				t.Errorf("a picture linked to itself: %v", self)
			}
		})
		t.Run("album summary", func(t *testing.T) {
			ref := "Album:" + events.AlbumKey(chX, 900)
			a := one(t, snap, "Album", ref)
			for k, v := range map[string]any{
				"outcome": events.AlbumDeadline, "summary": "Two photos: a cat", "labels": []string{"cat", "sofa"}, "missing": []int64{4},
				"grouped_ids": []int64{-5, 900}, "summary_version": "v1", "item_count": 2, "cover_message_id": 3, "caption": "Two photos",
				"posted_at": at(2), "descriptions": []string{"a cat on a sofa"}, "ocr_text": "meow", "assembled_at": at(12), "inferred": false,
			} {
				field(t, ref, a, k, v)
			}
			wantTargets(t, snap, "LABELED", ref, "Label:cat", "Label:sofa")
			var items []string
			for _, e := range edges(t, snap, "IN_ALBUM") {
				if e.to == ref {
					items = append(items, e.from)
				}
			}
			slices.Sort(items)
			if want := []string{postRef(pref(chX, 3)), postRef(pref(chX, 4))}; !slices.Equal(items, want) {
				t.Errorf("IN_ALBUM %v, want %v", items, want)
			}
			export := "Album:" + events.AlbumKey(chX, -5)
			field(t, export, one(t, snap, "Album", export), "inferred", true)
			wantTargets(t, snap, "SAME_AS", export, ref)
		})
		t.Run("trend with tag and sample posts", func(t *testing.T) {
			ref := "Trend:trend/1h/go/" + fmt.Sprint(t0.Add(time.Hour).Unix())
			tr := one(t, snap, "Trend", ref)
			field(t, ref, tr, "expected", 0.4)
			field(t, ref, tr, "method", "poisson")
			field(t, ref, tr, "score", 7.5)
			wantTargets(t, snap, "OF", ref, "Tag:go")
			wantTargets(t, snap, "SAMPLE", ref, p1, postRef(pref(chY, 7)))
			field(t, "sample stub", one(t, snap, "Post", postRef(pref(chY, 7))), "stub", true)
		})
	})
}

// TestNewestRevisionWins: a newer revision replaces a post's TAGGED, ABOUT and HAS_IMAGE
// edges as a whole; a late older revision changes nothing.
func TestNewestRevisionWins(t *testing.T) {
	p1 := postRef(pref(chX, 1))
	base := []events.Event{
		parsed(chX, 1, 0, "text"),
		taggedScored(chX, 1, events.Rev{}, []string{"a", "b"}),
		embeddedTopics(chX, 1, events.Rev{}, "T1", "T2"),
		vision(chX, 1, events.Rev{}, 1, img{sha: sha("1"), labels: []string{"x"}}, img{sha: sha("2")}),
		taggedScored(chX, 1, events.Rev{Revision: 1}, []string{"c"}),
		embeddedTopics(chX, 1, events.Rev{Revision: 1}, "T3"),
		vision(chX, 1, events.Rev{Revision: 1}, 2, img{sha: sha("3"), labels: []string{"y"}}),
	}
	late := []events.Event{
		taggedScored(chX, 1, events.Rev{}, []string{"stale"}),
		embeddedTopics(chX, 1, events.Rev{}, "StaleTopic"),
		vision(chX, 1, events.Rev{}, 3, img{sha: sha("9"), labels: []string{"stale-label"}}),
	}
	check := func(t *testing.T, snap projections.Snapshot) {
		wantTargets(t, snap, "TAGGED", p1, "Tag:c")
		wantTargets(t, snap, "ABOUT", p1, "Topic:T3")
		wantTargets(t, snap, "HAS_IMAGE", p1, "Image:"+sha("3"))
		for _, typ := range []string{"TAGGED", "ABOUT", "HAS_IMAGE"} {
			for _, e := range edgesFrom(t, snap, typ, p1) {
				field(t, typ, e.props, "revision", 1)
			}
		}
		p := one(t, snap, "Post", p1)
		field(t, "post", p, "tags_revision", 1)
		field(t, "post", p, "topics", []string{"T3"})
		field(t, "post", p, "embedding_revision", 1)
		field(t, "post", p, "vision_revision", 1)
		field(t, "post", p, "vision_labels", []string{"y"})
		// Vocabulary of the replaced revision stays; the late revision created nothing.
		one(t, snap, "Topic", "Topic:T1")
		one(t, snap, "Image", "Image:"+sha("1"))
		for label, ref := range map[string]string{"Tag": "Tag:stale", "Topic": "Topic:StaleTopic", "Image": "Image:" + sha("9"), "Label": "Label:stale-label"} {
			if _, ok := nodes(t, snap, label)[ref]; ok {
				t.Errorf("the late old revision created %s", ref)
			}
		}
	}
	withoutLate := checkBatches(t, seq(base...), check)
	withLate := checkBatches(t, seq(append(slices.Clone(base), late...)...), check)
	// Only the checkpoint moved past the late facts.
	if diff := sections(withoutLate.Digest().Diff(withLate.Digest())); !slices.Equal(diff, []string{"Checkpoint"}) {
		t.Errorf("the late old revisions changed %v", diff)
	}
}

// TestImageShowsItsNewestAnalysis: an image shared by two posts shows the analysis with the
// later analysis time, whichever arrives last; its LABELED edges are that analysis's.
func TestImageShowsItsNewestAnalysis(t *testing.T) {
	imgA := "Image:" + sha("a")
	facts := seq(
		parsed(chX, 1, 0, "one"), parsed(chY, 2, 0, "two"),
		vision(chX, 1, events.Rev{}, 10, img{sha: sha("a"), labels: []string{"new1", "new2"}}),
		vision(chY, 2, events.Rev{}, 5, img{sha: sha("a"), labels: []string{"old"}}),
		// A near-duplicate target not analysed itself: a bare Image node.
		vision(chY, 3, events.Rev{}, 6, img{sha: sha("b"), dupOf: sha("e"), dupRef: pref(chY, 1), dist: 2}),
		vision(chY, 3, events.Rev{Revision: 1}, 7, img{sha: sha("b"), dupOf: sha("e"), dupRef: pref(chY, 1), dist: 3}),
	)
	checkBatches(t, facts, func(t *testing.T, snap projections.Snapshot) {
		field(t, "image a", one(t, snap, "Image", imgA), "analyzed_at", at(10))
		wantTargets(t, snap, "LABELED", imgA, "Label:new1", "Label:new2")
		one(t, snap, "Label", "Label:old") // vocabulary of an accepted fact
		wantTargets(t, snap, "HAS_IMAGE", postRef(pref(chY, 2)), imgA)
		e := one(t, snap, "Image", "Image:"+sha("e"))
		if len(e) != 1 {
			t.Errorf("near-duplicate target has %v, want only sha256", e)
		}
		nd := edgesFrom(t, snap, "NEAR_DUPLICATE", "Image:"+sha("b"))
		if len(nd) != 1 {
			t.Fatalf("NEAR_DUPLICATE %v, want one edge", nd)
		}
		field(t, "NEAR_DUPLICATE", nd[0].props, "distance", 3)
	})
}

// TestDeletionDropsDerivedEdges: a tombstone keeps no TAGGED, ABOUT, LINKS_TO or HAS_IMAGE
// edge; later derived facts about it change nothing; shared vocabulary stays.
func TestDeletionDropsDerivedEdges(t *testing.T) {
	p1 := postRef(pref(chX, 1))
	log := derivedLog()
	facts := seq(append(events_(log), deleted(chX, 1),
		taggedScored(chX, 1, events.Rev{Revision: 5}, []string{"after"}),
		embeddedTopics(chX, 1, events.Rev{Revision: 5}, "After"),
		vision(chX, 1, events.Rev{Revision: 5}, 50, img{sha: sha("f")}))...)
	checkBatches(t, facts, func(t *testing.T, snap projections.Snapshot) {
		for _, typ := range []string{"TAGGED", "ABOUT", "LINKS_TO", "HAS_IMAGE"} {
			if e := edgesFrom(t, snap, typ, p1); len(e) != 0 {
				t.Errorf("tombstone keeps %s %v", typ, e)
			}
		}
		p := one(t, snap, "Post", p1)
		field(t, "post", p, "deleted_at", at(60))
		for _, k := range []string{"topics", "tags_provider", "vision_labels", "vision_analyzed_at", "embedding_embedder_version", "embedding_lexical", "links_version"} {
			field(t, "post", p, k, nil)
		}
		// The other post's edges to the shared image and topic are untouched.
		wantTargets(t, snap, "HAS_IMAGE", postRef(pref(chY, 2)), "Image:"+sha("a"), "Image:"+sha("b"))
		wantTargets(t, snap, "ABOUT", postRef(pref(chY, 2)), "Topic:Programming")
		for label, ref := range map[string]string{"Tag": "Tag:after", "Topic": "Topic:After", "Image": "Image:" + sha("f")} {
			if _, ok := nodes(t, snap, label)[ref]; ok {
				t.Errorf("a derived fact after the deletion created %s", ref)
			}
		}
	})
}

// sections are the section names of a Digest.Diff ("<section>: …" each).
func sections(diff []string) []string {
	out := make([]string, 0, len(diff))
	for _, d := range diff {
		name, _, _ := strings.Cut(d, ":")
		out = append(out, name)
	}
	return out
}

func events_(facts []projections.Fact) []events.Event {
	out := make([]events.Event, len(facts))
	for i, f := range facts {
		out[i] = f.Event
	}
	return out
}

// TestDerivedRebuildAndBatchBoundaries: the derived log replayed through an in-place
// rebuild, and cut at random batch boundaries, gives the live graph; a change behind the
// projection's back to a new node or edge shows up in exactly its snapshot section.
func TestDerivedRebuildAndBatchBoundaries(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	facts := seq(append(events_(derivedLog()),
		taggedScored(chX, 1, events.Rev{Revision: 1}, []string{"go"}),
		embeddedTopics(chX, 1, events.Rev{Revision: 1}, "Programming"),
		vision(chX, 1, events.Rev{Revision: 1}, 20, img{sha: sha("a"), labels: []string{"gopher"}}),
		deleted(chY, 2))...)
	live := newProjection(t, d)
	apply(t, live, facts, 4)
	want := snapshot(t, live)
	for _, sec := range []string{"Topic", "Image", "Label", "ABOUT", "HAS_IMAGE", "LABELED", "NEAR_DUPLICATE", "SAME_AS", "SAMPLE"} {
		if len(want[sec]) == 0 {
			t.Errorf("snapshot section %s is empty", sec)
		}
	}

	shadow, err := live.Shadow(ctx)
	if err != nil {
		t.Fatalf("Shadow: %v", err)
	}
	apply(t, shadow, facts, 3)
	if err := live.Swap(ctx, shadow); err != nil {
		t.Fatalf("Swap: %v", err)
	}
	assertSame(t, want, snapshot(t, live))

	seed := uint64(time.Now().UnixNano())
	t.Logf("batch seed %d", seed)
	rng := rand.New(rand.NewPCG(11, seed))
	p := newProjection(t, d)
	for rest := facts; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(5))
		apply(t, p, rest[:n], n)
		rest = rest[n:]
	}
	assertSame(t, want, snapshot(t, p))

	drifts := []struct{ section, cypher string }{
		{"NEAR_DUPLICATE", `MATCH ()-[e:NEAR_DUPLICATE]->() SET e.distance = 63`},
		{"LABELED", `MATCH (:Image)-[e:LABELED]->() DELETE e`},
		{"Image", `MATCH (i:Image {sha256: $a}) SET i.ocr_text = 'drift'`},
		{"ABOUT", `MATCH ()-[e:ABOUT]->() DELETE e`},
		{"SAMPLE", `MATCH ()-[e:SAMPLE]->() DELETE e`},
	}
	for _, dr := range drifts {
		run(t, d, dr.cypher, map[string]any{"a": sha("a")})
		got := snapshot(t, p)
		if diff := sections(want.Digest().Diff(got.Digest())); !slices.Equal(diff, []string{dr.section}) {
			t.Errorf("after changing %s behind the projection, differing sections %v", dr.section, diff)
		}
		want = got
	}
}

// TestAlbumAndTrendFactsInLogOrder: an album's properties follow its facts in log order
// (an albums.parsed after the assembly overrides the caption, keeps the summary), its
// LABELED edges are its last assembly's; a trend's SAMPLE edges are its last fact's; an
// image whose object was missing is a node with the reason.
func TestAlbumAndTrendFactsInLogOrder(t *testing.T) {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	items := []events.AlbumItem{{MessageID: 3}, {MessageID: 4}}
	assembled := func(labels []string, caption string, min int) events.Event {
		return events.New(events.ProducerAlbums, &events.AlbumAssembled{ChannelID: chX, GroupedID: 900, MessageIDs: []int64{3, 4}, Outcome: events.AlbumComplete,
			Summary: "summary " + caption, Labels: labels, At: at(min), Caption: caption, ItemCount: 2}, at(min), fmt.Sprint(min))
	}
	trend := func(min int, posts ...string) events.Event {
		return events.New(events.ProducerTrends, &events.TrendDetected{Tag: "go", Window: "1h", WindowStart: at(0), WindowEnd: at(60), Count: len(posts),
			Channels: []events.ChannelID{chX}, Score: float64(min), Posts: posts}, at(min), fmt.Sprint(min))
	}
	missing := events.New(events.ProducerVision, &events.PostVisionAnalyzed{PostRef: pref(chX, 3), Items: []events.VisionItem{{MediaSHA256: sha("m"),
		Reason: "missing", Error: "object not found"}}, Provider: "local", AnalyzedAt: at(5)}, at(5))
	facts := seq(
		assembled([]string{"cat", "sofa"}, "first caption", 10),
		assembled([]string{"dog"}, "second caption", 11),
		events.New(events.ProducerIngest, &events.AlbumParsed{ChannelID: chX, GroupedID: 900, Items: items, Caption: "parsed caption", PostedAt: at(2)}, at(12)),
		trend(13, pref(chX, 1).Key(), pref(chX, 2).Key()),
		trend(14, pref(chX, 2).Key(), pref(chX, 5).Key()),
		missing,
	)
	checkBatches(t, facts, func(t *testing.T, snap projections.Snapshot) {
		ref := "Album:" + events.AlbumKey(chX, 900)
		a := one(t, snap, "Album", ref)
		field(t, ref, a, "caption", "parsed caption")
		field(t, ref, a, "summary", "summary second caption")
		field(t, ref, a, "labels", []string{"dog"})
		field(t, ref, a, "item_count", 2)
		wantTargets(t, snap, "LABELED", ref, "Label:dog")
		tr := "Trend:trend/1h/go/" + fmt.Sprint(at(60).Unix())
		field(t, tr, one(t, snap, "Trend", tr), "score", 14)
		wantTargets(t, snap, "SAMPLE", tr, postRef(pref(chX, 2)), postRef(pref(chX, 5)))
		m := one(t, snap, "Image", "Image:"+sha("m"))
		field(t, "missing image", m, "reason", "missing")
		field(t, "missing image", m, "error", "object not found")
		field(t, "missing image", m, "width", nil)
		wantTargets(t, snap, "HAS_IMAGE", postRef(pref(chX, 3)), "Image:"+sha("m"))
	})
}
