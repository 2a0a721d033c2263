package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
)

// The ingest-cursors bucket holds ingest's own progress:
//
//	<channel id>                 the cursor: highest contiguous message id published (decimal)
//	album.<channel id>.<group>   an album whose items are not all known yet
//	recent.<channel id>          version and counters of the latest posts, for the recheck
//	recheck.<channel id>         written before each recheck publish (its time is what counts)
const (
	prefixAlbum   = "album."
	prefixRecent  = "recent."
	prefixRecheck = "recheck."
)

func cursorKey(id events.ChannelID) string { return id.String() }
func albumKey(id events.ChannelID, grouped int64) string {
	return prefixAlbum + id.String() + "." + strconv.FormatInt(grouped, 10)
}
func recentKey(id events.ChannelID) string  { return prefixRecent + id.String() }
func recheckKey(id events.ChannelID) string { return prefixRecheck + id.String() }

// cursors is the cursor part of the ingest-cursors bucket.
type cursors struct {
	kv jetstream.KeyValue
}

// get returns the cursor (0 when the channel was never read) and its revision.
func (c *cursors) get(ctx context.Context, id events.ChannelID) (int64, uint64, error) {
	n, rev, _, err := c.entry(ctx, id)
	return n, rev, err
}

// entry is get with the time the cursor was last set (zero when never): every post of
// the channel ingest published after that time is above the cursor.
func (c *cursors) entry(ctx context.Context, id events.ChannelID) (int64, uint64, time.Time, error) {
	e, err := c.kv.Get(ctx, cursorKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, time.Time{}, nil
	}
	if err != nil {
		return 0, 0, time.Time{}, fmt.Errorf("cursor of %s: %w", id, err)
	}
	n, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return 0, 0, time.Time{}, fmt.Errorf("cursor of %s: %q is not a message id", id, e.Value())
	}
	return n, e.Revision(), e.Created(), nil
}

// set moves the cursor with compare-and-set on rev (0: create). Losing the race means
// another scheduler runs the channel: errConflict.
func (c *cursors) set(ctx context.Context, id events.ChannelID, cursor int64, rev uint64) (uint64, error) {
	v := []byte(strconv.FormatInt(cursor, 10))
	var nrev uint64
	var err error
	if rev == 0 {
		nrev, err = c.kv.Create(ctx, cursorKey(id), v)
	} else {
		nrev, err = c.kv.Update(ctx, cursorKey(id), v, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("cursor of %s: %w", id, errConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("cursor of %s: %w", id, err)
	}
	return nrev, nil
}

// albumProgress is an album whose items arrived in a run but which may not be complete.
type albumProgress struct {
	ChannelID events.ChannelID   `json:"channel_id"`
	GroupedID int64              `json:"grouped_id"`
	Items     []events.AlbumItem `json:"items"`
	Caption   string             `json:"caption,omitempty"`
	CaptionID int64              `json:"caption_id,omitempty"`
	PostedAt  time.Time          `json:"posted_at"`
}

func (a *albumProgress) add(p *events.Post) {
	item := events.AlbumItem{MessageID: p.MessageID}
	if len(p.Media) > 0 {
		item.MediaKind, item.MediaSHA256 = p.Media[0].Kind, p.Media[0].SHA256
	}
	i := sort.Search(len(a.Items), func(i int) bool { return a.Items[i].MessageID >= p.MessageID })
	if i < len(a.Items) && a.Items[i].MessageID == p.MessageID {
		a.Items[i] = item
	} else {
		a.Items = slices.Insert(a.Items, i, item)
	}
	if a.PostedAt.IsZero() || p.Date.Before(a.PostedAt) {
		a.PostedAt = p.Date
	}
	// The caption is the text of the first item that has one (Telegram puts it on one).
	if p.Text != "" && (a.CaptionID == 0 || p.MessageID <= a.CaptionID) {
		a.Caption, a.CaptionID = p.Text, p.MessageID
	}
}

func (a *albumProgress) last() int64 { return a.Items[len(a.Items)-1].MessageID }

// albumSettle is when an album is taken as complete even if no later message was seen:
// Telegram sends all items of an album at once, so a minute after its date no item can
// still be missing.
const albumSettle = time.Minute

// complete reports whether every item is known: a later message of the channel has been
// published (the cursor is past the album), or the album has settled.
func (a *albumProgress) complete(cursor int64, now time.Time) bool {
	return cursor > a.last() || now.Sub(a.PostedAt) >= albumSettle
}

func (a *albumProgress) payload() *events.AlbumParsed {
	return &events.AlbumParsed{ChannelID: a.ChannelID, GroupedID: a.GroupedID, Items: slices.Clone(a.Items), Caption: a.Caption, PostedAt: a.PostedAt}
}

// albumEvent is the id recipe of the export importer: the album key only, so an album is
// one fact whichever path saw it.
func albumEvent(a *events.AlbumParsed) events.Event {
	return events.New(events.ProducerIngest, a, a.PostedAt)
}

// postState is what the recheck compares: the version and a digest of the counters.
type postState struct {
	Version int64  `json:"v"`
	Metrics string `json:"m"`
}

// recent is the recheck snapshot of one channel: the latest published posts.
type recent struct {
	Posts map[int64]postState `json:"posts"`
}

// trim keeps the n highest message ids.
func (r *recent) trim(n int) {
	if len(r.Posts) <= n {
		return
	}
	ids := slices.Sorted(maps.Keys(r.Posts))
	for _, id := range ids[:len(ids)-n] {
		delete(r.Posts, id)
	}
}

func stateOf(p *events.Post) postState {
	return postState{Version: p.EditDate, Metrics: metricsDigest(p.Views, p.Forwards, p.Replies, p.Reactions)}
}

// metricsDigest identifies observed counter values.
func metricsDigest(views, forwards, replies int64, reactions map[string]int64) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x1f%d\x1f%d", views, forwards, replies)
	for _, k := range slices.Sorted(maps.Keys(reactions)) {
		fmt.Fprintf(h, "\x1f%s=%d", k, reactions[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
