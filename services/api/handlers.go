package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/search"
)

// SearchQuery is the normalized query a search answers.
type SearchQuery struct {
	Q         string           `json:"q"`
	ChannelID events.ChannelID `json:"channel_id,omitempty"`
	Tag       string           `json:"tag,omitempty"`
	Topic     string           `json:"topic,omitempty"`
	Since     *time.Time       `json:"since,omitempty"`
	Until     *time.Time       `json:"until,omitempty"`
	Limit     int              `json:"limit"`
}

// SearchResponse is the answer of /api/search.
type SearchResponse struct {
	Query    SearchQuery  `json:"query"`
	Backends []string     `json:"backends"`
	Hits     []search.Hit `json:"hits"`
}

// ChannelsResponse is the answer of /api/channels.
type ChannelsResponse struct {
	Channels  []Channel     `json:"channels"`
	Consumers []ConsumerLag `json:"consumers"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) doSearch(ctx context.Context, r *http.Request) (SearchResponse, error) {
	q, err := s.searchQuery(ctx, r.URL)
	if err != nil {
		return SearchResponse{}, err
	}
	res, err := s.deps.Search.Search(ctx, q)
	if err != nil {
		return SearchResponse{}, err
	}
	if res.Hits == nil {
		res.Hits = []search.Hit{}
	}
	if res.Backends == nil {
		res.Backends = []string{}
	}
	return SearchResponse{
		Query: SearchQuery{Q: q.Text, ChannelID: q.ChannelID, Tag: q.Tag, Topic: q.Topic,
			Since: timePtr(q.Since), Until: timePtr(q.Until), Limit: q.Limit},
		Backends: res.Backends,
		Hits:     res.Hits,
	}, nil
}

func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request) {
	res, err := s.doSearch(r.Context(), r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// historySlack is how long before a post's date the history read starts: a fact about a
// post is stored after the post was written, give or take the clocks of Telegram and the
// log's server.
const historySlack = time.Hour

func (s *Server) post(ctx context.Context, r *http.Request) (Post, error) {
	if err := readParams(r.URL).err(); err != nil {
		return Post{}, err
	}
	ch, msg, err := s.postRef(ctx, r.PathValue("channel"), r.PathValue("id"))
	if err != nil {
		return Post{}, err
	}
	p, err := s.deps.Store.Post(ctx, ch, msg)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Post{}, fmt.Errorf("%w: post %s", ErrNotFound, events.PostKey(ch, msg))
		}
		return Post{}, err
	}
	h, err := s.deps.Log.History(ctx, ch, msg, p.Date.Add(-historySlack))
	if err != nil {
		return Post{}, fmt.Errorf("the post's facts from the log: %w", err)
	}
	p.History = h
	if p.History == nil {
		p.History = []Fact{}
	}
	p.Link = search.Link(p.ChannelID, p.ChannelUsername, p.MessageID)
	return normalizePost(p), nil
}

// normalizePost gives every list of a post a non-nil value, so clients see [] not null.
func normalizePost(p Post) Post {
	if p.Links == nil {
		p.Links = []string{}
	}
	if p.Tags == nil {
		p.Tags = []Tag{}
	}
	if p.Topics == nil {
		p.Topics = []string{}
	}
	if p.Media == nil {
		p.Media = []Media{}
	}
	if p.Pages == nil {
		p.Pages = []Page{}
	}
	if p.Vision == nil {
		p.Vision = []Vision{}
	}
	for i := range p.Vision {
		if p.Vision[i].Labels == nil {
			p.Vision[i].Labels = []string{}
		}
	}
	if p.Album != nil && p.Album.MessageIDs == nil {
		p.Album.MessageIDs = []int64{}
	}
	return p
}

func (s *Server) apiPost(w http.ResponseWriter, r *http.Request) {
	p, err := s.post(r.Context(), r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) channels(ctx context.Context) (ChannelsResponse, error) {
	chs, err := s.deps.Store.Channels(ctx)
	if err != nil {
		return ChannelsResponse{}, err
	}
	cons, err := s.deps.Log.Consumers(ctx)
	if err != nil {
		return ChannelsResponse{}, fmt.Errorf("consumers of the log: %w", err)
	}
	if chs == nil {
		chs = []Channel{}
	}
	if cons == nil {
		cons = []ConsumerLag{}
	}
	return ChannelsResponse{Channels: chs, Consumers: cons}, nil
}

func (s *Server) apiChannels(w http.ResponseWriter, r *http.Request) {
	if err := readParams(r.URL).err(); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.channels(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) trends(ctx context.Context, r *http.Request) ([]Trend, error) {
	p := readParams(r.URL, "since", "limit")
	q := TrendQuery{Since: p.date("since"), Limit: p.limit(DefaultTrends, MaxTrends)}
	if err := p.err(); err != nil {
		return nil, err
	}
	ts, err := s.deps.Store.Trends(ctx, q)
	if ts == nil {
		ts = []Trend{}
	}
	for i := range ts {
		if ts[i].Channels == nil {
			ts[i].Channels = []events.ChannelID{}
		}
		if ts[i].Posts == nil {
			ts[i].Posts = []string{}
		}
	}
	return ts, err
}

func (s *Server) apiTrends(w http.ResponseWriter, r *http.Request) {
	ts, err := s.trends(r.Context(), r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"trends": ts})
}

func (s *Server) tags(ctx context.Context, r *http.Request) ([]TagCount, error) {
	p := readParams(r.URL, "since", "limit")
	q := TagQuery{Since: p.date("since"), Limit: p.limit(DefaultTags, MaxTags)}
	if err := p.err(); err != nil {
		return nil, err
	}
	tags, err := s.deps.Store.Tags(ctx, q)
	if tags == nil {
		tags = []TagCount{}
	}
	return tags, err
}

func (s *Server) apiTags(w http.ResponseWriter, r *http.Request) {
	tags, err := s.tags(r.Context(), r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

func (s *Server) apiOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if _, err := w.Write(openAPI); err != nil {
		return // the client went away
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	ready := true
	for _, c := range append([]Check{{"postgres", s.deps.Store.Ping}}, s.deps.Ready...) {
		if err := c.Check(r.Context()); err != nil {
			ready = false
			checks[c.Name] = err.Error()
			continue
		}
		checks[c.Name] = "ok"
	}
	status, code := "ready", http.StatusOK
	if !ready {
		status, code = "not ready", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": checks})
}
