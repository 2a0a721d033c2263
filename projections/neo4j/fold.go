package neo4j

import (
	"slices"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
)

// postState is what the graph already holds of a post and matters to the version rules: its
// content version, the revision each derived part came from, the time of its counters and
// the tombstone. It is read once per batch and then moved forward fact by fact.
type postState struct {
	exists, stub, deleted bool
	version               *int64
	metricsAt             time.Time
	tags, links, emb, vis *events.Rev
}

// postFold is one post of a batch: its state and the facts that won.
type postFold struct {
	key     string
	ch, msg int64
	st      postState
	// storedTags, storedEmb, storedLinks and storedVision say whether the graph holds TAGGED
	// / ABOUT / LINKS_TO / HAS_IMAGE edges of the post (exactly when it holds their revision:
	// ABOUT edges come with the embedding, whose fact carries the topics).
	storedTags, storedEmb, storedLinks, storedVision bool

	// The facts that won, nil when the batch did not change that part.
	content  *events.Post
	counters *counters
	tagged   *events.PostTagged
	enriched *events.PostEnriched
	embedded *events.PostEmbedded
	vision   *events.PostVisionAnalyzed
	// deletedAt is set when the deletion arrived in this batch.
	deletedAt time.Time
}

type counters struct {
	at                       time.Time
	views, forwards, replies int64
	reactions                int64
}

// pageObs is the newest observation of a page among the accepted posts.enriched facts of a
// batch: ordered by its fetch time (the fact's time for a failed fetch), the later fact on a
// tie.
type pageObs struct {
	at   time.Time
	page events.Page
}

// imageObs is the newest analysis of an image (by media sha256) among the accepted
// posts.vision.analyzed facts of a batch: ordered by the fact's analysis time, the later
// fact (or item) on a tie.
type imageObs struct {
	at              time.Time
	item            events.VisionItem
	provider, model string
}

// nearDup is a NEAR_DUPLICATE edge between two images.
type nearDup struct {
	from, to string
	distance int
}

type albumFold struct {
	key     string
	ch      int64
	grouped int64
	// props are the album's property changes, overlaid in log order (nil removes).
	props map[string]any
	// labels are those of the last albums.assembled of the batch, which replace the album's
	// LABELED edges when assembled is set.
	labels    []string
	assembled bool
	// items are the album's message ids in first-seen order, with the position the newest
	// albums.parsed gave each (-1: none).
	items    []int64
	position map[int64]int
}

// ref is an edge a post's content implies: to the post it forwards or replies to (a stub is
// created for a target the graph does not know), or to the channel it forwards from.
type ref struct {
	from, to string
	toCh     int64
}

// batch is one Apply's facts above the checkpoint, folded. Every field is what applying the
// facts one by one in log order would leave, so the batch boundaries of a replay do not
// change the graph:
//   - a post's content, counters and derived parts are registers replaced only by a fact at
//     least as new (equal: the later fact wins), and nothing passes a tombstone;
//   - the vocabulary a fact creates (tags, pages, domains, forward channels, stub posts) is
//     created for every fact accepted at its turn, even when a later fact of the same batch
//     replaces the post's edges, because the one-by-one application would have created it
//     too;
//   - reference and album edges are only ever added.
type batch struct {
	posts     map[string]*postFold
	postOrder []string
	stubs     map[string][2]int64 // key → channel, message: posts named but maybe not known
	fwdPosts  []ref
	fwdChans  []ref
	replies   []ref
	seenRef   map[ref]bool
	tagNames  []string
	seenTag   map[string]bool
	domains   []string
	seenDom   map[string]bool
	pages     map[string]*pageObs
	pageOrder []string
	albums    map[string]*albumFold
	albOrder  []string
	trends    map[string]*events.TrendDetected
	trOrder   []string
	channels  []projections.Fact

	topicNames []string
	seenTopic  map[string]bool
	labelNames []string
	seenLabel  map[string]bool
	// images are the newest analyses of the batch by sha256; imageOrder lists every image the
	// batch names (analysed or a near-duplicate target) in first-seen order.
	images     map[string]*imageObs
	imageOrder []string
	seenImage  map[string]bool
	nearDups   []nearDup
	nearIdx    map[[2]string]int
	// sameAs are SAME_AS edges from the album of another grouped id to the assembled album.
	sameAs   [][2]string
	seenSame map[[2]string]bool
}

func newBatch() *batch {
	return &batch{
		posts:   map[string]*postFold{},
		stubs:   map[string][2]int64{},
		seenRef: map[ref]bool{},
		seenTag: map[string]bool{},
		seenDom: map[string]bool{},
		pages:   map[string]*pageObs{},
		albums:  map[string]*albumFold{},
		trends:  map[string]*events.TrendDetected{},

		seenTopic: map[string]bool{},
		seenLabel: map[string]bool{},
		images:    map[string]*imageObs{},
		seenImage: map[string]bool{},
		nearIdx:   map[[2]string]int{},
		seenSame:  map[[2]string]bool{},
	}
}

// postRefOf returns the post a post fact is about.
func postRefOf(e events.Event) (events.PostRef, bool) {
	switch d := e.Data.(type) {
	case *events.PostParsed:
		return d.PostRef, true
	case *events.PostEdited:
		return d.PostRef, true
	case *events.PostMetrics:
		return d.PostRef, true
	case *events.PostDeleted:
		return d.PostRef, true
	case *events.PostTagged:
		return d.PostRef, true
	case *events.PostEnriched:
		return d.PostRef, true
	case *events.PostEmbedded:
		return d.PostRef, true
	case *events.PostVisionAnalyzed:
		return d.PostRef, true
	}
	return events.PostRef{}, false
}

// postKeys lists the posts the facts are about, in first-seen order.
func postKeys(facts []projections.Fact) []string {
	var keys []string
	seen := map[string]bool{}
	for _, f := range facts {
		if r, ok := postRefOf(f.Event); ok && !seen[r.Key()] {
			seen[r.Key()] = true
			keys = append(keys, r.Key())
		}
	}
	return keys
}

// fold folds facts (all above the checkpoint, in log order) into b; stored holds the read
// states of the posts named by postKeys(facts) that exist.
func (b *batch) fold(facts []projections.Fact, stored map[string]postState) {
	post := func(r events.PostRef) *postFold {
		k := r.Key()
		pf, ok := b.posts[k]
		if !ok {
			st := stored[k]
			pf = &postFold{key: k, ch: int64(r.ChannelID), msg: r.MessageID, st: st, storedTags: st.tags != nil, storedEmb: st.emb != nil, storedLinks: st.links != nil, storedVision: st.vis != nil}
			b.posts[k] = pf
			b.postOrder = append(b.postOrder, k)
		}
		return pf
	}
	for _, f := range facts {
		at := f.Event.Time.UTC()
		switch d := f.Event.Data.(type) {
		case *events.ChannelSubscribed, *events.ChannelUnsubscribed, *events.ChannelSynced, *events.ChannelFailed:
			b.channels = append(b.channels, f)
		case *events.PostParsed:
			b.content(post(d.PostRef), &d.Post, at)
		case *events.PostEdited:
			b.content(post(d.PostRef), &d.Post, at)
		case *events.PostMetrics:
			if pf := post(d.PostRef); !pf.st.deleted {
				pf.observe(&counters{at: d.ObservedAt.UTC(), views: d.Views, forwards: d.Forwards, replies: d.Replies, reactions: sum(d.Reactions)})
			}
		case *events.PostTagged:
			if pf := post(d.PostRef); accept(&pf.st, &pf.st.tags, d.Rev) {
				pf.tagged = d
				for _, t := range d.Tags {
					b.tag(t.Name)
				}
			}
		case *events.PostEnriched:
			if pf := post(d.PostRef); accept(&pf.st, &pf.st.links, d.Rev) {
				pf.enriched = d
				for _, pg := range d.Pages {
					b.page(pg, at)
				}
			}
		case *events.PostEmbedded:
			if pf := post(d.PostRef); accept(&pf.st, &pf.st.emb, d.Rev) {
				pf.embedded = d
				for _, t := range d.Topics {
					b.topic(t)
				}
			}
		case *events.PostVisionAnalyzed:
			if pf := post(d.PostRef); accept(&pf.st, &pf.st.vis, d.Rev) {
				pf.vision = d
				b.vision(d, at)
			}
		case *events.PostDeleted:
			pf := post(d.PostRef)
			if pf.st.deleted {
				continue
			}
			// What the pipeline derived goes with the tombstone; what ingest saw stays.
			pf.st.deleted = true
			pf.deletedAt = d.DeletedAt.UTC()
			pf.st.tags, pf.st.links, pf.st.emb, pf.st.vis = nil, nil, nil, nil
			pf.tagged, pf.enriched, pf.embedded, pf.vision = nil, nil, nil, nil
		case *events.AlbumParsed:
			a := b.album(d.ChannelID, d.GroupedID)
			a.overlay(parsedAlbumProps(d))
			for i, it := range d.Items {
				a.item(it.MessageID, i)
				b.stub(events.PostRef{ChannelID: d.ChannelID, MessageID: it.MessageID})
			}
		case *events.AlbumAssembled:
			a := b.album(d.ChannelID, d.GroupedID)
			a.overlay(assembledAlbumProps(d))
			a.assembled, a.labels = true, dedupe(d.Labels)
			for _, l := range a.labels {
				b.label(l)
			}
			for _, id := range d.MessageIDs {
				a.item(id, -1)
				b.stub(events.PostRef{ChannelID: d.ChannelID, MessageID: id})
			}
			for _, g := range d.GroupedIDs {
				if g != 0 && g != d.GroupedID {
					b.album(d.ChannelID, g)
					if e := [2]string{events.AlbumKey(d.ChannelID, g), d.Key()}; !b.seenSame[e] {
						b.seenSame[e] = true
						b.sameAs = append(b.sameAs, e)
					}
				}
			}
		case *events.TrendDetected:
			k := d.Key()
			if _, ok := b.trends[k]; !ok {
				b.trOrder = append(b.trOrder, k)
			}
			b.trends[k] = d
			b.tag(d.Tag)
			for _, pk := range d.Posts {
				if ch, msg, err := events.ParsePostKey(pk); err == nil {
					b.stub(events.PostRef{ChannelID: ch, MessageID: msg})
				}
			}
		}
		// Other (future) types are not part of the graph; the checkpoint still passes them.
	}
}

// accept reports whether a derived fact of rev replaces the part whose stored revision is
// *cur (nil: none yet), and if so records rev. Stale revisions and deleted posts are refused.
func accept(st *postState, cur **events.Rev, rev events.Rev) bool {
	if st.deleted || (*cur != nil && rev.Compare(**cur) < 0) {
		return false
	}
	*cur = &rev
	return true
}

// content applies a posts.parsed or posts.edited fact: the newest version wins (an equal one
// replaces: the same version observed again).
func (b *batch) content(pf *postFold, p *events.Post, at time.Time) {
	v := p.Version()
	if pf.st.deleted || (pf.st.version != nil && v < *pf.st.version) {
		return
	}
	pf.st.version = &v
	pf.content = p
	pf.observe(&counters{at: at, views: p.Views, forwards: p.Forwards, replies: p.Replies, reactions: sum(p.Reactions)})
	if fw := p.Forward; fw != nil && fw.ChannelID.Valid() {
		b.addRef(&b.fwdChans, ref{from: pf.key, toCh: int64(fw.ChannelID)})
		if fw.MessageID > 0 {
			to := events.PostRef{ChannelID: fw.ChannelID, MessageID: fw.MessageID}
			b.stub(to)
			b.addRef(&b.fwdPosts, ref{from: pf.key, to: to.Key()})
		}
	}
	if rt := p.ReplyTo; rt != nil && rt.MessageID > 0 {
		to := events.PostRef{ChannelID: p.ChannelID, MessageID: rt.MessageID}
		b.stub(to)
		b.addRef(&b.replies, ref{from: pf.key, to: to.Key()})
	}
}

// observe keeps the newest observation of the post's counters (equal time: the later fact).
func (pf *postFold) observe(c *counters) {
	if !pf.st.metricsAt.IsZero() && c.at.Before(pf.st.metricsAt) {
		return
	}
	pf.st.metricsAt = c.at
	pf.counters = c
}

func (b *batch) addRef(list *[]ref, r ref) {
	if !b.seenRef[r] {
		b.seenRef[r] = true
		*list = append(*list, r)
	}
}

func (b *batch) stub(r events.PostRef) {
	b.stubs[r.Key()] = [2]int64{int64(r.ChannelID), r.MessageID}
}

func (b *batch) tag(name string) {
	if !b.seenTag[name] {
		b.seenTag[name] = true
		b.tagNames = append(b.tagNames, name)
	}
}

func (b *batch) topic(name string) {
	if !b.seenTopic[name] {
		b.seenTopic[name] = true
		b.topicNames = append(b.topicNames, name)
	}
}

func (b *batch) label(name string) {
	if !b.seenLabel[name] {
		b.seenLabel[name] = true
		b.labelNames = append(b.labelNames, name)
	}
}

func (b *batch) image(sha string) {
	if !b.seenImage[sha] {
		b.seenImage[sha] = true
		b.imageOrder = append(b.imageOrder, sha)
	}
}

// vision records the images of an accepted posts.vision.analyzed fact: each image's
// analysis (the newest wins), its labels and its near-duplicate link. A link to the image
// itself (the same picture in another post) is no edge: both posts reach the one Image.
func (b *batch) vision(d *events.PostVisionAnalyzed, factAt time.Time) {
	at := d.AnalyzedAt.UTC()
	if d.AnalyzedAt.IsZero() {
		at = factAt
	}
	for _, it := range d.Items {
		b.image(it.MediaSHA256)
		for _, l := range it.Labels {
			b.label(l)
		}
		if old, ok := b.images[it.MediaSHA256]; !ok || !at.Before(old.at) {
			b.images[it.MediaSHA256] = &imageObs{at: at, item: it, provider: d.Provider, model: d.Model}
		}
		nd := it.NearDuplicateOf
		if nd == nil || nd.MediaSHA256 == it.MediaSHA256 {
			continue
		}
		b.image(nd.MediaSHA256)
		e := [2]string{it.MediaSHA256, nd.MediaSHA256}
		if i, ok := b.nearIdx[e]; ok {
			b.nearDups[i].distance = nd.Distance
			continue
		}
		b.nearIdx[e] = len(b.nearDups)
		b.nearDups = append(b.nearDups, nearDup{from: e[0], to: e[1], distance: nd.Distance})
	}
}

func (b *batch) page(pg events.Page, factAt time.Time) {
	at := pg.FetchedAt.UTC()
	if pg.FetchedAt.IsZero() {
		at = factAt
	}
	if !b.seenDom[pg.Domain] {
		b.seenDom[pg.Domain] = true
		b.domains = append(b.domains, pg.Domain)
	}
	old, ok := b.pages[pg.URL]
	if !ok {
		b.pageOrder = append(b.pageOrder, pg.URL)
	} else if at.Before(old.at) {
		return
	}
	b.pages[pg.URL] = &pageObs{at: at, page: pg}
}

func (b *batch) album(ch events.ChannelID, grouped int64) *albumFold {
	k := events.AlbumKey(ch, grouped)
	a, ok := b.albums[k]
	if !ok {
		a = &albumFold{key: k, ch: int64(ch), grouped: grouped, position: map[int64]int{}, props: map[string]any{}}
		b.albums[k] = a
		b.albOrder = append(b.albOrder, k)
	}
	return a
}

func (a *albumFold) item(msg int64, pos int) {
	old, ok := a.position[msg]
	if !ok {
		a.items = append(a.items, msg)
		old = -1
	}
	if pos >= 0 {
		old = pos
	}
	a.position[msg] = old
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// dedupe returns ss without repeats, in first-seen order.
func dedupe(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
