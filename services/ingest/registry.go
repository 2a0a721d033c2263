package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
)

// The channels bucket holds the channel registry, written by the ingest stage (from
// channels.subscribed/unsubscribed) and by the scheduler (sync state):
//
//	ch.<id>              a channel whose id is known: access hash, subscription, sync state
//	pending.<username>   a channel subscribed by username, not resolved yet (lowercase key)
//	resolved.<username>  the username cache: id and access hash, resolved once
const (
	prefixChannel  = "ch."
	prefixPending  = "pending."
	prefixResolved = "resolved."
)

func channelKey(id events.ChannelID) string { return prefixChannel + id.String() }
func pendingKey(username string) string     { return prefixPending + strings.ToLower(username) }
func resolvedKey(username string) string    { return prefixResolved + strings.ToLower(username) }

// record is one registry entry (ch.* and pending.*).
type record struct {
	ChannelID    events.ChannelID `json:"channel_id,omitempty"`
	AccessHash   int64            `json:"access_hash,omitempty"`
	Username     string           `json:"username,omitempty"`
	Title        string           `json:"title,omitempty"`
	Subscribed   bool             `json:"subscribed"`
	SubscribedAt time.Time        `json:"subscribed_at,omitzero"`
	Backfill     events.Backfill  `json:"backfill,omitzero"`
	// Due marks a new or re-added subscription: the next run, started at once, reads it
	// (a backfill when it was never read, else from its cursor).
	Due bool `json:"due,omitempty"`
	// Cursor mirrors the ingest-cursors entry for `channels ls`; the cursor bucket rules.
	Cursor      int64     `json:"cursor,omitempty"`
	LastSync    time.Time `json:"last_sync,omitzero"`
	LastRecheck time.Time `json:"last_recheck,omitzero"`
	ErrorCode   string    `json:"error_code,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	Failures    int       `json:"failures,omitempty"`
	RetryAt     time.Time `json:"retry_at,omitzero"`
}

func (r *record) key() string {
	if r.ChannelID.Valid() {
		return channelKey(r.ChannelID)
	}
	return pendingKey(r.Username)
}

func (r *record) name() string {
	if r.Username != "" {
		return "@" + r.Username
	}
	return r.ChannelID.String()
}

// resolution is a cached username resolution.
type resolution struct {
	ChannelID  events.ChannelID `json:"channel_id"`
	AccessHash int64            `json:"access_hash"`
	Username   string           `json:"username"`
	Title      string           `json:"title,omitempty"`
	ResolvedAt time.Time        `json:"resolved_at"`
}

// registry is the channels bucket.
type registry struct {
	kv jetstream.KeyValue
}

var errConflict = errors.New("registry: concurrent update")

// errUnreadable marks a KV entry whose value does not decode.
var errUnreadable = errors.New("unreadable entry")

// get reads a JSON entry; found is false when the key is absent.
func getJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string) (v T, rev uint64, found bool, err error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return v, 0, false, nil
	}
	if err != nil {
		return v, 0, false, fmt.Errorf("kv %s get %s: %w", kv.Bucket(), key, err)
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return v, 0, false, fmt.Errorf("kv %s %s: %w: %w", kv.Bucket(), key, errUnreadable, err)
	}
	return v, e.Revision(), true, nil
}

// putJSON writes v with compare-and-set: rev 0 creates, otherwise the entry must still be
// at rev. A conflict is errConflict.
func putJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any, rev uint64) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = kv.Create(ctx, key, b)
	} else {
		nrev, err = kv.Update(ctx, key, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("%w: %s", errConflict, key)
	}
	if err != nil {
		return 0, fmt.Errorf("kv %s put %s: %w", kv.Bucket(), key, err)
	}
	return nrev, nil
}

// updateJSON is a compare-and-set read-modify-write of one entry, retried on conflict. fn
// gets the current value (zero when absent) and returns false to leave it unchanged.
func updateJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string, fn func(v *T, found bool) (bool, error)) error {
	for range 20 {
		v, rev, found, err := getJSON[T](ctx, kv, key)
		if err != nil {
			return err
		}
		write, err := fn(&v, found)
		if err != nil || !write {
			return err
		}
		_, err = putJSON(ctx, kv, key, v, rev)
		if errors.Is(err, errConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("%w: %s: too many retries", errConflict, key)
}

// entries reads every entry whose key matches one of the filters.
func entries(ctx context.Context, kv jetstream.KeyValue, filters ...string) ([]jetstream.KeyValueEntry, error) {
	w, err := kv.WatchFiltered(ctx, filters, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("kv %s list: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return out, nil
			}
			out = append(out, e)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (g *registry) update(ctx context.Context, key string, fn func(r *record, found bool) (bool, error)) error {
	return updateJSON(ctx, g.kv, key, fn)
}

func (g *registry) resolution(ctx context.Context, username string) (resolution, bool, error) {
	r, _, found, err := getJSON[resolution](ctx, g.kv, resolvedKey(username))
	return r, found, err
}

// records lists every channel and pending record, ordered by key.
func (g *registry) records(ctx context.Context) ([]record, error) {
	es, err := entries(ctx, g.kv, prefixChannel+"*", prefixPending+"*")
	if err != nil {
		return nil, err
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Key() < es[j].Key() })
	out := make([]record, 0, len(es))
	for _, e := range es {
		var r record
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			return nil, fmt.Errorf("kv %s %s: %w", g.kv.Bucket(), e.Key(), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// subscribe applies a channels.subscribed fact. A channel whose username was resolved
// before goes straight to its ch.<id> record; a new one is marked for an immediate backfill
// unless it was read before (its cursor is kept).
func (g *registry) subscribe(ctx context.Context, p *events.ChannelSubscribed, now time.Time) (string, error) {
	id := p.ChannelID
	var hash int64
	if !id.Valid() {
		res, found, err := g.resolution(ctx, p.Username)
		if err != nil {
			return "", err
		}
		if !found {
			key := pendingKey(p.Username)
			return key, g.update(ctx, key, func(r *record, found bool) (bool, error) {
				if found && r.Subscribed {
					return false, nil
				}
				*r = record{Username: p.Username, Subscribed: true, SubscribedAt: subscribedAt(p, now), Backfill: p.Backfill, Due: true}
				return true, nil
			})
		}
		id, hash = res.ChannelID, res.AccessHash
	}
	key := channelKey(id)
	return key, g.update(ctx, key, func(r *record, found bool) (bool, error) {
		if found && r.Subscribed && (p.Username == "" || r.Username != "") {
			return false, nil
		}
		if !found {
			*r = record{ChannelID: id, Due: true}
		}
		if !r.Subscribed {
			r.Subscribed, r.SubscribedAt, r.Backfill = true, subscribedAt(p, now), p.Backfill
			r.Due = true
			r.RetryAt, r.Failures = time.Time{}, 0
		}
		if r.Username == "" {
			r.Username = p.Username
		}
		if r.AccessHash == 0 {
			r.AccessHash = hash
		}
		return true, nil
	})
}

func subscribedAt(p *events.ChannelSubscribed, now time.Time) time.Time {
	if !p.At.IsZero() {
		return p.At.UTC()
	}
	return now
}

// unsubscribe applies a channels.unsubscribed fact. The record stays (with its cursor) so
// a later subscription resumes where ingest stopped.
func (g *registry) unsubscribe(ctx context.Context, p *events.ChannelUnsubscribed) error {
	id := p.ChannelID
	if !id.Valid() {
		if err := g.kv.Delete(ctx, pendingKey(p.Username)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("kv %s delete: %w", g.kv.Bucket(), err)
		}
		res, found, err := g.resolution(ctx, p.Username)
		if err != nil || !found {
			return err
		}
		id = res.ChannelID
	}
	return g.update(ctx, channelKey(id), func(r *record, found bool) (bool, error) {
		if !found || !r.Subscribed {
			return false, nil
		}
		r.Subscribed = false
		return true, nil
	})
}

// resolved moves a pending record to ch.<id> after its username was resolved, and caches
// the resolution.
func (g *registry) resolved(ctx context.Context, pending record, res resolution) (record, error) {
	b, err := json.Marshal(res)
	if err != nil {
		return record{}, err
	}
	if _, err := g.kv.Put(ctx, resolvedKey(res.Username), b); err != nil {
		return record{}, fmt.Errorf("kv %s put: %w", g.kv.Bucket(), err)
	}
	var out record
	err = g.update(ctx, channelKey(res.ChannelID), func(r *record, found bool) (bool, error) {
		if !found {
			*r = pending
			r.ErrorCode, r.LastError, r.Failures, r.RetryAt = "", "", 0, time.Time{}
		} else if !r.Subscribed {
			r.Subscribed, r.SubscribedAt, r.Backfill = true, pending.SubscribedAt, pending.Backfill
			r.Due = true
		}
		r.ChannelID, r.AccessHash, r.Title = res.ChannelID, res.AccessHash, res.Title
		if r.Username == "" || !strings.EqualFold(r.Username, res.Username) {
			r.Username = res.Username
		}
		out = *r
		return true, nil
	})
	if err != nil {
		return record{}, err
	}
	if err := g.kv.Delete(ctx, pendingKey(pending.Username)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, fmt.Errorf("kv %s delete: %w", g.kv.Bucket(), err)
	}
	return out, nil
}
