package postgres

// The search document of a post (table post_search) is derived from the rows the projection
// keeps: the post's text, its current tags, the descriptions and OCR text of its analysed
// images, and the titles and excerpts of the pages its newest enrichment linked. Whenever a
// batch changes one of those parts for a post, one statement at the end of the batch (after
// the COPYs, so it sees every row the batch wrote) recomputes the post's document from the
// tables. The result is a function of the stored rows only, so it does not depend on how
// facts were batched, and a rebuild gives the same documents.

// searchDocSQL recomputes the documents of the posts given as two arrays ($1 channel ids, $2
// message ids). Weights: A the post text, B tags and page titles, C image descriptions, OCR
// text and page excerpts. extra keeps the non-text parts, one per line, for the excerpts of
// Search. The configuration is chosen from all of it by search_config; every part is folded
// by search_norm first (see the migration).
const searchDocSQL = `INSERT INTO post_search AS x (channel_id, message_id, config, extra, document)
SELECT d.channel_id, d.message_id, c.config, d.extra,
  setweight(to_tsvector(c.config, search_norm(d.body)), 'A') ||
  setweight(to_tsvector(c.config, search_norm(d.tags || E'\n' || d.titles)), 'B') ||
  setweight(to_tsvector(c.config, search_norm(d.more)), 'C')
FROM (
  SELECT s.channel_id, s.message_id, s.body, s.tags, s.titles, s.more,
    concat_ws(E'\n', nullif(s.tags, ''), nullif(s.titles, ''), nullif(s.more, '')) AS extra
  FROM (
    SELECT t.channel_id, t.message_id, coalesce(p.text, '') AS body,
      coalesce((SELECT string_agg(g.tag, ' ' ORDER BY g.position) FROM post_tags g
        WHERE g.channel_id = t.channel_id AND g.message_id = t.message_id), '') AS tags,
      coalesce((SELECT string_agg(pp.title, E'\n' ORDER BY pp.position) FROM post_pages pp
        WHERE pp.channel_id = t.channel_id AND pp.message_id = t.message_id AND pp.title <> ''), '') AS titles,
      concat_ws(E'\n',
        (SELECT string_agg(nullif(concat_ws(E'\n', v.description, v.ocr_text), ''), E'\n' ORDER BY v.position) FROM post_vision v
          WHERE v.channel_id = t.channel_id AND v.message_id = t.message_id),
        (SELECT string_agg(pp.excerpt, E'\n' ORDER BY pp.position) FROM post_pages pp
          WHERE pp.channel_id = t.channel_id AND pp.message_id = t.message_id AND pp.excerpt <> '')) AS more
    FROM unnest($1::bigint[], $2::bigint[]) AS t(channel_id, message_id)
    LEFT JOIN posts p ON p.channel_id = t.channel_id AND p.message_id = t.message_id
  ) s
) d
CROSS JOIN LATERAL (SELECT search_config(d.body || E'\n' || d.extra) AS config) c
ON CONFLICT (channel_id, message_id) DO UPDATE
SET config = EXCLUDED.config, extra = EXCLUDED.extra, document = EXCLUDED.document
WHERE (x.config, x.extra, x.document) IS DISTINCT FROM (EXCLUDED.config, EXCLUDED.extra, EXCLUDED.document)`

// queueSearchDocs queues the recomputation of the search documents of every post whose
// content (content: the posts whose parsed/edited winner was accepted), tags, vision or pages
// the batch changed.
func queueSearchDocs(b *writes, content map[key]bool, prog map[key]*progressMerge) {
	touched := map[key]bool{}
	for k := range content {
		touched[k] = true
	}
	for k, m := range prog {
		if m.accept[stageTagged] || m.accept[stageVision] || m.accept[stageEnriched] {
			touched[k] = true
		}
	}
	if len(touched) == 0 {
		return
	}
	c := keyCols(touched)
	b.final.Queue(searchDocSQL, c.args...)
}
