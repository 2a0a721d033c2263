package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/tgflow/tgflow/events"
	window "github.com/tgflow/tgflow/internal/excerpt"
	"github.com/tgflow/tgflow/migrations"
)

// Reading the read model. The functions of search.go and read.go query the tables of one
// schema (pass the live schema, "tgflow" unless TGFLOW_POSTGRES_SCHEMA says otherwise; a
// shadow or old schema works too) through any Querier: a *pgxpool.Pool, a *pgx.Conn or a
// pgx.Tx (for example a read-only transaction). They qualify every name with the schema and
// never change the session (no search_path), so they are safe on a shared pool, and they
// see the tables either before or after a Swap, never a mix, within one statement.
// Deleted posts (tombstones) are never returned by Search and Lookup; Post returns them with
// DeletedAt set.

// Querier is what the read functions need of a connection; *pgxpool.Pool, *pgx.Conn and
// pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	// ErrNotFound is returned by Post for a post the read model does not hold.
	ErrNotFound = errors.New("not found")
	// ErrInvalidQuery wraps every problem of a query's values; the message says which.
	ErrInvalidQuery = errors.New("invalid query")
)

// Limits of Search and the listing reads.
const (
	// DefaultLimit is the number of results when Limit is 0.
	DefaultLimit = 20
	// MaxLimit is the largest Limit accepted.
	MaxLimit = 500
	// ExcerptRunes is the length of Hit.Excerpt at most, in code points (plus "…" marks).
	ExcerptRunes = window.Runes
)

// Query is one search. Every field is optional; the zero Query lists the newest posts.
type Query struct {
	// Text is matched by Postgres full-text search in websearch syntax: words (all must
	// match, stemmed: "релизы" finds "релиз", "releases" finds "release"), "a phrase",
	// `or` between alternatives, -word to exclude. It is matched against the post's text,
	// its tags, the titles and excerpts of its linked pages and the descriptions and OCR text
	// of its images, each post in its own language's configuration (russian, english or
	// simple, chosen per post by its share of Cyrillic letters). Empty: no text condition,
	// results newest first with Score 0.
	Text string
	// ChannelID keeps posts of that channel (bare positive id); 0: any.
	ChannelID events.ChannelID
	// ChannelUsername keeps posts of the channel with that username (case-insensitive, with
	// or without '@'); "": any.
	ChannelUsername string
	// Tags keeps posts that carry every one of these current tags (compared after lower
	// case and '#' stripped, as the tagger normalises them).
	Tags []string
	// Topic keeps posts with this current topic (exact, lower case).
	Topic string
	// Since and Until bound the post date: Since ≤ date < Until; zero means unbounded.
	Since, Until time.Time
	// Limit is the number of hits, 1..MaxLimit; 0 means DefaultLimit.
	Limit int
}

// Span marks a highlighted part of an excerpt: [Start, End) in Unicode code points.
type Span struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// Hit is one post found by Search or Lookup.
type Hit struct {
	ChannelID events.ChannelID `json:"channel_id"`
	// ChannelTitle and ChannelUsername are "" when the channel's sync never named them.
	ChannelTitle    string    `json:"channel_title,omitempty"`
	ChannelUsername string    `json:"channel_username,omitempty"`
	MessageID       int64     `json:"message_id"`
	Date            time.Time `json:"date"`
	// Tags and Topics are the post's current ones, in the tagger's order; never nil.
	Tags   []string `json:"tags"`
	Topics []string `json:"topics"`
	// Score is the full-text rank (ts_rank, weights: text > tags and page titles > image
	// text and page excerpts); 0 without Query.Text.
	Score float64 `json:"score"`
	// Config is the text search configuration of the post: russian, english or simple
	// ("" when the post has no search document yet).
	Config string `json:"config,omitempty"`
	// Text is the post's whole text.
	Text string `json:"text"`
	// Excerpt is a window of at most ExcerptRunes code points of the post's searchable
	// text (its text, then tags, page titles, image text and page excerpts), white space
	// collapsed, around the first word that matched Query.Text (the start of the text
	// without one), "…" marking a cut. Highlights mark the matching words in it, in order.
	Excerpt    string `json:"excerpt"`
	Highlights []Span `json:"highlights"`
}

// Key is the post key "<channel_id>/<message_id>".
func (h Hit) Key() string { return events.PostKey(h.ChannelID, h.MessageID) }

// Marked returns the excerpt with every highlight between open and close, and every other
// part passed through esc (nil: unchanged); for example Marked("<mark>", "</mark>",
// html.EscapeString) for a web page, or Marked("«", "»", nil) for a terminal.
func (h Hit) Marked(open, close string, esc func(string) string) string {
	if esc == nil {
		esc = func(s string) string { return s }
	}
	rs := []rune(h.Excerpt)
	var b strings.Builder
	at := 0
	for _, s := range h.Highlights {
		if s.Start < at || s.End > len(rs) || s.Start >= s.End {
			continue
		}
		b.WriteString(esc(string(rs[at:s.Start])))
		b.WriteString(open)
		b.WriteString(esc(string(rs[s.Start:s.End])))
		b.WriteString(close)
		at = s.End
	}
	b.WriteString(esc(string(rs[at:])))
	return b.String()
}

// normalize checks q and applies the defaults; every problem wraps ErrInvalidQuery.
func (q *Query) normalize() error {
	q.Text = strings.TrimSpace(q.Text)
	q.ChannelUsername = strings.TrimPrefix(strings.TrimSpace(q.ChannelUsername), "@")
	q.Topic = strings.TrimSpace(q.Topic)
	tags := make([]string, 0, len(q.Tags))
	for _, t := range q.Tags {
		if t = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(t), "#")); t != "" {
			tags = append(tags, t)
		}
	}
	q.Tags = tags
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	var errs []error
	if q.Limit < 1 || q.Limit > MaxLimit {
		errs = append(errs, fmt.Errorf("%w: limit %d is out of range 1..%d", ErrInvalidQuery, q.Limit, MaxLimit))
	}
	if q.ChannelID < 0 {
		errs = append(errs, fmt.Errorf("%w: channel id %d is not a bare positive id", ErrInvalidQuery, q.ChannelID))
	}
	if !utf8.ValidString(q.Text) {
		errs = append(errs, fmt.Errorf("%w: text is not valid UTF-8", ErrInvalidQuery))
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		errs = append(errs, fmt.Errorf("%w: since %s is not before until %s", ErrInvalidQuery,
			q.Since.UTC().Format(time.RFC3339), q.Until.UTC().Format(time.RFC3339)))
	}
	return errors.Join(errs...)
}

// Highlight markers ts_headline puts around matches; searchFold (search_norm) maps them to spaces in
// every document, so they mark nothing else.
const (
	markOpen  = '\x01'
	markClose = '\x02'
)

const headlineOptions = "HighlightAll=true, StartSel=\x01, StopSel=\x02"

// Search returns the posts matching q, best first (by Score, then newest), at most q.Limit;
// without q.Text, the newest posts that pass the filters. Deleted posts are left out. A
// q.Text with no searchable word (only stop words such as "the" or "и") matches nothing.
// Errors: ErrInvalidQuery (wrapped) for a bad q; otherwise database errors as pgx returns
// them.
func Search(ctx context.Context, db Querier, schema string, q Query) ([]Hit, error) {
	if err := migrations.ValidateSchema(schema); err != nil {
		return nil, err
	}
	if err := q.normalize(); err != nil {
		return nil, err
	}
	s := ident(schema)
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where := []string{"p.deleted_at IS NULL", "p.version IS NOT NULL"}
	if q.ChannelID != 0 {
		where = append(where, "p.channel_id = "+arg(int64(q.ChannelID)))
	}
	if q.ChannelUsername != "" {
		where = append(where, fmt.Sprintf("p.channel_id IN (SELECT id FROM %s.channels WHERE lower(username) = lower(%s) AND id IS NOT NULL)", s, arg(q.ChannelUsername)))
	}
	for _, t := range q.Tags {
		where = append(where, fmt.Sprintf("EXISTS (SELECT 1 FROM %s.post_tags g WHERE g.channel_id = p.channel_id AND g.message_id = p.message_id AND g.tag = %s)", s, arg(t)))
	}
	if q.Topic != "" {
		where = append(where, fmt.Sprintf("EXISTS (SELECT 1 FROM %s.post_topics o WHERE o.channel_id = p.channel_id AND o.message_id = p.message_id AND o.topic = %s)", s, arg(q.Topic)))
	}
	if !q.Since.IsZero() {
		where = append(where, "p.posted_at >= "+arg(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, "p.posted_at < "+arg(q.Until))
	}
	var sql string
	if q.Text == "" {
		sql = fmt.Sprintf(`SELECT p.channel_id, p.message_id, p.posted_at, coalesce(p.text, ''), 0::float8, coalesce(s.config::text, ''), coalesce(s.extra, '')
FROM %[1]s.posts p LEFT JOIN %[1]s.post_search s ON s.channel_id = p.channel_id AND s.message_id = p.message_id
WHERE %[2]s
ORDER BY p.posted_at DESC, p.channel_id DESC, p.message_id DESC
LIMIT %[3]s`, s, strings.Join(where, " AND "), arg(q.Limit))
	} else {
		// The query folded as the documents are (searchFold is search_norm). One tsquery per
		// configuration, each matched only against the documents built in it; written out (not
		// computed once in a CTE) so that the planner sees constants, estimates their
		// selectivity and can combine GIN index scans of the three branches (BitmapOr).
		text := arg(searchFold(q.Text))
		tsq := func(cfg string) string {
			return fmt.Sprintf("websearch_to_tsquery('pg_catalog.%s', %s)", cfg, text)
		}
		sql = fmt.Sprintf(`WITH m AS (
  SELECT s.channel_id, s.message_id, s.config, s.extra, p.posted_at, p.text,
    CASE s.config WHEN 'pg_catalog.russian'::regconfig THEN %[4]s WHEN 'pg_catalog.english'::regconfig THEN %[5]s ELSE %[6]s END AS tq,
    s.document
  FROM %[1]s.post_search s
  JOIN %[1]s.posts p ON p.channel_id = s.channel_id AND p.message_id = s.message_id
  WHERE ((s.config = 'pg_catalog.russian'::regconfig AND s.document @@ %[4]s)
      OR (s.config = 'pg_catalog.english'::regconfig AND s.document @@ %[5]s)
      OR (s.config = 'pg_catalog.simple'::regconfig AND s.document @@ %[6]s))
    AND %[2]s
), top AS (
  SELECT m.*, ts_rank(m.document, m.tq)::float8 AS score FROM m
  ORDER BY score DESC, m.posted_at DESC, m.channel_id DESC, m.message_id DESC
  LIMIT %[3]s
)
SELECT top.channel_id, top.message_id, top.posted_at, coalesce(top.text, ''), top.score, top.config::text, top.extra
FROM top
ORDER BY top.score DESC, top.posted_at DESC, top.channel_id DESC, top.message_id DESC`,
			s, strings.Join(where, " AND "), arg(q.Limit), tsq("russian"), tsq("english"), tsq("simple"))
	}
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", schema, err)
	}
	var docs []string // per hit: its searchable text, text and extra
	hits, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Hit, error) {
		var h Hit
		var extra string
		if err := r.Scan(&h.ChannelID, &h.MessageID, &h.Date, &h.Text, &h.Score, &h.Config, &extra); err != nil {
			return h, err
		}
		h.Date = h.Date.UTC()
		docs = append(docs, h.Text+"\n"+extra)
		return h, nil
	})
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", schema, err)
	}
	marked := make([]string, len(hits))
	if q.Text != "" && len(hits) > 0 {
		if marked, err = headlines(ctx, db, hits, docs, q.Text); err != nil {
			return nil, fmt.Errorf("search %s: %w", schema, err)
		}
	}
	for i := range hits {
		hits[i].Excerpt, hits[i].Highlights = excerpt(docs[i], marked[i])
	}
	if err := decorate(ctx, db, schema, hits); err != nil {
		return nil, err
	}
	return hits, nil
}

// Lookup returns what Search would return for the given posts without a text (excerpt from
// the start of the text, Score 0): channel title and username, date, text, tags and topics;
// for completing hits another backend found. Posts the read model does not hold, or holds
// only as tombstones, are left out; the others keep the order of refs.
func Lookup(ctx context.Context, db Querier, schema string, refs []events.PostRef) ([]Hit, error) {
	if err := migrations.ValidateSchema(schema); err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return []Hit{}, nil
	}
	chs, msgs := make([]int64, len(refs)), make([]int64, len(refs))
	for i, r := range refs {
		chs[i], msgs[i] = int64(r.ChannelID), r.MessageID
	}
	rows, err := db.Query(ctx, fmt.Sprintf(`SELECT p.channel_id, p.message_id, p.posted_at, coalesce(p.text, ''), coalesce(s.config::text, ''), coalesce(s.extra, '')
FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS t(channel_id, message_id, n)
JOIN %[1]s.posts p ON p.channel_id = t.channel_id AND p.message_id = t.message_id
LEFT JOIN %[1]s.post_search s ON s.channel_id = p.channel_id AND s.message_id = p.message_id
WHERE p.deleted_at IS NULL AND p.version IS NOT NULL
ORDER BY t.n`, ident(schema)), chs, msgs)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", schema, err)
	}
	hits, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Hit, error) {
		var h Hit
		var extra string
		if err := r.Scan(&h.ChannelID, &h.MessageID, &h.Date, &h.Text, &h.Config, &extra); err != nil {
			return h, err
		}
		h.Date = h.Date.UTC()
		h.Excerpt, h.Highlights = excerpt(h.Text+"\n"+extra, "")
		return h, nil
	})
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", schema, err)
	}
	if err := decorate(ctx, db, schema, hits); err != nil {
		return nil, err
	}
	return hits, nil
}

// decorate fills the channel title and username, tags and topics of hits in one query.
func decorate(ctx context.Context, db Querier, schema string, hits []Hit) error {
	if len(hits) == 0 {
		return nil
	}
	chs, msgs := make([]int64, len(hits)), make([]int64, len(hits))
	for i, h := range hits {
		chs[i], msgs[i] = int64(h.ChannelID), h.MessageID
		h.Tags, h.Topics = []string{}, []string{}
		if h.Highlights == nil {
			h.Highlights = []Span{}
		}
		hits[i] = h
	}
	rows, err := db.Query(ctx, fmt.Sprintf(`SELECT t.n, coalesce(c.title, ''), coalesce(c.username, ''),
  ARRAY(SELECT g.tag FROM %[1]s.post_tags g WHERE g.channel_id = t.channel_id AND g.message_id = t.message_id ORDER BY g.position),
  ARRAY(SELECT o.topic FROM %[1]s.post_topics o WHERE o.channel_id = t.channel_id AND o.message_id = t.message_id ORDER BY o.topic)
FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS t(channel_id, message_id, n)
LEFT JOIN %[1]s.channels c ON c.id = t.channel_id`, ident(schema)), chs, msgs)
	if err != nil {
		return fmt.Errorf("search %s: tags and channels: %w", schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		var title, user string
		var tags, topics []string
		if err := rows.Scan(&n, &title, &user, &tags, &topics); err != nil {
			return fmt.Errorf("search %s: tags and channels: %w", schema, err)
		}
		h := &hits[n-1]
		h.ChannelTitle, h.ChannelUsername = title, user
		if tags != nil {
			h.Tags = tags
		}
		if topics != nil {
			h.Topics = topics
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("search %s: tags and channels: %w", schema, err)
	}
	return nil
}

// headlines returns, per hit, ts_headline's rendering of its folded document with every
// match of the query between markOpen and markClose. The documents are folded here (search_norm
// costs about a millisecond per document in SQL).
func headlines(ctx context.Context, db Querier, hits []Hit, docs []string, query string) ([]string, error) {
	configs, folded := make([]string, len(hits)), make([]string, len(hits))
	for i, h := range hits {
		configs[i], folded[i] = "pg_catalog."+h.Config, searchFold(docs[i])
	}
	rows, err := db.Query(ctx, `SELECT ts_headline(t.c::regconfig, t.d, websearch_to_tsquery(t.c::regconfig, $3), $4)
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(c, d, n) ORDER BY t.n`, configs, folded, searchFold(query), headlineOptions)
	if err != nil {
		return nil, fmt.Errorf("headlines: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("headlines: %w", err)
	}
	if len(out) != len(hits) {
		return nil, fmt.Errorf("headlines: %d for %d hits", len(out), len(hits))
	}
	return out, nil
}

// excerpt cuts the excerpt of doc. marked is ts_headline's rendering of doc folded by
// searchFold with every match between markOpen and markClose ("" when nothing was
// matched); since the folding maps one character to one character, the marks' positions are
// positions in doc. If the two disagree in length (a server whose lower-casing changed the
// length), the folded text is used instead of doc.
func excerpt(doc, marked string) (string, []Span) {
	src := []rune(doc)
	var hl []bool // per code point of src: inside a match
	if marked != "" {
		var plain []rune
		in := false
		for _, r := range marked {
			switch r {
			case markOpen:
				in = true
			case markClose:
				in = false
			default:
				plain = append(plain, r)
				hl = append(hl, in)
			}
		}
		if len(plain) != len(src) {
			src = plain
		}
	}
	// Collapse white space, carrying the marks.
	var rs []rune
	var mk []bool
	space := true
	for i, r := range src {
		if unicode.IsSpace(r) {
			if !space {
				rs, mk = append(rs, ' '), append(mk, false)
			}
			space = true
			continue
		}
		space = false
		rs = append(rs, r)
		mk = append(mk, hl != nil && hl[i])
	}
	if n := len(rs); n > 0 && rs[n-1] == ' ' {
		rs, mk = rs[:n-1], mk[:n-1]
	}
	first := -1
	for i, m := range mk {
		if m {
			first = i
			break
		}
	}
	text, start, end, shift := window.Cut(rs, first)
	spans := []Span{}
	for i := start; i < end; i++ {
		if !mk[i] {
			continue
		}
		j := i
		for j < end && mk[j] {
			j++
		}
		spans = append(spans, Span{Start: i + shift, End: j + shift})
		i = j
	}
	return text, spans
}
