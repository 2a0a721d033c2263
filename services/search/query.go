package search

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tgflow/tgflow/events"
)

// Bounds of a query. They protect the backends (a query is one statement in Postgres and
// one search in Qdrant) and say what a caller may ask for.
const (
	// MaxQueryRunes bounds the query text.
	MaxQueryRunes = 300
	// MaxFilterRunes bounds a tag, a topic or a channel reference.
	MaxFilterRunes = 64
	// DefaultLimit is the number of results when none is asked for.
	DefaultLimit = 10
	// MaxLimit is the largest page of results.
	MaxLimit = 50
)

// ErrInvalid wraps every problem of a query; the message says what is wrong.
var ErrInvalid = errors.New("invalid query")

// Filter narrows a search. The zero value matches every post.
type Filter struct {
	// Channel is a channel id (ChannelID) or a username (ChannelUsername, without '@');
	// at most one is set after Resolve.
	ChannelID       events.ChannelID
	ChannelUsername string
	// Tag and Topic match a post's current tags and topics exactly (tags are normalized,
	// lower case).
	Tag   string
	Topic string
	// Since and Until bound the post date: Since ≤ date < Until. Zero means unbounded.
	Since, Until time.Time
}

// Query is one search.
type Query struct {
	Text string
	Filter
	// Limit is the number of results wanted, 1..MaxLimit; 0 means DefaultLimit.
	Limit int
}

// ParseChannel reads a channel reference as the CLI and the API take it: an id
// (1234567890 or -1001234567890), or a username with or without '@'.
func ParseChannel(ref string) (events.ChannelID, string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return 0, "", nil
	}
	if utf8.RuneCountInString(ref) > MaxFilterRunes {
		return 0, "", fmt.Errorf("%w: channel: longer than %d characters", ErrInvalid, MaxFilterRunes)
	}
	if ref[0] == '-' || (ref[0] >= '0' && ref[0] <= '9') {
		id, err := events.ParseChannelID(ref)
		if err != nil {
			return 0, "", fmt.Errorf("%w: channel: %q is not a channel id (1234567890 or -1001234567890) nor a username", ErrInvalid, ref)
		}
		return id, "", nil
	}
	name := strings.TrimPrefix(ref, "@")
	if !validUsername(name) {
		return 0, "", fmt.Errorf("%w: channel: %q is not a username (letters, digits and _, 4 to 32 characters) nor an id", ErrInvalid, ref)
	}
	return 0, name, nil
}

func validUsername(s string) bool {
	if len(s) < 4 || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}

// ParseDate reads a --since/--until or since/until value: an RFC 3339 time, or a date
// (2006-01-02, midnight UTC).
func ParseDate(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: %s: %q is not a date (2006-01-02) nor an RFC 3339 time", ErrInvalid, field, s)
}

// Normalize trims the query, applies the default limit, and reports every problem at once
// (each wrapping ErrInvalid).
func (q *Query) Normalize() error {
	q.Text = strings.TrimSpace(q.Text)
	q.Tag = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(q.Tag), "#")))
	q.Topic = strings.ToLower(strings.TrimSpace(q.Topic))
	q.ChannelUsername = strings.TrimPrefix(strings.TrimSpace(q.ChannelUsername), "@")
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	switch n := utf8.RuneCountInString(q.Text); {
	case n == 0:
		bad("q: the query text is empty")
	case n > MaxQueryRunes:
		bad("q: %d characters, at most %d", n, MaxQueryRunes)
	case !utf8.ValidString(q.Text):
		bad("q: not valid UTF-8")
	}
	if !hasWord(q.Text) && q.Text != "" {
		bad("q: %q has no letter or digit", q.Text)
	}
	for _, f := range []struct{ name, v string }{{"tag", q.Tag}, {"topic", q.Topic}} {
		if n := utf8.RuneCountInString(f.v); n > MaxFilterRunes {
			bad("%s: %d characters, at most %d", f.name, n, MaxFilterRunes)
		}
		if strings.ContainsFunc(f.v, unicode.IsControl) {
			bad("%s: contains control characters", f.name)
		}
	}
	if q.ChannelID != 0 && !q.ChannelID.Valid() {
		bad("channel: %d is not a bare positive id", q.ChannelID)
	}
	if q.ChannelUsername != "" && !validUsername(q.ChannelUsername) {
		bad("channel: %q is not a username", q.ChannelUsername)
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		bad("limit: %d is out of range 1..%d", q.Limit, MaxLimit)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		bad("since %s is not before until %s", q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	return errors.Join(errs...)
}

func hasWord(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) })
}

// Match reports whether a post's attributes pass the filter. Backends filter in their own
// query; Match is the one rule for hits that come from elsewhere (a fused hit hydrated
// from Postgres) and for tests.
func (f Filter) Match(ch events.ChannelID, username string, date time.Time, tags, topics []string) bool {
	if f.ChannelID != 0 && ch != f.ChannelID {
		return false
	}
	if f.ChannelUsername != "" && !strings.EqualFold(username, f.ChannelUsername) {
		return false
	}
	if f.Tag != "" && !contains(tags, f.Tag) {
		return false
	}
	if f.Topic != "" && !contains(topics, f.Topic) {
		return false
	}
	if !f.Since.IsZero() && date.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !date.Before(f.Until) {
		return false
	}
	return true
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
