package ingest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/ingest"
)

func (h *harness) cursorsKV() jetstream.KeyValue {
	h.t.Helper()
	kv, err := h.env.JS.KeyValue(context.Background(), topology.BucketCursors)
	if err != nil {
		h.t.Fatal(err)
	}
	return kv
}

// A run that published a batch but could not move the cursor (here: another writer
// changed the cursor entry, so the compare-and-set fails) is retried after the log's
// duplicate window has passed: the retry finds the batch on the log and publishes none
// of it again.
func TestRepublishAfterDuplicateWindowAddsNoCopy(t *testing.T) {
	h := newHarness(t)
	natstest.ShortDuplicateWindow(t, h.env, 200*time.Millisecond)
	c := h.tg.addChannel(8201, "republish", "Republish")
	h.tg.posts(c, 1, 100)
	r := h.start()
	h.subscribe("@republish")
	if st := h.synced(0, 8201); st.Cursor != 100 {
		t.Fatalf("first run: %+v", st)
	}

	h.tg.posts(c, 101, 250)
	kv := h.cursorsKV()
	var once sync.Once
	h.tg.setOnHistory(func(ch *fakeChannel, _ *tg.MessagesGetHistoryRequest, _ int) error {
		if ch.id == 8201 {
			once.Do(func() {
				if _, err := kv.Put(context.Background(), "8201", []byte("100")); err != nil {
					t.Errorf("touch the cursor: %v", err)
				}
			})
		}
		return nil
	})
	cr := h.waitChannel(h.next(r), 8201)
	if cr.Failed == nil {
		t.Fatalf("run with a lost cursor update: %+v", cr)
	}
	if got := h.cursor(8201); got != 100 {
		t.Fatalf("cursor %d, want 100", got)
	}
	if n := len(h.parsedIDs(8201)); n != 200 {
		t.Fatalf("%d posts on the log after the interrupted run, want 200 (its first batch published)", n)
	}

	h.tg.setOnHistory(nil)
	natstest.WaitDuplicateWindow(t, h.env)
	h.advance(3 * time.Hour) // past the channel's backoff
	st := h.synced(h.next(r), 8201)
	if st.Cursor != 250 || st.New != 50 {
		t.Fatalf("retry: %+v, want cursor 250 and 50 new posts", st)
	}
	h.wantEachOnce(8201, 1, 250)
}

// Album progress that no longer decodes is rebuilt from the posts on the log, whether a
// run finds it while completing albums or while adding items: the album is published
// once, with every item (it used to be deleted, and the album lost its first items).
func TestUnreadableAlbumProgressIsRebuiltFromTheLog(t *testing.T) {
	h := newHarness(t)
	c := h.tg.addChannel(5101, "brokenalbum", "Broken album")
	h.tg.posts(c, 1, 8)
	now := int(time.Now().Unix())
	album := func(id int) {
		h.tg.post(c, id, map[bool]string{true: "the caption", false: ""}[id == 9], func(m *tg.Message) { m.GroupedID, m.Date = 999, now })
	}
	album(9)
	album(10)
	r := h.start()
	h.subscribe("@brokenalbum")
	if st := h.synced(0, 5101); st.New != 10 {
		t.Fatalf("first run: %+v", st)
	}
	kv := h.cursorsKV()
	const key = "album.5101.999"
	corrupt := func() {
		t.Helper()
		if _, err := kv.Put(context.Background(), key, []byte(`{"items": [`)); err != nil {
			t.Fatal(err)
		}
	}

	// Found while completing albums: a run with nothing new.
	corrupt()
	if st := h.synced(h.next(r), 5101); st.New != 0 {
		t.Fatalf("second run: %+v", st)
	}
	e, err := kv.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("album progress after the second run: %v (an incomplete album's progress must not be dropped)", err)
	}
	if !strings.Contains(string(e.Value()), `"message_id":10`) {
		t.Fatalf("album progress not rebuilt: %s", e.Value())
	}

	// Found while adding items: the rest of the album and a later post arrive.
	corrupt()
	album(11)
	album(12)
	h.tg.posts(c, 13, 13)
	if st := h.synced(h.next(r), 5101); st.New != 3 {
		t.Fatalf("third run: %+v", st)
	}
	albums := h.facts("albums.parsed.5101")
	if len(albums) != 1 {
		t.Fatalf("%d albums.parsed facts, want 1", len(albums))
	}
	a := albums[0].Data.(*events.AlbumParsed)
	if len(a.Items) != 4 || a.Items[0].MessageID != 9 || a.Items[3].MessageID != 12 || a.Caption != "the caption" {
		t.Fatalf("album: %+v", a)
	}
	if _, err := kv.Get(context.Background(), key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("album progress after its album was published: %v", err)
	}
}

// failingDelete fails the next n deletes of album progress.
type failingDelete struct {
	jetstream.KeyValue
	n *atomic.Int32
}

func (f failingDelete) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	if strings.HasPrefix(key, "album.") && f.n.Add(-1) >= 0 {
		return errors.New("injected: delete failed")
	}
	return f.KeyValue.Delete(ctx, key, opts...)
}

// A published album whose progress could not be deleted is not published again by a later
// run, even after the log's duplicate window: the failure is the channel's (not a
// warning), and the next run finds the album on the log and only removes its progress.
func TestFailedAlbumProgressDeleteRepublishesNothing(t *testing.T) {
	h := newHarness(t)
	natstest.ShortDuplicateWindow(t, h.env, 200*time.Millisecond)
	c := h.tg.addChannel(5301, "stuckalbum", "Stuck album")
	h.tg.posts(c, 1, 3)
	for _, id := range []int{4, 5} {
		h.tg.post(c, id, "", func(m *tg.Message) { m.GroupedID = 111 })
	}
	h.tg.posts(c, 6, 6)
	fails := &atomic.Int32{}
	fails.Store(1)
	r := h.start(ingest.WithCursorStore(func(kv jetstream.KeyValue) jetstream.KeyValue { return failingDelete{kv, fails} }))
	h.subscribe("@stuckalbum")
	cr := h.waitChannel(0, 5301)
	if cr.Failed == nil || !strings.Contains(cr.Failed.Reason, "album.5301.111") {
		t.Fatalf("run whose album progress delete failed: %+v, want a failure naming the key", cr)
	}
	if n := len(h.facts("albums.parsed.5301")); n != 1 {
		t.Fatalf("%d albums.parsed facts after the first run, want 1", n)
	}

	natstest.WaitDuplicateWindow(t, h.env)
	h.advance(3 * time.Hour) // past the channel's backoff
	if st := h.synced(h.next(r), 5301); st.Cursor != 6 {
		t.Fatalf("second run: %+v", st)
	}
	if n := len(h.facts("albums.parsed.5301")); n != 1 {
		t.Fatalf("%d albums.parsed facts after the second run, want 1", n)
	}
	if _, err := h.cursorsKV().Get(context.Background(), "album.5301.111"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("album progress after the second run: %v", err)
	}
	h.wantEachOnce(5301, 1, 6)
}

// A second ingest service of the process counts into the series the first registered; a
// foreign collector under an ingest metric's name is an error, not a silently unexported
// series.
func TestMetricsRegistration(t *testing.T) {
	h := newHarness(t)
	c := h.tg.addChannel(9401, "metricsone", "Metrics")
	h.tg.posts(c, 1, 3)
	if err := h.stop(h.start()); err != nil {
		t.Fatal(err)
	}
	h.subscribe("@metricsone")
	n := h.reportCount()
	h.start()
	h.synced(n, 9401)
	if got := h.metric("tgflow_ingest_channel_runs_total", "result", "synced"); got != 1 {
		t.Fatalf("tgflow_ingest_channel_runs_total{result=synced} = %v after a run of the second service, want 1", got)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "tgflow_ingest_resolves_total", Help: "not ingest's"}))
	ctx := context.Background()
	d := services.Deps{JS: h.env.JS, Logger: h.logger(), Registry: reg}
	tgc, err := ingest.NewTelegram(ctx, h.cfg, h.env.JS, h.tg.options(), d)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ingest.New(ctx, h.cfg, d, tgc)
	if err == nil || !strings.Contains(err.Error(), "tgflow_ingest_resolves_total") {
		t.Fatalf("New over a registry with a foreign tgflow_ingest_resolves_total: %v, want an error naming it", err)
	}
}

// failingUpdate fails the next n compare-and-set updates of keys with a prefix.
type failingUpdate struct {
	jetstream.KeyValue
	prefix string
	n      *atomic.Int32
}

func (f failingUpdate) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if strings.HasPrefix(key, f.prefix) && f.n.Add(-1) >= 0 {
		return 0, errors.New("injected: update failed")
	}
	return f.KeyValue.Update(ctx, key, value, rev)
}

// A recheck that published an edit and a deletion but could not save its snapshot is
// retried after the log's duplicate window has passed: the retry finds both facts on the
// log and publishes neither again.
func TestInterruptedRecheckRepublishesNothing(t *testing.T) {
	h := newHarness(t)
	natstest.ShortDuplicateWindow(t, h.env, 200*time.Millisecond)
	h.cfg.RecheckMessages = 20
	h.cfg.RecheckInterval = time.Millisecond
	c := h.tg.addChannel(6101, "recheckagain", "Recheck again")
	h.tg.posts(c, 1, 10)
	fails := &atomic.Int32{}
	r := h.start(ingest.WithCursorStore(func(kv jetstream.KeyValue) jetstream.KeyValue { return failingUpdate{kv, "recent.", fails} }))
	h.subscribe("@recheckagain")
	if st := h.synced(0, 6101); st.New != 10 {
		t.Fatalf("first run: %+v", st)
	}

	h.tg.edit(c, 5, func(m *tg.Message) { m.Message, m.EditDate = "post 5, corrected", int(base.Unix())+5000 })
	h.tg.remove(c, 7)
	fails.Store(1)
	if cr := h.waitChannel(h.next(r), 6101); cr.Failed == nil {
		t.Fatalf("recheck whose snapshot could not be saved: %+v", cr)
	}
	if e, d := len(h.facts("posts.edited.6101")), len(h.facts("posts.deleted.6101")); e != 1 || d != 1 {
		t.Fatalf("%d posts.edited and %d posts.deleted after the interrupted recheck, want 1 and 1", e, d)
	}

	natstest.WaitDuplicateWindow(t, h.env)
	h.advance(3 * time.Hour) // past the channel's backoff
	h.synced(h.next(r), 6101)
	if e, d := len(h.facts("posts.edited.6101")), len(h.facts("posts.deleted.6101")); e != 1 || d != 1 {
		t.Fatalf("%d posts.edited and %d posts.deleted after the retry, want 1 and 1", e, d)
	}
}

// A channel failure that cannot be recorded (here the log refuses new facts: it is full)
// ends the run with the error: it used to be a warning, the run went on as if recorded and
// the channel's retry time was lost.
func TestUnrecordableFailureEndsTheRun(t *testing.T) {
	h := newHarness(t)
	c := h.tg.addChannel(9501, "fullog", "Full log")
	h.tg.posts(c, 1, 3)
	r := h.start()
	h.subscribe("@fullog")
	h.synced(0, 9501)

	ctx := context.Background()
	s, err := h.env.JS.Stream(ctx, topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := topology.LogStreamConfig()
	cfg.MaxMsgs = int64(info.State.Msgs)
	if _, err := h.env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	h.tg.posts(c, 4, 6)
	n := h.next(r)
	natstest.Eventually(t, 30*time.Second, "a run that ends with the failure it could not record", func() bool {
		for _, rep := range h.reportsSince(n) {
			if rep.Err != nil && strings.Contains(rep.Err.Error(), "publish channels.failed") {
				return true
			}
			if len(rep.Channels) > 0 && rep.Err == nil {
				t.Fatalf("run ended without an error: %+v", rep.Channels)
			}
		}
		return false
	})
}
