package ingest_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/ingest"
	"github.com/tgflow/tgflow/services/ingest/session"
)

// Lesson: channel ids came in two forms (-100… and bare) and were compared against each
// other. Every form a user can type becomes the one bare id, and subscribing a channel by
// both forms gives one registry entry.
func TestLessonOneChannelIDForm(t *testing.T) {
	tests := []struct {
		name, in string
		id       events.ChannelID
		username string
		wantErr  bool
	}{
		{name: "bare id", in: "1234567890", id: 1234567890},
		{name: "bot api id", in: "-1001234567890", id: 1234567890},
		{name: "private link", in: "https://t.me/c/1234567890/55", id: 1234567890},
		{name: "at name", in: "@durov_news", username: "durov_news"},
		{name: "name", in: "durov_news", username: "durov_news"},
		{name: "t.me", in: "t.me/durov_news", username: "durov_news"},
		{name: "https t.me", in: "https://t.me/durov_news", username: "durov_news"},
		{name: "post link", in: "https://t.me/durov_news/123", username: "durov_news"},
		{name: "web preview", in: "https://t.me/s/durov_news", username: "durov_news"},
		{name: "telegram.me", in: "http://telegram.me/durov_news", username: "durov_news"},
		{name: "negative", in: "-5", wantErr: true},
		{name: "zero", in: "0", wantErr: true},
		{name: "invite link", in: "https://t.me/+AbCdEf", wantErr: true},
		{name: "other host", in: "https://example.com/durov_news", wantErr: true},
		{name: "too short", in: "@abc", wantErr: true},
		{name: "empty", in: " ", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ingest.ParseChannelRef(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ingest.ErrChannelRef) {
					t.Fatalf("ParseChannelRef(%q) = %+v, %v; want ErrChannelRef", tt.in, got, err)
				}
				return
			}
			if err != nil || got.ID != tt.id || got.Username != tt.username {
				t.Fatalf("ParseChannelRef(%q) = %+v, %v", tt.in, got, err)
			}
		})
	}

	h := newHarness(t)
	c := h.tg.addChannel(1234567890, "", "Known by id")
	h.tg.posts(c, 1, 3)
	r := h.start()
	h.subscribe("-1001234567890")
	if st := h.synced(0, 1234567890); st.New != 3 || st.ChannelID != 1234567890 {
		t.Fatalf("synced: %+v", st)
	}
	h.subscribe("1234567890")
	h.synced(h.next(r), 1234567890)
	chans, err := ingest.ListChannels(context.Background(), h.env.JS)
	if err != nil {
		t.Fatal(err)
	}
	if len(chans) != 1 || chans[0].ChannelID != 1234567890 || chans[0].Cursor != 3 {
		t.Fatalf("registry: %+v", chans)
	}
	for _, e := range h.facts("channels.subscribed.>") {
		if id := e.Data.(*events.ChannelSubscribed).ChannelID; id != 1234567890 {
			t.Fatalf("subscribed fact carries id %d", id)
		}
	}
}

// Lesson: usernames were resolved on every run until Telegram answered with FLOOD_WAITs of
// thousands of seconds. A username is resolved once, whatever the number of runs and
// restarts.
func TestLessonUsernameResolvedOnce(t *testing.T) {
	h := newHarness(t)
	c := h.tg.addChannel(9001, "onceonly", "Once")
	h.tg.posts(c, 1, 3)
	r := h.start()
	h.subscribe("@onceonly")
	h.synced(0, 9001)
	h.synced(h.next(r), 9001)
	h.synced(h.next(r), 9001)
	if n := h.tg.resolveCount("onceonly"); n != 1 {
		t.Fatalf("resolveUsername called %d times over 3 runs, want 1", n)
	}
	// A restart and a second subscription by name still use the cached resolution.
	if err := h.stop(r); err != nil {
		t.Fatal(err)
	}
	n := h.reportCount()
	h.start()
	h.subscribe("https://t.me/onceonly")
	h.synced(n, 9001)
	if n := h.tg.resolveCount("onceonly"); n != 1 {
		t.Fatalf("resolveUsername called %d times after a restart, want 1", n)
	}
}

// Lesson: Telegram errors were turned into "0 new messages" and the cursor moved past
// posts never fetched. An RPC error while paging leaves the cursor where it was; an error
// while storing media publishes what precedes the message and stops the cursor there; a
// later run fetches the rest, each message once.
func TestLessonCursorNeverPassesUnfetchedMessages(t *testing.T) {
	h := newHarness(t)
	c := h.tg.addChannel(9101, "errors", "Errors")
	h.tg.posts(c, 1, 300)
	r := h.start()
	h.subscribe("@errors")
	if st := h.synced(0, 9101); st.Cursor != 300 {
		t.Fatalf("first run: %+v", st)
	}

	h.tg.posts(c, 301, 800)
	h.tg.post(c, 650, "photo", func(m *tg.Message) { m.Media = h.tg.photo(9650, []byte("photo 650")) })
	failPage := true
	h.tg.setOnHistory(func(_ *fakeChannel, _ *tg.MessagesGetHistoryRequest, n int) error {
		if failPage && n == 6 { // the second page of the second run
			failPage = false
			return tgerr.New(500, "INTERNAL_SERVER_ERROR")
		}
		return nil
	})
	cr := h.waitChannel(h.next(r), 9101)
	if cr.Failed == nil || cr.Failed.Code != "INTERNAL_SERVER_ERROR" || cr.Failed.Permanent {
		t.Fatalf("paging error: %+v", cr)
	}
	if got := h.cursor(9101); got != 300 {
		t.Fatalf("cursor %d after a failed page, want 300", got)
	}
	h.wantEachOnce(9101, 1, 300)

	failFile := true
	h.tg.setOnGetFile(func(*tg.UploadGetFileRequest) error {
		if failFile {
			failFile = false
			return tgerr.New(500, "INTERNAL_SERVER_ERROR")
		}
		return nil
	})
	h.advance(3 * time.Hour) // past the channel's backoff
	cr = h.waitChannel(h.next(r), 9101)
	if cr.Failed == nil {
		t.Fatalf("media error: %+v", cr)
	}
	if got := h.cursor(9101); got != 649 {
		t.Fatalf("cursor %d after a media error at message 650, want 649", got)
	}
	h.wantEachOnce(9101, 1, 649)

	h.advance(6 * time.Hour)
	st := h.synced(h.next(r), 9101)
	if st.Cursor != 800 || st.New != 151 || st.MediaStored != 1 {
		t.Fatalf("recovery run: %+v", st)
	}
	h.wantEachOnce(9101, 1, 800)
}

// Lesson: parse results were maps with different keys on different paths. Run results are
// typed: every channel outcome is a ChannelReport with a typed fact, and the service's
// facts decode into their Go types (checked by events.Decode in every test). Here: an
// unusable session stops ingest with one clear error instead of a retry storm.
func TestLessonAuthErrorStopsIngestOnce(t *testing.T) {
	h := newHarness(t)
	a := h.tg.addChannel(9201, "authone", "A")
	b := h.tg.addChannel(9202, "authtwo", "B")
	h.tg.posts(a, 1, 3)
	h.tg.posts(b, 1, 3)
	var calls atomic.Int32
	h.tg.setOnHistory(func(*fakeChannel, *tg.MessagesGetHistoryRequest, int) error {
		calls.Add(1)
		return tgerr.New(401, "SESSION_REVOKED")
	})
	h.subscribe("@authone")
	h.subscribe("@authtwo")
	r := h.start()
	err := waitDone(r)
	if !errors.Is(err, ingest.ErrTelegramAuth) {
		t.Fatalf("Run returned %v, want ErrTelegramAuth", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d history calls after a revoked session, want 1", n)
	}
	// Operators see it: one failure of class auth.
	auth := h.metric("tgflow_ingest_channel_failures_total", "class", "auth")
	if auth != 1 {
		t.Fatalf("tgflow_ingest_channel_failures_total{class=\"auth\"} = %v, want 1", auth)
	}
}

// Without Telegram credentials the service is not configured: laptop mode skips it.
func TestNotConfiguredWithoutCredentials(t *testing.T) {
	_, err := ingest.Spec().New(context.Background(), services.Deps{Env: map[string]string{}})
	if !errors.Is(err, services.ErrNotConfigured) {
		t.Fatalf("New without credentials: %v, want ErrNotConfigured", err)
	}
}

// Validate reports every problem at once, naming each variable, and never prints a secret.
func TestConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := ingest.Defaults()
	cfg.AppID = 5                       // without a hash
	cfg.SessionKey = "not-a-key-s3cret" // neither base64 nor hex of 32 bytes
	cfg.Interval = 0
	cfg.LeaseTTL = 2 * time.Minute
	cfg.MediaKinds = "photo,hologram"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config validates")
	}
	for _, want := range []string{"TGFLOW_TG_APP_HASH", "TGFLOW_SESSION_KEY", "TGFLOW_INGEST_INTERVAL", "TGFLOW_INGEST_LEASE_TTL", "TGFLOW_MEDIA_KINDS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error prints the session key: %v", err)
	}
	ok := ingest.Defaults()
	ok.AppID, ok.AppHash, ok.SessionKey = 5, "hash", config.Secret(session.GenerateKey())
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

// Resolutions have their own budget per run: channels beyond it wait for the next run
// (reported as deferred, not failed), and an unknown username is a channel failure.
func TestResolveBudgetAndUnknownUsername(t *testing.T) {
	h := newHarness(t)
	h.cfg.ResolvePerRun = 1
	for i, name := range []string{"budgetone", "budgettwo", "budgetthree"} {
		c := h.tg.addChannel(int64(9301+i), name, name)
		h.tg.posts(c, 1, 2)
	}
	r := h.start()
	h.subscribe("@budgetone")
	h.subscribe("@budgettwo")
	h.subscribe("@budgetthree")
	h.subscribe("@nosuchchannel")
	firstRun := map[events.ChannelID]int{} // run index of each channel's first sync
	failed, deferred := "", 0
	natstest.Eventually(t, 30*time.Second, "every channel resolved", func() bool {
		deferred = 0
		for i, rep := range h.reportsSince(0) {
			for _, c := range rep.Channels {
				if _, seen := firstRun[c.ChannelID]; c.Synced != nil && !seen {
					firstRun[c.ChannelID] = i
				}
				if c.Failed != nil && c.Failed.Username == "nosuchchannel" {
					failed = c.Failed.Code
				}
				if c.Deferred != "" {
					deferred++
				}
			}
		}
		if len(firstRun) < 3 || failed == "" {
			r.svc.Trigger()
			time.Sleep(50 * time.Millisecond)
			return false
		}
		return true
	})
	runs := map[int]bool{}
	for _, i := range firstRun {
		runs[i] = true
	}
	if len(runs) != 3 || deferred == 0 {
		t.Fatalf("first syncs in runs %v, %d deferrals: want one resolution per run", firstRun, deferred)
	}
	if failed != "USERNAME_NOT_OCCUPIED" {
		t.Fatalf("unknown username failed with %q", failed)
	}
	for _, n := range []string{"budgetone", "budgettwo", "budgetthree", "nosuchchannel"} {
		if c := h.tg.resolveCount(n); c != 1 {
			t.Fatalf("@%s resolved %d times", n, c)
		}
	}
}
