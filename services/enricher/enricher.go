// Package enricher is the enricher stage: posts.tagged → posts.enriched, exactly one per
// tagged revision. It fetches the pages a post links to through fetch (SSRF guard at dial
// time, robots.txt, per-domain politeness, size and time limits, a shared cache) and records
// every page, or why there is none; no fetch failure dead-letters a post or stalls the
// stage beyond its timeout.
package enricher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services/enricher/fetch"
)

// Fetcher fetches one post's links (fetch.Fetcher in production).
type Fetcher interface {
	FetchAll(ctx context.Context, links []string) ([]fetch.Result, error)
}

// Handler enriches tagged revisions.
type Handler struct {
	f   Fetcher
	now func() time.Time
}

// NewHandler enriches through f.
func NewHandler(f Fetcher) (*Handler, error) {
	if f == nil {
		return nil, errors.New("enricher: nil fetcher")
	}
	return &Handler{f: f, now: time.Now}, nil
}

// Handle computes the one posts.enriched of a tagged revision. Only the end of ctx
// (shutdown) is an error: the input is redelivered and enriched again.
func (h *Handler) Handle(ctx context.Context, in events.Event, p *events.PostTagged) ([]events.Event, error) {
	links := events.ExtractLinks(p.Text, nil, p.Links...)
	results, err := h.f.FetchAll(ctx, links)
	if err != nil {
		return nil, fmt.Errorf("enrich %s: %w", p.Key(), err)
	}
	pages := make([]events.Page, 0, len(results))
	for _, r := range results {
		pages = append(pages, r.Page())
	}
	tags := make([]string, 0, len(p.Tags))
	for _, t := range p.Tags {
		tags = append(tags, t.Name)
	}
	// Topics are a chat tagger's choice (with its source), passed on to the embedder.
	out := &events.PostEnriched{
		PostRef:         p.PostRef,
		Rev:             p.Rev,
		Tags:            tags,
		Topics:          p.Topics,
		TopicsSource:    p.TopicsSource,
		ChannelUsername: p.ChannelUsername,
		PostedAt:        p.PostedAt,
		Text:            p.Text,
		Vision:          p.Vision,
		Pages:           pages,
	}
	return []events.Event{worker.Derive(ctx, in, out, h.now())}, nil
}

// Router is the enricher's router over h.
func Router(h *Handler) *worker.Router {
	r := worker.NewRouter()
	worker.On(r, h.Handle)
	return r
}
