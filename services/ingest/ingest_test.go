package ingest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/ingest"
)

// A channel of 1,000 messages is paged fully (10 pages of 100, min_id = cursor) and every
// message reaches the log once; the next run reads only what is new, above the cursor.
func TestThousandMessagesPagedThenIncremental(t *testing.T) {
	h := newHarness(t)
	c := h.tg.addChannel(1001, "bigchan", "Big channel")
	h.tg.posts(c, 1, 1000)
	r := h.start()
	h.subscribe("@bigchan")

	st := h.synced(0, 1001)
	if !st.Backfill || st.New != 1000 || st.Fetched != 1000 || st.Cursor != 1000 {
		t.Fatalf("first run: %+v", st)
	}
	h.wantEachOnce(1001, 1, 1000)
	calls := h.tg.historyCalls()
	if len(calls) != 10 {
		t.Fatalf("%d getHistory calls for 1,000 messages, want 10", len(calls))
	}
	for i, c := range calls {
		if c.Limit != 100 || c.MinID != 0 || (i > 0 && c.OffsetID != 1000-100*i+1) {
			t.Fatalf("call %d: offset_id %d min_id %d limit %d", i, c.OffsetID, c.MinID, c.Limit)
		}
	}

	h.tg.posts(c, 1001, 1005)
	st = h.synced(h.next(r), 1001)
	if st.Backfill || st.New != 5 || st.Fetched != 5 || st.Cursor != 1005 {
		t.Fatalf("incremental run: %+v", st)
	}
	calls = h.tg.historyCalls()[10:]
	if len(calls) != 1 || calls[0].MinID != 1000 || calls[0].OffsetID != 0 {
		t.Fatalf("incremental run asked %+v, want one page with min_id 1000", calls)
	}
	st = h.synced(h.next(r), 1001)
	if st.New != 0 || st.Fetched != 0 || st.Cursor != 1005 {
		t.Fatalf("idle run: %+v", st)
	}
	h.wantEachOnce(1001, 1, 1005)
	if n := len(h.facts("channels.synced.1001")); n != 3 {
		t.Fatalf("%d channels.synced facts, want one per run (3)", n)
	}
}

// A channel subscribed between runs is backfilled by the next run, without waiting for
// the interval, as deep as configured.
func TestNewChannelBackfilledOnNextRun(t *testing.T) {
	h := newHarness(t)
	h.cfg.BackfillMessages = 50
	a := h.tg.addChannel(2001, "alpha", "Alpha")
	b := h.tg.addChannel(2002, "bravo", "Bravo")
	h.tg.posts(a, 1, 10)
	h.tg.posts(b, 1, 120)
	h.start()
	h.subscribe("@alpha")
	if st := h.synced(0, 2001); st.New != 10 {
		t.Fatalf("alpha: %+v", st)
	}
	n := h.reportCount()
	h.subscribe("bravo")
	st := h.synced(n, 2002)
	if !st.Backfill || st.New != 50 || st.Cursor != 120 {
		t.Fatalf("bravo backfill: %+v", st)
	}
	h.wantEachOnce(2002, 71, 120)
}

// FLOOD_WAIT in the middle of paging: a short one is slept through by the flood-wait
// middleware; a long one backs the channel off, and the channel resumes after the wait.
// Either way no message is lost or published twice.
func TestFloodWaitMidPaging(t *testing.T) {
	h := newHarness(t)
	short := h.tg.addChannel(3001, "shortwait", "Short")
	long := h.tg.addChannel(3002, "longwait", "Long")
	h.tg.posts(short, 1, 350)
	h.tg.posts(long, 1, 350)
	var once sync.Map
	h.tg.setOnHistory(func(c *fakeChannel, _ *tg.MessagesGetHistoryRequest, n int) error {
		if n != 3 {
			return nil
		}
		if _, dup := once.LoadOrStore(c.id, true); dup {
			return nil
		}
		if c.id == 3001 {
			return tgerr.New(420, "FLOOD_WAIT_1")
		}
		return tgerr.New(420, "FLOOD_WAIT_600")
	})
	r := h.start()
	h.subscribe("@shortwait")
	h.subscribe("@longwait")

	if st := h.synced(0, 3001); st.New != 350 {
		t.Fatalf("short wait: %+v", st)
	}
	h.wantEachOnce(3001, 1, 350)

	c := h.waitChannel(0, 3002)
	if c.Failed == nil || c.Failed.Code != "FLOOD_WAIT" || c.Failed.Permanent {
		t.Fatalf("long wait: %+v", c)
	}
	if wait := c.Failed.RetryAt.Sub(c.Failed.At); wait < 600*time.Second || wait > 602*time.Second {
		t.Fatalf("retry in %s, want the flood wait (600s)", wait)
	}
	if got := h.cursor(3002); got != 0 {
		t.Fatalf("cursor moved to %d during a failed read", got)
	}
	// Not retried before the wait is over.
	n := h.next(r)
	h.synced(n, 3001)
	if cs := h.reportsSince(n); hasChannel(cs, 3002) {
		t.Fatal("channel in flood wait was read again before its retry time")
	}
	h.advance(11 * time.Minute)
	if st := h.synced(h.next(r), 3002); st.New != 350 || st.Cursor != 350 {
		t.Fatalf("after the wait: %+v", st)
	}
	h.wantEachOnce(3002, 1, 350)
}

func (h *harness) reportsSince(n int) []ingest.RunReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ingest.RunReport(nil), h.reports[n:]...)
}

func hasChannel(reps []ingest.RunReport, id events.ChannelID) bool {
	for _, r := range reps {
		for _, c := range r.Channels {
			if c.ChannelID == id {
				return true
			}
		}
	}
	return false
}

// CHANNEL_PRIVATE on one channel is a channels.failed fact with a rare recheck; the other
// channels of the run are read as usual.
func TestPrivateChannelDoesNotStopOthers(t *testing.T) {
	h := newHarness(t)
	p := h.tg.addChannel(4001, "secretchan", "Secret")
	a := h.tg.addChannel(4002, "openone", "Open 1")
	b := h.tg.addChannel(4003, "opentwo", "Open 2")
	h.tg.posts(p, 1, 5)
	h.tg.posts(a, 1, 5)
	h.tg.posts(b, 1, 5)
	h.tg.setOnHistory(func(c *fakeChannel, _ *tg.MessagesGetHistoryRequest, _ int) error {
		if c.id == 4001 {
			return tgerr.New(400, "CHANNEL_PRIVATE")
		}
		return nil
	})
	r := h.start()
	for _, n := range []string{"@secretchan", "@openone", "@opentwo"} {
		h.subscribe(n)
	}
	for _, id := range []events.ChannelID{4002, 4003} {
		if st := h.synced(0, id); st.New != 5 {
			t.Fatalf("channel %s: %+v", id, st)
		}
	}
	c := h.waitChannel(0, 4001)
	if c.Failed == nil || c.Failed.Code != "CHANNEL_PRIVATE" || !c.Failed.Permanent ||
		c.Failed.RetryAt.Sub(c.Failed.At) < 23*time.Hour {
		t.Fatalf("private channel: %+v", c.Failed)
	}
	failed := h.facts("channels.failed.4001")
	if len(failed) != 1 || failed[0].Data.(*events.ChannelFailed).Code != "CHANNEL_PRIVATE" {
		t.Fatalf("channels.failed facts: %+v", failed)
	}
	// The next runs read the others and leave the private one alone until its recheck.
	n := h.next(r)
	h.synced(n, 4002)
	h.synced(n, 4003)
	if hasChannel(h.reportsSince(n), 4001) {
		t.Fatal("private channel retried before its recheck time")
	}
	chans, err := ingest.ListChannels(context.Background(), h.env.JS)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chans {
		if ch.ChannelID == 4001 && (ch.ErrorCode != "CHANNEL_PRIVATE" || ch.RetryAt.IsZero()) {
			t.Fatalf("ls shows %+v", ch)
		}
	}
}

// An album whose items straddle two history pages is assembled once, with every item.
func TestAlbumAcrossPagesAssembledOnce(t *testing.T) {
	h := newHarness(t)
	c := h.tg.addChannel(5001, "albums", "Albums")
	h.tg.posts(c, 1, 250)
	// Pages are 250..151, 150..51, 50..1: items 149..152 straddle the first boundary.
	for i, id := range []int{149, 150, 151, 152} {
		media := h.tg.photo(int64(50000+id), []byte("album photo "+itoa(id)))
		h.tg.post(c, id, map[bool]string{true: "album caption", false: ""}[i == 0], func(m *tg.Message) {
			m.GroupedID = 777
			m.Media = media
		})
	}
	h.start()
	h.subscribe("@albums")
	st := h.synced(0, 5001)
	if st.New != 250 || st.MediaStored != 4 {
		t.Fatalf("run: %+v", st)
	}
	albums := h.facts("albums.parsed.5001")
	if len(albums) != 1 {
		t.Fatalf("%d albums.parsed facts, want 1", len(albums))
	}
	a := albums[0].Data.(*events.AlbumParsed)
	if a.GroupedID != 777 || len(a.Items) != 4 || a.Items[0].MessageID != 149 || a.Items[3].MessageID != 152 || a.Caption != "album caption" {
		t.Fatalf("album: %+v", a)
	}
	for _, it := range a.Items {
		if it.MediaKind != events.MediaPhoto || len(it.MediaSHA256) != 64 {
			t.Fatalf("album item: %+v", it)
		}
	}
}

// An album whose last items are posted after a run read its first ones is assembled once,
// by the run that completes it.
func TestAlbumAcrossRunsAssembledOnce(t *testing.T) {
	h := newHarness(t)
	c := h.tg.addChannel(5002, "slowalbum", "Slow album")
	h.tg.posts(c, 1, 8)
	now := int(time.Now().Unix())
	album := func(id int) {
		h.tg.post(c, id, "", func(m *tg.Message) { m.GroupedID, m.Date = 888, now })
	}
	album(9)
	album(10)
	r := h.start()
	h.subscribe("@slowalbum")
	if st := h.synced(0, 5002); st.New != 10 {
		t.Fatalf("first run: %+v", st)
	}
	if n := len(h.facts("albums.parsed.5002")); n != 0 {
		t.Fatalf("album published before it was complete (%d facts)", n)
	}
	album(11)
	album(12)
	h.tg.posts(c, 13, 13)
	if st := h.synced(h.next(r), 5002); st.New != 3 {
		t.Fatalf("second run: %+v", st)
	}
	h.synced(h.next(r), 5002)
	albums := h.facts("albums.parsed.5002")
	if len(albums) != 1 {
		t.Fatalf("%d albums.parsed facts, want 1", len(albums))
	}
	if a := albums[0].Data.(*events.AlbumParsed); len(a.Items) != 4 || a.Items[0].MessageID != 9 || a.Items[3].MessageID != 12 {
		t.Fatalf("album: %+v", a)
	}
}

// The recheck finds an edit (posts.edited with the new version), a deletion (posts.deleted,
// confirmed by channels.getMessages) and changed counters (posts.metrics); a recheck that
// finds nothing new publishes nothing.
func TestRecheckFindsEditAndDeletion(t *testing.T) {
	h := newHarness(t)
	h.cfg.RecheckMessages = 20
	h.cfg.RecheckInterval = time.Millisecond
	c := h.tg.addChannel(6001, "editors", "Editors")
	h.tg.posts(c, 1, 30)
	r := h.start()
	h.subscribe("@editors")
	if st := h.synced(0, 6001); st.New != 30 || st.Edited != 0 || st.Deleted != 0 {
		t.Fatalf("first run: %+v", st)
	}
	edited := int(base.Unix()) + 5000
	h.tg.edit(c, 25, func(m *tg.Message) { m.Message, m.EditDate = "post 25, corrected", edited })
	h.tg.remove(c, 27)
	h.tg.edit(c, 28, func(m *tg.Message) {
		m.Views = 9999
		m.Reactions = tg.MessageReactions{Results: []tg.ReactionCount{{Reaction: &tg.ReactionEmoji{Emoticon: "👍"}, Count: 3}}}
	})
	h.tg.remove(c, 3) // outside the recheck window: not looked at
	st := h.synced(h.next(r), 6001)
	if st.Edited != 1 || st.Deleted != 1 || st.New != 0 {
		t.Fatalf("recheck run: %+v", st)
	}
	eds := h.facts("posts.edited.6001")
	if len(eds) != 1 {
		t.Fatalf("%d posts.edited, want 1", len(eds))
	}
	if e := eds[0].Data.(*events.PostEdited); e.MessageID != 25 || e.EditDate != int64(edited) || e.PreviousVersion != 0 || e.Text != "post 25, corrected" {
		t.Fatalf("edited: %+v", e)
	}
	dels := h.facts("posts.deleted.6001")
	if len(dels) != 1 || dels[0].Data.(*events.PostDeleted).MessageID != 27 {
		t.Fatalf("deleted: %+v", dels)
	}
	mets := h.facts("posts.metrics.6001")
	if len(mets) != 1 {
		t.Fatalf("%d posts.metrics, want 1", len(mets))
	}
	if m := mets[0].Data.(*events.PostMetrics); m.MessageID != 28 || m.Views != 9999 || m.Reactions["👍"] != 3 {
		t.Fatalf("metrics: %+v", m)
	}
	// Nothing changed since: the next recheck publishes nothing.
	st = h.synced(h.next(r), 6001)
	if st.Edited != 0 || st.Deleted != 0 {
		t.Fatalf("quiet recheck: %+v", st)
	}
	if n := len(h.facts("posts.>")); n != 30+3 {
		t.Fatalf("%d post facts in the log, want 33", n)
	}
}

// The same photo in two channels is one object in the media store (key = sha256), though
// each channel downloads it with upload.getFile.
func TestSamePhotoInTwoChannelsStoredOnce(t *testing.T) {
	h := newHarness(t)
	photo := make([]byte, 700<<10) // more than one 512 KiB part
	for i := range photo {
		photo[i] = byte(i * 7)
	}
	sum := sha256.Sum256(photo)
	want := hex.EncodeToString(sum[:])
	p := h.tg.addChannel(7001, "photosone", "Photos 1")
	q := h.tg.addChannel(7002, "photostwo", "Photos 2")
	h.tg.post(p, 1, "a photo", func(m *tg.Message) { m.Media = h.tg.photo(71, photo) })
	h.tg.post(q, 1, "the same photo", func(m *tg.Message) { m.Media = h.tg.photo(72, photo) })
	h.start()
	h.subscribe("@photosone")
	h.subscribe("@photostwo")
	for _, id := range []events.ChannelID{7001, 7002} {
		if st := h.synced(0, id); st.MediaStored != 1 {
			t.Fatalf("channel %s: %+v", id, st)
		}
		posts := h.facts("posts.parsed." + id.String())
		md := posts[0].Data.(*events.PostParsed).Media
		if len(md) != 1 || md[0].SHA256 != want || md[0].ObjectKey != want || md[0].Kind != events.MediaPhoto || md[0].Width != 1280 {
			t.Fatalf("media of %s: %+v", id, md)
		}
	}
	if n := h.tg.fileCalls(); n < 4 {
		t.Fatalf("%d upload.getFile calls, want at least 2 per channel", n)
	}
	obs, err := h.env.JS.ObjectStore(context.Background(), topology.ObjectMedia)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := obs.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Name != want || objs[0].Size != uint64(len(photo)) {
		t.Fatalf("media store holds %+v, want one object %s", objs, want)
	}
}

// Stopping ingest in the middle of a run (between history pages, then between publish
// batches) and starting it again loses no message and puts no fact in the log twice —
// even when the restart comes after the log's duplicate window, so that deduplication
// by Nats-Msg-Id cannot hide a re-publish.
func TestRestartMidRunLosesNothingDuplicatesNothing(t *testing.T) {
	h := newHarness(t)
	natstest.ShortDuplicateWindow(t, h.env, 200*time.Millisecond)
	c := h.tg.addChannel(8001, "restarts", "Restarts")
	h.tg.posts(c, 1, 1000)
	h.tg.post(c, 350, "with a photo", func(m *tg.Message) { m.Media = h.tg.photo(8350, []byte("photo of 350")) })

	var mu sync.Mutex
	var stopNow context.CancelFunc
	stopper := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopNow != nil {
			stopNow()
			stopNow = nil
		}
	}
	// First instance: stopped while paging (fourth page).
	h.tg.setOnHistory(func(_ *fakeChannel, _ *tg.MessagesGetHistoryRequest, n int) error {
		if n == 4 {
			stopper()
		}
		return nil
	})
	r1 := h.start()
	mu.Lock()
	stopNow = r1.cancel
	mu.Unlock()
	h.subscribe("@restarts")
	if err := waitDone(r1); err != nil {
		t.Fatalf("first instance: %v", err)
	}
	if got := h.cursor(8001); got != 0 {
		t.Fatalf("cursor %d after a stop while paging, want 0", got)
	}

	// Second instance: stopped while publishing, at the download of message 350.
	h.tg.setOnHistory(nil)
	h.tg.setOnGetFile(func(*tg.UploadGetFileRequest) error {
		stopper()
		return nil
	})
	r2 := h.start()
	mu.Lock()
	stopNow = r2.cancel
	mu.Unlock()
	if err := waitDone(r2); err != nil {
		t.Fatalf("second instance: %v", err)
	}
	if got := h.cursor(8001); got != 300 && got != 349 {
		t.Fatalf("cursor %d after a stop at message 350, want a batch boundary (300) or 349", got)
	}

	// Third instance finishes the job, once the log has forgotten the ids published so far.
	h.tg.setOnGetFile(nil)
	natstest.WaitDuplicateWindow(t, h.env)
	n := h.reportCount()
	h.start()
	st := h.synced(n, 8001)
	if st.Cursor != 1000 || st.MediaStored != 1 {
		t.Fatalf("third instance: %+v", st)
	}
	h.wantEachOnce(8001, 1, 1000)
	if n := len(h.facts("posts.parsed.8001")); n != 1000 {
		t.Fatalf("%d posts.parsed facts, want 1000", n)
	}
}

func waitDone(r *running) error {
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(30 * time.Second):
		return context.DeadlineExceeded
	}
}

// Several ingest processes: exactly one schedules (it holds the lease in the leases
// bucket); when it stops, another takes over and continues from the cursor.
func TestOneSchedulerAmongSeveralProcesses(t *testing.T) {
	h := newHarness(t)
	c := h.tg.addChannel(8101, "leased", "Leased")
	h.tg.posts(c, 1, 20)
	a := h.start(ingest.WithOwner("proc-a"))
	b := h.start(ingest.WithOwner("proc-b"))
	h.subscribe("@leased")
	h.synced(0, 8101)
	for range 3 {
		a.svc.Trigger()
		b.svc.Trigger()
		time.Sleep(150 * time.Millisecond)
	}
	owners := map[string]int{}
	for _, rep := range h.reportsSince(0) {
		owners[rep.Owner]++
	}
	if len(owners) != 1 {
		t.Fatalf("runs by owner %v: want exactly one scheduler", owners)
	}
	leader, followerName := a, "proc-b"
	if owners["proc-b"] > 0 {
		leader, followerName = b, "proc-a"
	}
	h.tg.posts(c, 21, 30)
	n := h.reportCount()
	if err := h.stop(leader); err != nil {
		t.Fatal(err)
	}
	st := h.synced(n, 8101)
	if st.New != 10 || st.Cursor != 30 {
		t.Fatalf("run after takeover: %+v", st)
	}
	for _, rep := range h.reportsSince(n) {
		if rep.Owner != followerName {
			t.Fatalf("run by %s after the leader stopped", rep.Owner)
		}
	}
	h.wantEachOnce(8101, 1, 30)
}

// The media policy is explicit: photos, videos, animations and documents (webp included)
// are stored; stickers and voice notes are skipped by policy; files over
// TGFLOW_MEDIA_MAX_BYTES are skipped whether their declared size says so or their bytes
// do; an expired file reference is refreshed with channels.getMessages. Every skip is
// counted by reason in channels.synced and recorded on the post.
func TestMediaPolicySizeCapAndFileReference(t *testing.T) {
	h := newHarness(t)
	h.cfg.MediaMaxBytes = 1000
	c := h.tg.addChannel(7101, "mediamix", "Media mix")
	bytesOf := func(n int, b byte) []byte {
		out := make([]byte, n)
		for i := range out {
			out[i] = b + byte(i)
		}
		return out
	}
	media := map[int]tg.MessageMediaClass{
		1:  h.tg.photo(711, bytesOf(500, 1)),
		2:  h.tg.document(712, bytesOf(600, 2), "video/mp4", &tg.DocumentAttributeVideo{W: 640, H: 360, Duration: 3}),
		3:  h.tg.document(713, bytesOf(300, 3), "video/mp4", &tg.DocumentAttributeAnimated{}, &tg.DocumentAttributeVideo{W: 100, H: 100, Duration: 1}),
		4:  h.tg.document(714, bytesOf(200, 4), "image/webp", &tg.DocumentAttributeFilename{FileName: "pic.webp"}),
		5:  h.tg.document(715, bytesOf(100, 5), "image/webp", &tg.DocumentAttributeSticker{Alt: "🙂", Stickerset: &tg.InputStickerSetEmpty{}}),
		6:  h.tg.document(716, bytesOf(100, 6), "audio/ogg", &tg.DocumentAttributeAudio{Voice: true, Duration: 2}),
		7:  h.tg.document(717, bytesOf(5000, 7), "application/pdf", &tg.DocumentAttributeFilename{FileName: "big.pdf"}),
		10: &tg.MessageMediaGeo{Geo: &tg.GeoPointEmpty{}},
		11: h.tg.photo(7111, bytesOf(400, 11)),
	}
	// Declares 3000 bytes of photo as 1500 (under no cap) — the store still refuses it.
	liar := h.tg.photo(718, bytesOf(3000, 8))
	liar.Photo.(*tg.Photo).Sizes[2].(*tg.PhotoSize).Size = 100
	media[8] = liar
	for id, m := range media {
		h.tg.post(c, id, "media "+itoa(id), func(msg *tg.Message) { msg.Media = m })
	}
	h.tg.service(c, 9)
	expired := true
	h.tg.setOnGetFile(func(r *tg.UploadGetFileRequest) error {
		if l, ok := r.Location.(*tg.InputPhotoFileLocation); ok && l.ID == 7111 && expired {
			expired = false
			return tgerr.New(400, "FILE_REFERENCE_EXPIRED")
		}
		return nil
	})
	h.start()
	h.subscribe("@mediamix")
	st := h.synced(0, 7101)
	wantSkipped := map[string]int{"policy: sticker": 1, "policy: voice": 1, "too large": 2, "service message": 1, "unsupported media: geo": 1}
	if st.New != 10 || st.MediaStored != 5 || !reflect.DeepEqual(st.Skipped, wantSkipped) {
		t.Fatalf("synced: new %d media %d skipped %v; want 10, 5, %v", st.New, st.MediaStored, st.Skipped, wantSkipped)
	}
	if n := h.tg.getMessagesCount(); n != 1 {
		t.Fatalf("%d channels.getMessages calls, want 1 (the file reference refresh)", n)
	}
	got := map[int64]events.Media{}
	for _, e := range h.facts("posts.parsed.7101") {
		p := e.Data.(*events.PostParsed)
		if len(p.Media) == 1 {
			got[p.MessageID] = p.Media[0]
		}
	}
	want := map[int64]struct{ kind, skipped string }{
		1: {events.MediaPhoto, ""}, 2: {events.MediaVideo, ""}, 3: {events.MediaAnimation, ""}, 4: {events.MediaDocument, ""},
		5: {events.MediaSticker, "policy: sticker"}, 6: {events.MediaVoice, "policy: voice"}, 7: {events.MediaDocument, "too large"},
		8: {events.MediaPhoto, "too large"}, 11: {events.MediaPhoto, ""},
	}
	for id, w := range want {
		m := got[id]
		if m.Kind != w.kind || m.Skipped != w.skipped || (w.skipped == "") != (len(m.ObjectKey) == 64) {
			t.Errorf("message %d media %+v, want kind %s skipped %q", id, m, w.kind, w.skipped)
		}
	}
}

// Removing a channel stops its reads; adding it again resumes from its cursor, without a
// second backfill.
func TestRemoveAndReAddChannel(t *testing.T) {
	h := newHarness(t)
	c := h.tg.addChannel(7201, "comeback", "Comeback")
	o := h.tg.addChannel(7202, "stayer", "Stayer")
	h.tg.posts(c, 1, 10)
	h.tg.posts(o, 1, 10)
	r := h.start()
	h.subscribe("@comeback")
	h.subscribe("@stayer")
	h.synced(0, 7201)
	h.synced(0, 7202)
	if _, err := ingest.RemoveChannel(context.Background(), h.env.JS, "t.me/comeback"); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "comeback unsubscribed", func() bool {
		chans, err := ingest.ListChannels(context.Background(), h.env.JS)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chans {
			if ch.ChannelID == 7201 {
				return !ch.Subscribed && !ch.Waiting // applied by ingest, not only on the log
			}
		}
		return false
	})
	h.tg.posts(c, 11, 15)
	n := h.next(r)
	h.synced(n, 7202)
	if hasChannel(h.reportsSince(n), 7201) {
		t.Fatal("removed channel read")
	}
	n = h.reportCount()
	h.subscribe("@comeback")
	st := h.synced(n, 7201)
	if st.Backfill || st.New != 5 || st.Cursor != 15 {
		t.Fatalf("re-added channel: %+v", st)
	}
	h.wantEachOnce(7201, 1, 15)
	chans, err := ingest.ListChannels(context.Background(), h.env.JS)
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, ch := range chans {
		listed = listed || ch.ChannelID == 7201 && ch.Username == "comeback" && ch.Title == "Comeback" && ch.Subscribed
	}
	if !listed {
		t.Fatalf("ls: %+v", chans)
	}
}
