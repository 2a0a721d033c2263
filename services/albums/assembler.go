package albums

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	visionstage "github.com/tgflow/tgflow/services/vision"
)

// Assembler is the albums stage's logic over one KV bucket. It is safe for concurrent use,
// and any number of Assemblers (in one process or many) may share the bucket.
type Assembler struct {
	kv  jetstream.KeyValue
	js  jetstream.JetStream
	cfg Config
	log *slog.Logger
}

// New returns an Assembler keeping its state in kv (the albums bucket). js reads the log
// when an unconfirmed summary is recovered.
func New(kv jetstream.KeyValue, js jetstream.JetStream, cfg Config, log *slog.Logger) (*Assembler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if kv == nil || js == nil {
		return nil, fmt.Errorf("%w: nil KV or JetStream", ErrConfig)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Assembler{kv: kv, js: js, cfg: cfg, log: log}, nil
}

// waits reports whether an album item's media is an image that vision analyses (the
// vision stage's own rule), so that the album waits for its result. Items carry no MIME
// type: a document or a video item is not waited for, but its result is used when it came.
func waits(it events.AlbumItem) bool {
	return visionstage.IsImage(events.Media{Kind: it.MediaKind, SHA256: it.MediaSHA256})
}

// AlbumParsed handles albums.parsed: it records the album's items (a union with the items
// already known under the same key), picks up the vision results that came first, and
// returns the summary when this call completed the album.
func (a *Assembler) AlbumParsed(ctx context.Context, _ events.Event, p *events.AlbumParsed) ([]events.Event, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	first := p.Items[0].MessageID
	for _, it := range p.Items {
		first = min(first, it.MessageID)
	}
	key := albumKey(p.ChannelID, first)
	now := a.cfg.Now().UTC()
	st, err := update(ctx, a.kv, key, func(al *album, found bool) (bool, error) {
		changed := false
		if !found {
			*al = album{ChannelID: p.ChannelID, First: first, FirstSeen: now, Deadline: now.Add(a.cfg.Deadline), PostedAt: p.PostedAt.UTC()}
			changed = true
		}
		before := al.version()
		if !slices.Contains(al.GroupedIDs, p.GroupedID) {
			al.GroupedIDs = append(al.GroupedIDs, p.GroupedID)
			slices.Sort(al.GroupedIDs)
			changed = true
		}
		if al.Caption == "" && p.Caption != "" {
			al.Caption, changed = p.Caption, true
		}
		if !p.PostedAt.IsZero() && (al.PostedAt.IsZero() || p.PostedAt.Before(al.PostedAt)) {
			al.PostedAt, changed = p.PostedAt.UTC(), true
		}
		for _, in := range p.Items {
			if it := al.item(in.MessageID); it != nil {
				if it.SHA256 == "" && in.MediaSHA256 != "" {
					it.Kind, it.SHA256, it.Wait, changed = in.MediaKind, in.MediaSHA256, waits(in), true
				}
				continue
			}
			i, _ := slices.BinarySearchFunc(al.Items, in.MessageID, func(it item, m int64) int { return cmpInt(it.MessageID, m) })
			al.Items = slices.Insert(al.Items, i, item{MessageID: in.MessageID, Kind: in.MediaKind, SHA256: in.MediaSHA256, Wait: waits(in)})
			changed = true
		}
		if found && al.version() != before && al.claimOf(al.version()) == nil {
			// A new item set: its own deadline from now.
			al.Deadline = now.Add(a.cfg.Deadline)
		}
		return changed, nil
	})
	if err != nil {
		return nil, fmt.Errorf("album %s: %w", key, err)
	}
	// After the album write, so that a sweep cannot delete the index of a reopened album.
	if !st.settled() {
		if err := a.markOpen(ctx, key); err != nil {
			return nil, err
		}
	}
	// The rendezvous: link each item's post to the album; collect results that came first.
	found := map[int64]*vision{}
	for _, it := range st.Items {
		pk := pendingKey(p.ChannelID, it.MessageID)
		pd, err := update(ctx, a.kv, pk, func(pd *pending, exists bool) (bool, error) {
			if exists && pd.Album == key {
				return false, nil
			}
			if !exists {
				pd.StoredAt = now
			}
			pd.Album = key
			return true, nil
		})
		if err != nil {
			return nil, fmt.Errorf("album %s: item %d: %w", key, it.MessageID, err)
		}
		if pd.Vision != nil {
			found[it.MessageID] = pd.Vision
		}
	}
	return a.record(ctx, key, found)
}

// VisionAnalyzed handles posts.vision.analyzed: it leaves the post's result at its
// rendezvous and, when the post is a known album item, adds it to the album; it returns
// the summary when this call completed the album.
func (a *Assembler) VisionAnalyzed(ctx context.Context, _ events.Event, p *events.PostVisionAnalyzed) ([]events.Event, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	v := a.summarise(p)
	pk := pendingKey(p.ChannelID, p.MessageID)
	now := a.cfg.Now().UTC()
	pd, err := update(ctx, a.kv, pk, func(pd *pending, exists bool) (bool, error) {
		if exists && pd.Vision != nil && pd.Vision.Rev.Compare(v.Rev) >= 0 {
			return false, nil
		}
		pd.Vision, pd.StoredAt = v, now
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("post %s: %w", p.Key(), err)
	}
	if pd.Album == "" {
		return nil, nil // albums.parsed, when it comes, picks the result up
	}
	return a.record(ctx, pd.Album, map[int64]*vision{p.MessageID: pd.Vision})
}

// record adds vision results to an album and claims its summary if it is complete.
func (a *Assembler) record(ctx context.Context, key string, results map[int64]*vision) ([]events.Event, error) {
	var won *claim
	_, err := update(ctx, a.kv, key, func(al *album, found bool) (bool, error) {
		won = nil
		if !found {
			return false, fmt.Errorf("%w: %s is linked from a post but absent", ErrState, key)
		}
		changed := false
		for msg, v := range results {
			if al.setVision(msg, v) {
				changed = true
			}
		}
		if al.claimOf(al.version()) == nil && al.complete() {
			won = a.claim(al, events.AlbumComplete)
			changed = true
		}
		return changed, nil
	})
	if err != nil {
		return nil, fmt.Errorf("album %s: %w", key, err)
	}
	if won == nil {
		return nil, nil
	}
	return []events.Event{won.event()}, nil
}

// claim freezes the summary of the album's current version into its state.
func (a *Assembler) claim(al *album, outcome string) *claim {
	at := a.cfg.Now().UTC()
	c := claim{Version: al.version(), At: at, Payload: a.summary(al, outcome, at)}
	c.Payload.Version = c.Version
	c.ID = c.event().ID
	al.Claims = append(al.Claims, c)
	return &al.Claims[len(al.Claims)-1]
}

// markOpen puts the album's index entry (a new revision even when it exists: see doc.go).
func (a *Assembler) markOpen(ctx context.Context, key string) error {
	if _, err := a.kv.Put(ctx, openKey(key), []byte(key)); err != nil {
		return fmt.Errorf("album %s: index: %w", key, err)
	}
	return nil
}

// Album is an open album that needs work, as Due reports it.
type Album struct {
	// Key is the album's KV key.
	Key            string
	ChannelID      events.ChannelID
	FirstMessageID int64
	Deadline       time.Time
	// Expired: the current version has no summary and its deadline has passed.
	Expired bool
	// Unconfirmed are the event ids of claimed summaries not confirmed within Grace.
	Unconfirmed []string
}

// Due lists the open albums that need work at now: expired ones and ones with a summary
// unconfirmed for longer than Grace. It removes the index entries of settled albums. It
// reads only the index of open albums, never every album.
func (a *Assembler) Due(ctx context.Context, now time.Time) ([]Album, error) {
	lister, err := a.kv.ListKeysFiltered(ctx, prefixOpen+".>")
	if err != nil {
		return nil, fmt.Errorf("albums: list open albums: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	if err := lister.Stop(); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		a.log.Debug("albums: stop key lister", "err", err)
	}
	slices.Sort(keys)
	var out []Album
	for _, ok := range keys {
		ie, err := a.kv.Get(ctx, ok)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // swept by another instance
		}
		if err != nil {
			return out, fmt.Errorf("albums: index %s: %w", ok, err)
		}
		key := albumKeyOfOpen(ok)
		ae, err := a.kv.Get(ctx, key)
		if err != nil {
			// The index is written only after the album: an absent album is a defect.
			return out, fmt.Errorf("albums: indexed album %s: %w", key, err)
		}
		var al album
		if err := unmarshal(ae, &al); err != nil {
			return out, err
		}
		if al.settled() {
			err := a.kv.Delete(ctx, ok, jetstream.LastRevision(ie.Revision()))
			if err != nil && !conflict(err) {
				return out, fmt.Errorf("albums: remove index %s: %w", ok, err)
			}
			continue
		}
		d := Album{Key: key, ChannelID: al.ChannelID, FirstMessageID: al.First, Deadline: al.Deadline}
		d.Expired = al.claimOf(al.version()) == nil && !now.Before(al.Deadline)
		for _, c := range al.Claims {
			if !c.Confirmed && !now.Before(c.At.Add(a.cfg.Grace)) {
				d.Unconfirmed = append(d.Unconfirmed, c.ID)
			}
		}
		if d.Expired || len(d.Unconfirmed) > 0 {
			out = append(out, d)
		}
	}
	return out, nil
}

// Settle does the work Due found for one album and returns the events to publish: the
// deadline summary when the album expired and this call claimed it, and the unconfirmed
// summaries of d: those claimed within the log's duplicate window (less logSkew) all, since
// publishing one the log holds adds no copy; older ones only when a read of the log does not
// find them (those it finds are confirmed). Publish them, then call Confirm.
func (a *Assembler) Settle(ctx context.Context, d Album, now time.Time) ([]events.Event, error) {
	var out []events.Event
	if d.Expired {
		var won *claim
		_, err := update(ctx, a.kv, d.Key, func(al *album, found bool) (bool, error) {
			won = nil
			if !found {
				return false, fmt.Errorf("%w: %s is absent", ErrState, d.Key)
			}
			if al.claimOf(al.version()) != nil || now.Before(al.Deadline) {
				return false, nil
			}
			won = a.claim(al, events.AlbumDeadline)
			return true, nil
		})
		if err != nil {
			return nil, fmt.Errorf("album %s: %w", d.Key, err)
		}
		if won != nil {
			out = append(out, won.event())
		}
	}
	if len(d.Unconfirmed) == 0 {
		return out, nil
	}
	e, err := a.kv.Get(ctx, d.Key)
	if err != nil {
		return out, fmt.Errorf("album %s: %w", d.Key, err)
	}
	var al album
	if err := unmarshal(e, &al); err != nil {
		return out, err
	}
	window, err := a.duplicateWindow(ctx)
	if err != nil {
		return out, fmt.Errorf("album %s: %w", d.Key, err)
	}
	var held []events.Event
	for _, c := range al.Claims {
		if c.Confirmed || !slices.Contains(d.Unconfirmed, c.ID) {
			continue
		}
		ev := c.event()
		if now.Before(c.At.Add(window - logSkew)) {
			// Within the log's duplicate window a publish of ev cannot add a second copy:
			// the log answers "duplicate" when it holds ev. That is far cheaper than reading
			// the log for it, which makes the server load every 8 MB block of the log from
			// the claim's time on (an ordered consumer per album: a 100k-post import held
			// hundreds of MB of blocks that way). Tick publishes and confirms it.
			out = append(out, ev)
			continue
		}
		on, err := a.onLog(ctx, ev, c.At.Add(-logSkew))
		if err != nil {
			return out, fmt.Errorf("album %s: %w", d.Key, err)
		}
		if on {
			held = append(held, ev)
		} else {
			a.log.Info("albums: a claimed summary is not on the log; publishing it again", "album", d.Key, "id", c.ID)
			out = append(out, ev)
		}
	}
	if err := a.Confirm(ctx, held); err != nil {
		return out, err
	}
	return out, nil
}

// Confirm records that the log holds the given albums.assembled facts (call it once the
// publish was acknowledged). Other events are ignored.
func (a *Assembler) Confirm(ctx context.Context, evs []events.Event) error {
	for _, ev := range evs {
		p, ok := ev.Data.(*events.AlbumAssembled)
		if !ok || len(p.MessageIDs) == 0 {
			continue
		}
		key := albumKey(p.ChannelID, slices.Min(p.MessageIDs))
		_, err := update(ctx, a.kv, key, func(al *album, found bool) (bool, error) {
			if !found {
				return false, fmt.Errorf("%w: %s is absent", ErrState, key)
			}
			for i := range al.Claims {
				if c := &al.Claims[i]; c.ID == ev.ID && !c.Confirmed {
					c.Confirmed = true
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("album %s: confirm %s: %w", key, ev.ID, err)
		}
	}
	return nil
}

// Publisher publishes facts and waits for the log's acknowledgement (*publish.Publisher).
type Publisher interface {
	Publish(ctx context.Context, evs []events.Event) (dups int, err error)
}

// Tick is what the stage's ticker calls: Due, Settle each album, publish, Confirm; then
// the sweep of old rendezvous entries. It returns how many facts it published.
func (a *Assembler) Tick(ctx context.Context, pub Publisher) (int, error) {
	now := a.cfg.Now().UTC()
	due, err := a.Due(ctx, now)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, d := range due {
		evs, err := a.Settle(ctx, d, now)
		if err == nil && len(evs) > 0 {
			var dups int
			if dups, err = pub.Publish(ctx, evs); err == nil {
				n += len(evs) - dups // a duplicate was on the log already
				if len(evs) > dups {
					a.log.Info("albums: published summaries the log did not hold", "album", d.Key, "n", len(evs)-dups)
				}
				err = a.Confirm(ctx, evs)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("album %s: %w", d.Key, err))
		}
	}
	if err := a.Sweep(ctx, now); err != nil {
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// Sweep removes rendezvous entries older than PendingTTL (by when they were written):
// results of posts that are no album item, and links of albums long summarised.
func (a *Assembler) Sweep(ctx context.Context, now time.Time) error {
	lister, err := a.kv.ListKeysFiltered(ctx, prefixPending+".>")
	if err != nil {
		return fmt.Errorf("albums: list rendezvous entries: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	if err := lister.Stop(); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		a.log.Debug("albums: stop key lister", "err", err)
	}
	for _, k := range keys {
		e, err := a.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("albums: sweep %s: %w", k, err)
		}
		var pd pending
		if err := unmarshal(e, &pd); err != nil {
			return err
		}
		if now.Sub(pd.StoredAt) < a.cfg.PendingTTL {
			continue
		}
		if err := a.kv.Delete(ctx, k, jetstream.LastRevision(e.Revision())); err != nil && !conflict(err) {
			return fmt.Errorf("albums: sweep %s: %w", k, err)
		}
	}
	return nil
}
