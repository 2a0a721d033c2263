package search

import (
	"context"
	"errors"
	"fmt"
	"sync"

	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"
	qd "github.com/qdrant/go-client/qdrant"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections/neo4j"
	"github.com/tgflow/tgflow/projections/postgres"
	"github.com/tgflow/tgflow/projections/qdrant"
)

// The read models' own read functions behind this package's interfaces.

// Postgres is full-text search and hydration over the Postgres read model.
type Postgres struct {
	DB     postgres.Querier
	Schema string
}

var (
	_ FullText = Postgres{}
	_ Hydrator = Postgres{}
)

func hitOfPostgres(h postgres.Hit) Hit {
	spans := make([]Span, len(h.Highlights))
	for i, s := range h.Highlights {
		spans[i] = Span{Start: s.Start, End: s.End}
	}
	return Hit{
		ChannelID: h.ChannelID, ChannelTitle: h.ChannelTitle, ChannelUsername: h.ChannelUsername,
		MessageID: h.MessageID, Date: h.Date, Tags: h.Tags, Topics: h.Topics, Score: h.Score,
		Excerpt: h.Excerpt, Highlights: spans, text: h.Text,
	}
}

// FullText runs postgres.Search with q's text and filters.
func (p Postgres) FullText(ctx context.Context, q Query) ([]Hit, error) {
	pq := postgres.Query{Text: q.Text, ChannelID: q.ChannelID, ChannelUsername: q.ChannelUsername,
		Topic: q.Topic, Since: q.Since, Until: q.Until, Limit: q.Limit}
	if q.Tag != "" {
		pq.Tags = []string{q.Tag}
	}
	hits, err := postgres.Search(ctx, p.DB, p.Schema, pq)
	if errors.Is(err, postgres.ErrInvalidQuery) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Hit, len(hits))
	for i, h := range hits {
		out[i] = hitOfPostgres(h)
	}
	return out, nil
}

// Hydrate completes hits with the channel, text, tags and topics Postgres holds (not the
// excerpt: a hit's excerpt is cut around the query's words when it is finished).
func (p Postgres) Hydrate(ctx context.Context, hits []Hit) ([]Hit, error) {
	refs := make([]events.PostRef, len(hits))
	for i, h := range hits {
		refs[i] = events.PostRef{ChannelID: h.ChannelID, MessageID: h.MessageID}
	}
	rows, err := postgres.Lookup(ctx, p.DB, p.Schema, refs)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]postgres.Hit, len(rows))
	for _, r := range rows {
		byKey[r.Key()] = r
	}
	out := make([]Hit, len(hits))
	for i, h := range hits {
		if r, ok := byKey[h.Key()]; ok {
			h.ChannelTitle, h.ChannelUsername, h.Date = r.ChannelTitle, r.ChannelUsername, r.Date
			h.Tags, h.Topics, h.text = r.Tags, r.Topics, r.Text
		}
		out[i] = h
	}
	return out, nil
}

// Qdrant is semantic search over the live collections under the base alias.
type Qdrant struct {
	Client *qd.Client
	// Base is TGFLOW_QDRANT_ALIAS.
	Base string

	mu     sync.Mutex
	spaces map[string]qdrant.Space
}

var _ Semantic = (*Qdrant)(nil)

// Spaces lists the spaces with a live collection under Base.
func (q *Qdrant) Spaces(ctx context.Context) ([]string, error) {
	served, err := qdrant.Spaces(ctx, q.Client, q.Base)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(served))
	q.mu.Lock()
	defer q.mu.Unlock()
	q.spaces = map[string]qdrant.Space{}
	for i, s := range served {
		names[i] = s.Space.String()
		q.spaces[names[i]] = s.Space
	}
	return names, nil
}

// Nearest runs qdrant.Search in space (one Spaces listed).
func (q *Qdrant) Nearest(ctx context.Context, space string, vec []float32, f Filter, limit int) ([]Hit, error) {
	q.mu.Lock()
	sp, ok := q.spaces[space]
	q.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: no live collection holds %s", ErrSpaceMismatch, space)
	}
	qf := qdrant.Filter{Topic: f.Topic, Since: f.Since, Until: f.Until}
	switch {
	case f.ChannelID != 0:
		qf.Channel = f.ChannelID.String()
	case f.ChannelUsername != "":
		qf.Channel = f.ChannelUsername
	}
	if f.Tag != "" {
		qf.Tags = []string{f.Tag}
	}
	hits, err := qdrant.Search(ctx, q.Client, q.Base, sp, vec, qf, limit)
	switch {
	case errors.Is(err, qdrant.ErrSpaceMismatch):
		return nil, fmt.Errorf("%w: %w", ErrSpaceMismatch, err)
	case errors.Is(err, qdrant.ErrBadFilter):
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	case err != nil:
		return nil, err
	}
	out := make([]Hit, len(hits))
	for i, h := range hits {
		out[i] = Hit{ChannelID: h.ChannelID, ChannelUsername: h.ChannelUsername, MessageID: h.MessageID,
			Date: h.PostedAt, Tags: h.Tags, Topics: h.Topics, Score: float64(h.Score), text: h.Text}
	}
	return out, nil
}

// Neo4j finds related posts in the graph.
type Neo4j struct {
	Driver   nd.DriverWithContext
	Database string
}

var _ Graph = Neo4j{}

// Related runs neo4j.Related.
func (n Neo4j) Related(ctx context.Context, ch events.ChannelID, msg int64, limit int) ([]Related, error) {
	rel, err := neo4j.Related(ctx, n.Driver, n.Database, ch, msg, limit)
	switch {
	case errors.Is(err, neo4j.ErrPostNotFound), errors.Is(err, neo4j.ErrPostDeleted):
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, neo4j.ErrBadRelatedArgs):
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	case err != nil:
		return nil, err
	}
	out := make([]Related, len(rel))
	for i, r := range rel {
		path := make([]string, len(r.Connections))
		for j, c := range r.Connections {
			path[j] = c.String()
		}
		out[i] = Related{
			Hit: Hit{ChannelID: r.ChannelID, ChannelTitle: r.ChannelTitle, ChannelUsername: r.ChannelUsername,
				MessageID: r.MessageID, Date: r.PostedAt, Tags: r.Tags, Score: float64(r.Score), text: r.Text},
			Path: path, Weight: float64(r.Score),
		}
	}
	return out, nil
}

// ChannelID runs neo4j.ResolveChannel.
func (n Neo4j) ChannelID(ctx context.Context, username string) (events.ChannelID, error) {
	id, err := neo4j.ResolveChannel(ctx, n.Driver, n.Database, username)
	if errors.Is(err, neo4j.ErrChannelNotFound) {
		return 0, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return id, err
}
