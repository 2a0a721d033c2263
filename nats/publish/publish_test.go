package publish_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func post(msg int64, text string) events.Event {
	return events.PostEvent(&events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: 1, MessageID: msg}, Date: t0, Text: text}})
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func newPublisher(t *testing.T, js jetstream.JetStream, o publish.Options) *publish.Publisher {
	t.Helper()
	p, err := publish.New(js, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A fact is stored once under its event id; publishing it again is acknowledged as a
// duplicate, and the publisher (and its metric) count it.
func TestPublishStoresOnceAndCountsDuplicates(t *testing.T) {
	env := natstest.Start(t)
	dupMetric := prometheus.NewCounter(prometheus.CounterOpts{Name: "dups"})
	p := newPublisher(t, env.JS, publish.Options{Duplicates: dupMetric})
	evs := []events.Event{post(1, "a"), post(2, "b"), post(3, "c")}
	ctx := context.Background()
	dups, err := p.Publish(ctx, evs)
	if err != nil || dups != 0 {
		t.Fatalf("first publish: dups %d, err %v", dups, err)
	}
	dups, err = p.Publish(ctx, evs)
	if err != nil || dups != 3 {
		t.Fatalf("second publish: dups %d, err %v; want 3 duplicates", dups, err)
	}
	if got := streamMsgs(t, env.JS, topology.LogStream); got != 3 {
		t.Fatalf("log holds %d messages, want 3", got)
	}
	if p.Duplicates() != 3 || testutil.ToFloat64(dupMetric) != 3 {
		t.Fatalf("duplicate count %d, metric %v; want 3", p.Duplicates(), testutil.ToFloat64(dupMetric))
	}
	s, err := env.JS.Stream(ctx, topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(ctx, "posts.parsed.1")
	if err != nil {
		t.Fatal(err)
	}
	if got := raw.Header.Get(publish.MsgIDHeader); got != evs[2].ID {
		t.Fatalf("Nats-Msg-Id %q, want the event id %s", got, evs[2].ID)
	}
}

// The expected stream is sent with every message: a publisher bound to another stream
// cannot put a fact into the log by accident.
func TestPublishRefusesAnotherStream(t *testing.T) {
	env := natstest.Start(t)
	p := newPublisher(t, env.JS, publish.Options{Stream: topology.DLQStream})
	_, err := p.Publish(context.Background(), []events.Event{post(1, "a")})
	if err == nil {
		t.Fatal("a publisher bound to the DLQ stream published into the log")
	}
	if got := streamMsgs(t, env.JS, topology.LogStream); got != 0 {
		t.Fatalf("log holds %d messages", got)
	}
}

// Every event is encoded before any is sent: one invalid event publishes nothing.
func TestInvalidEventPublishesNothing(t *testing.T) {
	env := natstest.Start(t)
	p := newPublisher(t, env.JS, publish.Options{})
	bad := post(2, "b")
	bad.Data.(*events.PostParsed).ChannelID = 0
	_, err := p.Publish(context.Background(), []events.Event{post(1, "a"), bad})
	if !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("err = %v, want events.ErrInvalid", err)
	}
	if got := streamMsgs(t, env.JS, topology.LogStream); got != 0 {
		t.Fatalf("log holds %d messages, want 0", got)
	}
}

// A batch larger than the pending bound settles as it goes and still counts every duplicate.
func TestBatchSettlesAndCounts(t *testing.T) {
	env := natstest.Start(t)
	p := newPublisher(t, env.JS, publish.Options{})
	ctx := context.Background()
	const n = 9000
	for round, wantDups := range []int{0, n} {
		b := p.Batch()
		for i := 1; i <= n; i++ {
			if err := b.Add(ctx, post(int64(i), "x")); err != nil {
				t.Fatal(err)
			}
		}
		dups, err := b.Wait(ctx)
		if err != nil || dups != wantDups {
			t.Fatalf("round %d: dups %d, err %v; want %d", round, dups, err, wantDups)
		}
	}
	if got := streamMsgs(t, env.JS, topology.LogStream); got != n {
		t.Fatalf("log holds %d messages, want %d", got, n)
	}
	// A prepared message (here a KV entry) goes through a publisher bound to its stream.
	kv := newPublisher(t, env.JS, publish.Options{Stream: "KV_" + topology.BucketImported})
	b := kv.Batch()
	if err := b.AddMsg(ctx, &nats.Msg{Subject: "$KV." + topology.BucketImported + ".k", Data: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := streamMsgs(t, env.JS, "KV_"+topology.BucketImported); got != 1 {
		t.Fatalf("ledger holds %d entries, want 1", got)
	}
}

func TestOptionsValidate(t *testing.T) {
	if _, err := publish.New(nil, publish.Options{}); err == nil {
		t.Error("nil JetStream accepted")
	}
	if err := (publish.Options{AckTimeout: -time.Second}).Validate(); err == nil {
		t.Error("negative ack timeout accepted")
	}
}
