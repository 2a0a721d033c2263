package worker

// An internal test: a message whose metadata or nak fails cannot be made by a real server.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
)

// brokenMsg is a delivered message whose Metadata and NakWithDelay fail as configured, and
// which records what the runtime did with it.
type brokenMsg struct {
	id      string
	metaErr error
	nakErr  error
	mu      sync.Mutex
	did     []string
}

func (m *brokenMsg) record(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.did = append(m.did, s)
}
func (m *brokenMsg) Metadata() (*jetstream.MsgMetadata, error) {
	if m.metaErr != nil {
		return nil, m.metaErr
	}
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: 9}, NumDelivered: 1}, nil
}
func (m *brokenMsg) Data() []byte { return []byte("{}") }
func (m *brokenMsg) Headers() nats.Header {
	return nats.Header{publish.MsgIDHeader: {m.id}, "Ce-Id": {m.id}}
}
func (m *brokenMsg) Subject() string                 { return "posts.parsed.1" }
func (m *brokenMsg) Reply() string                   { return "" }
func (m *brokenMsg) Ack() error                      { m.record("ack"); return nil }
func (m *brokenMsg) DoubleAck(context.Context) error { m.record("ack"); return nil }
func (m *brokenMsg) Nak() error                      { m.record("nak"); return nil }
func (m *brokenMsg) NakWithDelay(time.Duration) error {
	m.record("nak")
	return m.nakErr
}
func (m *brokenMsg) InProgress() error           { return nil }
func (m *brokenMsg) Term() error                 { m.record("term"); return nil }
func (m *brokenMsg) TermWithReason(string) error { m.record("term"); return nil }

func testCore(t *testing.T, log *slog.Logger) (*core, jetstream.JetStream) {
	t.Helper()
	env := natstest.Start(t)
	c, _ := topology.LookupConsumer(topology.ConsumerTagger)
	core, err := newCore(env.JS, Config{Consumer: c.Config(), Metrics: NewMetrics(prometheus.NewRegistry()), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return core, env.JS
}

// A transient failure of a message whose metadata cannot be read must not be retried as
// "delivery 1" forever: it is dead-lettered (and two such messages are two entries, not one
// entry under a shared sequence 0).
func TestUnreadableMetadataDeadLettersInsteadOfRetryingForever(t *testing.T) {
	c, js := testCore(t, logx.Discard())
	a := &brokenMsg{id: "a", metaErr: errors.New("bad reply subject")}
	b := &brokenMsg{id: "b", metaErr: errors.New("bad reply subject")}
	for _, m := range []*brokenMsg{a, b} {
		c.fail(context.Background(), m, errors.New("upstream timeout"))
		if strings.Join(m.did, ",") != "term" {
			t.Fatalf("message %s: runtime did %v, want a dead letter (term) and no nak", m.id, m.did)
		}
	}
	dls, err := ListDeadLetters(context.Background(), js, topology.ConsumerTagger, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dls))
	}
	for _, dl := range dls {
		if !strings.Contains(dl.Reason, ErrNoMetadata.Error()) || !strings.Contains(dl.Reason, "upstream timeout") {
			t.Errorf("reason %q does not say why", dl.Reason)
		}
		// Both replays reach the log: without a log sequence they must not share one id.
		if _, err := Replay(context.Background(), js, dl.DLQSeq); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(context.Background(), topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(topology.ReplaySubject(topology.ConsumerTagger, ">")))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("%d replays on the log, want 2", info.State.Msgs)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// A failed nak is logged with the message's subject and sequence (the message comes back
// after its ack wait), and not counted as a retry.
func TestFailedNakIsLoggedWithContext(t *testing.T) {
	var out syncBuf
	c, _ := testCore(t, logx.New(&out, "json", slog.LevelDebug))
	m := &brokenMsg{id: "a", nakErr: errors.New("connection reset")}
	c.fail(context.Background(), m, errors.New("upstream timeout"))
	log := out.b.String()
	if !strings.Contains(log, "nak failed") || !strings.Contains(log, "connection reset") || !strings.Contains(log, `"subject":"posts.parsed.1"`) || !strings.Contains(log, `"stream_seq":9`) {
		t.Fatalf("nak failure not logged with context:\n%s", log)
	}
}
