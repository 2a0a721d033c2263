package postgres

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// queueWrites merges the batch's winners (r) into the stored state (st) by the rules of
// SCHEMA.md and queues the resulting writes: one set-based statement per table and kind of
// change, skipped when it has no rows. If after is not nil, the stored state of every row the
// writes create or change is put in it, as a read after the commit would find it.
func queueWrites(b *writes, r *reduced, st *stored, after *stored) error {
	queueMediaObjects(b, r)
	content, err := queuePosts(b, r, st, after)
	if err != nil {
		return err
	}
	prog := mergeProgress(r, st, content)
	queueTags(b, r, prog)
	queueVision(b, r, prog)
	queuePostPages(b, r, prog)
	queuePages(b, r, st, after)
	queueEmbeddings(b, r, prog)
	queueTopics(b, r, prog)
	queueAlbums(b, r)
	queueTrends(b, r)
	queueProgress(b, prog)
	queueSearchDocs(b, r, content, prog)
	if after != nil {
		for k, m := range prog {
			if m.changed() {
				after.progress[k] = &m.row
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[key]V) []key {
	ks := slices.Collect(maps.Keys(m))
	slices.SortFunc(ks, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.ch, b.ch), cmp.Compare(a.msg, b.msg))
	})
	return ks
}

func (c *cols) rows() int {
	if len(c.args) == 0 {
		return 0
	}
	switch s := c.args[0].(type) {
	case []int64:
		return len(s)
	case []string:
		return len(s)
	case pgtype.FlatArray[pgtype.Text]:
		return len(s)
	}
	panic(fmt.Sprintf("cols.rows: first column is %T", c.args[0]))
}

// copyMinRows is the fewest new rows of a table loaded with COPY. A COPY is a round trip of
// its own after the batch; a live batch (TGFLOW_PROJ_BATCH, at most 500 facts) writes tens
// to hundreds of rows per table, which one INSERT … SELECT FROM unnest in the pipelined batch
// writes for about the same server CPU (BenchmarkApplyLive: facts per server CPU second
// 12183–14286 vs 13559 at 150 facts per batch, 18605–19048 vs 14907–15686 at 500) and
// without the round trips (5 per Apply), which a busy machine makes costly. A rebuild's batch
// (20000 facts) is where COPY pays.
var copyMinRows = 1000

// insert adds the rows in c to table. They are new rows (no conflict with stored ones). With
// copyMinRows or more they are loaded with COPY after the batch's statements have run; fewer,
// and rows COPY's text format cannot carry (see copyText), are inserted by a statement of
// the batch instead (after the batch's deletes of the same keys, queued before).
func insert(b *writes, table string, c *cols) {
	if c.rows() == 0 {
		return
	}
	if c.rows() >= copyMinRows {
		start := len(b.copyBuf)
		if data, ok := c.copyText(b.copyBuf); ok {
			b.copyBuf = data
			b.copies = append(b.copies, copyLoad{sql: "COPY " + table + " (" + c.list() + ") FROM STDIN", start: start, end: len(data)})
			return
		}
		b.copyBuf = b.copyBuf[:start]
	}
	b.Queue(fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM %s`, table, c.list(), c.selectList(), c.from()), c.args...)
}

// update queues an UPDATE of table setting every non-key column of c on the rows matched by
// the key columns.
func update(b *writes, table string, c *cols, keyCols ...string) {
	if c.rows() == 0 {
		return
	}
	var set, match []string
	for i, n := range c.names {
		if slices.Contains(keyCols, n) {
			match = append(match, fmt.Sprintf("x.%s = t.%s", n, n))
		} else {
			set = append(set, n+" = "+c.exprs[i])
		}
	}
	b.Queue(fmt.Sprintf(`UPDATE %s x SET %s FROM %s WHERE %s`, table, strings.Join(set, ", "), c.from(), strings.Join(match, " AND ")), c.args...)
}

// deletePosts queues the deletion of every row of table belonging to the posts in keys.
func deletePosts(b *writes, table string, keys []key) {
	if len(keys) == 0 {
		return
	}
	ch, msg := make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		ch[i], msg[i] = k.ch, k.msg
	}
	var c cols
	c.add("channel_id", "bigint", ch)
	c.add("message_id", "bigint", msg)
	b.Queue(fmt.Sprintf(`DELETE FROM %s x USING %s WHERE x.channel_id = t.channel_id AND x.message_id = t.message_id`, table, c.from()), c.args...)
}

func queueMediaObjects(b *writes, r *reduced) {
	if len(r.objects) == 0 {
		return
	}
	shas := slices.Sorted(maps.Keys(r.objects))
	var keyCol, kind, mime []pgtype.Text
	var size []pgtype.Int8
	var width, height []pgtype.Int4
	var dur []pgtype.Float8
	for _, s := range shas {
		m := r.objects[s]
		keyCol = append(keyCol, optText(m.ObjectKey))
		kind = append(kind, text(m.Kind))
		mime = append(mime, optText(m.MIME))
		size = append(size, optInt8(m.Size))
		width = append(width, optInt4(m.Width))
		height = append(height, optInt4(m.Height))
		dur = append(dur, optFloat8(m.DurationSec))
	}
	var c cols
	c.add("sha256", "text", shas)
	c.add("object_key", "text", keyCol)
	c.add("kind", "text", kind)
	c.add("mime", "text", mime)
	c.add("size", "bigint", size)
	c.add("width", "integer", width)
	c.add("height", "integer", height)
	c.add("duration_sec", "double precision", dur)
	// The first fact naming a sha256 wins; the bytes, hence the metadata, are the same.
	b.Queue(fmt.Sprintf(`INSERT INTO media_objects (%s) SELECT %s FROM %s ON CONFLICT (sha256) DO NOTHING`,
		c.list(), c.selectList(), c.from()), c.args...)
}

// postCols accumulates posts columns in three groups: content (from the winning parsed or
// edited fact), counters (the newest observation) and the tombstone. A group left out of a
// row is NULL.
type postCols struct {
	ch, msg                                       []int64
	version, grouped, fwdCh, fwdMsg, replyTo, top []pgtype.Int8
	views, forwards, replies                      []pgtype.Int8
	postedAt, editedAt, fwdDate, metricsAt, delAt []pgtype.Timestamptz
	txt, fwdName, fwdAuthor, sig, origin          []pgtype.Text
	entities, links, hashtags, mentions, reacts   []pgtype.Text
	pinned, silent, noforwards                    []pgtype.Bool
}

func (pc *postCols) add(k key, c *content, m *counters, del time.Time) error {
	pc.ch, pc.msg = append(pc.ch, k.ch), append(pc.msg, k.msg)
	if c != nil {
		p := c.post
		pc.version = append(pc.version, pgtype.Int8{Int64: p.Version(), Valid: true})
		pc.postedAt = append(pc.postedAt, ts(usec(p.Date)))
		if p.EditDate > 0 {
			pc.editedAt = append(pc.editedAt, ts(time.Unix(p.EditDate, 0).UTC()))
		} else {
			pc.editedAt = append(pc.editedAt, pgtype.Timestamptz{})
		}
		pc.txt = append(pc.txt, text(p.Text))
		ents, err := json.Marshal(orEmpty(p.Entities))
		if err != nil {
			return fmt.Errorf("post %s entities: %w", p.Key(), err)
		}
		pc.entities = append(pc.entities, text(string(ents)))
		pc.links, pc.hashtags, pc.mentions = append(pc.links, textArray(p.Links)), append(pc.hashtags, textArray(p.Hashtags)), append(pc.mentions, textArray(p.Mentions))
		pc.grouped = append(pc.grouped, optInt8(p.GroupedID))
		if f := p.Forward; f != nil {
			pc.fwdCh, pc.fwdMsg = append(pc.fwdCh, optInt8(int64(f.ChannelID))), append(pc.fwdMsg, optInt8(f.MessageID))
			pc.fwdName, pc.fwdAuthor = append(pc.fwdName, optText(f.FromName)), append(pc.fwdAuthor, optText(f.Author))
			pc.fwdDate = append(pc.fwdDate, optTS(usec(f.Date)))
		} else {
			pc.fwdCh, pc.fwdMsg = append(pc.fwdCh, pgtype.Int8{}), append(pc.fwdMsg, pgtype.Int8{})
			pc.fwdName, pc.fwdAuthor = append(pc.fwdName, pgtype.Text{}), append(pc.fwdAuthor, pgtype.Text{})
			pc.fwdDate = append(pc.fwdDate, pgtype.Timestamptz{})
		}
		if rt := p.ReplyTo; rt != nil {
			pc.replyTo, pc.top = append(pc.replyTo, optInt8(rt.MessageID)), append(pc.top, optInt8(rt.TopMessageID))
		} else {
			pc.replyTo, pc.top = append(pc.replyTo, pgtype.Int8{}), append(pc.top, pgtype.Int8{})
		}
		pc.sig, pc.origin = append(pc.sig, optText(p.AuthorSignature)), append(pc.origin, optText(p.Origin))
		pc.pinned = append(pc.pinned, pgtype.Bool{Bool: p.Pinned, Valid: true})
		pc.silent = append(pc.silent, pgtype.Bool{Bool: p.Silent, Valid: true})
		pc.noforwards = append(pc.noforwards, pgtype.Bool{Bool: p.NoForwards, Valid: true})
	} else {
		pc.version, pc.grouped = append(pc.version, pgtype.Int8{}), append(pc.grouped, pgtype.Int8{})
		pc.postedAt, pc.editedAt = append(pc.postedAt, pgtype.Timestamptz{}), append(pc.editedAt, pgtype.Timestamptz{})
		pc.txt, pc.entities = append(pc.txt, pgtype.Text{}), append(pc.entities, pgtype.Text{})
		pc.links, pc.hashtags, pc.mentions = append(pc.links, pgtype.Text{}), append(pc.hashtags, pgtype.Text{}), append(pc.mentions, pgtype.Text{})
		pc.fwdCh, pc.fwdMsg = append(pc.fwdCh, pgtype.Int8{}), append(pc.fwdMsg, pgtype.Int8{})
		pc.fwdName, pc.fwdAuthor = append(pc.fwdName, pgtype.Text{}), append(pc.fwdAuthor, pgtype.Text{})
		pc.fwdDate = append(pc.fwdDate, pgtype.Timestamptz{})
		pc.replyTo, pc.top = append(pc.replyTo, pgtype.Int8{}), append(pc.top, pgtype.Int8{})
		pc.sig, pc.origin = append(pc.sig, pgtype.Text{}), append(pc.origin, pgtype.Text{})
		pc.pinned, pc.silent, pc.noforwards = append(pc.pinned, pgtype.Bool{}), append(pc.silent, pgtype.Bool{}), append(pc.noforwards, pgtype.Bool{})
	}
	if m != nil {
		pc.views = append(pc.views, pgtype.Int8{Int64: m.views, Valid: true})
		pc.forwards = append(pc.forwards, pgtype.Int8{Int64: m.forwards, Valid: true})
		pc.replies = append(pc.replies, pgtype.Int8{Int64: m.replies, Valid: true})
		rj, err := json.Marshal(orEmptyMap(m.reactions))
		if err != nil {
			return fmt.Errorf("post %d/%d reactions: %w", k.ch, k.msg, err)
		}
		pc.reacts, pc.metricsAt = append(pc.reacts, text(string(rj))), append(pc.metricsAt, ts(m.at))
	} else {
		pc.views, pc.forwards, pc.replies = append(pc.views, pgtype.Int8{}), append(pc.forwards, pgtype.Int8{}), append(pc.replies, pgtype.Int8{})
		pc.reacts, pc.metricsAt = append(pc.reacts, pgtype.Text{}), append(pc.metricsAt, pgtype.Timestamptz{})
	}
	pc.delAt = append(pc.delAt, optTS(del))
	return nil
}

const (
	groupContent = 1 << iota
	groupCounters
	groupDeleted
)

func (pc *postCols) cols(groups int) *cols {
	var c cols
	c.add("channel_id", "bigint", pc.ch)
	c.add("message_id", "bigint", pc.msg)
	if groups&groupContent != 0 {
		c.add("version", "bigint", pc.version)
		c.add("posted_at", "timestamptz", pc.postedAt)
		c.add("edited_at", "timestamptz", pc.editedAt)
		c.add("text", "text", pc.txt)
		c.addCast("entities", "jsonb", pc.entities)
		c.addCast("links", "text[]", pc.links)
		c.addCast("hashtags", "text[]", pc.hashtags)
		c.addCast("mentions", "text[]", pc.mentions)
		c.add("grouped_id", "bigint", pc.grouped)
		c.add("forward_channel_id", "bigint", pc.fwdCh)
		c.add("forward_message_id", "bigint", pc.fwdMsg)
		c.add("forward_from_name", "text", pc.fwdName)
		c.add("forward_date", "timestamptz", pc.fwdDate)
		c.add("forward_author", "text", pc.fwdAuthor)
		c.add("reply_to_message_id", "bigint", pc.replyTo)
		c.add("reply_to_top_message_id", "bigint", pc.top)
		c.add("author_signature", "text", pc.sig)
		c.add("pinned", "boolean", pc.pinned)
		c.add("silent", "boolean", pc.silent)
		c.add("noforwards", "boolean", pc.noforwards)
		c.add("origin", "text", pc.origin)
	}
	if groups&groupCounters != 0 {
		c.add("views", "bigint", pc.views)
		c.add("forwards", "bigint", pc.forwards)
		c.add("replies", "bigint", pc.replies)
		c.addCast("reactions", "jsonb", pc.reacts)
		c.add("metrics_at", "timestamptz", pc.metricsAt)
	}
	if groups&groupDeleted != 0 {
		c.add("deleted_at", "timestamptz", pc.delAt)
	}
	return &c
}

// queuePosts writes posts and post_media and returns the posts whose content winner was
// accepted. Content is accepted when its version is not older than the stored one; counters
// when observed no earlier than the stored ones; a deletion when there is no tombstone yet or
// it is earlier than the stored one. A tombstone is never lifted.
func queuePosts(b *writes, r *reduced, st *stored, after *stored) (map[key]bool, error) {
	all := map[key]bool{}
	for k := range r.content {
		all[k] = true
	}
	for k := range r.counters {
		all[k] = true
	}
	for k := range r.deleted {
		all[k] = true
	}
	accepted := map[key]bool{}
	var fresh, upContent, upCounters, upDeleted postCols
	var replaceMedia []key
	var media mediaCols
	for _, k := range sortedKeys(all) {
		old, exists := st.posts[k]
		c, m := r.content[k], r.counters[k]
		del, hasDel := r.deleted[k]
		if c != nil && exists && old.hasVersion && c.post.Version() < old.version {
			c = nil
		}
		if m != nil && exists && !old.metricsAt.IsZero() && m.at.Before(old.metricsAt) {
			m = nil
		}
		if hasDel && exists && !old.deletedAt.IsZero() && !del.Before(old.deletedAt) {
			hasDel = false
		}
		if !hasDel {
			del = time.Time{}
		}
		if after != nil && (!exists || c != nil || m != nil || hasDel) {
			now := old
			if c != nil {
				now.hasVersion, now.version = true, c.post.Version()
			}
			if m != nil {
				now.metricsAt = m.at
			}
			if hasDel {
				now.deletedAt = del
			}
			after.posts[k] = now
		}
		if c != nil {
			accepted[k] = true
			if exists && old.hasVersion {
				replaceMedia = append(replaceMedia, k)
			}
			media.add(k, c)
		}
		var err error
		switch {
		case !exists:
			err = fresh.add(k, c, m, del)
		default:
			if c != nil {
				err = upContent.add(k, c, nil, time.Time{})
			}
			if err == nil && m != nil {
				err = upCounters.add(k, nil, m, time.Time{})
			}
			if err == nil && hasDel {
				err = upDeleted.add(k, nil, nil, del)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	deletePosts(b, "post_media", replaceMedia)
	insert(b, "post_media", media.cols())
	insert(b, "posts", fresh.cols(groupContent|groupCounters|groupDeleted))
	update(b, "posts", upContent.cols(groupContent), "channel_id", "message_id")
	update(b, "posts", upCounters.cols(groupCounters), "channel_id", "message_id")
	update(b, "posts", upDeleted.cols(groupDeleted), "channel_id", "message_id")
	return accepted, nil
}

type mediaCols struct {
	ch, msg, ver, size    []int64
	pos, width, height    []pgtype.Int4
	kind, mime, file, sha []pgtype.Text
	skipped               []pgtype.Text
	dur                   []pgtype.Float8
}

func (mc *mediaCols) add(k key, c *content) {
	for i, m := range c.post.Media {
		mc.ch, mc.msg, mc.ver = append(mc.ch, k.ch), append(mc.msg, k.msg), append(mc.ver, c.post.Version())
		mc.pos = append(mc.pos, pgtype.Int4{Int32: int32(i), Valid: true})
		mc.kind, mc.mime = append(mc.kind, text(m.Kind)), append(mc.mime, optText(m.MIME))
		mc.size = append(mc.size, m.Size)
		mc.width, mc.height = append(mc.width, optInt4(m.Width)), append(mc.height, optInt4(m.Height))
		mc.dur = append(mc.dur, optFloat8(m.DurationSec))
		mc.file, mc.sha = append(mc.file, optText(m.FileName)), append(mc.sha, optText(m.SHA256))
		mc.skipped = append(mc.skipped, optText(m.Skipped))
	}
}

func (mc *mediaCols) cols() *cols {
	var c cols
	c.add("channel_id", "bigint", mc.ch)
	c.add("message_id", "bigint", mc.msg)
	c.add("position", "integer", mc.pos)
	c.add("version", "bigint", mc.ver)
	c.add("kind", "text", mc.kind)
	c.add("mime", "text", mc.mime)
	c.add("size", "bigint", mc.size)
	c.add("width", "integer", mc.width)
	c.add("height", "integer", mc.height)
	c.add("duration_sec", "double precision", mc.dur)
	c.add("file_name", "text", mc.file)
	c.add("sha256", "text", mc.sha)
	c.add("skipped", "text", mc.skipped)
	return &c
}

// progressMerge is one post's pipeline_progress row before and after the batch, and which of
// the batch's stage winners were accepted (not older than the stored revision).
type progressMerge struct {
	old    *progressRow
	row    progressRow
	accept [numStages]bool
}

func (m *progressMerge) changed() bool { return m.old == nil || *m.old != m.row }

// replaces reports whether an accepted stage winner replaces rows stored for an older one.
func (m *progressMerge) replaces(stage int) bool {
	return m.accept[stage] && m.old != nil && m.old.stages[stage].set
}

func mergeProgress(r *reduced, st *stored, content map[key]bool) map[key]*progressMerge {
	out := map[key]*progressMerge{}
	get := func(k key) *progressMerge {
		if m, ok := out[k]; ok {
			return m
		}
		m := &progressMerge{old: st.progress[k]}
		if m.old != nil {
			m.row = *m.old
		}
		out[k] = m
		return m
	}
	for k, c := range r.content {
		m := get(k)
		if t, ok := r.parsedAt[k]; ok && (m.row.parsedAt.IsZero() || t.Before(m.row.parsedAt)) {
			m.row.parsedAt = t
		}
		if content[k] {
			m.row.hasVersion, m.row.version, m.row.versionAt = true, c.post.Version(), c.at
		}
	}
	stage := func(i int, k key, w stageRev) {
		m := get(k)
		if old := m.row.stages[i]; !old.set || w.rev.Compare(old.rev) >= 0 {
			m.row.stages[i], m.accept[i] = w, true
		}
	}
	for k, w := range r.vision {
		stage(stageVision, k, stageRev{set: true, rev: w.rev, at: w.at})
	}
	for k, w := range r.tagged {
		stage(stageTagged, k, stageRev{set: true, rev: w.rev, at: w.at})
	}
	for k, w := range r.enriched {
		stage(stageEnriched, k, stageRev{set: true, rev: w.rev, at: w.at})
	}
	for k, w := range r.embedded {
		stage(stageEmbedded, k, stageRev{set: true, rev: w.rev, at: w.at})
	}
	return out
}

// stageWinners returns, in key order, the accepted winners of one stage and the keys whose
// older rows they replace.
func stageWinners[T any](m map[key]*revised[T], prog map[key]*progressMerge, stage int) (keys, replace []key) {
	for _, k := range sortedKeys(m) {
		pm := prog[k]
		if !pm.accept[stage] {
			continue
		}
		keys = append(keys, k)
		if pm.replaces(stage) {
			replace = append(replace, k)
		}
	}
	return keys, replace
}

func queueTags(b *writes, r *reduced, prog map[key]*progressMerge) {
	keys, replace := stageWinners(r.tagged, prog, stageTagged)
	var ch, msg, ver []int64
	var rev, pos []int32
	var tag, trigger, provider, model []pgtype.Text
	var score []float64
	for _, k := range keys {
		p := r.tagged[k].p
		seen := map[string]bool{}
		for _, t := range p.Tags {
			if seen[t.Name] {
				continue
			}
			seen[t.Name] = true
			ch, msg, ver = append(ch, k.ch), append(msg, k.msg), append(ver, p.Version)
			rev, pos = append(rev, int32(p.Revision)), append(pos, int32(len(seen)-1))
			tag, score = append(tag, text(t.Name)), append(score, t.Score)
			trigger, provider, model = append(trigger, text(p.Trigger)), append(provider, text(p.Provider)), append(model, optText(p.Model))
		}
	}
	deletePosts(b, "post_tags", replace)
	var rows cols
	rows.add("channel_id", "bigint", ch)
	rows.add("message_id", "bigint", msg)
	rows.add("tag", "text", tag)
	rows.add("position", "integer", pos)
	rows.add("score", "double precision", score)
	rows.add("trigger", "text", trigger)
	rows.add("version", "bigint", ver)
	rows.add("revision", "integer", rev)
	rows.add("provider", "text", provider)
	rows.add("model", "text", model)
	insert(b, "post_tags", &rows)
}

// queueTopics writes the topics of the newest embedded revision: posts.embedded carries a
// post's topics (the embedder computed them from the vector, or passed on the chat tagger's).
func queueTopics(b *writes, r *reduced, prog map[key]*progressMerge) {
	keys, replace := stageWinners(r.embedded, prog, stageEmbedded)
	var ch, msg, ver []int64
	var rev []int32
	var topic []string
	for _, k := range keys {
		p := r.embedded[k].p
		seen := map[string]bool{}
		for _, t := range p.Topics {
			if seen[t] {
				continue
			}
			seen[t] = true
			ch, msg, ver, rev = append(ch, k.ch), append(msg, k.msg), append(ver, p.Version), append(rev, int32(p.Revision))
			topic = append(topic, t)
		}
	}
	deletePosts(b, "post_topics", replace)
	var rows cols
	rows.add("channel_id", "bigint", ch)
	rows.add("message_id", "bigint", msg)
	rows.add("topic", "text", topic)
	rows.add("version", "bigint", ver)
	rows.add("revision", "integer", rev)
	insert(b, "post_topics", &rows)
}

func queueVision(b *writes, r *reduced, prog map[key]*progressMerge) {
	keys, replace := stageWinners(r.vision, prog, stageVision)
	var ch, msg, ver []int64
	var rev, pos []int32
	var sha, desc, ocr, labels, phash, errs, provider, model []pgtype.Text
	var reason, format, dhash, colors, ocrErr, objects, scene, provErr, dupSHA []pgtype.Text
	var ocrConf, nsfw []pgtype.Float8
	var meme []bool
	var dupCh, dupMsg []pgtype.Int8
	var dupDist []pgtype.Int4
	var width, height []pgtype.Int4
	var analyzed []pgtype.Timestamptz
	for _, k := range keys {
		p := r.vision[k].p
		for i, it := range p.Items {
			ch, msg, ver = append(ch, k.ch), append(msg, k.msg), append(ver, p.Version)
			rev, pos = append(rev, int32(p.Revision)), append(pos, int32(i))
			sha, desc, ocr = append(sha, text(it.MediaSHA256)), append(desc, optText(it.Description)), append(ocr, optText(it.OCRText))
			labels, phash, errs = append(labels, textArray(it.Labels)), append(phash, optText(it.PHash)), append(errs, optText(it.Error))
			width, height = append(width, optInt4(it.Width)), append(height, optInt4(it.Height))
			provider, model = append(provider, text(p.Provider)), append(model, optText(p.Model))
			analyzed = append(analyzed, optTS(usec(p.AnalyzedAt)))
			reason, format, dhash = append(reason, optText(it.Reason)), append(format, optText(it.Format)), append(dhash, optText(it.DHash))
			colors, objects = append(colors, textArray(it.Colors)), append(objects, textArray(it.Objects))
			ocrConf, ocrErr = append(ocrConf, optFloat8(it.OCRConfidence)), append(ocrErr, optText(it.OCRError))
			scene, meme, provErr = append(scene, optText(it.Scene)), append(meme, it.IsMeme), append(provErr, optText(it.ProviderError))
			if it.NSFW != nil {
				nsfw = append(nsfw, pgtype.Float8{Float64: *it.NSFW, Valid: true})
			} else {
				nsfw = append(nsfw, pgtype.Float8{})
			}
			if d := it.NearDuplicateOf; d != nil {
				dupCh, dupMsg = append(dupCh, pgtype.Int8{Int64: int64(d.ChannelID), Valid: true}), append(dupMsg, pgtype.Int8{Int64: d.MessageID, Valid: true})
				dupSHA, dupDist = append(dupSHA, optText(d.MediaSHA256)), append(dupDist, pgtype.Int4{Int32: int32(d.Distance), Valid: true})
			} else {
				dupCh, dupMsg = append(dupCh, pgtype.Int8{}), append(dupMsg, pgtype.Int8{})
				dupSHA, dupDist = append(dupSHA, pgtype.Text{}), append(dupDist, pgtype.Int4{})
			}
		}
	}
	deletePosts(b, "post_vision", replace)
	var rows cols
	rows.add("channel_id", "bigint", ch)
	rows.add("message_id", "bigint", msg)
	rows.add("position", "integer", pos)
	rows.add("media_sha256", "text", sha)
	rows.add("description", "text", desc)
	rows.add("ocr_text", "text", ocr)
	rows.addCast("labels", "text[]", labels)
	rows.add("phash", "text", phash)
	rows.add("width", "integer", width)
	rows.add("height", "integer", height)
	rows.add("error", "text", errs)
	rows.add("provider", "text", provider)
	rows.add("model", "text", model)
	rows.add("analyzed_at", "timestamptz", analyzed)
	rows.add("version", "bigint", ver)
	rows.add("revision", "integer", rev)
	rows.add("reason", "text", reason)
	rows.add("format", "text", format)
	rows.add("dhash", "text", dhash)
	rows.addCast("colors", "text[]", colors)
	rows.add("ocr_confidence", "double precision", ocrConf)
	rows.add("ocr_error", "text", ocrErr)
	rows.addCast("objects", "text[]", objects)
	rows.add("scene", "text", scene)
	rows.add("is_meme", "boolean", meme)
	rows.add("nsfw", "double precision", nsfw)
	rows.add("provider_error", "text", provErr)
	rows.add("dup_channel_id", "bigint", dupCh)
	rows.add("dup_message_id", "bigint", dupMsg)
	rows.add("dup_media_sha256", "text", dupSHA)
	rows.add("dup_distance", "integer", dupDist)
	insert(b, "post_vision", &rows)
}

func queuePostPages(b *writes, r *reduced, prog map[key]*progressMerge) {
	keys, replace := stageWinners(r.enriched, prog, stageEnriched)
	var ch, msg, ver []int64
	var rev, pos []int32
	var url, errs, reason, finalURL, domain, title, site, byline, excerpt, lang []pgtype.Text
	var status, words []pgtype.Int4
	var fetched []pgtype.Timestamptz
	for _, k := range keys {
		p := r.enriched[k].p
		for i, pg := range p.Pages {
			ch, msg, ver = append(ch, k.ch), append(msg, k.msg), append(ver, p.Version)
			rev, pos = append(rev, int32(p.Revision)), append(pos, int32(i))
			url, errs, status = append(url, text(pg.URL)), append(errs, optText(pg.Error)), append(status, optInt4(pg.Status))
			reason, finalURL, domain = append(reason, optText(pg.Reason)), append(finalURL, optText(pg.FinalURL)), append(domain, optText(pg.Domain))
			title, site, byline = append(title, optText(pg.Title)), append(site, optText(pg.Site)), append(byline, optText(pg.Byline))
			excerpt, lang, words = append(excerpt, optText(pg.Excerpt)), append(lang, optText(pg.Lang)), append(words, optInt4(pg.WordCount))
			fetched = append(fetched, optTS(usec(pg.FetchedAt)))
		}
	}
	deletePosts(b, "post_pages", replace)
	var rows cols
	rows.add("channel_id", "bigint", ch)
	rows.add("message_id", "bigint", msg)
	rows.add("position", "integer", pos)
	rows.add("url", "text", url)
	rows.add("status", "integer", status)
	rows.add("error", "text", errs)
	rows.add("version", "bigint", ver)
	rows.add("revision", "integer", rev)
	rows.add("reason", "text", reason)
	rows.add("final_url", "text", finalURL)
	rows.add("domain", "text", domain)
	rows.add("title", "text", title)
	rows.add("site", "text", site)
	rows.add("byline", "text", byline)
	rows.add("excerpt", "text", excerpt)
	rows.add("lang", "text", lang)
	rows.add("word_count", "integer", words)
	rows.add("fetched_at", "timestamptz", fetched)
	insert(b, "post_pages", &rows)
}

// pageCols accumulates pages columns in two groups: the newest successful fetch and the
// newest failed one.
type pageCols struct {
	url                                           []string
	domain, finalURL, title, txt, lang, sha, errs []pgtype.Text
	site, byline, excerpt, errReason              []pgtype.Text
	status, words                                 []pgtype.Int4
	fetched, errAt                                []pgtype.Timestamptz
}

func (pc *pageCols) add(u string, ok, bad *pageObs) {
	pc.url = append(pc.url, u)
	if ok != nil {
		pg := ok.page
		pc.domain = append(pc.domain, text(pg.Domain))
		pc.finalURL, pc.title, pc.txt = append(pc.finalURL, optText(pg.FinalURL)), append(pc.title, optText(pg.Title)), append(pc.txt, optText(pg.Text))
		pc.lang, pc.sha = append(pc.lang, optText(pg.Lang)), append(pc.sha, optText(pg.ContentSHA256))
		pc.status, pc.fetched = append(pc.status, optInt4(pg.Status)), append(pc.fetched, ts(ok.at))
		pc.site, pc.byline, pc.excerpt = append(pc.site, optText(pg.Site)), append(pc.byline, optText(pg.Byline)), append(pc.excerpt, optText(pg.Excerpt))
		pc.words = append(pc.words, optInt4(pg.WordCount))
	} else {
		var domain pgtype.Text
		if bad != nil {
			domain = text(bad.page.Domain)
		}
		pc.domain = append(pc.domain, domain)
		pc.finalURL, pc.title, pc.txt = append(pc.finalURL, pgtype.Text{}), append(pc.title, pgtype.Text{}), append(pc.txt, pgtype.Text{})
		pc.lang, pc.sha = append(pc.lang, pgtype.Text{}), append(pc.sha, pgtype.Text{})
		pc.status, pc.fetched = append(pc.status, pgtype.Int4{}), append(pc.fetched, pgtype.Timestamptz{})
		pc.site, pc.byline, pc.excerpt = append(pc.site, pgtype.Text{}), append(pc.byline, pgtype.Text{}), append(pc.excerpt, pgtype.Text{})
		pc.words = append(pc.words, pgtype.Int4{})
	}
	if bad != nil {
		msg := bad.page.Error
		if msg == "" {
			msg = bad.page.Reason
		}
		pc.errs, pc.errAt = append(pc.errs, text(msg)), append(pc.errAt, ts(bad.at))
		pc.errReason = append(pc.errReason, optText(bad.page.Reason))
	} else {
		pc.errs, pc.errAt = append(pc.errs, pgtype.Text{}), append(pc.errAt, pgtype.Timestamptz{})
		pc.errReason = append(pc.errReason, pgtype.Text{})
	}
}

const (
	groupFetched = 1 << iota
	groupFailed
)

func (pc *pageCols) cols(groups int) *cols {
	var c cols
	c.add("url", "text", pc.url)
	if groups&groupFetched != 0 {
		c.add("domain", "text", pc.domain)
		c.add("final_url", "text", pc.finalURL)
		c.add("status", "integer", pc.status)
		c.add("title", "text", pc.title)
		c.add("text", "text", pc.txt)
		c.add("lang", "text", pc.lang)
		c.add("content_sha256", "text", pc.sha)
		c.add("fetched_at", "timestamptz", pc.fetched)
		c.add("site", "text", pc.site)
		c.add("byline", "text", pc.byline)
		c.add("excerpt", "text", pc.excerpt)
		c.add("word_count", "integer", pc.words)
	}
	if groups&groupFailed != 0 {
		c.add("error", "text", pc.errs)
		c.add("error_at", "timestamptz", pc.errAt)
		c.add("error_reason", "text", pc.errReason)
	}
	return &c
}

// queuePages merges page observations: the content columns follow the newest successful
// fetch, error and error_at the newest failed one (ties: the later fact).
func queuePages(b *writes, r *reduced, st *stored, after *stored) {
	urls := map[string]bool{}
	for u := range r.pageOK {
		urls[u] = true
	}
	for u := range r.pageErr {
		urls[u] = true
	}
	var fresh, upOK, upErr pageCols
	for _, u := range slices.Sorted(maps.Keys(urls)) {
		ok, bad := r.pageOK[u], r.pageErr[u]
		old, exists := st.pages[u]
		now := old
		switch {
		case !exists:
			fresh.add(u, ok, bad)
			if ok != nil {
				now.fetchedAt = ok.at
			}
			if bad != nil {
				now.errorAt = bad.at
			}
		default:
			if ok != nil && (old.fetchedAt.IsZero() || !ok.at.Before(old.fetchedAt)) {
				upOK.add(u, ok, nil)
				now.fetchedAt = ok.at
			}
			if bad != nil && (old.errorAt.IsZero() || !bad.at.Before(old.errorAt)) {
				upErr.add(u, nil, bad)
				now.errorAt = bad.at
			}
		}
		if after != nil && (!exists || now != old) {
			after.pages[u] = now
		}
	}
	insert(b, "pages", fresh.cols(groupFetched|groupFailed))
	update(b, "pages", upOK.cols(groupFetched), "url")
	update(b, "pages", upErr.cols(groupFailed), "url")
}

func queueEmbeddings(b *writes, r *reduced, prog map[key]*progressMerge) {
	keys, replace := stageWinners(r.embedded, prog, stageEmbedded)
	isReplace := map[key]bool{}
	for _, k := range replace {
		isReplace[k] = true
	}
	var fresh, up struct {
		ch, msg, ver           []int64
		rev, dim               []int32
		provider, model, input []pgtype.Text
		embVer                 []pgtype.Text
		lexical                []bool
	}
	for _, k := range keys {
		p := r.embedded[k].p
		e := &fresh
		if isReplace[k] {
			e = &up
		}
		e.ch, e.msg, e.ver, e.rev = append(e.ch, k.ch), append(e.msg, k.msg), append(e.ver, p.Rev.Version), append(e.rev, int32(p.Revision))
		e.provider, e.model, e.input = append(e.provider, text(p.Provider)), append(e.model, optText(p.Model)), append(e.input, optText(p.InputSHA256))
		e.dim = append(e.dim, int32(len(p.Vector)))
		e.embVer, e.lexical = append(e.embVer, optText(p.EmbedderVersion)), append(e.lexical, p.Lexical)
	}
	for _, e := range []*struct {
		ch, msg, ver           []int64
		rev, dim               []int32
		provider, model, input []pgtype.Text
		embVer                 []pgtype.Text
		lexical                []bool
	}{&fresh, &up} {
		var c cols
		c.add("channel_id", "bigint", e.ch)
		c.add("message_id", "bigint", e.msg)
		c.add("version", "bigint", e.ver)
		c.add("revision", "integer", e.rev)
		c.add("provider", "text", e.provider)
		c.add("model", "text", e.model)
		c.add("dim", "integer", e.dim)
		c.add("input_sha256", "text", e.input)
		c.add("embedder_version", "text", e.embVer)
		c.add("lexical", "boolean", e.lexical)
		if e == &fresh {
			insert(b, "post_embeddings", &c)
		} else {
			update(b, "post_embeddings", &c, "channel_id", "message_id")
		}
	}
}

func sortedAlbumKeys[V any](m map[albumKey]V) []albumKey {
	ks := slices.Collect(maps.Keys(m))
	slices.SortFunc(ks, func(a, b albumKey) int {
		return cmp.Or(cmp.Compare(a.ch, b.ch), cmp.Compare(a.grouped, b.grouped))
	})
	return ks
}

// queueAlbums: the last albums.parsed of an album (log order) sets its items and caption, the
// last albums.assembled its outcome. Album facts are few; plain upserts suffice.
func queueAlbums(b *writes, r *reduced) {
	if len(r.albums) > 0 {
		keys := sortedAlbumKeys(r.albums)
		var ch, grp []int64
		var caption []pgtype.Text
		var posted []pgtype.Timestamptz
		var inferred []bool
		var count []int32
		var ich, igrp, imsg []int64
		var ipos []int32
		var ikind, isha []pgtype.Text
		for _, k := range keys {
			a := r.albums[k]
			ch, grp = append(ch, k.ch), append(grp, k.grouped)
			caption, posted = append(caption, optText(a.Caption)), append(posted, optTS(usec(a.PostedAt)))
			inferred, count = append(inferred, a.Inferred), append(count, int32(len(a.Items)))
			for i, it := range a.Items {
				ich, igrp, imsg, ipos = append(ich, k.ch), append(igrp, k.grouped), append(imsg, it.MessageID), append(ipos, int32(i))
				ikind, isha = append(ikind, optText(it.MediaKind)), append(isha, optText(it.MediaSHA256))
			}
		}
		var kc cols
		kc.add("channel_id", "bigint", ch)
		kc.add("grouped_id", "bigint", grp)
		b.Queue(fmt.Sprintf(`DELETE FROM album_items x USING %s WHERE x.channel_id = t.channel_id AND x.grouped_id = t.grouped_id`, kc.from()), kc.args...)
		var items cols
		items.add("channel_id", "bigint", ich)
		items.add("grouped_id", "bigint", igrp)
		items.add("position", "integer", ipos)
		items.add("message_id", "bigint", imsg)
		items.add("media_kind", "text", ikind)
		items.add("media_sha256", "text", isha)
		insert(b, "album_items", &items)
		kc.add("caption", "text", caption)
		kc.add("posted_at", "timestamptz", posted)
		kc.add("inferred", "boolean", inferred)
		kc.add("item_count", "integer", count)
		b.Queue(fmt.Sprintf(`INSERT INTO albums AS x (%s) SELECT %s FROM %s ON CONFLICT (channel_id, grouped_id) DO UPDATE
SET caption = EXCLUDED.caption, posted_at = EXCLUDED.posted_at, inferred = EXCLUDED.inferred, item_count = EXCLUDED.item_count`,
			kc.list(), kc.selectList(), kc.from()), kc.args...)
	}
	if len(r.assembled) > 0 {
		keys := sortedAlbumKeys(r.assembled)
		var ch, grp []int64
		var outcome, summary, labels, ids, missing []pgtype.Text
		var groupedIDs, version, caption, descs, ocr []pgtype.Text
		var count []pgtype.Int4
		var cover []pgtype.Int8
		var at, posted []pgtype.Timestamptz
		for _, k := range keys {
			a := r.assembled[k]
			ch, grp = append(ch, k.ch), append(grp, k.grouped)
			outcome, summary, labels = append(outcome, text(a.Outcome)), append(summary, optText(a.Summary)), append(labels, textArray(a.Labels))
			ids, missing = append(ids, int8Array(a.MessageIDs)), append(missing, int8Array(a.Missing))
			at = append(at, optTS(usec(a.At)))
			gids := a.GroupedIDs
			if len(gids) == 0 {
				gids = []int64{a.GroupedID}
			}
			n := a.ItemCount
			if n == 0 {
				n = len(a.MessageIDs)
			}
			groupedIDs, version, count = append(groupedIDs, int8Array(gids)), append(version, optText(a.Version)), append(count, pgtype.Int4{Int32: int32(n), Valid: true})
			cover, caption, posted = append(cover, optInt8(a.CoverMessageID)), append(caption, optText(a.Caption)), append(posted, optTS(usec(a.PostedAt)))
			descs, ocr = append(descs, textArray(a.Descriptions)), append(ocr, optText(a.OCRText))
		}
		var c cols
		c.add("channel_id", "bigint", ch)
		c.add("grouped_id", "bigint", grp)
		c.add("outcome", "text", outcome)
		c.add("summary", "text", summary)
		c.addCast("labels", "text[]", labels)
		c.addCast("assembled_message_ids", "bigint[]", ids)
		c.addCast("missing_message_ids", "bigint[]", missing)
		c.add("assembled_at", "timestamptz", at)
		c.addCast("grouped_ids", "bigint[]", groupedIDs)
		c.add("summary_version", "text", version)
		c.add("assembled_item_count", "integer", count)
		c.add("cover_message_id", "bigint", cover)
		c.add("assembled_caption", "text", caption)
		c.add("assembled_posted_at", "timestamptz", posted)
		c.addCast("descriptions", "text[]", descs)
		c.add("ocr_text", "text", ocr)
		b.Queue(fmt.Sprintf(`INSERT INTO albums AS x (%s) SELECT %s FROM %s ON CONFLICT (channel_id, grouped_id) DO UPDATE
SET outcome = EXCLUDED.outcome, summary = EXCLUDED.summary, labels = EXCLUDED.labels,
  assembled_message_ids = EXCLUDED.assembled_message_ids, missing_message_ids = EXCLUDED.missing_message_ids, assembled_at = EXCLUDED.assembled_at,
  grouped_ids = EXCLUDED.grouped_ids, summary_version = EXCLUDED.summary_version, assembled_item_count = EXCLUDED.assembled_item_count,
  cover_message_id = EXCLUDED.cover_message_id, assembled_caption = EXCLUDED.assembled_caption,
  assembled_posted_at = EXCLUDED.assembled_posted_at, descriptions = EXCLUDED.descriptions, ocr_text = EXCLUDED.ocr_text`,
			c.list(), c.selectList(), c.from()), c.args...)
	}
}

// queueTrends: the last trends.detected of a (tag, window, window end) wins.
func queueTrends(b *writes, r *reduced) {
	if len(r.trends) == 0 {
		return
	}
	keys := slices.Collect(maps.Keys(r.trends))
	slices.SortFunc(keys, func(a, b trendKey) int {
		return cmp.Or(cmp.Compare(a.tag, b.tag), cmp.Compare(a.window, b.window), cmp.Compare(a.end, b.end))
	})
	var tag, window []string
	var start, end, detected []pgtype.Timestamptz
	var count []int32
	var chans, posts []pgtype.Text
	var baseline, score []float64
	var expected []pgtype.Float8
	var method []pgtype.Text
	for _, k := range keys {
		w := r.trends[k]
		p := w.p
		tag, window = append(tag, p.Tag), append(window, p.Window)
		start, end, detected = append(start, ts(usec(p.WindowStart))), append(end, ts(usec(p.WindowEnd))), append(detected, ts(w.at))
		count = append(count, int32(p.Count))
		ids := make([]int64, len(p.Channels))
		for i, c := range p.Channels {
			ids[i] = int64(c)
		}
		chans, posts = append(chans, int8Array(ids)), append(posts, textArray(p.Posts))
		baseline, score = append(baseline, p.Baseline), append(score, p.Score)
		expected, method = append(expected, optFloat8(p.Expected)), append(method, optText(p.Method))
	}
	var c cols
	c.add("tag", "text", tag)
	c.add("window_size", "text", window)
	c.add("window_start", "timestamptz", start)
	c.add("window_end", "timestamptz", end)
	c.add("count", "integer", count)
	c.addCast("channels", "bigint[]", chans)
	c.add("baseline", "double precision", baseline)
	c.add("score", "double precision", score)
	c.addCast("posts", "text[]", posts)
	c.add("detected_at", "timestamptz", detected)
	c.add("expected", "double precision", expected)
	c.add("method", "text", method)
	b.Queue(fmt.Sprintf(`INSERT INTO trends AS x (%s) SELECT %s FROM %s ON CONFLICT (tag, window_size, window_end) DO UPDATE
SET window_start = EXCLUDED.window_start, count = EXCLUDED.count, channels = EXCLUDED.channels, baseline = EXCLUDED.baseline,
  score = EXCLUDED.score, posts = EXCLUDED.posts, detected_at = EXCLUDED.detected_at, expected = EXCLUDED.expected, method = EXCLUDED.method`,
		c.list(), c.selectList(), c.from()), c.args...)
}

// queueProgress writes the merged pipeline_progress rows: new ones inserted, changed ones
// updated.
func queueProgress(b *writes, prog map[key]*progressMerge) {
	type progCols struct {
		ch, msg             []int64
		parsedAt, versionAt []pgtype.Timestamptz
		version             []pgtype.Int8
		sv                  [numStages][]pgtype.Int8
		sr                  [numStages][]pgtype.Int4
		sa                  [numStages][]pgtype.Timestamptz
	}
	var fresh, up progCols
	for _, pc := range []*progCols{&fresh, &up} {
		n := len(prog)
		pc.ch, pc.msg = make([]int64, 0, n), make([]int64, 0, n)
		pc.parsedAt, pc.versionAt, pc.version = make([]pgtype.Timestamptz, 0, n), make([]pgtype.Timestamptz, 0, n), make([]pgtype.Int8, 0, n)
		for i := range numStages {
			pc.sv[i], pc.sr[i], pc.sa[i] = make([]pgtype.Int8, 0, n), make([]pgtype.Int4, 0, n), make([]pgtype.Timestamptz, 0, n)
		}
	}
	for _, k := range sortedKeys(prog) {
		m := prog[k]
		if !m.changed() {
			continue
		}
		pc := &fresh
		if m.old != nil {
			pc = &up
		}
		row := m.row
		pc.ch, pc.msg = append(pc.ch, k.ch), append(pc.msg, k.msg)
		pc.parsedAt = append(pc.parsedAt, optTS(row.parsedAt))
		pc.version = append(pc.version, pgtype.Int8{Int64: row.version, Valid: row.hasVersion})
		pc.versionAt = append(pc.versionAt, optTS(row.versionAt))
		for i, s := range row.stages {
			pc.sv[i] = append(pc.sv[i], pgtype.Int8{Int64: s.rev.Version, Valid: s.set})
			pc.sr[i] = append(pc.sr[i], pgtype.Int4{Int32: int32(s.rev.Revision), Valid: s.set})
			pc.sa[i] = append(pc.sa[i], pgtype.Timestamptz{Time: s.at, Valid: s.set})
		}
	}
	for _, pc := range []*progCols{&fresh, &up} {
		var c cols
		c.add("channel_id", "bigint", pc.ch)
		c.add("message_id", "bigint", pc.msg)
		c.add("parsed_at", "timestamptz", pc.parsedAt)
		c.add("version", "bigint", pc.version)
		c.add("version_at", "timestamptz", pc.versionAt)
		for i, s := range stageNames {
			c.add(s+"_version", "bigint", pc.sv[i])
			c.add(s+"_revision", "integer", pc.sr[i])
			c.add(s+"_at", "timestamptz", pc.sa[i])
		}
		if pc == &fresh {
			insert(b, "pipeline_progress", &c)
		} else {
			update(b, "pipeline_progress", &c, "channel_id", "message_id")
		}
	}
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func orEmptyMap(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}
