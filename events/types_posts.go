package events

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Post fact types produced by ingest.
const (
	TypePostParsed  Type = "org.tgflow.post.parsed.v1"
	TypePostEdited  Type = "org.tgflow.post.edited.v1"
	TypePostDeleted Type = "org.tgflow.post.deleted.v1"
	TypePostMetrics Type = "org.tgflow.post.metrics.v1"
)

// Post is one Telegram channel message as ingest saw it. Offsets in Entities count Unicode
// code points of Text (Telegram counts UTF-16 units; ingest converts).
type Post struct {
	PostRef
	ChannelUsername string           `json:"channel_username,omitempty"`
	Date            time.Time        `json:"date"`
	EditDate        int64            `json:"edit_date,omitempty" jsonschema:"minimum=0"`
	Text            string           `json:"text,omitempty"`
	Entities        []Entity         `json:"entities,omitempty"`
	Links           []string         `json:"links,omitempty"`
	Hashtags        []string         `json:"hashtags,omitempty"`
	Mentions        []string         `json:"mentions,omitempty"`
	Forward         *ForwardOrigin   `json:"forward,omitempty"`
	ReplyTo         *ReplyTo         `json:"reply_to,omitempty"`
	Views           int64            `json:"views,omitempty"`
	Forwards        int64            `json:"forwards,omitempty"`
	Replies         int64            `json:"replies,omitempty"`
	Reactions       map[string]int64 `json:"reactions,omitempty"`
	AuthorSignature string           `json:"author_signature,omitempty"`
	GroupedID       int64            `json:"grouped_id,omitempty"`
	Pinned          bool             `json:"pinned,omitempty"`
	Silent          bool             `json:"silent,omitempty"`
	NoForwards      bool             `json:"noforwards,omitempty"`
	Media           []Media          `json:"media,omitempty"`
	// Origin says where the post came from: "telegram" or "export".
	Origin string `json:"origin,omitempty"`
}

// Version is the post version every derived fact refers to: the edit date, or 0.
func (p *Post) Version() int64 { return p.EditDate }

func (p *Post) validate() []error {
	errs := p.PostRef.validate()
	if p.Date.IsZero() {
		errs = append(errs, errors.New("date is zero"))
	}
	if p.EditDate < 0 {
		errs = append(errs, fmt.Errorf("edit_date %d is negative", p.EditDate))
	}
	runes := 0
	if len(p.Entities) > 0 {
		runes = utf8.RuneCountInString(p.Text)
	}
	for i, e := range p.Entities {
		if e.Offset < 0 || e.Length < 0 || e.Offset+e.Length > runes {
			errs = append(errs, fmt.Errorf("entities[%d] %s [%d,+%d) is outside the text (%d code points)", i, e.Type, e.Offset, e.Length, runes))
		}
	}
	for i, m := range p.Media {
		if m.Kind == "" {
			errs = append(errs, fmt.Errorf("media[%d]: kind is empty", i))
		}
	}
	return errs
}

// Entity is a formatting or link span of a post's text.
type Entity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset" jsonschema:"minimum=0"`
	Length int    `json:"length" jsonschema:"minimum=0"`
	URL    string `json:"url,omitempty"`
	UserID int64  `json:"user_id,omitempty"`
}

// ForwardOrigin is where a forwarded post came from.
type ForwardOrigin struct {
	ChannelID ChannelID `json:"channel_id,omitempty"`
	MessageID int64     `json:"message_id,omitempty"`
	FromName  string    `json:"from_name,omitempty"`
	Date      time.Time `json:"date,omitzero"`
	Author    string    `json:"author,omitempty"`
}

// ReplyTo is the post a post replies to.
type ReplyTo struct {
	MessageID    int64 `json:"message_id"`
	TopMessageID int64 `json:"top_message_id,omitempty"`
}

// Media kinds.
const (
	MediaPhoto     = "photo"
	MediaVideo     = "video"
	MediaAnimation = "animation"
	MediaDocument  = "document"
	MediaAudio     = "audio"
	MediaVoice     = "voice"
	MediaSticker   = "sticker"
)

// Media is one attachment. SHA256 and ObjectKey are set when the file is in the media object
// store; Skipped says why it is not (size cap, policy, not included in an export).
type Media struct {
	Kind        string  `json:"kind"`
	MIME        string  `json:"mime,omitempty"`
	Size        int64   `json:"size,omitempty"`
	Width       int     `json:"width,omitempty"`
	Height      int     `json:"height,omitempty"`
	DurationSec float64 `json:"duration_sec,omitempty"`
	FileName    string  `json:"file_name,omitempty"`
	SHA256      string  `json:"sha256,omitempty"`
	ObjectKey   string  `json:"object_key,omitempty"`
	Skipped     string  `json:"skipped,omitempty"`
}

// PostParsed is a post seen for the first time.
type PostParsed struct {
	Post
}

func (*PostParsed) EventType() Type   { return TypePostParsed }
func (p *PostParsed) Validate() error { return invalid(TypePostParsed, p.validate()) }

// PostEdited is a new version of a known post (its edit date changed).
type PostEdited struct {
	Post
	PreviousVersion int64 `json:"previous_version" jsonschema:"minimum=0"`
}

func (*PostEdited) EventType() Type { return TypePostEdited }
func (p *PostEdited) Validate() error {
	errs := p.validate()
	if p.EditDate <= p.PreviousVersion {
		errs = append(errs, fmt.Errorf("edit_date %d is not newer than previous_version %d", p.EditDate, p.PreviousVersion))
	}
	return invalid(TypePostEdited, errs)
}

// PostDeleted is a post that is gone from its channel. Read models keep a tombstone.
type PostDeleted struct {
	PostRef
	DeletedAt time.Time `json:"deleted_at"`
}

func (*PostDeleted) EventType() Type { return TypePostDeleted }
func (p *PostDeleted) Validate() error {
	errs := p.PostRef.validate()
	if p.DeletedAt.IsZero() {
		errs = append(errs, errors.New("deleted_at is zero"))
	}
	return invalid(TypePostDeleted, errs)
}

// PostMetrics is a refresh of a post's counters found by a recheck.
type PostMetrics struct {
	PostRef
	Views      int64            `json:"views"`
	Forwards   int64            `json:"forwards"`
	Replies    int64            `json:"replies"`
	Reactions  map[string]int64 `json:"reactions,omitempty"`
	ObservedAt time.Time        `json:"observed_at"`
}

func (*PostMetrics) EventType() Type { return TypePostMetrics }
func (p *PostMetrics) Validate() error {
	errs := p.PostRef.validate()
	if p.ObservedAt.IsZero() {
		errs = append(errs, errors.New("observed_at is zero"))
	}
	return invalid(TypePostMetrics, errs)
}
