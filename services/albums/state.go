package albums

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
)

// ErrConflict is returned when a compare-and-set kept losing to other writers.
var ErrConflict = errors.New("albums: too many concurrent updates")

// ErrState wraps an album state that cannot be read (corrupt JSON).
var ErrState = errors.New("albums: unreadable state")

// maxAttempts bounds the CAS retries of one update. Each retry follows another writer's
// success, so running out needs that many concurrent writers on one key.
const maxAttempts = 200

// item is one album item and what is known of its images.
type item struct {
	MessageID int64  `json:"m"`
	Kind      string `json:"k,omitempty"`
	SHA256    string `json:"s,omitempty"`
	// Wait is set when vision analyses the item's media: the album waits for its result.
	Wait   bool    `json:"w,omitempty"`
	Vision *vision `json:"v,omitempty"`
}

func (it item) done() bool { return !it.Wait || it.Vision != nil }

// vision is what an album keeps of one post's vision result.
type vision struct {
	Rev          events.Rev `json:"rev"`
	Labels       []string   `json:"labels,omitempty"`
	Descriptions []string   `json:"descriptions,omitempty"`
	OCR          string     `json:"ocr,omitempty"`
	// Analysed is set when at least one image was analysed without an error.
	Analysed bool `json:"analysed,omitempty"`
}

// claim is the frozen summary of one album version.
type claim struct {
	Version   string                `json:"version"`
	ID        string                `json:"id"`
	At        time.Time             `json:"at"`
	Payload   events.AlbumAssembled `json:"payload"`
	Confirmed bool                  `json:"confirmed,omitempty"`
}

// event rebuilds the claimed fact: the same payload, time and version give the same id.
func (c *claim) event() events.Event {
	p := c.Payload
	return events.New(events.ProducerAlbums, &p, c.At, "version", c.Version)
}

// album is the state under a.<channel>.<first>.
type album struct {
	ChannelID  events.ChannelID `json:"channel_id"`
	First      int64            `json:"first"`
	GroupedIDs []int64          `json:"grouped_ids"`
	Caption    string           `json:"caption,omitempty"`
	PostedAt   time.Time        `json:"posted_at"`
	FirstSeen  time.Time        `json:"first_seen"`
	Deadline   time.Time        `json:"deadline"`
	Items      []item           `json:"items"`
	Claims     []claim          `json:"claims,omitempty"`
}

// version is the digest of the item set.
func (a *album) version() string {
	parts := make([]string, 0, len(a.Items)+1)
	parts = append(parts, "album-items")
	for _, it := range a.Items {
		parts = append(parts, strconv.FormatInt(it.MessageID, 10))
	}
	return events.NewID(parts...)[:16]
}

func (a *album) claimOf(version string) *claim {
	for i := range a.Claims {
		if a.Claims[i].Version == version {
			return &a.Claims[i]
		}
	}
	return nil
}

// complete reports whether every item has its result.
func (a *album) complete() bool {
	for _, it := range a.Items {
		if !it.done() {
			return false
		}
	}
	return true
}

// settled reports whether the current version is claimed and every claim is confirmed:
// nothing is left to do until the item set changes.
func (a *album) settled() bool {
	if a.claimOf(a.version()) == nil {
		return false
	}
	for _, c := range a.Claims {
		if !c.Confirmed {
			return false
		}
	}
	return true
}

func (a *album) item(msg int64) *item {
	i, ok := slices.BinarySearchFunc(a.Items, msg, func(it item, m int64) int { return cmpInt(it.MessageID, m) })
	if !ok {
		return nil
	}
	return &a.Items[i]
}

// setVision records v for item msg unless the item has a newer one. It reports a change.
func (a *album) setVision(msg int64, v *vision) bool {
	it := a.item(msg)
	if it == nil || v == nil || (it.Vision != nil && it.Vision.Rev.Compare(v.Rev) >= 0) {
		return false
	}
	it.Vision = v
	return true
}

// pending is the rendezvous of one post under p.<channel>.<message>.
type pending struct {
	// Album is the KV key of the album the post is an item of, once known.
	Album    string    `json:"album,omitempty"`
	Vision   *vision   `json:"vision,omitempty"`
	StoredAt time.Time `json:"stored_at"`
}

// Key prefixes.
const (
	prefixAlbum   = "a"
	prefixPending = "p"
	prefixOpen    = "o"
)

func albumKey(ch events.ChannelID, first int64) string {
	return prefixAlbum + "." + ch.String() + "." + strconv.FormatInt(first, 10)
}

func pendingKey(ch events.ChannelID, msg int64) string {
	return prefixPending + "." + ch.String() + "." + strconv.FormatInt(msg, 10)
}

// openKey is the index key of an album key.
func openKey(albumKey string) string {
	return prefixOpen + strings.TrimPrefix(albumKey, prefixAlbum)
}

func albumKeyOfOpen(openKey string) string {
	return prefixAlbum + strings.TrimPrefix(openKey, prefixOpen)
}

// update applies fn to the JSON value under key by compare-and-set, retrying on a
// conflict. fn gets the current value (zero and found=false when absent) and reports
// whether it changed it; an unchanged value is not written. update returns the value as
// written (or as read when unchanged).
func update[T any](ctx context.Context, kv jetstream.KeyValue, key string, fn func(v *T, found bool) (bool, error)) (T, error) {
	for range maxAttempts {
		var v T
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return v, fmt.Errorf("get %s: %w", key, err)
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				return v, fmt.Errorf("%w: %s: %w", ErrState, key, err)
			}
		}
		changed, err := fn(&v, rev != 0)
		if err != nil || !changed {
			return v, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return v, fmt.Errorf("encode %s: %w", key, err)
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, b)
		} else {
			_, err = kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return v, nil
		}
		if !conflict(err) {
			return v, fmt.Errorf("write %s: %w", key, err)
		}
	}
	var zero T
	return zero, fmt.Errorf("%w: %s", ErrConflict, key)
}

// conflict reports a lost compare-and-set: the key was written since it was read.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
