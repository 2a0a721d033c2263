package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KVCache is the Cache shared by every enricher instance: results in a JetStream KV bucket
// (key = hex sha256 of the normalised URL, since KV keys may not hold every URL character;
// the value names its URL and expiry), raw page bodies in an object store, content-addressed
// by hex sha256 (Result.ContentSHA256), stored once however many URLs serve them.
type KVCache struct {
	kv  jetstream.KeyValue
	obj jetstream.ObjectStore
}

// NewKVCache uses kv for results and obj for bodies; obj may be nil to keep no bodies.
func NewKVCache(kv jetstream.KeyValue, obj jetstream.ObjectStore) (*KVCache, error) {
	if kv == nil {
		return nil, errors.New("fetch: KV cache needs a key-value bucket")
	}
	return &KVCache{kv: kv, obj: obj}, nil
}

type kvEntry struct {
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
	Result  Result    `json:"result"`
}

// URLKey is the KV key of a normalised URL.
func URLKey(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:])
}

// Get implements Cache.
func (c *KVCache) Get(ctx context.Context, url string) (Result, bool, error) {
	e, err := c.kv.Get(ctx, URLKey(url))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("page cache get: %w", err)
	}
	var v kvEntry
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return Result{}, false, fmt.Errorf("page cache get %s: decode: %w", e.Key(), err)
	}
	if v.URL != url || !time.Now().Before(v.Expires) {
		return Result{}, false, nil
	}
	return v.Result, true, nil
}

// Put implements Cache: the body first (so that a cached result never names a missing
// body), then the result.
func (c *KVCache) Put(ctx context.Context, url string, r Result, body []byte, ttl time.Duration) error {
	if c.obj != nil && len(body) > 0 && r.ContentSHA256 != "" {
		_, err := c.obj.GetInfo(ctx, r.ContentSHA256)
		switch {
		case errors.Is(err, jetstream.ErrObjectNotFound):
			if _, err := c.obj.Put(ctx, jetstream.ObjectMeta{Name: r.ContentSHA256, Description: r.ContentType}, bytes.NewReader(body)); err != nil {
				return fmt.Errorf("page body put %s: %w", r.ContentSHA256, err)
			}
		case err != nil:
			return fmt.Errorf("page body info %s: %w", r.ContentSHA256, err)
		}
	}
	r.Cached = false
	v, err := json.Marshal(kvEntry{URL: url, Expires: time.Now().Add(ttl), Result: r})
	if err != nil {
		return fmt.Errorf("page cache put: encode: %w", err)
	}
	if _, err := c.kv.Put(ctx, URLKey(url), v); err != nil {
		return fmt.Errorf("page cache put: %w", err)
	}
	return nil
}

// Body returns a stored raw page by its sha256 (Result.ContentSHA256).
func (c *KVCache) Body(ctx context.Context, sha string) ([]byte, error) {
	if c.obj == nil {
		return nil, errors.New("page cache keeps no bodies")
	}
	b, err := c.obj.GetBytes(ctx, sha)
	if err != nil {
		return nil, fmt.Errorf("page body get %s: %w", sha, err)
	}
	return b, nil
}
