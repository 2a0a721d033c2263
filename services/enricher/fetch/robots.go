package fetch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/temoto/robotstxt"
	"golang.org/x/sync/singleflight"
)

// robotsMaxBytes is how much of a robots.txt is read (RFC 9309 asks for at least 500 KiB).
const robotsMaxBytes = 512 << 10

// robotsCache fetches and keeps each origin's robots.txt. Per RFC 9309 (as robotstxt
// implements it): 2xx is parsed, 4xx allows everything, 5xx disallows everything. A robots.txt
// that does not parse allows everything (crawlers ignore what they cannot read); a transport
// failure is not cached and fails the page with the same reason.
type robotsCache struct {
	client  *http.Client
	limiter *domainLimiter
	ttl     time.Duration
	ua      string
	log     *slog.Logger

	mu      sync.Mutex
	entries map[string]robotsEntry
	flight  singleflight.Group
}

type robotsEntry struct {
	data    *robotstxt.RobotsData
	expires time.Time
}

const maxRobotsEntries = 10000

// allowed reports whether u may be fetched by RobotsAgent.
func (c *robotsCache) allowed(ctx context.Context, u *url.URL) (bool, error) {
	origin := u.Scheme + "://" + u.Host
	data, err := c.get(ctx, origin)
	if err != nil {
		return false, err
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	return data.TestAgent(path, RobotsAgent), nil
}

func (c *robotsCache) get(ctx context.Context, origin string) (*robotstxt.RobotsData, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[origin]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.data, nil
	}
	ch := c.flight.DoChan(origin, func() (any, error) {
		data, err := c.fetch(ctx, origin)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if len(c.entries) >= maxRobotsEntries {
			for k, v := range c.entries {
				if now.After(v.expires) {
					delete(c.entries, k)
				}
			}
		}
		c.entries[origin] = robotsEntry{data: data, expires: time.Now().Add(c.ttl)}
		c.mu.Unlock()
		return data, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*robotstxt.RobotsData), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *robotsCache) fetch(ctx context.Context, origin string) (*robotstxt.RobotsData, error) {
	u, err := url.Parse(origin + "/robots.txt")
	if err != nil {
		return nil, err
	}
	if err := c.limiter.wait(ctx, u.Hostname()); err != nil {
		return nil, fmt.Errorf("robots.txt: %w", errRateLimited)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.ua)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("robots.txt: %w", err)
	}
	defer closeBody(resp.Body, c.log)
	body, err := io.ReadAll(io.LimitReader(resp.Body, robotsMaxBytes))
	if err != nil {
		return nil, fmt.Errorf("robots.txt: read: %w", err)
	}
	data, err := robotstxt.FromStatusAndBytes(resp.StatusCode, body)
	if err != nil {
		// An unparsable file or an unexpected status (1xx, an unfollowed 3xx): no rules.
		c.log.Debug("robots.txt gives no rules", "origin", origin, "status", resp.StatusCode, "err", err)
		return robotstxt.FromStatusAndBytes(http.StatusNotFound, nil)
	}
	return data, nil
}

// closeBody drains a little of a body (so the connection can be reused) and closes it.
func closeBody(b io.ReadCloser, log *slog.Logger) {
	if _, err := io.Copy(io.Discard, io.LimitReader(b, 4<<10)); err != nil {
		log.Debug("drain response body", "err", err)
	}
	if err := b.Close(); err != nil {
		log.Debug("close response body", "err", err)
	}
}
