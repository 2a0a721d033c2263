package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/nats/topology"
)

// ProbeSubject is where WaitDuplicateWindow publishes its probe: a log subject that no
// producer or consumer uses.
const ProbeSubject = "trends.test-probe"

// ShortDuplicateWindow shrinks the log's duplicate window to d (the server's least is
// 100ms), so a test can show what happens once a re-published id is no longer dropped.
//
// It updates the stream twice. On a change of the window, nats-server (2.15.2,
// stream.updateWithAdvisory) fires its purge timer at once but sets the new window only
// later in the update; a purge that runs in between re-arms the timer from the old window
// (hours), and ids stored after the update stay duplicates that long (seen in CI under
// -race: WaitDuplicateWindow timed out). The second change fires the timer again while the
// window is already short, so the purge re-arms it from a short one.
func ShortDuplicateWindow(t testing.TB, env *Env, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := topology.LogStreamConfig()
	for _, w := range []time.Duration{d + time.Millisecond, d} {
		cfg.Duplicates = w
		if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("shorten the duplicate window: %v", err)
		}
	}
}

// WaitDuplicateWindow returns once the log has forgotten every Nats-Msg-Id published
// before the call: a probe id published now is published again until the log stores it
// as new. It leaves two probe messages on ProbeSubject.
func WaitDuplicateWindow(t testing.TB, env *Env) {
	t.Helper()
	ctx := context.Background()
	id := nats.NewInbox() // unique
	probe := func() *jetstream.PubAck {
		m := nats.NewMsg(ProbeSubject)
		m.Header.Set(jetstream.MsgIDHeader, id)
		ack, err := env.JS.PublishMsg(ctx, m)
		if err != nil {
			t.Fatalf("duplicate window probe: %v", err)
		}
		return ack
	}
	if ack := probe(); ack.Duplicate {
		t.Fatal("duplicate window probe: a fresh id is a duplicate")
	}
	Eventually(t, time.Minute, "the log's duplicate window to pass", func() bool { return !probe().Duplicate })
}
