package ingest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
)

// While ingest resolves a username, the channel has both its ch.<id> record and the
// pending.<username> one it is about to delete: `channels ls` lists the channel once (it
// listed it twice under load in CI).
func TestListChannelsWhileAPendingRecordIsPromoted(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, topology.BucketChannels)
	if err != nil {
		t.Fatal(err)
	}
	resolved := record{ChannelID: 7301, Username: "early", Title: "Early", Subscribed: true}
	if _, err := putJSON(ctx, kv, channelKey(7301), resolved, 0); err != nil {
		t.Fatal(err)
	}
	for _, leftover := range []record{
		{ChannelID: 7301, Username: "early", Subscribed: false}, // already carrying the id
		{Username: "Early", Subscribed: true},                   // not yet
	} {
		b, err := json.Marshal(leftover)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, pendingKey("early"), b); err != nil {
			t.Fatal(err)
		}
		got, err := ListChannels(ctx, env.JS)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ChannelID != 7301 || !got[0].Subscribed || got[0].Title != "Early" {
			t.Errorf("with leftover %+v: %+v, want the resolved channel once", leftover, got)
		}
	}
}
