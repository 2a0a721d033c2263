package tagger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
)

// PostsBucket is the KV bucket of the stage's per-post state (PostRecord by post key): what
// a vision result needs of its post, and the deleted posts. The topology declares it.
const PostsBucket = topology.BucketTagPosts

// PostRecord is what the stage keeps of one post: its latest version's text and
// attributes (written when posts.parsed or posts.edited is handled), the words of its images
// (written when posts.vision.analyzed is handled) and whether it was deleted.
type PostRecord struct {
	Version         int64           `json:"version"`
	Seen            bool            `json:"seen,omitempty"`
	ChannelUsername string          `json:"channel_username,omitempty"`
	Date            time.Time       `json:"date,omitzero"`
	Text            string          `json:"text,omitempty"`
	Entities        []events.Entity `json:"entities,omitempty"`
	Hashtags        []string        `json:"hashtags,omitempty"`
	Links           []string        `json:"links,omitempty"`
	HasMedia        bool            `json:"has_media,omitempty"`
	// VisionText is what the post's images say (descriptions and OCR text, bounded), once a
	// vision result arrived.
	VisionText []string `json:"vision_text,omitempty"`
	Deleted    bool     `json:"deleted,omitempty"`
}

// ErrPostState marks a post record that cannot be read or written.
var ErrPostState = errors.New("tagger: post state")

// PostStore keeps the PostRecord of every post the stage has seen.
type PostStore interface {
	// Update reads the record of key (nil when there is none), calls fn with a copy, and
	// stores what fn returns when it returns changed; it returns the record as stored
	// afterwards (nil when none). fn may be called more than once (compare-and-set).
	Update(ctx context.Context, key string, fn func(rec *PostRecord) (out *PostRecord, changed bool)) (*PostRecord, error)
}

// MemoryPosts is an in-memory PostStore (tests, and the contract suite).
type MemoryPosts struct {
	mu   sync.Mutex
	recs map[string]PostRecord
}

// NewMemoryPosts returns an empty store.
func NewMemoryPosts() *MemoryPosts { return &MemoryPosts{recs: map[string]PostRecord{}} }

// Update implements PostStore.
func (m *MemoryPosts) Update(_ context.Context, key string, fn func(*PostRecord) (*PostRecord, bool)) (*PostRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var cur *PostRecord
	if r, ok := m.recs[key]; ok {
		cur = &r
	}
	out, changed := fn(cur)
	if !changed {
		return cur, nil
	}
	if out == nil {
		return nil, fmt.Errorf("%w: %s: update returned no record", ErrPostState, key)
	}
	m.recs[key] = *out
	r := *out
	return &r, nil
}

// KVPosts is the PostStore in the tagger-posts KV bucket, updated by compare-and-set so that
// handlers running at once on one post never lose a write.
type KVPosts struct {
	kv jetstream.KeyValue
}

// NewKVPosts keeps records in kv.
func NewKVPosts(kv jetstream.KeyValue) *KVPosts { return &KVPosts{kv: kv} }

// casAttempts bounds the compare-and-set retries of one update.
const casAttempts = 16

// kvKey is the record key of a post key "<channel>/<message>": "<channel>.<message>".
func kvKey(postKey string) string {
	b := []byte(postKey)
	for i, c := range b {
		if c == '/' {
			b[i] = '.'
		}
	}
	return string(b)
}

// Update implements PostStore.
func (s *KVPosts) Update(ctx context.Context, key string, fn func(*PostRecord) (*PostRecord, bool)) (*PostRecord, error) {
	k := kvKey(key)
	// Most posts are seen once, with nothing stored yet: try that first, one write instead
	// of a read and a write. A record already there refuses the create, and the
	// compare-and-set loop below reads it (fn may be called more than once).
	if out, changed := fn(nil); changed && out != nil {
		b, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("%w: encode %s: %w", ErrPostState, k, err)
		}
		_, err = s.kv.Create(ctx, k, b)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("%w: write %s: %w", ErrPostState, k, err)
		}
	}
	for range casAttempts {
		var cur *PostRecord
		var rev uint64
		e, err := s.kv.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return nil, fmt.Errorf("%w: read %s: %w", ErrPostState, k, err)
		default:
			var r PostRecord
			if err := json.Unmarshal(e.Value(), &r); err != nil {
				return nil, fmt.Errorf("%w: decode %s: %w", ErrPostState, k, err)
			}
			cur, rev = &r, e.Revision()
		}
		out, changed := fn(cur)
		if !changed {
			return cur, nil
		}
		if out == nil {
			return nil, fmt.Errorf("%w: %s: update returned no record", ErrPostState, k)
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("%w: encode %s: %w", ErrPostState, k, err)
		}
		if cur == nil {
			_, err = s.kv.Create(ctx, k, b)
		} else {
			_, err = s.kv.Update(ctx, k, b, rev)
		}
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, fmt.Errorf("%w: write %s: %w", ErrPostState, k, err)
		}
		// Another handler wrote first: read again.
	}
	return nil, fmt.Errorf("%w: %s: %d compare-and-set conflicts in a row", ErrPostState, k, casAttempts)
}
