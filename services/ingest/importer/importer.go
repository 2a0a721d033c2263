// Package importer publishes a Telegram Desktop export to the log. The export is validated
// whole before anything is published; media files go to the content-addressed media
// store; a ledger (KV bucket import-ledger) remembers which post versions and albums were
// published, so importing the same export again publishes nothing new, also long after the
// log's duplicate window.
package importer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/logscan"
	"github.com/tgflow/tgflow/services/ingest/media"
)

// Result says what an import did.
type Result struct {
	Published int // facts published (posts, albums, channel syncs)
	Unchanged int // posts and albums already published: in the ledger, or found on the log
	// Duplicates counts facts the log acknowledged as already stored (same Nats-Msg-Id
	// within its duplicate window): published again although the log had them. 0 unless
	// something the ledger and the log scan missed was re-published.
	Duplicates int
	Stats      export.Stats
	Duration   time.Duration
}

// Importer publishes exports.
type Importer struct {
	js     jetstream.JetStream
	ledger jetstream.KeyValue
	media  export.MediaSink
	log    *slog.Logger
	now    func() time.Time
}

// New opens the ledger and media buckets (created by the topology).
func New(ctx context.Context, js jetstream.JetStream, log *slog.Logger, maxMediaBytes int64) (*Importer, error) {
	if js == nil || log == nil {
		return nil, errors.New("importer: nil dependency")
	}
	kv, err := js.KeyValue(ctx, topology.BucketImported)
	if err != nil {
		return nil, fmt.Errorf("import ledger: %w (run `tgflow nats apply`)", err)
	}
	obs, err := js.ObjectStore(ctx, topology.ObjectMedia)
	if err != nil {
		return nil, fmt.Errorf("media store: %w (run `tgflow nats apply`)", err)
	}
	store, err := media.NewStore(obs, media.Config{MaxBytes: maxMediaBytes})
	if err != nil {
		return nil, err
	}
	return &Importer{js: js, ledger: kv, media: store, log: log, now: time.Now}, nil
}

func postLedgerKey(ch events.ChannelID, msg int64) string {
	return "p." + ch.String() + "." + itoa(msg)
}
func albumLedgerKey(ch events.ChannelID, g int64) string { return "a." + ch.String() + "." + itoa(g) }
func itoa(n int64) string                                { return strconv.FormatInt(n, 10) }

// ErrLedger marks an import ledger entry that cannot be read: importing on would publish
// again what the entry records, so the import stops and names the key.
var ErrLedger = errors.New("import ledger: unreadable entry")

// ledger is what the ledger says of one channel: key → post version (albums: 0), and
// when its latest entry was written (zero: no entry).
type ledger struct {
	versions map[string]int64
	latest   time.Time
}

// loadLedger reads every ledger entry of a channel.
func (im *Importer) loadLedger(ctx context.Context, ch events.ChannelID) (ledger, error) {
	out := ledger{versions: map[string]int64{}}
	w, err := im.ledger.WatchFiltered(ctx, []string{"p." + ch.String() + ".>", "a." + ch.String() + ".>"}, jetstream.IgnoreDeletes())
	if err != nil {
		return out, err
	}
	// The watcher only reads; a failed stop leaves nothing half done.
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return out, nil // initial values done
			}
			v, err := strconv.ParseInt(string(e.Value()), 10, 64)
			if err != nil || v < 0 {
				return out, fmt.Errorf("%w: %s = %q is not a post version (delete the key to publish the post again)", ErrLedger, e.Key(), e.Value())
			}
			out.versions[e.Key()] = v
			if e.Created().After(out.latest) {
				out.latest = e.Created()
			}
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
}

// onLog returns the ids of the channel's posts and albums the log got after the
// channel's latest ledger entry: an import stopped between a publish and its ledger
// entry published them, and the log's duplicate window may have passed since. (Live
// ingest's facts of the channel are found too: the same post version has the same id.)
func (im *Importer) onLog(ctx context.Context, ch events.ChannelID, since time.Time) (map[string]bool, error) {
	ids := map[string]bool{}
	for _, p := range []events.Payload{
		&events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: ch}}},
		&events.AlbumParsed{ChannelID: ch},
	} {
		subj, err := events.Event{Type: p.EventType(), Data: p}.NATSSubject(events.Default)
		if err != nil {
			return nil, err
		}
		got, err := logscan.IDs(ctx, im.js, subj, since)
		if err != nil {
			return nil, fmt.Errorf("import: facts of %s on the log: %w", ch, err)
		}
		maps.Copy(ids, got)
	}
	return ids, nil
}

// ledgerEvery is how many published facts are waited for and recorded in the ledger at
// once: an import stopped midway has recorded all but the last of these groups. It stays
// well under the client's limit of outstanding asynchronous publishes (4000), which a
// slow server would otherwise turn into "stalled" errors.
const ledgerEvery = 2000

// Import publishes x's facts that neither the ledger nor the log has yet. Every
// ledgerEvery facts (and at the end) it waits until the log has acknowledged them and only
// then records them in the ledger.
func (im *Importer) Import(ctx context.Context, x *export.Export) (Result, error) {
	start := im.now()
	res := Result{Stats: x.Stats()}
	seen := map[string]int64{}
	onLog := map[string]bool{}
	var imported []events.ChannelID
	for _, c := range x.Chats() {
		if !c.Imported {
			continue
		}
		imported = append(imported, c.ChannelID)
		l, err := im.loadLedger(ctx, c.ChannelID)
		if err != nil {
			return res, fmt.Errorf("import ledger of %d: %w", c.ChannelID, err)
		}
		maps.Copy(seen, l.versions)
		// From the latest entry on (what the ledger cannot know: facts of another path,
		// or of an import stopped before its entries), or from the start of an import
		// that did not finish (its entries may be partly written).
		since := l.latest
		started, err := im.ledger.Get(ctx, startedKey(c.ChannelID))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return res, fmt.Errorf("import ledger of %d: %w", c.ChannelID, err)
		case started.Created().Before(since):
			since = started.Created()
		}
		ids, err := im.onLog(ctx, c.ChannelID, since)
		if err != nil {
			return res, err
		}
		maps.Copy(onLog, ids)
	}
	// Marked before the first publish (an older mark of an unfinished import is kept: its
	// unrecorded facts are older); the marks go once everything is recorded.
	marked := false
	mark := func() error {
		if marked {
			return nil
		}
		for _, ch := range imported {
			_, err := im.ledger.Create(ctx, startedKey(ch), []byte(start.UTC().Format(time.RFC3339Nano)))
			if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
				return fmt.Errorf("import ledger of %d: %w", ch, err)
			}
		}
		marked = true
		return nil
	}
	var pending []ledgerEntry // published, not yet recorded
	newPerChannel := map[events.ChannelID]int{}
	pub := newPublisher(im.js)
	for ev, err := range x.Facts(ctx, im.media) {
		if err != nil {
			return res, err
		}
		var key string
		var version int64
		var ch events.ChannelID
		switch p := ev.Data.(type) {
		case *events.PostParsed:
			key, version, ch = postLedgerKey(p.ChannelID, p.MessageID), p.EditDate, p.ChannelID
			if v, ok := seen[key]; ok && v >= version {
				res.Unchanged++
				continue
			}
		case *events.AlbumParsed:
			key, ch = albumLedgerKey(p.ChannelID, p.GroupedID), p.ChannelID
			if _, ok := seen[key]; ok {
				res.Unchanged++
				continue
			}
		default:
			return res, fmt.Errorf("import: unexpected fact %s from the export", ev.Type)
		}
		if onLog[ev.ID] {
			// On the log, not in the ledger: record it without publishing it again.
			res.Unchanged++
			pending = append(pending, ledgerEntry{key, itoa(version)})
			continue
		}
		if err := mark(); err != nil {
			return res, err
		}
		if err := pub.publish(ctx, ev); err != nil {
			return res, err
		}
		pending = append(pending, ledgerEntry{key, itoa(version)})
		newPerChannel[ch]++
		res.Published++
		if len(pending) >= ledgerEvery {
			if res.Duplicates, err = im.record(ctx, pub, pending); err != nil {
				return res, err
			}
			pending = pending[:0]
		}
	}
	// The chats that brought something new get a channels.synced with their title and counts.
	for _, c := range x.Chats() {
		if !c.Imported || newPerChannel[c.ChannelID] == 0 {
			continue
		}
		now := im.now().UTC()
		p := &events.ChannelSynced{ChannelID: c.ChannelID, Title: c.Name, Cursor: c.LastMessageID, Fetched: c.Messages,
			New: newPerChannel[c.ChannelID], Skipped: c.Skipped, StartedAt: start.UTC(), FinishedAt: now}
		if err := pub.publish(ctx, events.New(events.ProducerIngest, p, now, "import", now.Format(time.RFC3339Nano))); err != nil {
			return res, err
		}
		res.Published++
	}
	var err error
	if res.Duplicates, err = im.record(ctx, pub, pending); err != nil {
		return res, err
	}
	for _, ch := range imported {
		if !marked {
			break
		}
		if err := im.ledger.Delete(ctx, startedKey(ch)); err != nil {
			// Everything is recorded: the next import only reads more of the log.
			im.log.Warn("import finished but its start mark stays", "key", startedKey(ch), "err", err)
		}
	}
	res.Duration = im.now().Sub(start)
	return res, nil
}

// startedKey marks an import of the channel that has started and not finished.
func startedKey(ch events.ChannelID) string { return "started." + ch.String() }

// ledgerEntry is one ledger write: a post version or an album.
type ledgerEntry struct{ key, value string }

// record waits until the log has acknowledged everything pub published, then writes the
// entries to the ledger and waits for those too. dups is pub's duplicate count so far.
func (im *Importer) record(ctx context.Context, pub *publisher, entries []ledgerEntry) (dups int, err error) {
	if dups, err = pub.wait(ctx); err != nil {
		return dups, err
	}
	if len(entries) == 0 {
		return dups, nil
	}
	led := newPublisher(im.js)
	for _, e := range entries {
		if err := led.publishRaw(ctx, &nats.Msg{Subject: "$KV." + topology.BucketImported + "." + e.key, Data: []byte(e.value)}); err != nil {
			return dups, err
		}
	}
	if _, err := led.wait(ctx); err != nil {
		return dups, fmt.Errorf("import ledger: %w (the facts are published; a re-import finds them on the log)", err)
	}
	return dups, nil
}
