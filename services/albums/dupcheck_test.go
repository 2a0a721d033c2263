package albums_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/albums"
)

// countingJS counts the log readers (ordered consumers) an Assembler opens.
type countingJS struct {
	jetstream.JetStream
	readers atomic.Int32
}

func (c *countingJS) OrderedConsumer(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error) {
	c.readers.Add(1)
	return c.JetStream.OrderedConsumer(ctx, stream, cfg)
}

// TestUnconfirmedWithinTheDuplicateWindowIsNotLookedUp: a summary on the log whose claim was
// never confirmed, found by the tick after the grace period while the log still remembers
// its id, is settled by publishing it again — the log answers duplicate, no second copy —
// without reading the log (a reader per album made the embedded server load every block of
// the log from the claim on: hundreds of MB on a 100k-post import).
func TestUnconfirmedWithinTheDuplicateWindowIsNotLookedUp(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	dead := e.instance(t)
	parsed(t, dead, album(6, 90, 91))
	analysed(t, dead, visionOf(90))
	out := analysed(t, dead, visionOf(91))
	assembled(t, out)
	if _, err := e.pub.Publish(ctx, out); err != nil {
		t.Fatal(err)
	}

	_, js := natstest.Connect(t, e.URL)
	cjs := &countingJS{JetStream: js}
	kv, err := js.KeyValue(ctx, topology.BucketAlbums)
	if err != nil {
		t.Fatal(err)
	}
	other, err := albums.New(kv, cjs, albums.Config{Now: e.clock.Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(albums.DefaultGrace)
	if n, err := other.Tick(ctx, e.pub); err != nil || n != 0 {
		t.Fatalf("tick published %d new facts, want 0 (the fact is on the log): %v", n, err)
	}
	if got := cjs.readers.Load(); got != 0 {
		t.Errorf("the tick opened %d log readers within the duplicate window, want 0", got)
	}
	if n := len(e.onLog(t)); n != 1 {
		t.Errorf("%d summaries on the log, want 1", n)
	}
	if due, err := other.Due(ctx, e.clock.Now()); err != nil || len(due) != 0 {
		t.Errorf("still due after confirmation: %+v %v", due, err)
	}
}
