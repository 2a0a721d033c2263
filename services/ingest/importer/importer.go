// Package importer publishes a Telegram Desktop export to the log. The export is validated
// whole before anything is published; media files go to the content-addressed media
// store; a ledger (KV bucket import-ledger) remembers which post versions and albums were
// published, so importing the same export again publishes nothing new, also long after the
// log's duplicate window.
package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/publish"
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

// The ledger records each group's facts in one entry per channel (key batchPrefix +
// "<channel>.<import start, Unix ns>.<group>"), whose value has a line "<fact key>
// <version>" per fact, the fact key being postLedgerKey or albumLedgerKey. Ledgers written
// before had an entry per fact (key: the fact key; value: the version); they are read too.
const batchPrefix = "b."

// ledger is what the ledger says of one channel: fact key → post version (albums: 0),
// and when its latest entry was written (zero: no entry).
type ledger struct {
	versions map[string]int64
	latest   time.Time
}

// loadLedger reads every ledger entry of a channel.
func (im *Importer) loadLedger(ctx context.Context, ch events.ChannelID) (ledger, error) {
	out := ledger{versions: map[string]int64{}}
	w, err := im.ledger.WatchFiltered(ctx, []string{"p." + ch.String() + ".>", "a." + ch.String() + ".>", batchPrefix + ch.String() + ".>"}, jetstream.IgnoreDeletes())
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
			if err := out.add(e.Key(), e.Value()); err != nil {
				return out, err
			}
			if e.Created().After(out.latest) {
				out.latest = e.Created()
			}
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
}

// add reads one ledger entry: a group's (batchPrefix) or, as older imports wrote them, one
// fact's. A fact recorded twice (an edited post imported again) keeps its highest version.
func (l *ledger) add(key string, value []byte) error {
	set := func(k string, v []byte) error {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 || k == "" {
			return fmt.Errorf("%w: %s: %q = %q is not a post version (delete the key to publish its posts again)", ErrLedger, key, k, v)
		}
		if old, ok := l.versions[k]; !ok || n > old {
			l.versions[k] = n
		}
		return nil
	}
	if !strings.HasPrefix(key, batchPrefix) {
		return set(key, value)
	}
	for line := range bytes.Lines(value) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		k, v, _ := bytes.Cut(line, []byte(" "))
		if err := set(string(k), v); err != nil {
			return err
		}
	}
	return nil
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

// ledgerEvery is how many published facts make one group: a group's facts are waited for
// and then recorded in the ledger together, while the next groups are published. An import
// stopped midway has recorded all but its last groups. With one group being published, one
// being acknowledged and one's ledger entries being written, at most three groups' publishes
// are outstanding: well under the client's limit of outstanding asynchronous publishes
// (4000), which a slow server would otherwise turn into "stalled" errors.
const ledgerEvery = 1000

// parsedAhead is how many facts the export's parser may run ahead of the publisher.
const parsedAhead = 512

// fact is one item of the export's facts, or the error that ends them.
type fact struct {
	ev  events.Event
	err error
}

// parse reads x's facts in its own goroutine, so that parsing the export overlaps with
// publishing: the returned channel yields them in order and is closed after the last (or
// after an error, which comes last). Cancelling ctx stops the parser.
func (im *Importer) parse(ctx context.Context, x *export.Export) <-chan fact {
	out := make(chan fact, parsedAhead)
	go func() {
		defer close(out)
		for ev, err := range x.Facts(ctx, im.media) {
			select {
			case out <- fact{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out
}

// Import publishes x's facts that neither the ledger nor the log has yet. The export is
// parsed while its facts are published (opened with export.Spool, it is not parsed again
// but read from the spool); every ledgerEvery facts (and at the end), once the log has
// acknowledged a group of facts, the group is recorded in the ledger, one entry per
// channel, while the next groups are published.
func (im *Importer) Import(ctx context.Context, x *export.Export) (res Result, err error) {
	start := im.now()
	res = Result{Stats: x.Stats()}
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

	pctx, stop := context.WithCancel(ctx)
	defer stop() // ends the parser when the import ends early
	rec, err := im.newRecorder(pctx, start)
	if err != nil {
		return res, err
	}
	defer func() {
		if rec.closed {
			return
		}
		// An import ending early still records the groups it handed over.
		dups, rerr := rec.close()
		res.Duplicates = dups
		err = errors.Join(err, rerr)
	}()
	g := rec.group()
	newPerChannel := map[events.ChannelID]int{}
	for f := range im.parse(pctx, x) {
		if f.err != nil {
			return res, f.err
		}
		ev := f.ev
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
			g.entries = append(g.entries, ledgerEntry{ch, key, itoa(version)})
			continue
		}
		if err := mark(); err != nil {
			return res, err
		}
		if err := g.facts.Add(pctx, ev); err != nil {
			return res, err
		}
		g.entries = append(g.entries, ledgerEntry{ch, key, itoa(version)})
		newPerChannel[ch]++
		res.Published++
		if len(g.entries) >= ledgerEvery {
			if err := rec.send(g); err != nil {
				return res, err
			}
			g = rec.group()
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err // the parser stopped early
	}
	// The chats that brought something new get a channels.synced with their title and counts.
	for _, c := range x.Chats() {
		if !c.Imported || newPerChannel[c.ChannelID] == 0 {
			continue
		}
		now := im.now().UTC()
		p := &events.ChannelSynced{ChannelID: c.ChannelID, Title: c.Name, Cursor: c.LastMessageID, Fetched: c.Messages,
			New: newPerChannel[c.ChannelID], Skipped: c.Skipped, StartedAt: start.UTC(), FinishedAt: now}
		if err := g.facts.Add(pctx, events.New(events.ProducerIngest, p, now, "import", now.Format(time.RFC3339Nano))); err != nil {
			return res, err
		}
		res.Published++
	}
	if err := rec.send(g); err != nil {
		return res, err
	}
	dups, err := rec.close()
	res.Duplicates = dups
	if err != nil {
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

// ledgerEntry is one fact to record: a post version or an album, of channel ch.
type ledgerEntry struct {
	ch         events.ChannelID
	key, value string
}

// group is a group of published facts and the ledger entries that record them (and the
// facts found on the log, recorded without a publish).
type group struct {
	facts   *publish.Batch
	entries []ledgerEntry
}

// recorder records groups in the ledger in order, in its own goroutine: it waits until the
// log acknowledged a group's facts, then writes the group's entries and waits for those.
type recorder struct {
	ctx    context.Context
	pub    *publish.Publisher // the log
	ledger *publish.Publisher // the ledger bucket's stream
	in     chan group         // unbuffered: one group waits while one is recorded
	runID  string             // the import's start (Unix ns), in its entries' keys
	groups int                // groups recorded
	done   chan struct{}
	closed bool
	dups   int
	err    error // set by the goroutine before done is closed
}

func (im *Importer) newRecorder(ctx context.Context, start time.Time) (*recorder, error) {
	pub, err := publish.New(im.js, publish.Options{})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	led, err := publish.New(im.js, publish.Options{Stream: "KV_" + topology.BucketImported})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	r := &recorder{ctx: ctx, pub: pub, ledger: led, in: make(chan group), done: make(chan struct{}), runID: itoa(start.UnixNano())}
	go r.run()
	return r, nil
}

func (r *recorder) group() group { return group{facts: r.pub.Batch()} }

// send hands g over, waiting while the previous group is being recorded; it returns the
// recorder's error once it has failed.
func (r *recorder) send(g group) error {
	select {
	case r.in <- g:
		return nil
	case <-r.done:
		return r.err
	}
}

// close waits until every group sent is recorded; it returns the facts the log already
// had (duplicates) and the first failure. It may be called again.
func (r *recorder) close() (dups int, err error) {
	if !r.closed {
		r.closed = true
		close(r.in)
	}
	<-r.done
	return r.dups, r.err
}

func (r *recorder) run() {
	defer close(r.done)
	for g := range r.in {
		dups, err := g.facts.Wait(r.ctx)
		r.dups += dups
		if err == nil && len(g.entries) > 0 {
			err = r.record(g.entries)
		}
		if err != nil {
			r.err = err
			return
		}
	}
}

// record writes a group's entries to the ledger, one entry per channel, and waits for them.
func (r *recorder) record(entries []ledgerEntry) error {
	r.groups++
	var order []events.ChannelID
	values := map[events.ChannelID][]byte{}
	for _, e := range entries {
		v, ok := values[e.ch]
		if !ok {
			order = append(order, e.ch)
		}
		values[e.ch] = append(append(append(append(v, e.key...), ' '), e.value...), '\n')
	}
	b := r.ledger.Batch()
	for _, ch := range order {
		key := batchPrefix + ch.String() + "." + r.runID + "." + strconv.Itoa(r.groups)
		if err := b.AddMsg(r.ctx, &nats.Msg{Subject: "$KV." + topology.BucketImported + "." + key, Data: values[ch]}); err != nil {
			// What was sent is still awaited, so that the error is about this entry.
			_, werr := b.Wait(r.ctx)
			return fmt.Errorf("import ledger: %w (the facts are published; a re-import finds them on the log)", errors.Join(err, werr))
		}
	}
	if _, err := b.Wait(r.ctx); err != nil {
		return fmt.Errorf("import ledger: %w (the facts are published; a re-import finds them on the log)", err)
	}
	return nil
}
