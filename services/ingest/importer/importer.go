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
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/media"
)

// Result says what an import did.
type Result struct {
	Published int // facts published (posts, albums, channel syncs)
	Unchanged int // posts and albums the ledger already had
	Stats     export.Stats
	Duration  time.Duration
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

// loadLedger reads every ledger entry of a channel: key → post version (albums: 0).
func (im *Importer) loadLedger(ctx context.Context, ch events.ChannelID) (map[string]int64, error) {
	out := map[string]int64{}
	w, err := im.ledger.WatchFiltered(ctx, []string{"p." + ch.String() + ".>", "a." + ch.String() + ".>"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil {
			return out, nil // initial values done
		}
		v, _ := strconv.ParseInt(string(e.Value()), 10, 64)
		out[e.Key()] = v
	}
	return out, ctx.Err()
}

// Import publishes x's facts that the ledger does not have yet and waits until the log has
// acknowledged every one of them; only then is the ledger updated.
func (im *Importer) Import(ctx context.Context, x *export.Export) (Result, error) {
	start := im.now()
	res := Result{Stats: x.Stats()}
	seen := map[string]int64{}
	for _, c := range x.Chats() {
		if !c.Imported {
			continue
		}
		m, err := im.loadLedger(ctx, c.ChannelID)
		if err != nil {
			return res, fmt.Errorf("import ledger of %d: %w", c.ChannelID, err)
		}
		for k, v := range m {
			seen[k] = v
		}
	}
	type ledgerEntry struct{ key, value string }
	var entries []ledgerEntry
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
		if err := pub.publish(ctx, ev); err != nil {
			return res, err
		}
		entries = append(entries, ledgerEntry{key, itoa(version)})
		newPerChannel[ch]++
		res.Published++
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
	if err := pub.wait(ctx); err != nil {
		return res, err
	}
	// The facts are in the log: record them.
	led := newPublisher(im.js)
	for _, e := range entries {
		if err := led.publishRaw(ctx, &nats.Msg{Subject: "$KV." + topology.BucketImported + "." + e.key, Data: []byte(e.value)}); err != nil {
			return res, err
		}
	}
	if err := led.wait(ctx); err != nil {
		return res, fmt.Errorf("import ledger: %w (the facts are published; a re-import republishes them and dedup or the read models drop them)", err)
	}
	res.Duration = im.now().Sub(start)
	return res, nil
}
