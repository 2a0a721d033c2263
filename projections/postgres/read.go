package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/migrations"
)

// The reads of the API besides Search (see the comment at the top of search.go for what
// every read function shares). Rows are rendered by Postgres as JSON (to_jsonb of the rows,
// keyed by column name) and decoded into the structs below, whose JSON names are the
// columns of SCHEMA.md: a struct field means exactly what its column means there. Absent
// values (SQL NULL) are Go zero values.

// PostView is one post with everything the read model holds about it (the answer of Post).
type PostView struct {
	ChannelID       events.ChannelID `json:"channel_id"`
	ChannelTitle    string           `json:"channel_title,omitempty"`
	ChannelUsername string           `json:"channel_username,omitempty"`
	MessageID       int64            `json:"message_id"`
	// Version is the content version (edit date in Unix seconds, 0 never edited); nil for a
	// post known only from a deletion or a metrics refresh.
	Version             *int64           `json:"version"`
	PostedAt            time.Time        `json:"posted_at"`
	EditedAt            time.Time        `json:"edited_at,omitzero"`
	Text                string           `json:"text"`
	Entities            []events.Entity  `json:"entities,omitempty"`
	Links               []string         `json:"links,omitempty"`
	Hashtags            []string         `json:"hashtags,omitempty"`
	Mentions            []string         `json:"mentions,omitempty"`
	GroupedID           int64            `json:"grouped_id,omitempty"`
	ForwardChannelID    int64            `json:"forward_channel_id,omitempty"`
	ForwardMessageID    int64            `json:"forward_message_id,omitempty"`
	ForwardFromName     string           `json:"forward_from_name,omitempty"`
	ForwardDate         time.Time        `json:"forward_date,omitzero"`
	ForwardAuthor       string           `json:"forward_author,omitempty"`
	ReplyToMessageID    int64            `json:"reply_to_message_id,omitempty"`
	ReplyToTopMessageID int64            `json:"reply_to_top_message_id,omitempty"`
	AuthorSignature     string           `json:"author_signature,omitempty"`
	Pinned              bool             `json:"pinned,omitempty"`
	Silent              bool             `json:"silent,omitempty"`
	NoForwards          bool             `json:"noforwards,omitempty"`
	Origin              string           `json:"origin,omitempty"`
	Views               int64            `json:"views"`
	Forwards            int64            `json:"forwards"`
	Replies             int64            `json:"replies"`
	Reactions           map[string]int64 `json:"reactions,omitempty"`
	MetricsAt           time.Time        `json:"metrics_at,omitzero"`
	// DeletedAt is set when the post was found deleted (a tombstone; the rest stays).
	DeletedAt time.Time `json:"deleted_at,omitzero"`

	// Tags of the newest tagged revision, in the tagger's order; Topics of the newest
	// embedded revision (posts.embedded carries them), by name.
	Tags   []PostTag `json:"tags"`
	Topics []string  `json:"topics"`
	Media  []Media   `json:"media"`
	// Vision holds the analysis of each image of the newest vision revision.
	Vision []VisionItem `json:"vision"`
	// DuplicatedBy lists later images (of any post) that are near-duplicates of this
	// post's images.
	DuplicatedBy []Duplicate `json:"duplicated_by"`
	// Pages are the linked pages of the newest enriched revision, in link order.
	Pages []PostPage `json:"pages"`
	// Album is the album the post belongs to (nil when it is in none).
	Album *Album `json:"album,omitempty"`
	// Embedding is the newest embedding's metadata (the vector is in Qdrant); nil if none.
	Embedding *Embedding `json:"embedding,omitempty"`
	// Progress is the revision each stage reached (pipeline_progress); nil if none.
	Progress *Progress `json:"progress,omitempty"`
	// SearchConfig is the text search configuration of the post's search document.
	SearchConfig string `json:"search_config,omitempty"`
}

// PostTag is one current tag of a post (table post_tags).
type PostTag struct {
	Tag      string  `json:"tag"`
	Position int     `json:"position"`
	Score    float64 `json:"score"`
	Trigger  string  `json:"trigger"`
	Version  int64   `json:"version"`
	Revision int     `json:"revision"`
	Provider string  `json:"provider"`
	Model    string  `json:"model,omitempty"`
}

// Media is one attachment of the current version (table post_media).
type Media struct {
	Position    int     `json:"position"`
	Kind        string  `json:"kind"`
	MIME        string  `json:"mime,omitempty"`
	Size        int64   `json:"size,omitempty"`
	Width       int     `json:"width,omitempty"`
	Height      int     `json:"height,omitempty"`
	DurationSec float64 `json:"duration_sec,omitempty"`
	FileName    string  `json:"file_name,omitempty"`
	SHA256      string  `json:"sha256,omitempty"`
	Skipped     string  `json:"skipped,omitempty"`
}

// VisionItem is the analysis of one image (table post_vision).
type VisionItem struct {
	Position       int       `json:"position"`
	MediaSHA256    string    `json:"media_sha256"`
	Description    string    `json:"description,omitempty"`
	OCRText        string    `json:"ocr_text,omitempty"`
	OCRConfidence  float64   `json:"ocr_confidence,omitempty"`
	OCRError       string    `json:"ocr_error,omitempty"`
	Labels         []string  `json:"labels,omitempty"`
	PHash          string    `json:"phash,omitempty"`
	DHash          string    `json:"dhash,omitempty"`
	Width          int       `json:"width,omitempty"`
	Height         int       `json:"height,omitempty"`
	Format         string    `json:"format,omitempty"`
	Colors         []string  `json:"colors,omitempty"`
	Objects        []string  `json:"objects,omitempty"`
	Scene          string    `json:"scene,omitempty"`
	IsMeme         bool      `json:"is_meme,omitempty"`
	NSFW           *float64  `json:"nsfw,omitempty"`
	Error          string    `json:"error,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	ProviderError  string    `json:"provider_error,omitempty"`
	Provider       string    `json:"provider"`
	Model          string    `json:"model,omitempty"`
	AnalyzedAt     time.Time `json:"analyzed_at,omitzero"`
	Version        int64     `json:"version"`
	Revision       int       `json:"revision"`
	DupChannelID   int64     `json:"dup_channel_id,omitempty"`
	DupMessageID   int64     `json:"dup_message_id,omitempty"`
	DupMediaSHA256 string    `json:"dup_media_sha256,omitempty"`
	// DupDistance is the Hamming distance to the earlier image (meaningful when
	// DupChannelID is set; 0 is the same picture).
	DupDistance int `json:"dup_distance,omitempty"`
}

// Duplicate is an image of another post that is a near-duplicate of one of this post's.
type Duplicate struct {
	ChannelID   events.ChannelID `json:"channel_id"`
	MessageID   int64            `json:"message_id"`
	MediaSHA256 string           `json:"media_sha256"`
	// Of is the sha256 of this post's image it duplicates; Distance the Hamming distance.
	Of       string `json:"dup_media_sha256"`
	Distance int    `json:"dup_distance"`
}

// PostPage is one linked page of the newest enrichment (table post_pages).
type PostPage struct {
	Position  int       `json:"position"`
	URL       string    `json:"url"`
	FinalURL  string    `json:"final_url,omitempty"`
	Domain    string    `json:"domain,omitempty"`
	Status    int       `json:"status,omitempty"`
	Title     string    `json:"title,omitempty"`
	Site      string    `json:"site,omitempty"`
	Byline    string    `json:"byline,omitempty"`
	Excerpt   string    `json:"excerpt,omitempty"`
	Lang      string    `json:"lang,omitempty"`
	WordCount int       `json:"word_count,omitempty"`
	FetchedAt time.Time `json:"fetched_at,omitzero"`
	// Reason is the machine-readable code of a skip or failure (robots, timeout, …), Error
	// the words; both empty when the page was fetched.
	Reason   string `json:"reason,omitempty"`
	Error    string `json:"error,omitempty"`
	Version  int64  `json:"version"`
	Revision int    `json:"revision"`
}

// Album is an album and its summary (tables albums and album_items).
type Album struct {
	ChannelID events.ChannelID `json:"channel_id"`
	GroupedID int64            `json:"grouped_id"`
	// GroupedIDs are every grouped id the album was seen under (an export's synthetic one
	// and Telegram's).
	GroupedIDs []int64     `json:"grouped_ids,omitempty"`
	Caption    string      `json:"caption,omitempty"`
	PostedAt   time.Time   `json:"posted_at,omitzero"`
	Inferred   bool        `json:"inferred,omitempty"`
	ItemCount  int         `json:"item_count,omitempty"`
	Items      []AlbumItem `json:"items"`
	// Outcome is complete or deadline once assembled, "" before.
	Outcome             string    `json:"outcome,omitempty"`
	Summary             string    `json:"summary,omitempty"`
	Labels              []string  `json:"labels,omitempty"`
	Descriptions        []string  `json:"descriptions,omitempty"`
	OCRText             string    `json:"ocr_text,omitempty"`
	CoverMessageID      int64     `json:"cover_message_id,omitempty"`
	AssembledMessageIDs []int64   `json:"assembled_message_ids,omitempty"`
	MissingMessageIDs   []int64   `json:"missing_message_ids,omitempty"`
	AssembledItemCount  int       `json:"assembled_item_count,omitempty"`
	AssembledCaption    string    `json:"assembled_caption,omitempty"`
	AssembledPostedAt   time.Time `json:"assembled_posted_at,omitzero"`
	SummaryVersion      string    `json:"summary_version,omitempty"`
	AssembledAt         time.Time `json:"assembled_at,omitzero"`
}

// AlbumItem is one message of an album.
type AlbumItem struct {
	Position    int    `json:"position"`
	MessageID   int64  `json:"message_id"`
	MediaKind   string `json:"media_kind,omitempty"`
	MediaSHA256 string `json:"media_sha256,omitempty"`
}

// Embedding is the metadata of a post's newest embedding (table post_embeddings).
type Embedding struct {
	Provider        string `json:"provider"`
	Model           string `json:"model,omitempty"`
	EmbedderVersion string `json:"embedder_version,omitempty"`
	Dim             int    `json:"dim"`
	Lexical         bool   `json:"lexical"`
	InputSHA256     string `json:"input_sha256,omitempty"`
	Version         int64  `json:"version"`
	Revision        int    `json:"revision"`
}

// Progress is a post's pipeline_progress row: the rev each stage reached and when.
type Progress struct {
	ParsedAt         time.Time `json:"parsed_at,omitzero"`
	Version          *int64    `json:"version"`
	VersionAt        time.Time `json:"version_at,omitzero"`
	VisionVersion    *int64    `json:"vision_version"`
	VisionRevision   *int      `json:"vision_revision"`
	VisionAt         time.Time `json:"vision_at,omitzero"`
	TaggedVersion    *int64    `json:"tagged_version"`
	TaggedRevision   *int      `json:"tagged_revision"`
	TaggedAt         time.Time `json:"tagged_at,omitzero"`
	EnrichedVersion  *int64    `json:"enriched_version"`
	EnrichedRevision *int      `json:"enriched_revision"`
	EnrichedAt       time.Time `json:"enriched_at,omitzero"`
	EmbeddedVersion  *int64    `json:"embedded_version"`
	EmbeddedRevision *int      `json:"embedded_revision"`
	EmbeddedAt       time.Time `json:"embedded_at,omitzero"`
}

// rowJSON is "to_jsonb(alias) minus the post key columns".
func rowJSON(alias string) string {
	return "to_jsonb(" + alias + ") - 'channel_id' - 'message_id'"
}

// Post returns the post channelID/messageID with its channel, tags, topics, media, vision,
// near-duplicates, pages, album, embedding and progress; ErrNotFound (wrapped) when the read
// model has no row for it. A deleted post is returned with DeletedAt set.
func Post(ctx context.Context, db Querier, schema string, channelID events.ChannelID, messageID int64) (*PostView, error) {
	if err := migrations.ValidateSchema(schema); err != nil {
		return nil, err
	}
	same := func(alias string) string {
		return alias + ".channel_id = p.channel_id AND " + alias + ".message_id = p.message_id"
	}
	sql := fmt.Sprintf(`SELECT (to_jsonb(p) || jsonb_build_object(
  'channel_title', c.title, 'channel_username', c.username,
  'tags', coalesce((SELECT jsonb_agg(%[2]s ORDER BY x.position) FROM %[1]s.post_tags x WHERE %[3]s), '[]'),
  'topics', coalesce((SELECT jsonb_agg(x.topic ORDER BY x.topic) FROM %[1]s.post_topics x WHERE %[3]s), '[]'),
  'media', coalesce((SELECT jsonb_agg(%[2]s ORDER BY x.position) FROM %[1]s.post_media x WHERE %[3]s), '[]'),
  'vision', coalesce((SELECT jsonb_agg(%[2]s ORDER BY x.position) FROM %[1]s.post_vision x WHERE %[3]s), '[]'),
  'duplicated_by', coalesce((SELECT jsonb_agg(jsonb_build_object('channel_id', x.channel_id, 'message_id', x.message_id,
      'media_sha256', x.media_sha256, 'dup_media_sha256', x.dup_media_sha256, 'dup_distance', x.dup_distance)
      ORDER BY x.channel_id, x.message_id, x.position)
    FROM %[1]s.post_vision x WHERE x.dup_channel_id = p.channel_id AND x.dup_message_id = p.message_id), '[]'),
  'pages', coalesce((SELECT jsonb_agg(%[2]s ORDER BY x.position) FROM %[1]s.post_pages x WHERE %[3]s), '[]'),
  'embedding', (SELECT %[2]s FROM %[1]s.post_embeddings x WHERE %[3]s),
  'progress', (SELECT %[2]s FROM %[1]s.pipeline_progress x WHERE %[3]s),
  'search_config', (SELECT x.config::text FROM %[1]s.post_search x WHERE %[3]s),
  'album', (SELECT to_jsonb(a) || jsonb_build_object('items', coalesce((SELECT jsonb_agg(to_jsonb(i) - 'channel_id' - 'grouped_id' ORDER BY i.position)
      FROM %[1]s.album_items i WHERE i.channel_id = a.channel_id AND i.grouped_id = a.grouped_id), '[]'))
    FROM %[1]s.albums a
    WHERE a.channel_id = p.channel_id AND p.grouped_id IS NOT NULL AND (a.grouped_id = p.grouped_id OR p.grouped_id = ANY (a.grouped_ids))
    ORDER BY a.assembled_at DESC NULLS LAST, (a.grouped_id = p.grouped_id) DESC LIMIT 1)))::text
FROM %[1]s.posts p LEFT JOIN %[1]s.channels c ON c.id = p.channel_id
WHERE p.channel_id = $1 AND p.message_id = $2`, ident(schema), rowJSON("x"), same("x"))
	var doc string
	err := db.QueryRow(ctx, sql, int64(channelID), messageID).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("post %s: %w", events.PostKey(channelID, messageID), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read post %s: %w", events.PostKey(channelID, messageID), err)
	}
	var p PostView
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return nil, fmt.Errorf("read post %s: decode: %w", events.PostKey(channelID, messageID), err)
	}
	if p.Album != nil && p.Album.Caption == "" {
		p.Album.Caption = p.Album.AssembledCaption
	}
	if p.Album != nil && p.Album.PostedAt.IsZero() {
		p.Album.PostedAt = p.Album.AssembledPostedAt
	}
	return &p, nil
}

// Channel is one channel (table channels) with counts of its live posts.
type Channel struct {
	// ID is 0 while the channel is known only by username.
	ID                 events.ChannelID `json:"id"`
	Username           string           `json:"username,omitempty"`
	Title              string           `json:"title,omitempty"`
	Subscribed         bool             `json:"subscribed"`
	SubscribedAt       time.Time        `json:"subscribed_at,omitzero"`
	UnsubscribedAt     time.Time        `json:"unsubscribed_at,omitzero"`
	BackfillMessages   int              `json:"backfill_messages,omitempty"`
	BackfillDays       int              `json:"backfill_days,omitempty"`
	SyncRuns           int              `json:"sync_runs"`
	LastSyncStartedAt  time.Time        `json:"last_sync_started_at,omitzero"`
	LastSyncedAt       time.Time        `json:"last_synced_at,omitzero"`
	LastSyncBackfill   bool             `json:"last_sync_backfill,omitempty"`
	LastCursor         int64            `json:"last_cursor,omitempty"`
	LastFetched        int              `json:"last_fetched,omitempty"`
	LastNew            int              `json:"last_new,omitempty"`
	LastEdited         int              `json:"last_edited,omitempty"`
	LastDeleted        int              `json:"last_deleted,omitempty"`
	LastMediaStored    int              `json:"last_media_stored,omitempty"`
	LastSkipped        map[string]int   `json:"last_skipped,omitempty"`
	LastErrorCode      string           `json:"last_error_code,omitempty"`
	LastError          string           `json:"last_error,omitempty"`
	LastErrorAt        time.Time        `json:"last_error_at,omitzero"`
	LastErrorPermanent bool             `json:"last_error_permanent,omitempty"`
	RetryAt            time.Time        `json:"retry_at,omitzero"`
	// Failing is set when the last failure is newer than the last successful sync.
	Failing bool `json:"failing"`
	// Posts counts the channel's live (not deleted) posts; LastPostAt is the newest one's date.
	Posts      int64     `json:"posts"`
	LastPostAt time.Time `json:"last_post_at,omitzero"`
}

// Channels returns every channel, subscribed ones first, then by title and username.
func Channels(ctx context.Context, db Querier, schema string) ([]Channel, error) {
	if err := migrations.ValidateSchema(schema); err != nil {
		return nil, err
	}
	sql := fmt.Sprintf(`SELECT (to_jsonb(c) || jsonb_build_object(
  'failing', coalesce(c.last_error_at > coalesce(c.last_synced_at, '-infinity'), false),
  'posts', coalesce(s.posts, 0), 'last_post_at', s.last_post_at))::text
FROM %[1]s.channels c
LEFT JOIN LATERAL (SELECT count(*) AS posts, max(p.posted_at) AS last_post_at FROM %[1]s.posts p
  WHERE p.channel_id = c.id AND p.deleted_at IS NULL AND p.version IS NOT NULL) s ON true
ORDER BY c.subscribed DESC, lower(coalesce(c.title, c.username, '')), c.username, c.id`, ident(schema))
	return collectJSON[Channel](ctx, db, "channels", sql)
}

// Trend is one detected burst (table trends).
type Trend struct {
	Tag         string    `json:"tag"`
	WindowSize  string    `json:"window_size"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Count       int       `json:"count"`
	Channels    []int64   `json:"channels"`
	Baseline    float64   `json:"baseline"`
	Expected    float64   `json:"expected,omitempty"`
	Score       float64   `json:"score"`
	Method      string    `json:"method,omitempty"`
	// Posts are post keys "<channel_id>/<message_id>" of the burst.
	Posts      []string  `json:"posts"`
	DetectedAt time.Time `json:"detected_at"`
}

// TrendQuery filters Trends; the zero value lists the newest trends of every window.
type TrendQuery struct {
	// Since keeps trends whose window ends at or after it.
	Since time.Time
	// Window keeps one window size ("1h", "24h"); "": all.
	Window string
	// Tag keeps one tag; "": all.
	Tag string
	// Limit is 1..MaxLimit; 0 means DefaultLimit.
	Limit int
}

// Trends returns detected trends, newest window end first, then by score.
func Trends(ctx context.Context, db Querier, schema string, q TrendQuery) ([]Trend, error) {
	if err := migrations.ValidateSchema(schema); err != nil {
		return nil, err
	}
	limit, err := checkLimit(q.Limit)
	if err != nil {
		return nil, err
	}
	var where []string
	args := []any{limit}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" $"+strconv.Itoa(len(args)))
	}
	if !q.Since.IsZero() {
		add("t.window_end >=", q.Since)
	}
	if q.Window != "" {
		add("t.window_size =", q.Window)
	}
	if q.Tag != "" {
		add("t.tag =", strings.ToLower(strings.TrimPrefix(strings.TrimSpace(q.Tag), "#")))
	}
	cond := "true"
	if len(where) > 0 {
		cond = strings.Join(where, " AND ")
	}
	sql := fmt.Sprintf(`SELECT to_jsonb(t)::text FROM %s.trends t WHERE %s
ORDER BY t.window_end DESC, t.score DESC, t.tag, t.window_size LIMIT $1`, ident(schema), cond)
	return collectJSON[Trend](ctx, db, "trends", sql, args...)
}

// TagCount is one tag with the number of live posts carrying it now.
type TagCount struct {
	Tag        string    `json:"tag"`
	Posts      int64     `json:"posts"`
	Channels   int64     `json:"channels"`
	LastPostAt time.Time `json:"last_post_at,omitzero"`
}

// TagQuery filters Tags; the zero value counts every live post.
type TagQuery struct {
	// Since and Until bound the dates of the posts counted: Since ≤ date < Until.
	Since, Until time.Time
	// ChannelID counts one channel's posts only; 0: all.
	ChannelID events.ChannelID
	// Prefix keeps tags starting with it (lower case); "": all.
	Prefix string
	// Limit is 1..MaxLimit; 0 means DefaultLimit.
	Limit int
}

// Tags returns the current tags of live posts, most used first (then by name).
func Tags(ctx context.Context, db Querier, schema string, q TagQuery) ([]TagCount, error) {
	if err := migrations.ValidateSchema(schema); err != nil {
		return nil, err
	}
	limit, err := checkLimit(q.Limit)
	if err != nil {
		return nil, err
	}
	where := []string{"p.deleted_at IS NULL"}
	args := []any{limit}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if !q.Since.IsZero() {
		add("p.posted_at >= ?", q.Since)
	}
	if !q.Until.IsZero() {
		add("p.posted_at < ?", q.Until)
	}
	if q.ChannelID != 0 {
		add("g.channel_id = ?", int64(q.ChannelID))
	}
	if q.Prefix != "" {
		add("starts_with(g.tag, ?)", strings.ToLower(strings.TrimPrefix(q.Prefix, "#")))
	}
	sql := fmt.Sprintf(`SELECT jsonb_build_object('tag', g.tag, 'posts', count(*), 'channels', count(DISTINCT g.channel_id),
  'last_post_at', max(p.posted_at))::text
FROM %[1]s.post_tags g JOIN %[1]s.posts p ON p.channel_id = g.channel_id AND p.message_id = g.message_id
WHERE %[2]s
GROUP BY g.tag ORDER BY count(*) DESC, g.tag LIMIT $1`, ident(schema), strings.Join(where, " AND "))
	return collectJSON[TagCount](ctx, db, "tags", sql, args...)
}

func checkLimit(n int) (int, error) {
	if n == 0 {
		return DefaultLimit, nil
	}
	if n < 1 || n > MaxLimit {
		return 0, fmt.Errorf("%w: limit %d is out of range 1..%d", ErrInvalidQuery, n, MaxLimit)
	}
	return n, nil
}

// collectJSON runs sql, whose one column is a JSON object per row, and decodes the rows.
func collectJSON[T any](ctx context.Context, db Querier, what, sql string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) {
		var v T
		var doc string
		if err := r.Scan(&doc); err != nil {
			return v, err
		}
		return v, json.Unmarshal([]byte(doc), &v)
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return out, nil
}
