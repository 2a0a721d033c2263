// Package natstest starts an embedded JetStream server with the tgflow topology for tests.
package natstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/embedded"
	"github.com/tgflow/tgflow/nats/topology"
)

// Env is a running server with the topology applied (streams, buckets; no consumers).
type Env struct {
	Server *embedded.Server
	URL    string
	NC     *nats.Conn
	JS     jetstream.JetStream
	Dir    string
}

// Start starts a server in a temporary directory; it is stopped in t.Cleanup.
func Start(t testing.TB) *Env {
	t.Helper()
	dir := t.TempDir()
	s, err := embedded.Start(embedded.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(s.Stop)
	env := &Env{Server: s, URL: s.ClientURL(), Dir: dir}
	env.NC, env.JS = Connect(t, env.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := topology.Apply(ctx, env.JS, topology.ApplyOptions{Consumers: []string{}}); err != nil {
		t.Fatalf("apply topology: %v", err)
	}
	return env
}

// Connect opens a connection closed in t.Cleanup.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Eventually polls cond every 20ms until it returns true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Facts reads every fact on the log matching filters, in log order, decoded. The reader is
// deleted before Facts returns: tests poll it, and readers left to expire would pile up to
// the server's consumer limit.
func Facts(t testing.TB, js jetstream.JetStream, filters ...string) []events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	oc, err := js.OrderedConsumer(ctx, topology.LogStream, jetstream.OrderedConsumerConfig{FilterSubjects: filters})
	if err != nil {
		t.Fatalf("read %v: %v", filters, err)
	}
	info, err := oc.Info(ctx)
	if err != nil {
		t.Fatalf("read %v: %v", filters, err)
	}
	defer func() {
		if err := js.DeleteConsumer(context.WithoutCancel(ctx), topology.LogStream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Errorf("delete the reader of %v: %v", filters, err)
		}
	}()
	var out []events.Event
	for pending := info.NumPending; pending > 0; {
		m, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read %v: %v", filters, err)
		}
		ev, err := events.Default.Decode(events.Header(m.Headers()), m.Data())
		if err != nil {
			t.Fatalf("decode %s: %v", m.Subject(), err)
		}
		out = append(out, ev)
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		pending = meta.NumPending
	}
	return out
}

// Failer is what Count needs of its caller: a *testing.T, or cmd/tgflow/internal/proctest's runner of
// the same checks outside a test.
type Failer interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Count is how many facts on the log match filter, from the stream's subject counts: it
// creates no consumer, so a test may poll it as often as it likes.
func Count(t Failer, js jetstream.JetStream, filter string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, topology.LogStream)
	if err != nil {
		t.Fatalf("count %s: %v", filter, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatalf("count %s: %v", filter, err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// ConsumerIdle reports whether the durable consumer name on the log has nothing pending,
// nothing unacknowledged, and an acknowledgement floor at or past the last fact its filters
// match. The floor matters: the server counts a new fact into a consumer's pending
// asynchronously, after the publish was acknowledged, so a consumer asked right after a
// publish can show nothing pending before it has seen the fact.
func ConsumerIdle(js jetstream.JetStream, name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, topology.LogStream, name)
	if err != nil {
		return false
	}
	info, err := c.Info(ctx)
	if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
		return false
	}
	s, err := js.Stream(ctx, topology.LogStream)
	if err != nil {
		return false
	}
	filters := info.Config.FilterSubjects
	if info.Config.FilterSubject != "" {
		filters = append(filters, info.Config.FilterSubject)
	}
	if len(filters) == 0 {
		filters = []string{">"}
	}
	for _, f := range filters {
		m, err := s.GetLastMsgForSubject(ctx, f)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil || m.Sequence > info.AckFloor.Stream {
			return false
		}
	}
	return true
}
