// Package projectiontest is the contract suite every projection passes, and the scripted
// sequence of facts it feeds them.
package projectiontest

import (
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
)

// Channels and posts of the script.
const (
	ChannelA events.ChannelID = 1001
	ChannelB events.ChannelID = 1002
)

// T0 is the script's base time.
var T0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// Script is a scripted log: a channel subscription, posts parsed with media, links, a
// forward, a reply and an album, an edit, vision, tags, enrichment and embeddings, a stale
// tagged fact arriving late, metrics, a deletion, album assembly, a trend, syncs, an
// unsubscription and a failed channel.
type Script struct {
	Facts []projections.Fact
	// Stale lists the sequences of facts that carry an older revision than one already
	// applied: a projection must ignore them.
	Stale []uint64
	// Deletion is the sequence of the posts.deleted fact.
	Deletion uint64
}

// Keys of interesting posts.
var (
	// PostEdited is parsed, tagged, then edited and re-tagged; ends with the edited text.
	PostEdited = events.PostRef{ChannelID: ChannelA, MessageID: 10}
	// PostDeleted is parsed, tagged, embedded, then deleted.
	PostDeleted = events.PostRef{ChannelID: ChannelA, MessageID: 11}
	// PostForward is in channel B, forwarded from PostEdited and replying to message 20.
	PostForward = events.PostRef{ChannelID: ChannelB, MessageID: 21}
	// PostReplied is message 20 of channel B.
	PostReplied = events.PostRef{ChannelID: ChannelB, MessageID: 20}
	// AlbumItems are messages 30, 31, 32 of channel A, grouped id 777.
	AlbumItems = []int64{30, 31, 32}
)

// AlbumGroupedID is the album's grouped id.
const AlbumGroupedID int64 = 777

// Embedding dimension of the script's vectors.
const Dim = 4

// The vector space of the script's vectors (with Dim): an OpenAI-compatible embeddings model
// "fh-4", which is what TGFLOW_EMBEDDER=openai, TGFLOW_OPENAI_EMBED_MODEL=fh-4 and
// TGFLOW_OPENAI_EMBED_DIM=4 configure, so that a projection that follows the configured
// embedder (Qdrant keeps one space per collection) keeps them.
const (
	EmbedProvider = "openai"
	EmbedModel    = "fh-4"
	EmbedVersion  = "1"
)

// NewScript builds the script. Sequences start at 1 and have no gaps.
func NewScript() Script {
	var s Script
	var seq uint64
	add := func(e events.Event) uint64 {
		seq++
		s.Facts = append(s.Facts, projections.Fact{Seq: seq, Event: e})
		return seq
	}
	at := func(min int) time.Time { return T0.Add(time.Duration(min) * time.Minute) }

	subA := events.New(events.ProducerCLI, &events.ChannelSubscribed{ChannelID: ChannelA, Username: "alpha_news", At: at(0)}, at(0))
	add(subA)
	add(events.New(events.ProducerCLI, &events.ChannelSubscribed{Username: "beta_digest", At: at(0)}, at(0)))

	photo := events.Media{Kind: events.MediaPhoto, MIME: "image/jpeg", Size: 2048, Width: 640, Height: 480,
		SHA256: "aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11", ObjectKey: "aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11"}
	p10 := &events.PostParsed{Post: events.Post{PostRef: PostEdited, ChannelUsername: "alpha_news", Date: at(1),
		Text: "Выборы и экономика: https://example.org/a #economy", Links: []string{"https://example.org/a"},
		Hashtags: []string{"economy"}, Views: 100, Reactions: map[string]int64{"👍": 3}, Media: []events.Media{photo}, Origin: "telegram",
		Entities: []events.Entity{{Type: "url", Offset: 20, Length: 21}, {Type: "hashtag", Offset: 42, Length: 8}}}}
	parsed10 := events.New(events.ProducerIngest, p10, at(1), "0")
	add(parsed10)
	p11 := &events.PostParsed{Post: events.Post{PostRef: PostDeleted, ChannelUsername: "alpha_news", Date: at(2),
		Text: "Short-lived post about markets", Views: 5, Origin: "telegram"}}
	parsed11 := events.New(events.ProducerIngest, p11, at(2), "0")
	add(parsed11)
	p20 := &events.PostParsed{Post: events.Post{PostRef: PostReplied, ChannelUsername: "beta_digest", Date: at(3),
		Text: "Digest: AI chips", Links: []string{"https://chips.example.com/x"}, Origin: "telegram"}}
	parsed20 := events.New(events.ProducerIngest, p20, at(3), "0")
	add(parsed20)
	p21 := &events.PostParsed{Post: events.Post{PostRef: PostForward, ChannelUsername: "beta_digest", Date: at(4),
		Text: "Forwarded: elections", Forward: &events.ForwardOrigin{ChannelID: ChannelA, MessageID: 10, Date: at(1)},
		ReplyTo: &events.ReplyTo{MessageID: 20}, Origin: "telegram"}}
	parsed21 := events.New(events.ProducerIngest, p21, at(4), "0")
	add(parsed21)
	var album []events.AlbumItem
	for i, id := range AlbumItems {
		sha := []string{"bb", "cc", "dd"}[i]
		m := events.Media{Kind: events.MediaPhoto, MIME: "image/jpeg", Size: 1000, SHA256: repeat(sha, 32), ObjectKey: repeat(sha, 32)}
		text := ""
		if i == 0 {
			text = "Album caption"
		}
		pp := &events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: ChannelA, MessageID: id}, ChannelUsername: "alpha_news",
			Date: at(5), Text: text, GroupedID: AlbumGroupedID, Media: []events.Media{m}, Origin: "telegram"}}
		add(events.New(events.ProducerIngest, pp, at(5), "0"))
		album = append(album, events.AlbumItem{MessageID: id, MediaKind: events.MediaPhoto, MediaSHA256: m.SHA256})
	}
	albumParsed := events.New(events.ProducerIngest, &events.AlbumParsed{ChannelID: ChannelA, GroupedID: AlbumGroupedID, Items: album, Caption: "Album caption", PostedAt: at(5)}, at(5))
	add(albumParsed)

	// Initial tagging of 10, 11, 20, 21.
	tag := func(in events.Event, ref events.PostRef, rev events.Rev, trigger string, text string, links []string, posted time.Time, tags ...string) events.Event {
		var ts []events.Tag
		for _, t := range tags {
			ts = append(ts, events.Tag{Name: t, Score: 0.9})
		}
		return events.Derive(in, events.ProducerTagger, &events.PostTagged{PostRef: ref, Rev: rev, Trigger: trigger, Tags: ts,
			PostedAt: posted, Text: text, Links: links, Provider: "keyword"}, posted.Add(time.Minute))
	}
	tagged10 := tag(parsed10, PostEdited, events.Rev{}, events.TriggerInitial, p10.Text, p10.Links, at(1), "выборы", "экономика")
	add(tagged10)
	tagged11 := tag(parsed11, PostDeleted, events.Rev{}, events.TriggerInitial, p11.Text, nil, at(2), "markets")
	add(tagged11)
	tagged20 := tag(parsed20, PostReplied, events.Rev{}, events.TriggerInitial, p20.Text, p20.Links, at(3), "ai", "chips")
	add(tagged20)
	add(tag(parsed21, PostForward, events.Rev{}, events.TriggerInitial, p21.Text, nil, at(4), "выборы"))

	// Vision of 10, then the vision re-tag (revision 1).
	vision10 := events.Derive(parsed10, events.ProducerVision, &events.PostVisionAnalyzed{PostRef: PostEdited, Items: []events.VisionItem{{
		MediaSHA256: photo.SHA256, Description: "A ballot box", Labels: []string{"ballot", "box"}, PHash: "f0f0f0f0f0f0f0f0", Width: 640, Height: 480}},
		Provider: "local", AnalyzedAt: at(6)}, at(6))
	add(vision10)
	retag10 := tag(vision10, PostEdited, events.Rev{Revision: 1}, events.TriggerVisionRetag, p10.Text+"\nA ballot box", p10.Links, at(1), "выборы", "экономика", "голосование")
	add(retag10)

	// Enrichment and embeddings.
	enrich := func(in events.Event, ref events.PostRef, rev events.Rev, text string, tags []string, pages []events.Page, posted time.Time) events.Event {
		return events.Derive(in, events.ProducerEnricher, &events.PostEnriched{PostRef: ref, Rev: rev, Tags: tags, PostedAt: posted, Text: text, Pages: pages}, posted.Add(2*time.Minute))
	}
	pageA := events.Page{URL: "https://example.org/a", FinalURL: "https://example.org/a", Domain: "example.org", Status: 200, Title: "Example A", Text: "Economy page", Lang: "en", FetchedAt: at(7)}
	enr10 := enrich(retag10, PostEdited, events.Rev{Revision: 1}, p10.Text+"\nA ballot box", []string{"выборы", "экономика", "голосование"}, []events.Page{pageA}, at(1))
	add(enr10)
	enr11 := enrich(tagged11, PostDeleted, events.Rev{}, p11.Text, []string{"markets"}, nil, at(2))
	add(enr11)
	pageChips := events.Page{URL: "https://chips.example.com/x", Domain: "chips.example.com", Error: "timeout after 10s"}
	enr20 := enrich(tagged20, PostReplied, events.Rev{}, p20.Text, []string{"ai", "chips"}, []events.Page{pageChips}, at(3))
	add(enr20)
	// posts.embedded carries the post's topics (computed from the vector by the embedder).
	embed := func(in events.Event, ref events.PostRef, rev events.Rev, topics []string, v ...float32) events.Event {
		return events.Derive(in, events.ProducerEmbedder, &events.PostEmbedded{PostRef: ref, Rev: rev, Vector: v,
			Provider: EmbedProvider, Model: EmbedModel, EmbedderVersion: EmbedVersion, Dim: Dim,
			Topics: topics, TopicsSource: events.TopicsFromEmbedding + EmbedProvider}, at(8))
	}
	add(embed(enr10, PostEdited, events.Rev{Revision: 1}, []string{"politics", "society"}, 1, 0, 0, 0))
	add(embed(enr11, PostDeleted, events.Rev{}, []string{"finance"}, 0, 1, 0, 0))
	add(embed(enr20, PostReplied, events.Rev{}, []string{"technology"}, 0, 0, 1, 0))

	// A late, stale tagged fact (revision 0 after revision 1 was applied) is ignored.
	stale := events.Derive(events.Event{ID: "late-redelivery", TraceParent: parsed10.TraceParent}, events.ProducerTagger,
		&events.PostTagged{PostRef: PostEdited, Trigger: events.TriggerInitial, Tags: []events.Tag{{Name: "stale-tag"}}, PostedAt: at(1), Text: "stale", Provider: "keyword"}, at(9))
	s.Stale = append(s.Stale, add(stale))

	// Edit of 10 (version = edit date), its tags, enrichment and embedding.
	editAt := at(20)
	e10 := &events.PostEdited{Post: *clonePost(&p10.Post), PreviousVersion: 0}
	e10.EditDate = editAt.Unix()
	e10.Text = "Выборы перенесены: https://example.org/a #economy"
	e10.Entities = []events.Entity{{Type: "url", Offset: 19, Length: 21}, {Type: "hashtag", Offset: 41, Length: 8}}
	edited10 := events.New(events.ProducerIngest, e10, editAt, itoa(e10.EditDate))
	add(edited10)
	v := events.Rev{Version: e10.EditDate}
	tagE := tag(edited10, PostEdited, v, events.TriggerEdit, e10.Text, e10.Links, at(1), "выборы")
	add(tagE)
	enrE := enrich(tagE, PostEdited, v, e10.Text, []string{"выборы"}, []events.Page{pageA}, at(1))
	add(enrE)
	add(embed(enrE, PostEdited, v, []string{"politics"}, 0.5, 0.5, 0, 0))
	// A stale embedding of the old revision arrives after the new one (its topics too).
	s.Stale = append(s.Stale, add(embed(events.Event{ID: "late-embed", TraceParent: enr10.TraceParent}, PostEdited, events.Rev{Revision: 1}, []string{"stale-topic"}, 9, 9, 9, 9)))

	// Metrics refresh of 20, deletion of 11.
	add(events.New(events.ProducerIngest, &events.PostMetrics{PostRef: PostReplied, Views: 500, Forwards: 7, Replies: 2, Reactions: map[string]int64{"🔥": 9}, ObservedAt: at(30)}, at(30), "30"))
	s.Deletion = add(events.New(events.ProducerIngest, &events.PostDeleted{PostRef: PostDeleted, DeletedAt: at(31)}, at(31)))

	// Album assembled, trend, sync, failure.
	add(events.Derive(albumParsed, events.ProducerAlbums, &events.AlbumAssembled{ChannelID: ChannelA, GroupedID: AlbumGroupedID, MessageIDs: AlbumItems,
		Outcome: events.AlbumComplete, Summary: "Three photos of a rally", Labels: []string{"rally"}, At: at(32)}, at(32)))
	add(events.Derive(tagged10, events.ProducerTrends, &events.TrendDetected{Tag: "выборы", Window: "1h", WindowStart: at(0), WindowEnd: at(60), Count: 3,
		Channels: []events.ChannelID{ChannelA, ChannelB}, Baseline: 0.5, Score: 6, Posts: []string{PostEdited.Key(), PostForward.Key()}}, at(33)))
	add(events.New(events.ProducerIngest, &events.ChannelSynced{ChannelID: ChannelA, Username: "alpha_news", Title: "Alpha News", Cursor: 32,
		Fetched: 6, New: 6, StartedAt: at(34), FinishedAt: at(35)}, at(35), "run-1"))
	add(events.New(events.ProducerIngest, &events.ChannelSynced{ChannelID: ChannelB, Username: "beta_digest", Title: "Beta Digest", Cursor: 21,
		Fetched: 2, New: 2, Skipped: map[string]int{"video_too_large": 1}, StartedAt: at(34), FinishedAt: at(35)}, at(35), "run-1"))
	// A channel subscribed by mistake and unsubscribed again.
	add(events.New(events.ProducerCLI, &events.ChannelSubscribed{Username: "temp_channel", At: at(36)}, at(36)))
	add(events.New(events.ProducerCLI, &events.ChannelUnsubscribed{Username: "temp_channel", At: at(37)}, at(37)))
	add(events.New(events.ProducerIngest, &events.ChannelFailed{Username: "gone_channel", Code: "USERNAME_NOT_OCCUPIED", Reason: "username not occupied", Permanent: true, At: at(38)}, at(38)))
	return s
}

// Without returns the script's facts without the given sequences (sequences unchanged).
func (s Script) Without(seqs ...uint64) []projections.Fact {
	skip := map[uint64]bool{}
	for _, q := range seqs {
		skip[q] = true
	}
	var out []projections.Fact
	for _, f := range s.Facts {
		if !skip[f.Seq] {
			out = append(out, f)
		}
	}
	return out
}

// Until returns the facts with Seq < seq.
func (s Script) Until(seq uint64) []projections.Fact {
	var out []projections.Fact
	for _, f := range s.Facts {
		if f.Seq < seq {
			out = append(out, f)
		}
	}
	return out
}

func clonePost(p *events.Post) *events.Post {
	c := *p
	return &c
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func itoa(n int64) string { return time.Unix(n, 0).UTC().Format("20060102150405") }
