package api

import (
	"context"
	"errors"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/search"
)

// The API's resources. They are the contract documented in openapi.json; the read models
// are mapped into them by the Store and Log implementations.

// Post is one post with everything the read model and the log know about it.
type Post struct {
	ChannelID       events.ChannelID `json:"channel_id"`
	ChannelTitle    string           `json:"channel_title,omitempty"`
	ChannelUsername string           `json:"channel_username,omitempty"`
	MessageID       int64            `json:"message_id"`
	Date            time.Time        `json:"date"`
	EditedAt        *time.Time       `json:"edited_at,omitempty"`
	DeletedAt       *time.Time       `json:"deleted_at,omitempty"`
	Version         int64            `json:"version"`
	Link            string           `json:"link"`
	Text            string           `json:"text"`
	Links           []string         `json:"links"`
	Views           int64            `json:"views"`
	Forwards        int64            `json:"forwards"`
	Tags            []Tag            `json:"tags"`
	Topics          []string         `json:"topics"`
	Media           []Media          `json:"media"`
	Pages           []Page           `json:"pages"`
	Vision          []Vision         `json:"vision"`
	Album           *Album           `json:"album,omitempty"`
	Embedding       *Embedding       `json:"embedding,omitempty"`
	// History is every fact of the log about the post, in log order (filled from the log,
	// not the read model).
	History []Fact `json:"history"`
}

// Tag is a tag of a post with the tagger's confidence.
type Tag struct {
	Name  string  `json:"name"`
	Score float64 `json:"score"`
}

// Media is one attachment.
type Media struct {
	Kind    string `json:"kind"`
	MIME    string `json:"mime,omitempty"`
	Size    int64  `json:"size,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	Skipped string `json:"skipped,omitempty"`
}

// Page is a page the post links to, as fetched.
type Page struct {
	URL    string `json:"url"`
	Domain string `json:"domain,omitempty"`
	Title  string `json:"title,omitempty"`
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Vision is what one image of the post shows.
type Vision struct {
	Description string   `json:"description,omitempty"`
	OCRText     string   `json:"ocr_text,omitempty"`
	Labels      []string `json:"labels"`
	PHash       string   `json:"phash,omitempty"`
	// NearDuplicateOf is the post key of an earlier post with a near-identical image.
	NearDuplicateOf string `json:"near_duplicate_of,omitempty"`
	Error           string `json:"error,omitempty"`
}

// Album is the album a post belongs to.
type Album struct {
	GroupedID  int64   `json:"grouped_id"`
	Caption    string  `json:"caption,omitempty"`
	MessageIDs []int64 `json:"message_ids"`
	Outcome    string  `json:"outcome,omitempty"`
	Summary    string  `json:"summary,omitempty"`
}

// Embedding names the vector space the post's vector is in.
type Embedding struct {
	Provider string `json:"provider"`
	Model    string `json:"model,omitempty"`
	Dim      int    `json:"dim"`
}

// Fact is one fact of the log about a post.
type Fact struct {
	Seq      uint64    `json:"seq"`
	Type     string    `json:"type"`
	Producer string    `json:"producer"`
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Subject  string    `json:"subject"`
}

// Channel is one channel with its sync state and how far the pipeline is behind on it.
type Channel struct {
	ID           events.ChannelID `json:"id,omitempty"`
	Username     string           `json:"username,omitempty"`
	Title        string           `json:"title,omitempty"`
	Subscribed   bool             `json:"subscribed"`
	Posts        int64            `json:"posts"`
	LastSyncedAt *time.Time       `json:"last_synced_at,omitempty"`
	LastError    string           `json:"last_error,omitempty"`
	LastErrorAt  *time.Time       `json:"last_error_at,omitempty"`
	// Failing: the last ingest run of the channel failed (the error is newer than the last
	// sync).
	Failing bool       `json:"failing"`
	RetryAt *time.Time `json:"retry_at,omitempty"`
	// Behind counts posts whose current version has not been embedded yet: the pipeline's
	// lag on this channel, in posts.
	Behind int64 `json:"behind"`
}

// ConsumerLag is one durable consumer of the log and what it has not finished.
type ConsumerLag struct {
	Name       string `json:"name"`
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ack_pending"`
}

// Trend is a tag burst across channels.
type Trend struct {
	Tag         string             `json:"tag"`
	Window      string             `json:"window"`
	WindowStart time.Time          `json:"window_start"`
	WindowEnd   time.Time          `json:"window_end"`
	Count       int                `json:"count"`
	Score       float64            `json:"score"`
	Channels    []events.ChannelID `json:"channels"`
	Posts       []string           `json:"posts"`
}

// TagCount is a tag and how many live posts carry it.
type TagCount struct {
	Tag   string `json:"tag"`
	Posts int64  `json:"posts"`
}

// TrendQuery selects trends: those whose window ended at or after Since, newest first.
type TrendQuery struct {
	Since time.Time
	Limit int
}

// TagQuery selects tags: the most used on posts dated at or after Since.
type TagQuery struct {
	Since time.Time
	Limit int
}

// ErrNotFound is returned by a Store for a post it does not hold.
var ErrNotFound = search.ErrNotFound

// ErrUnavailable marks a backend that did not answer (down, timed out): a 503.
var ErrUnavailable = errors.New("backend unavailable")

// Store reads the Postgres read model.
type Store interface {
	// Post returns the post, ErrNotFound when the model does not hold it.
	Post(ctx context.Context, ch events.ChannelID, msg int64) (Post, error)
	// ChannelID resolves a username (without '@'), ErrNotFound when unknown.
	ChannelID(ctx context.Context, username string) (events.ChannelID, error)
	Channels(ctx context.Context) ([]Channel, error)
	Trends(ctx context.Context, q TrendQuery) ([]Trend, error)
	Tags(ctx context.Context, q TagQuery) ([]TagCount, error)
	// Ping says whether the store answers (readiness).
	Ping(ctx context.Context) error
}

// Log reads the log itself.
type Log interface {
	// History returns every fact about the post stored at or after since, in log order.
	History(ctx context.Context, ch events.ChannelID, msg int64, since time.Time) ([]Fact, error)
	// Consumers returns the lag of every durable consumer of the log.
	Consumers(ctx context.Context) ([]ConsumerLag, error)
}

// Searcher is the search planner (search.Service).
type Searcher interface {
	Search(ctx context.Context, q search.Query) (search.Result, error)
}
