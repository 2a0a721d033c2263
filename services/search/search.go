// Package search plans a search over the read models: Postgres full-text search (Russian and
// English configurations per post language), Qdrant semantic search (the query embedded by
// the collection's own embedder), fused by reciprocal rank fusion when both answer, and
// Neo4j for posts related to a post. It knows the backends only through the small
// interfaces below; cmd/tgflow wires the projections' read functions into them.
//
// What a caller relies on:
//   - A query is validated (Query.Normalize) before any backend sees it; every problem wraps
//     ErrInvalid and says what is wrong.
//   - The query is embedded only by an embedder whose vector space equals the live
//     collection's; otherwise Search fails with ErrSpaceMismatch and names both spaces.
//   - Filters apply in every backend's own query (channel, tag, topic, date range), so a
//     filtered search ranks only matching posts; hits from a backend that could not apply a
//     filter are checked against it (Filter.Match) after hydration.
//   - Results carry an excerpt cut around the query's words with those words marked.
package search

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/embed"
)

// ErrSpaceMismatch is returned when the query embedder's vector space differs from the live
// collection's: their vectors are not comparable.
var ErrSpaceMismatch = errors.New("the query embedder's vector space differs from the collection's")

// ErrNoBackend is returned when no backend is configured for what was asked.
var ErrNoBackend = errors.New("no search backend configured")

// ErrNotFound is returned for a post the read model does not hold.
var ErrNotFound = errors.New("not found")

// FullText is Postgres full-text search.
type FullText interface {
	// FullText returns the posts matching q (text and filters), best first, at most q.Limit,
	// each carrying its text (Hit.WithText) for the excerpt.
	FullText(ctx context.Context, q Query) ([]Hit, error)
}

// Semantic is vector search in Qdrant.
type Semantic interface {
	// Spaces lists the vector spaces (embed.Info.Space) that have a live collection; empty
	// when nothing was embedded yet.
	Spaces(ctx context.Context) ([]string, error)
	// Nearest returns the posts of space nearest to vec that pass f, best first, at most
	// limit. A filter the backend cannot apply (a topic, when its payload has none) is left
	// to Search, which checks every hit with Filter.Match after hydration.
	Nearest(ctx context.Context, space string, vec []float32, f Filter, limit int) ([]Hit, error)
}

// Hydrator completes hits found by another backend with what Postgres knows (channel title,
// text, tags, topics). It returns the same hits in the same order; a hit it does not know
// is returned unchanged.
type Hydrator interface {
	Hydrate(ctx context.Context, hits []Hit) ([]Hit, error)
}

// Graph finds related posts in Neo4j.
type Graph interface {
	// Related lists the posts connected to ch/msg, best first, at most limit; ErrNotFound
	// when the graph does not hold the post.
	Related(ctx context.Context, ch events.ChannelID, msg int64, limit int) ([]Related, error)
	// ChannelID resolves a username; ErrNotFound when the graph knows no such channel.
	ChannelID(ctx context.Context, username string) (events.ChannelID, error)
}

// Related is a post connected to another through shared tags, pages or near-duplicate
// images.
type Related struct {
	Hit
	// Path says how the two posts connect, e.g. "tag go", "page go.dev/blog/go1.25",
	// "near-duplicate image (distance 3)".
	Path []string `json:"path"`
	// Weight orders related posts: the number of connections, best first.
	Weight float64 `json:"weight"`
}

// Service plans searches over the configured backends. Nil backends are absent.
type Service struct {
	FullText FullText
	Semantic Semantic
	// Embedder embeds queries for Semantic; required with it.
	Embedder embed.Embedder
	Hydrator Hydrator
	Graph    Graph
}

// Result is the answer to a search.
type Result struct {
	Hits []Hit `json:"hits"`
	// Backends lists the backends asked, in fusion order.
	Backends []string `json:"backends"`
}

// candidates is how many posts each backend returns for fusion: more than the page, so that
// a post ranked lower by one backend and high by the other still makes it.
func candidates(limit int) int { return min(max(3*limit, 30), 150) }

// Search validates q, asks every configured backend, fuses, hydrates, filters and cuts
// excerpts.
func (s *Service) Search(ctx context.Context, q Query) (Result, error) {
	if err := q.Normalize(); err != nil {
		return Result{}, err
	}
	if s.FullText == nil && s.Semantic == nil {
		return Result{}, ErrNoBackend
	}
	var (
		vec   []float32
		space string
	)
	if s.Semantic != nil {
		v, sp, err := s.embedQuery(ctx, q.Text)
		if err != nil {
			return Result{}, err
		}
		vec, space = v, sp
	}
	n := candidates(q.Limit)
	var (
		wg       sync.WaitGroup
		ft, sem  []Hit
		ftErr    error
		semErr   error
		backends []string
	)
	if s.FullText != nil {
		backends = append(backends, BackendPostgres)
		wg.Go(func() {
			fq := q
			fq.Limit = n
			ft, ftErr = s.FullText.FullText(ctx, fq)
			if relaxed := anyWord(q.Text); ftErr == nil && len(ft) == 0 && relaxed != "" {
				// websearch_to_tsquery wants every word; a query with one word the posts lack
				// would find nothing. Ask again for any of its words: ts_rank puts the posts
				// matching more of them first.
				fq.Text = relaxed
				ft, ftErr = s.FullText.FullText(ctx, fq)
			}
			if ftErr != nil {
				ftErr = fmt.Errorf("postgres full-text search: %w", ftErr)
			}
		})
	}
	if vec != nil {
		backends = append(backends, BackendQdrant)
		wg.Go(func() {
			sem, semErr = s.Semantic.Nearest(ctx, space, vec, q.Filter, n)
			if semErr != nil {
				semErr = fmt.Errorf("qdrant search: %w", semErr)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(ftErr, semErr); err != nil {
		return Result{}, err
	}
	hits := Fuse(Ranked{BackendPostgres, ft}, Ranked{BackendQdrant, sem})
	if s.Hydrator != nil && len(sem) > 0 {
		h, err := s.Hydrator.Hydrate(ctx, hits)
		if err != nil {
			return Result{}, fmt.Errorf("postgres: complete results: %w", err)
		}
		hits = h
	}
	terms := QueryTerms(q.Text)
	out := hits[:0]
	for _, h := range hits {
		if !q.Filter.Match(h.ChannelID, h.ChannelUsername, h.Date, h.Tags, h.Topics) {
			continue
		}
		out = append(out, s.finish(h, terms))
		if len(out) == q.Limit {
			break
		}
	}
	return Result{Hits: out, Backends: backends}, nil
}

// finish fills the fields every hit has whatever its backend: link, excerpt, non-nil lists.
func (s *Service) finish(h Hit, terms Terms) Hit {
	h.Link = Link(h.ChannelID, h.ChannelUsername, h.MessageID)
	if h.Excerpt == "" { // Postgres full-text hits come with ts_headline's excerpt
		h.Excerpt, h.Highlights = Excerpt(h.text, terms)
	}
	if h.Highlights == nil {
		h.Highlights = []Span{}
	}
	if h.Tags == nil {
		h.Tags = []string{}
	}
	if h.Topics == nil {
		h.Topics = []string{}
	}
	return h
}

// embedQuery embeds the query with the configured embedder after checking that a live
// collection holds its space. With no collection at all (nothing embedded yet) it returns
// no vector: the semantic backend has nothing to say.
func (s *Service) embedQuery(ctx context.Context, text string) ([]float32, string, error) {
	if s.Embedder == nil {
		return nil, "", errors.New("search: semantic search configured without a query embedder")
	}
	spaces, err := s.Semantic.Spaces(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("qdrant: the collections' vector spaces: %w", err)
	}
	if len(spaces) == 0 {
		return nil, "", nil
	}
	mine := s.Embedder.Info().Space()
	if !slices.Contains(spaces, mine) {
		return nil, "", fmt.Errorf("%w: the collections hold %s, the query embedder is %s; "+
			"configure the embedder the collection was built with (TGFLOW_EMBEDDER and its model), or rebuild the collection for it",
			ErrSpaceMismatch, strings.Join(spaces, ", "), mine)
	}
	vecs, err := s.Embedder.Embed(ctx, []string{text})
	if err != nil {
		return nil, "", fmt.Errorf("embed the query: %w", err)
	}
	if len(vecs) != 1 {
		return nil, "", fmt.Errorf("embed the query: %d vectors for one text", len(vecs))
	}
	return vecs[0], mine, nil
}

// Related lists posts connected to the post ref ("CHANNEL/ID", the channel an id or a
// username) in the graph, best first.
func (s *Service) Related(ctx context.Context, ref string, limit int) ([]Related, error) {
	if s.Graph == nil {
		return nil, fmt.Errorf("%w: --related needs Neo4j (TGFLOW_NEO4J_URI)", ErrNoBackend)
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return nil, fmt.Errorf("%w: limit: %d is out of range 1..%d", ErrInvalid, limit, MaxLimit)
	}
	ch, user, msg, err := ParsePostRef(ref)
	if err != nil {
		return nil, err
	}
	if user != "" {
		if ch, err = s.Graph.ChannelID(ctx, user); err != nil {
			return nil, fmt.Errorf("neo4j: channel @%s: %w", user, err)
		}
	}
	rel, err := s.Graph.Related(ctx, ch, msg, limit)
	if err != nil {
		return nil, fmt.Errorf("neo4j related: %w", err)
	}
	if s.Hydrator != nil && len(rel) > 0 {
		hits := make([]Hit, len(rel))
		for i, r := range rel {
			hits[i] = r.Hit
		}
		hydrated, err := s.Hydrator.Hydrate(ctx, hits)
		if err != nil {
			return nil, fmt.Errorf("postgres: complete related posts: %w", err)
		}
		for i := range rel {
			rel[i].Hit = hydrated[i]
		}
	}
	for i := range rel {
		rel[i].Backend = BackendNeo4j
		rel[i].Hit = s.finish(rel[i].Hit, nil)
	}
	return rel, nil
}

// anyWord rewrites a plain query of several words as their alternation in websearch syntax
// ("a or b or c"); "" when the query has fewer than two words or uses the syntax itself
// (quotes, a leading '-', "or"), which the user meant.
func anyWord(text string) string {
	words := strings.Fields(text)
	if len(words) < 2 || strings.ContainsAny(text, `"`) {
		return ""
	}
	for _, w := range words {
		if strings.HasPrefix(w, "-") || strings.EqualFold(w, "or") {
			return ""
		}
	}
	return strings.Join(words, " or ")
}
