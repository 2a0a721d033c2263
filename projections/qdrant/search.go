package qdrant

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	qd "github.com/qdrant/go-client/qdrant"

	"github.com/tgflow/tgflow/events"
)

// Search limits.
const (
	DefaultLimit = 10
	MaxLimit     = 1000
)

// ErrBadFilter is returned for a filter or limit Search cannot use (the message says why).
var ErrBadFilter = errors.New("bad search filter")

// Filter narrows a search; zero fields do not filter, the fields set must all hold.
type Filter struct {
	// Channel is a channel id ("1001") or a username ("@alpha_news" or "alpha_news", any
	// case: usernames are stored in lower case).
	Channel string
	// Tags must all be on the post. Tags are stored as the tagger normalises them (NFC, lower
	// case, no '#'): normalise user input the same way (services/tagger.NormalizeTag).
	Tags []string
	// Topic must be one of the post's topics (a name from the configured topic list).
	Topic string
	// Since and Until bound the post's date: Since <= posted_at < Until (Unix seconds; a
	// zero time does not bound).
	Since, Until time.Time
}

func (f Filter) qdrant() (*qd.Filter, error) {
	var must []*qd.Condition
	if c := strings.TrimSpace(f.Channel); c != "" {
		if id, err := strconv.ParseInt(c, 10, 64); err == nil {
			must = append(must, qd.NewMatchInt("channel_id", id))
		} else {
			must = append(must, qd.NewMatchKeyword("channel_username", strings.ToLower(strings.TrimPrefix(c, "@"))))
		}
	}
	for _, t := range f.Tags {
		if t == "" {
			return nil, fmt.Errorf("qdrant search: %w: an empty tag", ErrBadFilter)
		}
		must = append(must, qd.NewMatchKeyword("tags", t))
	}
	if f.Topic != "" {
		must = append(must, qd.NewMatchKeyword("topics", f.Topic))
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return nil, fmt.Errorf("qdrant search: %w: since %s is not before until %s", ErrBadFilter,
			f.Since.UTC().Format(time.RFC3339), f.Until.UTC().Format(time.RFC3339))
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		r := &qd.Range{}
		if !f.Since.IsZero() {
			r.Gte = qd.PtrOf(float64(f.Since.Unix()))
		}
		if !f.Until.IsZero() {
			r.Lt = qd.PtrOf(float64(f.Until.Unix()))
		}
		must = append(must, qd.NewRange("posted_at", r))
	}
	if len(must) == 0 {
		return nil, nil
	}
	return &qd.Filter{Must: must}, nil
}

// Payload is a point's payload, as the package comment describes it. Fields of a part the
// projection has not seen yet (a post not yet tagged, enriched or analysed) are zero.
type Payload struct {
	PostKey         string           `json:"post_key"`
	ChannelID       events.ChannelID `json:"channel_id"`
	MessageID       int64            `json:"message_id"`
	ChannelUsername string           `json:"channel_username,omitempty"`
	PostedAt        time.Time        `json:"posted_at"`
	// Version is the post version the text and fields come from (its edit date, 0).
	Version      int64    `json:"version"`
	HasMedia     bool     `json:"has_media"`
	GroupedID    int64    `json:"grouped_id,omitempty"`
	Text         string   `json:"text,omitempty"` // the first TextExcerptRunes runes
	Lang         string   `json:"lang,omitempty"`
	LinkDomains  []string `json:"link_domains,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	Topics       []string `json:"topics,omitempty"`
	PageTitles   []string `json:"page_titles,omitempty"`
	PageDomains  []string `json:"page_domains,omitempty"`
	VisionLabels []string `json:"vision_labels,omitempty"`
	OCRText      string   `json:"ocr_text,omitempty"` // the first OCRExcerptRunes runes
}

// Hit is one search result.
type Hit struct {
	Payload
	// Score is the cosine similarity of the post's vector to the query, in [-1, 1].
	Score float32 `json:"score"`
}

// PayloadOf decodes a point's payload.
func PayloadOf(pl map[string]*qd.Value) Payload {
	strs := func(k string) []string {
		var out []string
		for _, v := range pl[k].GetListValue().GetValues() {
			out = append(out, v.GetStringValue())
		}
		return out
	}
	p := Payload{
		PostKey:         pl["post_key"].GetStringValue(),
		ChannelID:       events.ChannelID(pl["channel_id"].GetIntegerValue()),
		MessageID:       pl["message_id"].GetIntegerValue(),
		ChannelUsername: pl["channel_username"].GetStringValue(),
		Version:         pl["version"].GetIntegerValue(),
		HasMedia:        pl["has_media"].GetBoolValue(),
		GroupedID:       pl["grouped_id"].GetIntegerValue(),
		Text:            pl["text"].GetStringValue(),
		Lang:            pl["lang"].GetStringValue(),
		LinkDomains:     strs("link_domains"),
		Tags:            strs("tags"),
		Topics:          strs("topics"),
		PageTitles:      strs("page_titles"),
		PageDomains:     strs("page_domains"),
		VisionLabels:    strs("vision_labels"),
		OCRText:         pl["ocr_text"].GetStringValue(),
	}
	if v, ok := pl["posted_at"]; ok {
		p.PostedAt = time.Unix(v.GetIntegerValue(), 0).UTC()
	}
	return p
}

// Search returns the limit posts nearest to vector (cosine, best first) among those
// matching f, from the live collection of space under the base alias (AliasFor(base,
// space)). limit 0 means DefaultLimit; more than MaxLimit is refused (ErrBadFilter).
//
// Errors: ErrSpaceMismatch when no live collection of space exists under base (the message
// lists the spaces that do), or the alias's collection records another space; ErrDimension
// when len(vector) != space.Dim; ErrBadFilter for a bad filter or limit;
// projections.ErrBackend (wrapped) when Qdrant is unreachable.
func Search(ctx context.Context, client *qd.Client, base string, space Space, vector []float32, f Filter, limit int) ([]Hit, error) {
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 0 || limit > MaxLimit:
		return nil, fmt.Errorf("qdrant search: %w: limit %d is not between 1 and %d", ErrBadFilter, limit, MaxLimit)
	}
	if len(vector) != space.Dim {
		return nil, fmt.Errorf("qdrant search: the query vector has %d dimensions, space %s has %d: %w", len(vector), space, space.Dim, ErrDimension)
	}
	filter, err := f.qdrant()
	if err != nil {
		return nil, err
	}
	alias := AliasFor(base, space)
	live, err := LiveSpace(ctx, client, alias)
	switch {
	case errors.Is(err, ErrNoAlias):
		return nil, mismatch(ctx, client, base, space)
	case err != nil:
		return nil, err
	case live != space:
		return nil, fmt.Errorf("qdrant search: the query is embedded in space %s, but alias %s holds %s: %w", space, alias, live, ErrSpaceMismatch)
	}
	points, err := client.Query(ctx, &qd.QueryPoints{
		CollectionName: alias,
		Query:          qd.NewQueryDense(vector),
		Filter:         filter,
		Limit:          qd.PtrOf(uint64(limit)),
		WithPayload:    qd.NewWithPayload(true),
	})
	if err != nil {
		return nil, wrap("search "+alias, err)
	}
	hits := make([]Hit, 0, len(points))
	for _, pt := range points {
		hits = append(hits, Hit{Payload: PayloadOf(pt.GetPayload()), Score: pt.GetScore()})
	}
	return hits, nil
}

// mismatch is the error for a query of a space without a live collection under base.
func mismatch(ctx context.Context, client *qd.Client, base string, space Space) error {
	served, err := Spaces(ctx, client, base)
	if err != nil {
		return fmt.Errorf("qdrant search: no collection of space %s under %q (and the spaces there could not be listed: %w): %w", space, base, err, ErrSpaceMismatch)
	}
	if len(served) == 0 {
		return fmt.Errorf("qdrant search: the query is embedded in space %s, but no Qdrant collection exists under %q yet (is proj-qdrant running?): %w", space, base, ErrSpaceMismatch)
	}
	names := make([]string, len(served))
	for i, s := range served {
		names[i] = s.Space.String()
	}
	return fmt.Errorf("qdrant search: the query is embedded in space %s, but the collections under %q hold %s: embed the query with that embedder (TGFLOW_EMBEDDER) or rebuild the projection for this one (tgflow projections rebuild qdrant): %w",
		space, base, strings.Join(names, ", "), ErrSpaceMismatch)
}
