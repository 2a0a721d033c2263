package fetch

import (
	"context"
	"sync"
	"time"
)

// Cache keeps results by normalised URL, so that one fetch serves every post linking the
// same page until the entry expires. Get returns ok=false for a missing or expired entry;
// an error means the cache could not be asked (the fetcher then fetches and logs it).
// body is the raw page, for implementations that keep it (nil for failures).
type Cache interface {
	Get(ctx context.Context, url string) (r Result, ok bool, err error)
	Put(ctx context.Context, url string, r Result, body []byte, ttl time.Duration) error
}

// MemoryCache is a Cache in process memory, for one process (tgflow dev, tests). It keeps
// results, not bodies, and at most maxEntries of them: when full, expired entries go first,
// then the ones closest to expiry.
type MemoryCache struct {
	max int

	mu      sync.Mutex
	entries map[string]memEntry
}

type memEntry struct {
	r       Result
	expires time.Time
}

// NewMemoryCache returns an empty cache holding at most maxEntries results (≤ 0: 10000).
func NewMemoryCache(maxEntries int) *MemoryCache {
	if maxEntries <= 0 {
		maxEntries = 10000
	}
	return &MemoryCache{max: maxEntries, entries: make(map[string]memEntry)}
}

// Get implements Cache.
func (c *MemoryCache) Get(_ context.Context, url string) (Result, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[url]
	if !ok || !time.Now().Before(e.expires) {
		return Result{}, false, nil
	}
	return e.r, true, nil
}

// Put implements Cache.
func (c *MemoryCache) Put(_ context.Context, url string, r Result, _ []byte, ttl time.Duration) error {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[url]; !ok && len(c.entries) >= c.max {
		var victim string
		var soonest time.Time
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
				continue
			}
			if victim == "" || e.expires.Before(soonest) {
				victim, soonest = k, e.expires
			}
		}
		if len(c.entries) >= c.max && victim != "" {
			delete(c.entries, victim)
		}
	}
	c.entries[url] = memEntry{r: r, expires: now.Add(ttl)}
	return nil
}
