package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/textlang"
)

// The search document of a post (table post_search) is derived from the rows the projection
// keeps: the post's text, its current tags, the descriptions and OCR text of its analysed
// images, and the titles and excerpts of the pages its newest enrichment linked. Whenever a
// batch changes one of those parts for a post, the document is recomputed at the end of the
// batch (after the COPYs, so it sees every row the batch wrote): one statement reads the
// parts from the tables, Go folds them and chooses the configuration (searchFold and
// searchConfig, the rules of the SQL functions search_norm and search_config, which cost
// milliseconds per document in SQL and microseconds here), and one statement writes the
// documents (to_tsvector in the chosen configuration). The result is a function of the stored
// rows only, so it does not depend on how facts were batched, and a rebuild gives the same
// documents.

// searchPartsSQL reads the searchable parts of the posts given as two arrays ($1 channel
// ids, $2 message ids): the text; the tags, space-separated; the titles of the linked pages,
// one per line; the image descriptions and OCR text, then the page excerpts, one per line.
const searchPartsSQL = `SELECT t.channel_id, t.message_id, coalesce(p.text, ''),
  coalesce((SELECT string_agg(g.tag, ' ' ORDER BY g.position) FROM post_tags g
    WHERE g.channel_id = t.channel_id AND g.message_id = t.message_id), ''),
  coalesce((SELECT string_agg(pp.title, E'\n' ORDER BY pp.position) FROM post_pages pp
    WHERE pp.channel_id = t.channel_id AND pp.message_id = t.message_id AND pp.title <> ''), ''),
  concat_ws(E'\n',
    (SELECT string_agg(nullif(concat_ws(E'\n', v.description, v.ocr_text), ''), E'\n' ORDER BY v.position) FROM post_vision v
      WHERE v.channel_id = t.channel_id AND v.message_id = t.message_id),
    (SELECT string_agg(pp.excerpt, E'\n' ORDER BY pp.position) FROM post_pages pp
      WHERE pp.channel_id = t.channel_id AND pp.message_id = t.message_id AND pp.excerpt <> ''))
FROM unnest($1::bigint[], $2::bigint[]) AS t(channel_id, message_id)
LEFT JOIN posts p ON p.channel_id = t.channel_id AND p.message_id = t.message_id`

// searchDocSQL writes documents from folded parts. Weights: A the text, B tags and page
// titles, C image text and page excerpts. Stemming the text is most of a document's cost
// (to_tsvector, ~0.15 ms for a post of 400 characters), and a live post's document is written
// up to three times (parsed, then tagged, then enriched): where the text did not change since
// the stored document was made ($8, keep) and the configuration is the same, its A part is
// taken from the stored document (ts_filter keeps exactly the positions of weight A, which
// are the text's: the B and C parts are concatenated after it) instead of stemming the text
// again.
const searchDocSQL = `INSERT INTO post_search AS x (channel_id, message_id, config, extra, document)
SELECT t.channel_id, t.message_id, t.config::regconfig, t.extra,
  CASE WHEN t.keep AND s.config = t.config::regconfig THEN ts_filter(s.document, '{a}')
    ELSE setweight(to_tsvector(t.config::regconfig, t.a), 'A') END ||
  setweight(to_tsvector(t.config::regconfig, t.b), 'B') || setweight(to_tsvector(t.config::regconfig, t.c), 'C')
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::boolean[])
  AS t(channel_id, message_id, config, extra, a, b, c, keep)
LEFT JOIN post_search s ON s.channel_id = t.channel_id AND s.message_id = t.message_id
ON CONFLICT (channel_id, message_id) DO UPDATE
SET config = EXCLUDED.config, extra = EXCLUDED.extra, document = EXCLUDED.document
WHERE (x.config, x.extra, x.document) IS DISTINCT FROM (EXCLUDED.config, EXCLUDED.extra, EXCLUDED.document)`

// queueSearchDocs arranges the recomputation of the search documents of every post whose
// content (content: the posts whose parsed/edited winner was accepted), tags, vision or pages
// the batch changed. A stage winner that adds nothing searchable (no tag, no image text, no
// page title or excerpt) where no older winner's rows are replaced changes no part, so it
// touches no document: a live post's enrichment without links costs no recomputation.
func queueSearchDocs(b *writes, r *reduced, content map[key]bool, prog map[key]*progressMerge) {
	touched := map[key]bool{}
	for k := range content {
		touched[k] = true
	}
	for k, m := range prog {
		switch {
		case m.accept[stageTagged] && (m.replaces(stageTagged) || len(r.tagged[k].p.Tags) > 0),
			m.accept[stageVision] && (m.replaces(stageVision) || visionSearchable(r.vision[k].p)),
			m.accept[stageEnriched] && (m.replaces(stageEnriched) || pagesSearchable(r.enriched[k].p)):
			touched[k] = true
		}
	}
	if len(touched) == 0 {
		return
	}
	b.searchKeys = keyCols(touched)
	// The text of a post whose content is not in the batch is the one its stored document
	// was made from: every accepted content recomputes the document in its batch.
	b.searchKeep = map[key]bool{}
	for k := range touched {
		if !content[k] {
			b.searchKeep[k] = true
		}
	}
}

// visionSearchable reports whether an analysis gives a document text (searchPartsSQL:
// descriptions and OCR text).
func visionSearchable(p *events.PostVisionAnalyzed) bool {
	for _, it := range p.Items {
		if it.Description != "" || it.OCRText != "" {
			return true
		}
	}
	return false
}

// pagesSearchable reports whether an enrichment gives a document text (searchPartsSQL: page
// titles and excerpts).
func pagesSearchable(p *events.PostEnriched) bool {
	for _, pg := range p.Pages {
		if pg.Title != "" || pg.Excerpt != "" {
			return true
		}
	}
	return false
}

// searchDocs are the folded parts of the documents to write (searchDocSQL's arrays).
type searchDocs struct {
	keep                   map[key]bool
	ch, msg                []int64
	config, extra, a, b, c []string
	kept                   []bool
}

// scan reads searchPartsSQL's rows and folds each post's parts.
func (d *searchDocs) scan(rows pgx.Rows) error {
	var k key
	var body, tags, titles, more string
	for rows.Next() {
		if err := rows.Scan(&k.ch, &k.msg, &body, &tags, &titles, &more); err != nil {
			rows.Close()
			return fmt.Errorf("read search parts: %w", err)
		}
		x := joinNonEmpty("\n", tags, titles, more)
		d.ch, d.msg, d.kept = append(d.ch, k.ch), append(d.msg, k.msg), append(d.kept, d.keep[k])
		d.config, d.extra = append(d.config, "pg_catalog."+searchConfig(body+"\n"+x)), append(d.extra, x)
		d.a, d.b, d.c = append(d.a, searchFold(body)), append(d.b, searchFold(tags+"\n"+titles)), append(d.c, searchFold(more))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read search parts: %w", err)
	}
	return nil
}

// write writes the documents.
func (d *searchDocs) write(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, searchDocSQL, d.ch, d.msg, d.config, d.extra, d.a, d.b, d.c, d.kept); err != nil {
		return fmt.Errorf("write search documents: %w", err)
	}
	return nil
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// The fold of search_norm (migrations/00002_derived_details.sql): foldFrom[i] becomes
// foldTo[i]. Documents, queries and headlines are folded in Go; the SQL functions serve
// ad-hoc queries (SCHEMA.md). The two must stay equal; TestSearchFoldMatchesSQL compares
// them.
const (
	foldFrom = "ABCDEFGHIJKLMNOPQRSTUVWXYZАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯЄІЇЎҐёѐ\x01\x02"
	foldTo   = "abcdefghijklmnopqrstuvwxyzабвгдеежзийклмнопрстуфхцчшщъыьэюяєіїўґее  "
)

var foldMap = func() map[rune]rune {
	from, to := []rune(foldFrom), []rune(foldTo)
	if len(from) != len(to) {
		panic("postgres: search fold tables differ in length")
	}
	m := make(map[rune]rune, len(from))
	for i, r := range from {
		m[r] = to[i]
	}
	return m
}()

// searchFold is search_norm: ASCII and Cyrillic upper case to lower case, ё to е, U+0001
// and U+0002 to spaces, one character for one.
func searchFold(s string) string {
	return strings.Map(func(r rune) rune {
		if f, ok := foldMap[r]; ok {
			return f
		}
		return r
	}, s)
}

// searchConfig is search_config: the text search configuration of the language textlang
// tells (russian, english; simple when it tells none).
func searchConfig(doc string) string {
	switch textlang.Of(doc) {
	case "ru":
		return "russian"
	case "en":
		return "english"
	}
	return "simple"
}
