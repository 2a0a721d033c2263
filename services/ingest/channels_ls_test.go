package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services/ingest"
)

func listChannels(t *testing.T, h *harness) map[string]ingest.ChannelInfo {
	t.Helper()
	chans, err := ingest.ListChannels(context.Background(), h.env.JS)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ingest.ChannelInfo{}
	for _, c := range chans {
		key := "@" + c.Username
		if c.ChannelID.Valid() {
			key = c.ChannelID.String()
		}
		if _, dup := out[key]; dup {
			t.Fatalf("%s listed twice: %+v", key, chans)
		}
		out[key] = c
	}
	return out
}

// `channels ls` lists a subscription at once, from the log, before ingest has applied it
// (not running, not configured); once ingest has, the channel is listed once with ingest's
// state; a removal shows at once too.
func TestListChannelsShowsSubscriptionsBeforeIngestApplies(t *testing.T) {
	h := newHarness(t)
	h.tg.addChannel(7301, "early", "Early")
	h.tg.addChannel(7302, "byid", "By Id")
	h.subscribe("@early")
	h.subscribe("7302")
	h.subscribe("@dropped")
	if _, err := ingest.RemoveChannel(context.Background(), h.env.JS, "t.me/dropped"); err != nil {
		t.Fatal(err)
	}

	got := listChannels(t, h)
	if len(got) != 2 {
		t.Fatalf("before ingest ran: %d channels, want @early and 7302 (a removed one is not listed): %+v", len(got), got)
	}
	for _, key := range []string{"@early", "7302"} {
		if c := got[key]; !c.Subscribed || !c.Waiting {
			t.Errorf("%s before ingest ran: %+v, want subscribed and waiting for ingest", key, c)
		}
	}

	n := h.reportCount()
	h.start()
	h.synced(n, 7301)
	h.synced(n, 7302)
	natstest.Eventually(t, 10*time.Second, "ingest to have applied the subscriptions", func() bool {
		got = listChannels(t, h)
		return len(got) == 2 && !got["7301"].Waiting && !got["7302"].Waiting
	})
	if c := got["7301"]; !c.Subscribed || c.Username != "early" || c.Title != "Early" {
		t.Fatalf("@early once applied: %+v", c)
	}

	if _, err := ingest.RemoveChannel(context.Background(), h.env.JS, "@early"); err != nil {
		t.Fatal(err)
	}
	// Read at once: whether or not ingest has applied it yet, the removal shows.
	if c := listChannels(t, h)["7301"]; c.Subscribed {
		t.Fatalf("@early right after its removal: %+v", c)
	}
	if c := listChannels(t, h)["7302"]; !c.Subscribed {
		t.Fatalf("7302 after another channel's removal: %+v", c)
	}
}
