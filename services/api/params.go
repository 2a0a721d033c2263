package api

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/search"
)

// maxParamBytes bounds any one parameter's raw value, before its own checks.
const maxParamBytes = 1024

// Bounds of the listing endpoints.
const (
	DefaultTrends = 20
	MaxTrends     = 100
	DefaultTags   = 50
	MaxTags       = 200
)

// params reads a query string that may hold only the allowed names, each at most once.
type params struct {
	v    url.Values
	errs []error
}

func readParams(u *url.URL, allowed ...string) *params {
	p := &params{}
	v, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		p.bad("the query string is malformed: %v", err)
		return p
	}
	p.v = v
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		switch {
		case !slices.Contains(allowed, k):
			p.bad("%s: unknown parameter (allowed: %s)", k, strings.Join(allowed, ", "))
		case len(v[k]) > 1:
			p.bad("%s: given %d times, at most once", k, len(v[k]))
		case len(v[k][0]) > maxParamBytes:
			p.bad("%s: longer than %d bytes", k, maxParamBytes)
		case !utf8.ValidString(v[k][0]):
			p.bad("%s: not valid UTF-8", k)
		}
	}
	return p
}

func (p *params) bad(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%w: "+format, append([]any{search.ErrInvalid}, args...)...))
}

func (p *params) str(name string) string { return p.v.Get(name) }

func (p *params) date(name string) time.Time {
	t, err := search.ParseDate(name, p.v.Get(name))
	if err != nil {
		p.errs = append(p.errs, err)
	}
	return t
}

func (p *params) limit(def, maxN int) int {
	s := strings.TrimSpace(p.v.Get("limit"))
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		p.bad("limit: %q is not an integer", s)
		return def
	}
	if n < 1 || n > maxN {
		p.bad("limit: %d is out of range 1..%d", n, maxN)
		return def
	}
	return n
}

func (p *params) err() error { return errors.Join(p.errs...) }

// channelRef resolves a channel given as an id or a username; an unknown username is a
// bad request that says so.
func (s *Server) channelRef(ctx context.Context, ref string) (events.ChannelID, error) {
	id, user, err := search.ParseChannel(ref)
	if err != nil || user == "" {
		return id, err
	}
	id, err = s.deps.Store.ChannelID(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return 0, fmt.Errorf("%w: channel: no channel @%s is known", search.ErrInvalid, user)
	}
	return id, err
}

// searchQuery reads the search parameters (the API's and the page's).
func (s *Server) searchQuery(ctx context.Context, u *url.URL) (search.Query, error) {
	p := readParams(u, "q", "channel", "tag", "topic", "since", "until", "limit")
	if p.v == nil {
		return search.Query{}, p.err()
	}
	q := search.Query{
		Text:   p.str("q"),
		Filter: search.Filter{Tag: p.str("tag"), Topic: p.str("topic"), Since: p.date("since"), Until: p.date("until")},
		Limit:  p.limit(search.DefaultLimit, search.MaxLimit),
	}
	if ref := p.str("channel"); ref != "" {
		id, _, err := search.ParseChannel(ref)
		if err != nil {
			p.errs = append(p.errs, err)
		} else {
			q.ChannelID = id
		}
	}
	// Report every problem of the parameters and of the query at once.
	qerr := q.Normalize()
	if err := errors.Join(p.err(), qerr); err != nil {
		return q, err
	}
	if ref := p.str("channel"); ref != "" && q.ChannelID == 0 {
		id, err := s.channelRef(ctx, ref)
		if err != nil {
			return q, err
		}
		q.ChannelID = id
	}
	return q, nil
}

// postRef reads the {channel}/{id} of a post path.
func (s *Server) postRef(ctx context.Context, chs, ids string) (events.ChannelID, int64, error) {
	var errs []error
	if chs == "" {
		errs = append(errs, fmt.Errorf("%w: channel: empty", search.ErrInvalid))
	}
	msg, err := strconv.ParseInt(ids, 10, 64)
	if err != nil || msg <= 0 {
		errs = append(errs, fmt.Errorf("%w: id: %q is not a positive message id", search.ErrInvalid, ids))
	}
	var ch events.ChannelID
	if chs != "" {
		if _, _, err := search.ParseChannel(chs); err != nil {
			errs = append(errs, err)
		} else if len(errs) == 0 {
			ch, err = s.channelRef(ctx, chs)
			if errors.Is(err, search.ErrInvalid) {
				return 0, 0, fmt.Errorf("%w: channel @%s", ErrNotFound, strings.TrimPrefix(chs, "@"))
			}
			if err != nil {
				return 0, 0, err
			}
		}
	}
	return ch, msg, errors.Join(errs...)
}
