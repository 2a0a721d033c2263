package search

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tgflow/tgflow/events"
)

// Backend names, as results report them.
const (
	BackendPostgres = "postgres"
	BackendQdrant   = "qdrant"
	BackendNeo4j    = "neo4j"
)

// Span is a highlighted part of an excerpt: [Start, End) in Unicode code points.
type Span struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// Hit is one search result.
type Hit struct {
	ChannelID       events.ChannelID `json:"channel_id"`
	ChannelTitle    string           `json:"channel_title,omitempty"`
	ChannelUsername string           `json:"channel_username,omitempty"`
	MessageID       int64            `json:"message_id"`
	Date            time.Time        `json:"date"`
	// Link is the post on Telegram (t.me).
	Link string `json:"link"`
	// Excerpt is a window of the post's text around the words of the query; Highlights
	// mark those words in it.
	Excerpt    string   `json:"excerpt"`
	Highlights []Span   `json:"highlights"`
	Tags       []string `json:"tags"`
	Topics     []string `json:"topics"`
	// Score is the fused score (reciprocal rank fusion) when several backends answered,
	// else the backend's own score.
	Score float64 `json:"score"`
	// Backend names who found the post: "postgres", "qdrant", or "postgres+qdrant".
	Backend string `json:"backend"`
	// Ranks is the 1-based rank of the post in each backend's list.
	Ranks map[string]int `json:"ranks,omitempty"`

	// text is the full text the excerpt is cut from (not serialised).
	text string
}

// Key is the post key of the hit.
func (h Hit) Key() string { return events.PostKey(h.ChannelID, h.MessageID) }

// Text is the post's text the hit carries (for excerpts).
func (h Hit) Text() string { return h.text }

// WithText returns h carrying the post's text, from which Finish cuts the excerpt.
func (h Hit) WithText(s string) Hit { h.text = s; return h }

// Link is the t.me address of a post: by username when the channel has one, else the
// private-link form t.me/c/<id>/<msg>, which works for members.
func Link(ch events.ChannelID, username string, msg int64) string {
	if username != "" {
		return "https://t.me/" + username + "/" + strconv.FormatInt(msg, 10)
	}
	return fmt.Sprintf("https://t.me/c/%d/%d", ch, msg)
}

// ParsePostRef reads "CHANNEL/ID" where CHANNEL is an id or a username (with or without
// '@'), as --related and /api/posts take it.
func ParsePostRef(ref string) (events.ChannelID, string, int64, error) {
	chs, ids, ok := strings.Cut(strings.TrimSpace(ref), "/")
	if !ok {
		return 0, "", 0, fmt.Errorf("%w: post %q: want CHANNEL/ID (1234567890/42 or @name/42)", ErrInvalid, ref)
	}
	ch, user, err := ParseChannel(chs)
	if err != nil {
		return 0, "", 0, err
	}
	if ch == 0 && user == "" {
		return 0, "", 0, fmt.Errorf("%w: post %q: the channel is empty", ErrInvalid, ref)
	}
	msg, err := strconv.ParseInt(ids, 10, 64)
	if err != nil || msg <= 0 {
		return 0, "", 0, fmt.Errorf("%w: post %q: message id %q is not a positive integer", ErrInvalid, ref, ids)
	}
	return ch, user, msg, nil
}
