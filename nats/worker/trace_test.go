package worker_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A handler's log lines and the runtime's failure lines carry the input's trace id.
func TestLogLinesCarryTheTraceID(t *testing.T) {
	h := newHarness(t)
	in := parsed(1, 1, "x")
	publish(t, h.env.JS, in)
	var out syncBuffer
	log := logx.New(&out, "json", slog.LevelDebug)
	cfg := h.config(testConsumer())
	cfg.Logger = log
	calls := 0
	r := worker.NewRouter()
	worker.On(r, func(ctx context.Context, ev events.Event, p *events.PostParsed) ([]events.Event, error) {
		log.InfoContext(ctx, "tagging", "post", p.Key())
		calls++
		if calls == 1 {
			return nil, context.DeadlineExceeded // transient: logged by the runtime
		}
		return tagOf(ev, p), nil
	})
	h.start(t, cfg, r)
	natstest.Eventually(t, 10*time.Second, "processed", func() bool { return consumerIdle(t, h.env.JS, topology.ConsumerTagger) })
	trace := events.TraceID(in.TraceParent)
	var handlerLines, failureLines int
	for _, line := range strings.Split(out.String(), "\n") {
		switch {
		case strings.Contains(line, `"msg":"tagging"`):
			handlerLines++
		case strings.Contains(line, "transient failure"):
			failureLines++
		default:
			continue
		}
		if !strings.Contains(line, `"trace_id":"`+trace+`"`) {
			t.Errorf("log line without the trace id %s: %s", trace, line)
		}
	}
	if handlerLines != 2 || failureLines != 1 {
		t.Fatalf("%d handler and %d failure lines:\n%s", handlerLines, failureLines, out.String())
	}
}
