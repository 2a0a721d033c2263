package ingest_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/ingest"
	"github.com/tgflow/tgflow/services/ingest/session"
)

// harness is one NATS server, one fake Telegram and the ingest services started on them.
type harness struct {
	t    *testing.T
	env  *natstest.Env
	tg   *fakeTG
	cfg  ingest.Config
	skew atomic.Int64 // added to the scheduler clock
	// reg receives the metrics of the services this harness starts.
	reg *prometheus.Registry

	// allowDuplicates lets a test's services re-publish facts the log already had; by
	// default the harness fails a test whose tgflow_ingest_duplicates_total is not 0.
	allowDuplicates bool

	mu      sync.Mutex
	reports []ingest.RunReport
	running []*running
}

type running struct {
	svc    *ingest.Service
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, env: natstest.Start(t), tg: newFakeTG(t)}
	h.cfg = ingest.Defaults()
	h.cfg.AppID, h.cfg.AppHash = 1, "test-hash"
	h.cfg.SessionKey = config.Secret(session.GenerateKey())
	h.cfg.Interval = time.Hour
	h.cfg.Jitter = 0
	h.cfg.LeaseTTL = 3 * time.Second
	h.cfg.RPS = 1000
	h.cfg.ResolveInterval = time.Millisecond
	h.cfg.FloodMaxWait = 2 * time.Second
	h.cfg.BackfillMessages = 0
	h.cfg.RecheckMessages = 0
	t.Cleanup(func() {
		h.stopAll()
		// Deduplication by Nats-Msg-Id would hide a re-publish: none is expected.
		if h.reg != nil && !h.allowDuplicates {
			if n := h.metric("tgflow_ingest_duplicates_total", "", ""); n != 0 {
				t.Errorf("ingest re-published %v facts the log already had", n)
			}
		}
	})
	return h
}

// metric sums the samples of a counter, only those with label=value when label is set.
func (h *harness) metric(name, label, value string) float64 {
	h.t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					match = true
				}
			}
			if match {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func (h *harness) now() time.Time {
	return time.Now().UTC().Add(time.Duration(h.skew.Load()))
}

// advance moves the scheduler clock forward (backoff and retry times, album deadlines).
func (h *harness) advance(d time.Duration) { h.skew.Add(int64(d)) }

func (h *harness) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{h.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// start runs one ingest service (stage + scheduler) with its own Telegram client.
func (h *harness) start(opts ...ingest.Option) *running {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if h.reg == nil {
		h.reg = prometheus.NewRegistry()
	}
	d := services.Deps{JS: h.env.JS, Logger: h.logger(), Registry: h.reg}
	// The session made once for the package, stored encrypted in this test's bucket.
	st, err := ingest.SessionStorage(ctx, h.cfg, h.env.JS)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := st.LoadSession(ctx); err != nil {
		if err := st.StoreSession(ctx, shared.session); err != nil {
			h.t.Fatal(err)
		}
	}
	tgc, err := ingest.NewTelegram(ctx, h.cfg, h.env.JS, h.tg.options(), d)
	if err != nil {
		h.t.Fatalf("telegram client: %v", err)
	}
	r := &running{cancel: cancel, done: make(chan error, 1)}
	opts = append([]ingest.Option{
		ingest.WithClock(h.now),
		ingest.WithRunHook(func(rep ingest.RunReport) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.reports = append(h.reports, rep)
		}),
	}, opts...)
	svc, err := ingest.New(ctx, h.cfg, d, tgc, opts...)
	if err != nil {
		h.t.Fatalf("ingest.New: %v", err)
	}
	r.svc = svc
	go func() { r.done <- svc.Run(ctx) }()
	h.mu.Lock()
	h.running = append(h.running, r)
	h.mu.Unlock()
	return r
}

// stop ends a service and waits for it; a stop caused by cancellation is not an error.
func (h *harness) stop(r *running) error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(30 * time.Second):
		h.t.Fatal("ingest did not stop within 30s")
		return nil
	}
}

func (h *harness) stopAll() {
	h.mu.Lock()
	rs := h.running
	h.mu.Unlock()
	for _, r := range rs {
		_ = h.stop(r)
	}
}

func (h *harness) reportCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.reports)
}

// waitChannel waits for a run report, after the first `after` reports, in which channel id
// was synced or failed, and returns that channel's report.
func (h *harness) waitChannel(after int, id events.ChannelID) ingest.ChannelReport {
	h.t.Helper()
	var out ingest.ChannelReport
	natstest.Eventually(h.t, 30*time.Second, "a run over channel "+id.String(), func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, rep := range h.reports[min(after, len(h.reports)):] {
			for _, c := range rep.Channels {
				if c.ChannelID == id && (c.Synced != nil || c.Failed != nil) {
					out = c
					return true
				}
			}
		}
		return false
	})
	return out
}

func (h *harness) synced(after int, id events.ChannelID) *events.ChannelSynced {
	h.t.Helper()
	c := h.waitChannel(after, id)
	if c.Synced == nil {
		h.t.Fatalf("channel %s failed: %+v", id, c.Failed)
	}
	return c.Synced
}

// next triggers a full run of the service holding the lease and returns the report
// count before it, for waitChannel.
func (h *harness) next(r *running) int {
	n := h.reportCount()
	r.svc.Trigger()
	return n
}

func (h *harness) subscribe(ref string) {
	h.t.Helper()
	if _, err := ingest.AddChannel(context.Background(), h.env.JS, ref, events.Backfill{}); err != nil {
		h.t.Fatalf("add %s: %v", ref, err)
	}
}

// facts reads every fact of the log whose subject matches filter.
func (h *harness) facts(filter string) []events.Event {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := h.env.JS.Stream(ctx, topology.LogStream)
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	want := int(info.NumPending)
	var out []events.Event
	for len(out) < want {
		batch, err := c.Fetch(min(want-len(out), 500), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			h.t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			ev, err := events.Decode(events.Header(m.Headers()), m.Data())
			if err != nil {
				h.t.Fatalf("decode %s: %v", m.Subject(), err)
			}
			out = append(out, ev)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			h.t.Fatal(err)
		}
		if got == 0 {
			h.t.Fatalf("read %d of %d facts on %s", len(out), want, filter)
		}
	}
	return out
}

// parsedIDs counts posts.parsed facts per message id of channel ch, and fails on a
// duplicate event id.
func (h *harness) parsedIDs(ch events.ChannelID) map[int64]int {
	h.t.Helper()
	seen := map[string]bool{}
	out := map[int64]int{}
	for _, e := range h.facts("posts.parsed." + ch.String()) {
		if seen[e.ID] {
			h.t.Fatalf("event id %s is twice in the log", e.ID)
		}
		seen[e.ID] = true
		out[e.Data.(*events.PostParsed).MessageID]++
	}
	return out
}

// wantEachOnce checks that messages from..to of ch are each in the log exactly once.
func (h *harness) wantEachOnce(ch events.ChannelID, from, to int64) {
	h.t.Helper()
	ids := h.parsedIDs(ch)
	for id := from; id <= to; id++ {
		if ids[id] != 1 {
			h.t.Fatalf("message %d of %s is in the log %d times", id, ch, ids[id])
		}
	}
	if int64(len(ids)) != to-from+1 {
		h.t.Fatalf("%d distinct messages of %s in the log, want %d", len(ids), ch, to-from+1)
	}
}

func (h *harness) cursor(ch events.ChannelID) int64 {
	h.t.Helper()
	kv, err := h.env.JS.KeyValue(context.Background(), topology.BucketCursors)
	if err != nil {
		h.t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), ch.String())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0
	}
	if err != nil {
		h.t.Fatal(err)
	}
	var n int64
	for _, c := range e.Value() {
		n = n*10 + int64(c-'0')
	}
	return n
}
