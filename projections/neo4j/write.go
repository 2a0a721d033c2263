package neo4j

import (
	"context"
	"fmt"
	"slices"
	"time"

	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/tgflow/tgflow/events"
)

// Statements of a batch, each run once with all its rows (UNWIND), in the order of
// writePosts. Rows are unique per node or edge (the fold made them so), and the fold knows
// from the stored states which nodes and edges exist, so most statements CREATE instead of
// MERGE and none depends on the order in which Cypher handles its own rows.
const (
	cyChannelIDs = `UNWIND $ids AS id
MERGE (c:Channel {id: id}) ON CREATE SET c.subscribed = false, c.sync_runs = 0`

	// New posts, created whole with the PUBLISHED edge from their channel.
	cyCreatePosts = `UNWIND $rows AS r
MATCH (c:Channel {id: r.props.channel_id})
CREATE (p:Post)
SET p = r.props
CREATE (c)-[:PUBLISHED]->(p)`

	// Posts named only as a forward/reply target or an album item: a stub (stub: true) unless
	// the graph knows them, until a fact about the post itself arrives.
	cyStubPosts = `UNWIND $rows AS r
MATCH (c:Channel {id: r.ch})
MERGE (p:Post {key: r.key}) ON CREATE SET p.channel_id = r.ch, p.message_id = r.msg, p.stub = true
MERGE (c)-[:PUBLISHED]->(p)`

	// Property changes of stored posts: every key is present, a null removes the property.
	cyPostProps = `UNWIND $rows AS r
MATCH (p:Post {key: r.key})
SET p += r.props`

	cyForwardPosts = `UNWIND $rows AS r
MATCH (p:Post {key: r.from})
MATCH (t:Post {key: r.to})
MERGE (p)-[:FORWARDED_FROM]->(t)`

	cyForwardChannels = `UNWIND $rows AS r
MATCH (p:Post {key: r.from})
MERGE (c:Channel {id: r.ch}) ON CREATE SET c.subscribed = false, c.sync_runs = 0
MERGE (p)-[:FORWARDED_FROM]->(c)`

	cyReplies = `UNWIND $rows AS r
MATCH (p:Post {key: r.from})
MATCH (t:Post {key: r.to})
MERGE (p)-[:REPLIES_TO]->(t)`

	cyTags = `UNWIND $names AS n
MERGE (:Tag {name: n})`

	// The TAGGED edges of a post are those of its newest tagged revision, replaced as a
	// whole: the old ones (only posts with a stored revision have any) go first.
	cyUntag = `UNWIND $keys AS k
MATCH (:Post {key: k})-[x:TAGGED]->()
DELETE x`
	// A post's ABOUT edges are its newest embedding's topics, replaced whole like its tags.
	cyUnabout = `UNWIND $keys AS k
MATCH (:Post {key: k})-[x:ABOUT]->()
DELETE x`
	cyTag = `UNWIND $rows AS r
MATCH (p:Post {key: r.key})
MATCH (tg:Tag {name: r.tag})
CREATE (p)-[e:TAGGED]->(tg)
SET e = r.props`

	cyTopics = `UNWIND $names AS n
MERGE (:Topic {name: n})`
	cyAbout = `UNWIND $rows AS r
MATCH (p:Post {key: r.key})
MATCH (tp:Topic {name: r.topic})
CREATE (p)-[e:ABOUT]->(tp)
SET e = r.props`

	cyLabels = `UNWIND $names AS n
MERGE (:Label {name: n})`

	// Images are content-addressed (media sha256) and shared by every post showing them; an
	// image shows its newest analysis. An image named only as a near-duplicate target has
	// just its sha256 until its own analysis arrives.
	cyImages = `UNWIND $rows AS r
MERGE (i:Image {sha256: r.sha})
SET i += r.props`
	cyUnlabelImages = `UNWIND $shas AS s
MATCH (:Image {sha256: s})-[x:LABELED]->()
DELETE x`
	cyLabelImages = `UNWIND $rows AS r
MATCH (i:Image {sha256: r.sha})
MATCH (l:Label {name: r.label})
CREATE (i)-[:LABELED {position: r.position}]->(l)`
	// Near-duplicate links are only ever added (the pair's distance is a fact about the two
	// pictures); the latest fact's distance is kept.
	cyNearDups = `UNWIND $rows AS r
MATCH (a:Image {sha256: r.from})
MATCH (b:Image {sha256: r.to})
MERGE (a)-[e:NEAR_DUPLICATE]->(b)
SET e.distance = r.distance`

	// The HAS_IMAGE edges of a post are the images of its newest vision revision.
	cyUnimage = `UNWIND $keys AS k
MATCH (:Post {key: k})-[x:HAS_IMAGE]->()
DELETE x`
	cyImage = `UNWIND $rows AS r
MATCH (p:Post {key: r.key})
MATCH (i:Image {sha256: r.sha})
CREATE (p)-[e:HAS_IMAGE]->(i)
SET e = r.props`

	cyDomains = `UNWIND $names AS n
MERGE (:Domain {name: n})`

	// A page shows its newest observation; the ON edge follows its domain.
	cyCreatePages = `UNWIND $rows AS r
MATCH (d:Domain {name: r.props.domain})
CREATE (pg:Page)
SET pg = r.props
CREATE (pg)-[:ON]->(d)`
	cyUpdatePages = `UNWIND $rows AS r
MATCH (pg:Page {url: r.url})
SET pg += r.props`
	cyMovePages = `UNWIND $rows AS r
MATCH (pg:Page {url: r.url})-[x:ON]->()
DELETE x
WITH DISTINCT pg, r
MATCH (d:Domain {name: r.domain})
CREATE (pg)-[:ON]->(d)`

	// The LINKS_TO edges of a post are the pages of its newest enriched revision.
	cyUnlink = `UNWIND $keys AS k
MATCH (:Post {key: k})-[x:LINKS_TO]->()
DELETE x`
	cyLink = `UNWIND $rows AS r
MATCH (p:Post {key: r.key})
MATCH (pg:Page {url: r.url})
CREATE (p)-[e:LINKS_TO]->(pg)
SET e = r.props`

	cyAlbums = `UNWIND $rows AS r
MERGE (a:Album {key: r.key})
SET a += r.props`

	cyAlbumItems = `UNWIND $rows AS r
MATCH (a:Album {key: r.album})
MATCH (p:Post {key: r.post})
MERGE (p)-[e:IN_ALBUM]->(a)
FOREACH (_ IN CASE WHEN r.position IS NULL THEN [] ELSE [1] END | SET e.position = r.position)`

	// An album's LABELED edges are the labels of its last albums.assembled.
	cyUnlabelAlbums = `UNWIND $keys AS k
MATCH (:Album {key: k})-[x:LABELED]->()
DELETE x`
	cyLabelAlbums = `UNWIND $rows AS r
MATCH (a:Album {key: r.album})
MATCH (l:Label {name: r.label})
CREATE (a)-[:LABELED {position: r.position}]->(l)`
	cySameAs = `UNWIND $rows AS r
MATCH (a:Album {key: r.from})
MATCH (b:Album {key: r.to})
MERGE (a)-[:SAME_AS]->(b)`

	cyTrends = `UNWIND $rows AS r
MERGE (t:Trend {key: r.key})
SET t += r.props
WITH t, r
MATCH (tg:Tag {name: r.props.tag})
MERGE (t)-[:OF]->(tg)`
	// A trend's SAMPLE edges are the sample posts of its last fact.
	cyUnsample = `UNWIND $keys AS k
MATCH (:Trend {key: k})-[x:SAMPLE]->()
DELETE x`
	cySample = `UNWIND $rows AS r
MATCH (t:Trend {key: r.trend})
MATCH (p:Post {key: r.post})
CREATE (t)-[:SAMPLE {position: r.position}]->(p)`
)

type step struct {
	name, cypher, param string
	rows                []any
}

// writePosts writes everything of the batch except channels and the checkpoint; pages holds
// the stored state of the batch's pages.
func (p *Projection) writePosts(ctx context.Context, tx nd.ExplicitTransaction, b *batch, pages map[string]pageState, images map[string]time.Time) error {
	var (
		chanIDs                  []any
		seenCh                   = map[int64]bool{}
		create, stubs, props     []any
		untag, tag, unlink, link []any
		unabout, about           []any
		unimage, image           []any
	)
	channel := func(id int64) {
		if !seenCh[id] {
			seenCh[id] = true
			chanIDs = append(chanIDs, id)
		}
	}
	for _, k := range b.postOrder {
		pf := b.posts[k]
		m := p.postProps(pf)
		if !pf.st.exists {
			channel(pf.ch)
			m["key"], m["channel_id"], m["message_id"] = k, pf.ch, pf.msg
			create = append(create, map[string]any{"props": withoutNils(m)})
		} else {
			if pf.st.stub {
				m["stub"] = nil
			}
			if len(m) > 0 {
				props = append(props, map[string]any{"key": k, "props": m})
			}
		}
		retag := pf.tagged != nil || !pf.deletedAt.IsZero()
		if retag && pf.st.exists && pf.storedTags {
			untag = append(untag, k)
		}
		tag = append(tag, taggedRows(pf)...)
		reembed := pf.embedded != nil || !pf.deletedAt.IsZero()
		if reembed && pf.st.exists && pf.storedEmb {
			unabout = append(unabout, k)
		}
		about = append(about, aboutRows(pf)...)
		revision := pf.vision != nil || !pf.deletedAt.IsZero()
		if revision && pf.st.exists && pf.storedVision {
			unimage = append(unimage, k)
		}
		image = append(image, imageEdgeRows(pf)...)
		relink := pf.enriched != nil || !pf.deletedAt.IsZero()
		if relink && pf.st.exists && pf.storedLinks {
			unlink = append(unlink, k)
		}
		link = append(link, linkRows(pf)...)
	}
	stubKeys := make([]string, 0, len(b.stubs))
	for k := range b.stubs {
		if _, own := b.posts[k]; !own {
			stubKeys = append(stubKeys, k)
		}
	}
	slices.Sort(stubKeys)
	for _, k := range stubKeys {
		s := b.stubs[k]
		channel(s[0])
		stubs = append(stubs, map[string]any{"key": k, "ch": s[0], "msg": s[1]})
	}
	newPages, updPages, movePages := b.pageRows(pages, p.opts.TextRunes)
	imgs, relabel, labeled := b.imageRows(images, p.opts.TextRunes)
	unlabelAlbums, labelAlbums := b.albumLabelRows()
	unsample, sample := b.trendSampleRows()

	steps := []step{
		{"channels", cyChannelIDs, "ids", chanIDs},
		{"create posts", cyCreatePosts, "rows", create},
		{"stub posts", cyStubPosts, "rows", stubs},
		{"post properties", cyPostProps, "rows", props},
		{"forwards", cyForwardPosts, "rows", refRows(b.fwdPosts)},
		{"forward channels", cyForwardChannels, "rows", refRows(b.fwdChans)},
		{"replies", cyReplies, "rows", refRows(b.replies)},
		{"tags", cyTags, "names", strAny(b.tagNames)},
		{"topics", cyTopics, "names", strAny(b.topicNames)},
		{"untag", cyUntag, "keys", untag},
		{"tag", cyTag, "rows", tag},
		{"unabout", cyUnabout, "keys", unabout},
		{"about", cyAbout, "rows", about},
		{"labels", cyLabels, "names", strAny(b.labelNames)},
		{"images", cyImages, "rows", imgs},
		{"unlabel images", cyUnlabelImages, "shas", relabel},
		{"label images", cyLabelImages, "rows", labeled},
		{"near duplicates", cyNearDups, "rows", b.nearDupRows()},
		{"unimage", cyUnimage, "keys", unimage},
		{"image", cyImage, "rows", image},
		{"domains", cyDomains, "names", strAny(b.domains)},
		{"create pages", cyCreatePages, "rows", newPages},
		{"update pages", cyUpdatePages, "rows", updPages},
		{"move pages", cyMovePages, "rows", movePages},
		{"unlink", cyUnlink, "keys", unlink},
		{"link", cyLink, "rows", link},
		{"albums", cyAlbums, "rows", b.albumRows()},
		{"album items", cyAlbumItems, "rows", b.albumItemRows()},
		{"unlabel albums", cyUnlabelAlbums, "keys", unlabelAlbums},
		{"label albums", cyLabelAlbums, "rows", labelAlbums},
		{"same album", cySameAs, "rows", b.sameAsRows()},
		{"trends", cyTrends, "rows", b.trendRows()},
		{"unsample", cyUnsample, "keys", unsample},
		{"sample", cySample, "rows", sample},
	}
	for _, s := range steps {
		if len(s.rows) == 0 {
			continue
		}
		if err := exec(ctx, tx, s.cypher, map[string]any{s.param: s.rows}); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func withoutNils(m map[string]any) map[string]any {
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
	}
	return m
}

// Derived properties of a post, removed with its tombstone.
var derivedProps = []string{
	"tags_version", "tags_revision", "tags_trigger", "topics", "topics_source", "tags_provider", "tags_model",
	"links_version", "links_revision",
	"embedding_version", "embedding_revision", "embedding_provider", "embedding_model", "embedding_dim",
	"embedding_embedder_version", "embedding_lexical",
	"vision_version", "vision_revision", "vision_provider", "vision_model", "vision_labels", "vision_items", "vision_analyzed_at",
}

// postProps are the property changes of a post (nil values remove a property).
func (p *Projection) postProps(pf *postFold) map[string]any {
	m := map[string]any{}
	if c := pf.content; c != nil {
		p.contentProps(m, c)
	}
	if c := pf.counters; c != nil {
		m["views"], m["forwards"], m["replies"], m["reactions"], m["metrics_at"] = c.views, c.forwards, c.replies, c.reactions, c.at
	}
	if !pf.deletedAt.IsZero() {
		m["deleted_at"] = pf.deletedAt
		for _, k := range derivedProps {
			m[k] = nil
		}
		return m
	}
	if t := pf.tagged; t != nil {
		m["tags_version"], m["tags_revision"], m["tags_trigger"] = t.Version, int64(t.Revision), t.Trigger
		m["tags_provider"], m["tags_model"] = opt(t.Provider), opt(t.Model)
	}
	if e := pf.enriched; e != nil {
		m["links_version"], m["links_revision"] = e.Version, int64(e.Revision)
	}
	if e := pf.embedded; e != nil {
		m["embedding_version"], m["embedding_revision"] = e.Rev.Version, int64(e.Revision)
		m["embedding_provider"], m["embedding_model"], m["embedding_dim"] = e.Provider, opt(e.Model), int64(len(e.Vector))
		m["embedding_embedder_version"], m["embedding_lexical"] = opt(e.EmbedderVersion), optBool(e.Lexical)
		m["topics"], m["topics_source"] = strs(e.Topics), opt(e.TopicsSource)
	}
	if v := pf.vision; v != nil {
		m["vision_version"], m["vision_revision"] = v.Version, int64(v.Revision)
		m["vision_provider"], m["vision_model"], m["vision_items"] = v.Provider, opt(v.Model), int64(len(v.Items))
		m["vision_analyzed_at"] = nil
		if !v.AnalyzedAt.IsZero() {
			m["vision_analyzed_at"] = v.AnalyzedAt.UTC()
		}
		var labels []string
		for _, it := range v.Items {
			labels = append(labels, it.Labels...)
		}
		labels = dedupe(labels)
		slices.Sort(labels)
		m["vision_labels"] = strs(labels)
	}
	return m
}

func (p *Projection) contentProps(m map[string]any, c *events.Post) {
	m["version"] = c.Version()
	m["posted_at"] = c.Date.UTC()
	m["edited_at"] = nil
	if c.EditDate > 0 {
		m["edited_at"] = time.Unix(c.EditDate, 0).UTC()
	}
	m["text"] = opt(excerpt(c.Text, p.opts.TextRunes))
	m["channel_username"] = opt(c.ChannelUsername)
	m["hashtags"] = strs(c.Hashtags)
	m["mentions"] = strs(c.Mentions)
	m["links"] = strs(c.Links)
	var kinds []string
	for _, md := range c.Media {
		kinds = append(kinds, md.Kind)
	}
	m["media"] = strs(kinds)
	m["grouped_id"] = nil
	if c.GroupedID != 0 {
		m["grouped_id"] = c.GroupedID
	}
	m["forward_channel_id"], m["forward_message_id"], m["forward_from_name"], m["forward_date"], m["forward_author"] = nil, nil, nil, nil, nil
	if fw := c.Forward; fw != nil {
		if fw.ChannelID.Valid() {
			m["forward_channel_id"] = int64(fw.ChannelID)
		}
		if fw.MessageID > 0 {
			m["forward_message_id"] = fw.MessageID
		}
		m["forward_from_name"] = opt(fw.FromName)
		if !fw.Date.IsZero() {
			m["forward_date"] = fw.Date.UTC()
		}
		m["forward_author"] = opt(fw.Author)
	}
	m["reply_to_message_id"], m["reply_to_top_message_id"] = nil, nil
	if rt := c.ReplyTo; rt != nil {
		m["reply_to_message_id"] = rt.MessageID
		if rt.TopMessageID > 0 {
			m["reply_to_top_message_id"] = rt.TopMessageID
		}
	}
	m["author_signature"] = opt(c.AuthorSignature)
	m["pinned"] = c.Pinned
	m["origin"] = opt(c.Origin)
}

// taggedRows are the TAGGED edges of a post whose tags the batch replaced (none for a
// deleted post).
func taggedRows(pf *postFold) []any {
	t := pf.tagged
	if t == nil || !pf.deletedAt.IsZero() {
		return nil
	}
	var rows []any
	seen := map[string]bool{}
	for _, tg := range t.Tags {
		if seen[tg.Name] {
			continue
		}
		seen[tg.Name] = true
		rows = append(rows, map[string]any{"key": pf.key, "tag": tg.Name, "props": map[string]any{
			"trigger": t.Trigger, "version": t.Version, "revision": int64(t.Revision), "score": tg.Score, "position": int64(len(seen) - 1),
		}})
	}
	return rows
}

// linkRows are the LINKS_TO edges of a post whose pages the batch replaced.
func linkRows(pf *postFold) []any {
	e := pf.enriched
	if e == nil || !pf.deletedAt.IsZero() {
		return nil
	}
	var rows []any
	seen := map[string]bool{}
	for _, pg := range e.Pages {
		if seen[pg.URL] {
			continue
		}
		seen[pg.URL] = true
		rows = append(rows, map[string]any{"key": pf.key, "url": pg.URL, "props": map[string]any{
			"version": e.Version, "revision": int64(e.Revision), "position": int64(len(seen) - 1),
		}})
	}
	return rows
}

// pageState is what the graph holds of a page: the time of its observation and its domain.
type pageState struct {
	observedAt time.Time
	domain     string
}

// pageRows splits the batch's page observations into pages to create, stored pages that a
// newer observation replaces, and those of them whose domain changed.
func (b *batch) pageRows(stored map[string]pageState, textRunes int) (create, update, move []any) {
	for _, u := range b.pageOrder {
		o := b.pages[u]
		pg := o.page
		var status, fetched any
		if pg.Status != 0 {
			status = int64(pg.Status)
		}
		if !pg.FetchedAt.IsZero() {
			fetched = pg.FetchedAt.UTC()
		}
		props := map[string]any{
			"url":            u,
			"domain":         pg.Domain,
			"final_url":      opt(pg.FinalURL),
			"status":         status,
			"title":          opt(pg.Title),
			"lang":           opt(pg.Lang),
			"content_sha256": opt(pg.ContentSHA256),
			"fetched_at":     fetched,
			"error":          opt(pg.Error),
			"reason":         opt(pg.Reason),
			"site":           opt(pg.Site),
			"byline":         opt(pg.Byline),
			"excerpt":        opt(excerpt(pg.Excerpt, textRunes)),
			"word_count":     optInt(pg.WordCount),
			"observed_at":    o.at,
		}
		st, ok := stored[u]
		switch {
		case !ok:
			create = append(create, map[string]any{"props": withoutNils(props)})
		case o.at.Before(st.observedAt):
		default:
			update = append(update, map[string]any{"url": u, "props": props})
			if st.domain != pg.Domain {
				move = append(move, map[string]any{"url": u, "domain": pg.Domain})
			}
		}
	}
	return create, update, move
}

// parsedAlbumProps are the properties an albums.parsed fact sets.
func parsedAlbumProps(d *events.AlbumParsed) map[string]any {
	return map[string]any{
		"channel_id": int64(d.ChannelID), "grouped_id": d.GroupedID,
		"caption": opt(d.Caption), "posted_at": d.PostedAt.UTC(), "inferred": d.Inferred, "item_count": int64(len(d.Items)),
	}
}

// assembledAlbumProps are the properties an albums.assembled fact sets. Its own properties
// are replaced whole (absent: removed); caption, posted_at and item_count, which
// albums.parsed sets too, only when the fact has them (older albums stages did not write
// them).
func assembledAlbumProps(d *events.AlbumAssembled) map[string]any {
	m := map[string]any{
		"channel_id": int64(d.ChannelID), "grouped_id": d.GroupedID,
		"outcome": d.Outcome, "summary": opt(d.Summary), "labels": strs(dedupe(d.Labels)), "assembled_at": d.At.UTC(),
		"missing": nil, "grouped_ids": nil, "summary_version": opt(d.Version), "cover_message_id": nil,
		"descriptions": strs(d.Descriptions), "ocr_text": opt(d.OCRText),
	}
	if len(d.Missing) > 0 {
		m["missing"] = d.Missing
	}
	if len(d.GroupedIDs) > 0 {
		m["grouped_ids"] = d.GroupedIDs
	}
	if d.CoverMessageID != 0 {
		m["cover_message_id"] = d.CoverMessageID
	}
	if d.Caption != "" {
		m["caption"] = d.Caption
	}
	if !d.PostedAt.IsZero() {
		m["posted_at"] = d.PostedAt.UTC()
	}
	switch {
	case d.ItemCount > 0:
		m["item_count"] = int64(d.ItemCount)
	case len(d.MessageIDs) > 0:
		m["item_count"] = int64(len(d.MessageIDs))
	}
	return m
}

// overlay applies a fact's property changes after those of the earlier facts of the batch.
func (a *albumFold) overlay(m map[string]any) {
	for k, v := range m {
		a.props[k] = v
	}
}

func (b *batch) albumRows() []any {
	rows := make([]any, 0, len(b.albOrder))
	for _, k := range b.albOrder {
		a := b.albums[k]
		m := map[string]any{"channel_id": a.ch, "grouped_id": a.grouped}
		for p, v := range a.props {
			m[p] = v
		}
		rows = append(rows, map[string]any{"key": k, "props": m})
	}
	return rows
}

// albumLabelRows are the LABELED edges of the albums whose labels the batch replaced.
func (b *batch) albumLabelRows() (replaced, rows []any) {
	for _, k := range b.albOrder {
		a := b.albums[k]
		if !a.assembled {
			continue
		}
		replaced = append(replaced, k)
		for i, l := range a.labels {
			rows = append(rows, map[string]any{"album": k, "label": l, "position": int64(i)})
		}
	}
	return replaced, rows
}

func (b *batch) albumItemRows() []any {
	var rows []any
	for _, k := range b.albOrder {
		a := b.albums[k]
		for _, msg := range a.items {
			var pos any
			if p := a.position[msg]; p >= 0 {
				pos = int64(p)
			}
			rows = append(rows, map[string]any{"album": k, "post": events.PostKey(events.ChannelID(a.ch), msg), "position": pos})
		}
	}
	return rows
}

func (b *batch) trendRows() []any {
	rows := make([]any, 0, len(b.trOrder))
	for _, k := range b.trOrder {
		t := b.trends[k]
		chans := make([]int64, 0, len(t.Channels))
		for _, c := range t.Channels {
			chans = append(chans, int64(c))
		}
		var chv any
		if len(chans) > 0 {
			chv = chans
		}
		rows = append(rows, map[string]any{"key": k, "props": map[string]any{
			"tag": t.Tag, "window": t.Window, "window_start": t.WindowStart.UTC(), "window_end": t.WindowEnd.UTC(),
			"count": int64(t.Count), "channels": chv, "baseline": t.Baseline, "score": t.Score, "posts": strs(t.Posts),
			"expected": optFloat(t.Expected), "method": opt(t.Method),
		}})
	}
	return rows
}

// trendSampleRows are the SAMPLE edges of the batch's trends (each replaces the edges of
// its trend): to the sample posts whose keys parse.
func (b *batch) trendSampleRows() (replaced, rows []any) {
	for _, k := range b.trOrder {
		replaced = append(replaced, k)
		seen := map[string]bool{}
		for _, pk := range b.trends[k].Posts {
			if _, _, err := events.ParsePostKey(pk); err != nil || seen[pk] {
				continue
			}
			seen[pk] = true
			rows = append(rows, map[string]any{"trend": k, "post": pk, "position": int64(len(seen) - 1)})
		}
	}
	return replaced, rows
}

// imageRows are the Image nodes of the batch: every image it names is merged, and those
// whose stored analysis is not newer than the batch's get its properties (absent ones
// removed) and have their LABELED edges replaced.
func (b *batch) imageRows(stored map[string]time.Time, textRunes int) (merge, relabel, labeled []any) {
	for _, sha := range b.imageOrder {
		o, analysed := b.images[sha]
		if !analysed {
			merge = append(merge, map[string]any{"sha": sha, "props": map[string]any{}})
			continue
		}
		if at, ok := stored[sha]; ok && o.at.Before(at) {
			merge = append(merge, map[string]any{"sha": sha, "props": map[string]any{}})
			continue
		}
		it := o.item
		var nsfw any
		if it.NSFW != nil {
			nsfw = *it.NSFW
		}
		merge = append(merge, map[string]any{"sha": sha, "props": map[string]any{
			"analyzed_at":    o.at,
			"provider":       opt(o.provider),
			"model":          opt(o.model),
			"format":         opt(it.Format),
			"width":          optInt(it.Width),
			"height":         optInt(it.Height),
			"phash":          opt(it.PHash),
			"dhash":          opt(it.DHash),
			"colors":         strs(it.Colors),
			"description":    opt(it.Description),
			"ocr_text":       opt(excerpt(it.OCRText, textRunes)),
			"ocr_confidence": optFloat(it.OCRConfidence),
			"ocr_error":      opt(it.OCRError),
			"objects":        strs(it.Objects),
			"scene":          opt(it.Scene),
			"is_meme":        optBool(it.IsMeme),
			"nsfw":           nsfw,
			"error":          opt(it.Error),
			"reason":         opt(it.Reason),
			"provider_error": opt(it.ProviderError),
		}})
		if _, ok := stored[sha]; ok {
			relabel = append(relabel, sha)
		}
		for i, l := range dedupe(it.Labels) {
			labeled = append(labeled, map[string]any{"sha": sha, "label": l, "position": int64(i)})
		}
	}
	return merge, relabel, labeled
}

func (b *batch) nearDupRows() []any {
	rows := make([]any, 0, len(b.nearDups))
	for _, e := range b.nearDups {
		rows = append(rows, map[string]any{"from": e.from, "to": e.to, "distance": int64(e.distance)})
	}
	return rows
}

// aboutRows are the ABOUT edges of a post whose embedding the batch replaced: its topics.
func aboutRows(pf *postFold) []any {
	t := pf.embedded
	if t == nil || !pf.deletedAt.IsZero() {
		return nil
	}
	var rows []any
	for i, name := range dedupe(t.Topics) {
		rows = append(rows, map[string]any{"key": pf.key, "topic": name, "props": map[string]any{
			"version": t.Version, "revision": int64(t.Revision), "position": int64(i),
		}})
	}
	return rows
}

// imageEdgeRows are the HAS_IMAGE edges of a post whose vision the batch replaced.
func imageEdgeRows(pf *postFold) []any {
	v := pf.vision
	if v == nil || !pf.deletedAt.IsZero() {
		return nil
	}
	var rows []any
	seen := map[string]bool{}
	for _, it := range v.Items {
		if seen[it.MediaSHA256] {
			continue
		}
		seen[it.MediaSHA256] = true
		rows = append(rows, map[string]any{"key": pf.key, "sha": it.MediaSHA256, "props": map[string]any{
			"version": v.Version, "revision": int64(v.Revision), "position": int64(len(seen) - 1),
		}})
	}
	return rows
}

func optFloat(f float64) any {
	if f == 0 {
		return nil
	}
	return f
}

func optBool(v bool) any {
	if !v {
		return nil
	}
	return true
}

func (b *batch) sameAsRows() []any {
	rows := make([]any, 0, len(b.sameAs))
	for _, e := range b.sameAs {
		rows = append(rows, map[string]any{"from": e[0], "to": e[1]})
	}
	return rows
}

func refRows(refs []ref) []any {
	rows := make([]any, 0, len(refs))
	for _, r := range refs {
		rows = append(rows, map[string]any{"from": r.from, "to": r.to, "ch": r.toCh})
	}
	return rows
}

// strs is a list property, or nil (no property) when empty. A typed nil slice would reach
// Neo4j as an empty list, not as null.
func strs(ss []string) any {
	if len(ss) == 0 {
		return nil
	}
	return ss
}

func strAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func orEmpty(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

// opt is a string property, or nil when empty.
func opt(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func excerpt(s string, n int) string {
	if n <= 0 {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}
