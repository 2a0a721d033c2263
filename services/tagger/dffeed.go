package tagger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/logtail"
	"github.com/tgflow/tgflow/nats/topology"
)

// DFBucket is the KV bucket holding the document-frequency snapshot (key DFKey): a
// gzip-compressed Snapshot with the log sequence it reflects. The topology declares it; its
// one value grows with the vocabulary of the log (a few MB of gzip JSON for a million
// posts), up to the server's max_payload.
const (
	DFBucket = topology.BucketTagDF
	DFKey    = "snapshot"
)

// dfSubject is what the DF counts: posts seen for the first time (an edit is the same post).
const dfSubject = "posts.parsed.>"

// feedRetry is the pause before the feed reopens its reader after a failure.
const feedRetry = 2 * time.Second

// DFFeed keeps a MemoryDF in step with the log: an ordered consumer reads posts.parsed in
// log order from the sequence after the restored snapshot, observing each post's terms at
// its stream sequence, so the store is a function of the log alone — the stage's own
// deliveries (redeliveries, retries, several handlers at once) never touch it, and a
// message read twice (a reader restarted after a failure) is ignored by Observe. The store
// is written to the tagger-df bucket every interval when it changed, and when the feed stops.
type DFFeed struct {
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	df       *MemoryDF
	interval time.Duration
	log      *slog.Logger

	restored uint64
	readyMu  sync.Mutex
	ready    chan struct{}
	readyOK  bool
	readN    int64
	saved    uint64

	// scratch is observe's reusable memory (follow calls observe from one goroutine).
	scratch termScratch
}

// NewDFFeed restores the DF from kv's snapshot (an absent or unreadable one means an empty
// store: the whole log is read) and returns a feed that is not running yet.
func NewDFFeed(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, interval time.Duration, log *slog.Logger) (*DFFeed, error) {
	if js == nil || kv == nil {
		return nil, fmt.Errorf("%w: jetstream or DF bucket", ErrNilDependency)
	}
	if log == nil {
		log = slog.Default()
	}
	f := &DFFeed{js: js, kv: kv, df: NewMemoryDF(), interval: interval, log: log, ready: make(chan struct{})}
	e, err := kv.Get(ctx, DFKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		log.Info("tagger: no document-frequency snapshot; reading every post of the log")
		return f, nil
	case err != nil:
		return nil, fmt.Errorf("tagger: read the DF snapshot: %w", err)
	}
	var s Snapshot
	if err := s.UnmarshalBinary(e.Value()); err != nil {
		log.Warn("tagger: the DF snapshot is unreadable; reading every post of the log", "err", err)
		return f, nil
	}
	df, err := RestoreMemoryDF(s)
	if err != nil {
		log.Warn("tagger: the DF snapshot cannot be restored; reading every post of the log", "err", err)
		return f, nil
	}
	f.df, f.restored, f.saved = df, s.Seq, s.Seq
	log.Info("tagger: document frequencies restored", "seq", s.Seq, "posts", s.N)
	return f, nil
}

// DF is the store the tagger reads.
func (f *DFFeed) DF() *MemoryDF { return f.df }

// Restored is the log sequence of the snapshot the feed started from (0: none).
func (f *DFFeed) Restored() uint64 { return f.restored }

// Read is how many posts.parsed facts the feed has read from the log since it was made.
func (f *DFFeed) Read() int64 {
	f.readyMu.Lock()
	defer f.readyMu.Unlock()
	return f.readN
}

// Ready is closed once the feed has read the posts the log held when it started.
func (f *DFFeed) Ready() <-chan struct{} { return f.ready }

func (f *DFFeed) markReady() {
	f.readyMu.Lock()
	defer f.readyMu.Unlock()
	if !f.readyOK {
		f.readyOK = true
		close(f.ready)
	}
}

// Run follows the log until ctx ends, then saves the snapshot. A failure of the reader is
// logged and the reader reopened after the last observed sequence.
func (f *DFFeed) Run(ctx context.Context) error {
	var saver sync.WaitGroup
	saver.Go(func() { f.saveEvery(ctx) })
	defer func() {
		saver.Wait()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := f.Save(sctx); err != nil {
			f.log.Error("tagger: save the DF snapshot at stop", "err", err)
		}
	}()
	for {
		err := f.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		f.log.Warn("tagger: the DF reader failed; reopening it", "after_seq", f.df.Seq(), "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(feedRetry):
		}
	}
}

// saveEvery saves the snapshot every interval until ctx ends.
func (f *DFFeed) saveEvery(ctx context.Context) {
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := f.Save(ctx); err != nil && ctx.Err() == nil {
				f.log.Error("tagger: save the DF snapshot", "err", err)
			}
		}
	}
}

// follow reads posts.parsed after the store's sequence until ctx ends or the reader fails.
func (f *DFFeed) follow(ctx context.Context) error {
	return logtail.Follow(ctx, f.js, logtail.Options{
		Filters:  []string{dfSubject},
		From:     logtail.From{AfterSeq: f.df.Seq()},
		Logger:   f.log,
		CaughtUp: f.markReady,
	}, func(seq uint64, m jetstream.Msg) error {
		f.observe(seq, m)
		return nil
	})
}

// observe counts one posts.parsed fact; an undecodable one (dead-lettered by the stage as
// well) counts nothing.
func (f *DFFeed) observe(seq uint64, m jetstream.Msg) {
	f.readyMu.Lock()
	f.readN++
	f.readyMu.Unlock()
	ev, err := events.Default.Decode(events.Header(m.Headers()), m.Data())
	if err != nil {
		f.log.Warn("tagger: DF reader skips an undecodable fact", "seq", seq, "err", err)
		return
	}
	p, ok := ev.Data.(*events.PostParsed)
	if !ok {
		f.log.Warn("tagger: DF reader skips a fact that is not posts.parsed", "seq", seq, "type", ev.Type)
		return
	}
	f.df.Observe(seq, f.scratch.terms(p.Text))
}

// Save writes the snapshot when the store changed since the last save.
func (f *DFFeed) Save(ctx context.Context) error {
	s := f.df.Snapshot()
	f.readyMu.Lock()
	saved := f.saved
	f.readyMu.Unlock()
	if s.Seq == saved {
		return nil
	}
	b, err := s.MarshalBinary()
	if err != nil {
		return err
	}
	if _, err := f.kv.Put(ctx, DFKey, b); err != nil {
		return fmt.Errorf("tagger: write the DF snapshot at seq %d (%d bytes): %w", s.Seq, len(b), err)
	}
	f.readyMu.Lock()
	f.saved = max(f.saved, s.Seq)
	f.readyMu.Unlock()
	return nil
}
