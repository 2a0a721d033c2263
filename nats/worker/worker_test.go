package worker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func parsed(ch events.ChannelID, msg int64, text string) events.Event {
	p := &events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: ch, MessageID: msg}, Date: t0, Text: text}}
	return events.New(events.ProducerIngest, p, t0, "0")
}

func publish(t testing.TB, js jetstream.JetStream, ev events.Event) {
	t.Helper()
	h, body, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := ev.NATSSubject(events.Default)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: subj, Header: nats.Header(h), Data: body}
	m.Header.Set(nats.MsgIdHdr, ev.ID)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// tagOf is the test stage's pure handler: one posts.tagged per posts.parsed.
func tagOf(in events.Event, p *events.PostParsed) []events.Event {
	return []events.Event{events.Derive(in, events.ProducerTagger, &events.PostTagged{PostRef: p.PostRef, Trigger: events.TriggerInitial,
		Tags: []events.Tag{{Name: "t"}}, PostedAt: p.Date, Text: p.Text, Provider: "test"}, t0)}
}

// testConsumer is the tagger consumer with short timings for tests.
func testConsumer() jetstream.ConsumerConfig {
	c, _ := topology.LookupConsumer(topology.ConsumerTagger)
	cfg := c.Config()
	cfg.AckWait = 700 * time.Millisecond
	cfg.BackOff = nil
	cfg.MaxDeliver = 3
	return cfg
}

type harness struct {
	env     *natstest.Env
	metrics *worker.Metrics
	reg     *prometheus.Registry
}

func newHarness(t *testing.T) *harness {
	reg := prometheus.NewRegistry()
	return &harness{env: natstest.Start(t), metrics: worker.NewMetrics(reg), reg: reg}
}

func (h *harness) config(cfg jetstream.ConsumerConfig) worker.Config {
	return worker.Config{Consumer: cfg, Producer: events.ProducerTagger, Batch: 32, Metrics: h.metrics,
		Backoff: worker.Backoff{Base: 50 * time.Millisecond, Max: time.Second}, Logger: logx.Discard()}
}

// start runs a stage until the returned stop is called; stop waits for Run to return.
func (h *harness) start(t *testing.T, cfg worker.Config, r *worker.Router) (stop func() error) {
	t.Helper()
	s, err := worker.NewStage(h.env.JS, cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				runErr = errors.New("stage did not stop within 20s")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func countSubject(t testing.TB, js jetstream.JetStream, subject string) int {
	t.Helper()
	s, err := js.Stream(context.Background(), topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

func consumerIdle(t testing.TB, js jetstream.JetStream, name string) bool {
	t.Helper()
	return natstest.ConsumerIdle(js, name)
}

func tagRouter(fn func(in events.Event, p *events.PostParsed) ([]events.Event, error)) *worker.Router {
	r := worker.NewRouter()
	worker.On(r, func(_ context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
		return fn(in, p)
	})
	return r
}

func TestHappyPath(t *testing.T) {
	h := newHarness(t)
	const n = 200
	for i := 1; i <= n; i++ {
		publish(t, h.env.JS, parsed(1, int64(i), fmt.Sprintf("post %d", i)))
	}
	h.start(t, h.config(testConsumer()), tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) {
		return tagOf(in, p), nil
	}))
	natstest.Eventually(t, 10*time.Second, "all inputs acked", func() bool { return consumerIdle(t, h.env.JS, topology.ConsumerTagger) })
	if got := countSubject(t, h.env.JS, "posts.tagged.>"); got != n {
		t.Fatalf("posts.tagged count = %d, want %d", got, n)
	}
	if got := testutil.ToFloat64(h.metrics.Processed.WithLabelValues(topology.ConsumerTagger)); got != n {
		t.Fatalf("processed metric = %v, want %d", got, n)
	}
	// The output carries the input's trace and a deterministic id.
	s, _ := h.env.JS.Stream(context.Background(), topology.LogStream)
	raw, err := s.GetLastMsgForSubject(context.Background(), "posts.tagged.1")
	if err != nil {
		t.Fatal(err)
	}
	out, err := events.Decode(events.Header(raw.Header), raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	in := parsed(1, n, fmt.Sprintf("post %d", n))
	if events.TraceID(out.TraceParent) != events.TraceID(in.TraceParent) {
		t.Errorf("trace not carried: in %s out %s", in.TraceParent, out.TraceParent)
	}
	if want := tagOf(in, in.Data.(*events.PostParsed))[0].ID; out.ID != want || raw.Header.Get(nats.MsgIdHdr) != want {
		t.Errorf("output id %s (msg id %s), want %s", out.ID, raw.Header.Get(nats.MsgIdHdr), want)
	}
}

// A stage that dies after publishing but before acking is redelivered; the output it
// publishes again is dropped by Nats-Msg-Id dedup, so it appears once in the stream.
func TestCrashBeforeAckPublishesOnce(t *testing.T) {
	h := newHarness(t)
	const n = 20
	for i := 1; i <= n; i++ {
		publish(t, h.env.JS, parsed(1, int64(i), "x"))
	}
	var calls atomic.Int64
	var withheld atomic.Int64
	cfg := h.config(testConsumer())
	cfg.BeforeAck = func(m jetstream.Msg) error {
		meta, _ := m.Metadata()
		if meta.NumDelivered == 1 && meta.Sequence.Stream%2 == 0 {
			withheld.Add(1)
			return errors.New("simulated crash between publish and ack")
		}
		return nil
	}
	h.start(t, cfg, tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) {
		calls.Add(1)
		return tagOf(in, p), nil
	}))
	// Idle alone is not enough: a consumer just created may not count its pending messages
	// yet (seen under load: "withheld 0 acks").
	natstest.Eventually(t, 15*time.Second, "all inputs acked", func() bool {
		return calls.Load() >= n && consumerIdle(t, h.env.JS, topology.ConsumerTagger)
	})
	if withheld.Load() != n/2 {
		t.Fatalf("withheld %d acks, want %d", withheld.Load(), n/2)
	}
	// Every withheld input is redelivered (a slow ack on a loaded machine may add more
	// redeliveries: harmless, the output count below is the property).
	if calls.Load() < n+n/2 {
		t.Fatalf("handler ran %d times, want at least %d (every withheld input redelivered)", calls.Load(), n+n/2)
	}
	if got := countSubject(t, h.env.JS, "posts.tagged.>"); got != n {
		t.Fatalf("posts.tagged count = %d, want exactly %d", got, n)
	}
}

// A crash of the whole process (connection gone) between publish and ack: a new stage
// instance on the same durable consumer picks the message up, and the output stays single.
func TestProcessCrashAndRestartPublishesOnce(t *testing.T) {
	h := newHarness(t)
	publish(t, h.env.JS, parsed(1, 1, "x"))
	crashConn, crashJS := natstest.Connect(t, h.env.URL)
	cfg := h.config(testConsumer())
	published := make(chan struct{})
	cfg.BeforeAck = func(m jetstream.Msg) error {
		close(published)
		crashConn.Close() // the process dies here: no ack reaches the server
		return errors.New("crashed")
	}
	s, err := worker.NewStage(crashJS, cfg, tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) { return tagOf(in, p), nil }))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Run(context.Background()) }()
	<-published
	cfg.BeforeAck = nil
	h.start(t, cfg, tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) { return tagOf(in, p), nil }))
	natstest.Eventually(t, 10*time.Second, "input acked after restart", func() bool { return consumerIdle(t, h.env.JS, topology.ConsumerTagger) })
	if got := countSubject(t, h.env.JS, "posts.tagged.>"); got != 1 {
		t.Fatalf("posts.tagged count = %d, want 1", got)
	}
}

func dlqEntries(t *testing.T, js jetstream.JetStream) []worker.DeadLetter {
	t.Helper()
	dls, err := worker.ListDeadLetters(context.Background(), js, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return dls
}

func TestPoisonMessagesGoToDLQWhileOthersFlow(t *testing.T) {
	h := newHarness(t)
	for i := 1; i <= 10; i++ {
		publish(t, h.env.JS, parsed(1, int64(i), "ok"))
	}
	// Undecodable: a body that is not JSON under valid headers.
	good := parsed(1, 99, "x")
	hdr, _, _ := events.Encode(good)
	bad := &nats.Msg{Subject: "posts.parsed.1", Header: nats.Header(hdr), Data: []byte("{not json")}
	if _, err := h.env.JS.PublishMsg(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	// Transient forever: message 5 always fails, so it exhausts MaxDeliver (3).
	// Permanent: message 7 is rejected at once.
	var attempts5 atomic.Int64
	h.start(t, h.config(testConsumer()), tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) {
		switch p.MessageID {
		case 5:
			attempts5.Add(1)
			return nil, errors.New("upstream timeout")
		case 7:
			return nil, worker.Permanent(errors.New("text rejected"))
		}
		return tagOf(in, p), nil
	}))
	natstest.Eventually(t, 15*time.Second, "3 dead letters", func() bool { return len(dlqEntries(t, h.env.JS)) == 3 })
	natstest.Eventually(t, 5*time.Second, "consumer idle", func() bool { return consumerIdle(t, h.env.JS, topology.ConsumerTagger) })
	if got := countSubject(t, h.env.JS, "posts.tagged.>"); got != 8 {
		t.Fatalf("posts.tagged = %d, want 8 (10 good minus 5 and 7)", got)
	}
	if attempts5.Load() != 3 {
		t.Fatalf("message 5 attempted %d times, want MaxDeliver=3", attempts5.Load())
	}
	byClass := map[worker.Class]worker.DeadLetter{}
	for _, dl := range dlqEntries(t, h.env.JS) {
		byClass[dl.Class] = dl
		if dl.Consumer != topology.ConsumerTagger || dl.Subject != "posts.parsed.1" || dl.StreamSeq == 0 || dl.Time.IsZero() {
			t.Errorf("dead letter lacks context: %+v", dl)
		}
	}
	if dl := byClass[worker.ClassDecode]; !strings.Contains(dl.Reason, "malformed") || string(dl.Data) != "{not json" {
		t.Errorf("decode dead letter: reason %q data %q", dl.Reason, dl.Data)
	}
	if dl := byClass[worker.ClassExhausted]; !strings.Contains(dl.Reason, "upstream timeout") || dl.Deliveries != 3 {
		t.Errorf("exhausted dead letter: reason %q deliveries %d", dl.Reason, dl.Deliveries)
	}
	if dl := byClass[worker.ClassPermanent]; !strings.Contains(dl.Reason, "text rejected") || dl.Deliveries != 1 {
		t.Errorf("permanent dead letter: reason %q deliveries %d", dl.Reason, dl.Deliveries)
	}
	// The dead letter keeps the original CloudEvents headers, so a replay decodes as before.
	orig, _, err := events.Encode(parsed(1, 7, "ok"))
	if err != nil {
		t.Fatal(err)
	}
	ce := 0
	for k, v := range orig {
		if !strings.HasPrefix(strings.ToLower(k), "ce-") {
			continue
		}
		ce++
		if got := byClass[worker.ClassPermanent].Header.Values(k); !slices.Equal(got, v) {
			t.Errorf("dead letter header %s = %q, want the original %q", k, got, v)
		}
	}
	if ce < 4 {
		t.Fatalf("only %d ce-* headers in the original message", ce)
	}
	if got := testutil.ToFloat64(h.metrics.DeadLettered.WithLabelValues(topology.ConsumerTagger, string(worker.ClassExhausted))); got != 1 {
		t.Errorf("dead_lettered{class=exhausted} = %v", got)
	}
}

func TestReplayFromDLQReachesOnlyTheFailedStage(t *testing.T) {
	h := newHarness(t)
	publish(t, h.env.JS, parsed(1, 1, "x"))
	var broken atomic.Bool
	broken.Store(true)
	h.start(t, h.config(testConsumer()), tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) {
		if broken.Load() {
			return nil, worker.Permanent(errors.New("bug in tagger"))
		}
		return tagOf(in, p), nil
	}))
	natstest.Eventually(t, 10*time.Second, "dead letter", func() bool { return len(dlqEntries(t, h.env.JS)) == 1 })
	broken.Store(false)
	dl := dlqEntries(t, h.env.JS)[0]
	if _, err := worker.Replay(context.Background(), h.env.JS, dl.DLQSeq); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "replayed output", func() bool { return countSubject(t, h.env.JS, "posts.tagged.>") == 1 })
	if got := countSubject(t, h.env.JS, "replay.tagger.posts.parsed.1"); got != 1 {
		t.Fatalf("replay subject count = %d", got)
	}
	if n := len(dlqEntries(t, h.env.JS)); n != 0 {
		t.Fatalf("DLQ still has %d entries after replay", n)
	}
	// The replay subject is outside every other consumer's filter.
	for _, c := range topology.Consumers() {
		for _, f := range c.Filters() {
			if c.Name != topology.ConsumerTagger && strings.HasPrefix(f, "replay.") && f == "replay.tagger.>" {
				t.Errorf("%s also reads tagger's replays", c.Name)
			}
		}
	}
}

func TestTransientErrorsBackOffWithGrowingDelays(t *testing.T) {
	h := newHarness(t)
	publish(t, h.env.JS, parsed(1, 1, "x"))
	cc := testConsumer()
	cc.MaxDeliver = 6
	cfg := h.config(cc)
	cfg.Backoff = worker.Backoff{Base: 100 * time.Millisecond, Max: 5 * time.Second} // no jitter: exact
	var mu sync.Mutex
	var times []time.Time
	h.start(t, cfg, tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		if len(times) < 5 {
			return nil, errors.New("still failing")
		}
		return tagOf(in, p), nil
	}))
	natstest.Eventually(t, 15*time.Second, "success on 5th attempt", func() bool { return countSubject(t, h.env.JS, "posts.tagged.>") == 1 })
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(times); i++ {
		gap := times[i].Sub(times[i-1])
		want := cfg.Backoff.Base << (i - 1)
		// The lower bounds double from attempt to attempt: the delays grow. (Comparing two
		// measured gaps directly would fail when a loaded machine delays one attempt.)
		if gap < want {
			t.Errorf("attempt %d came %v after the previous one, want ≥ %v", i+1, gap, want)
		}
	}
	if got := testutil.ToFloat64(h.metrics.Retried.WithLabelValues(topology.ConsumerTagger)); got != 4 {
		t.Errorf("retried = %v, want 4", got)
	}
}

func TestBackoffJitterStaysInBounds(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("jitter seed %d", seed)
	b := worker.Backoff{Base: time.Second, Max: 10 * time.Second, Jitter: 0.2, Rand: rand.New(rand.NewPCG(seed, seed))}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		for range 100 {
			d := b.Delay(attempt)
			if d < want*8/10 || d > want*12/10 {
				t.Fatalf("attempt %d: delay %v outside %v±20%%", attempt, d, want)
			}
		}
	}
}

// The old system minted a consumer name per restart; here 20 restarts leave one consumer.
func TestRestartTwentyTimesKeepsConsumerCount(t *testing.T) {
	h := newHarness(t)
	count := func() int {
		s, err := h.env.JS.Stream(context.Background(), topology.LogStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	publish(t, h.env.JS, parsed(1, 1, "x"))
	for i := range 20 {
		stop := h.start(t, h.config(testConsumer()), tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) { return tagOf(in, p), nil }))
		if i == 0 {
			// The first run tags the post (an idle look at a consumer just created can come
			// before it counted the message: CI under -race stopped the run too early).
			natstest.Eventually(t, 10*time.Second, "first run processed", func() bool {
				return countSubject(t, h.env.JS, "posts.tagged.>") == 1 && consumerIdle(t, h.env.JS, topology.ConsumerTagger)
			})
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := count(); got != 1 {
			t.Fatalf("after restart %d: %d consumers on the log, want 1", i+1, got)
		}
	}
	if got := countSubject(t, h.env.JS, "posts.tagged.>"); got != 1 {
		t.Fatalf("posts.tagged = %d after 20 restarts, want 1", got)
	}
}

func TestShutdownFinishesInFlightWork(t *testing.T) {
	h := newHarness(t)
	const n = 5
	for i := 1; i <= n; i++ {
		publish(t, h.env.JS, parsed(1, int64(i), "x"))
	}
	started := make(chan struct{}, n)
	var finished atomic.Int64
	cfg := h.config(testConsumer())
	cfg.Concurrency = n
	stop := h.start(t, cfg, tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) {
		started <- struct{}{}
		time.Sleep(500 * time.Millisecond)
		finished.Add(1)
		return tagOf(in, p), nil
	}))
	for range n { // every message is in flight: its handler started
		<-started
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if finished.Load() != n {
		t.Fatalf("%d handlers finished before Run returned, want %d", finished.Load(), n)
	}
	if got := countSubject(t, h.env.JS, "posts.tagged.>"); got != n {
		t.Fatalf("posts.tagged = %d, want %d", got, n)
	}
	natstest.Eventually(t, 5*time.Second, "acks of the drained batch reached the server", func() bool {
		return consumerIdle(t, h.env.JS, topology.ConsumerTagger)
	})
}

// A handler slower than AckWait is kept alive with InProgress instead of being redelivered.
func TestLongHandlerIsNotRedelivered(t *testing.T) {
	h := newHarness(t)
	publish(t, h.env.JS, parsed(1, 1, "x"))
	cfg := h.config(testConsumer())
	cfg.InProgressEvery = 150 * time.Millisecond
	var calls atomic.Int64
	h.start(t, cfg, tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) {
		calls.Add(1)
		time.Sleep(3 * cfg.Consumer.AckWait)
		return tagOf(in, p), nil
	}))
	natstest.Eventually(t, 10*time.Second, "processed", func() bool { return consumerIdle(t, h.env.JS, topology.ConsumerTagger) })
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", calls.Load())
	}
}

func TestHandlerPanicIsRetriedNotFatal(t *testing.T) {
	h := newHarness(t)
	publish(t, h.env.JS, parsed(1, 1, "x"))
	var calls atomic.Int64
	h.start(t, h.config(testConsumer()), tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return tagOf(in, p), nil
	}))
	natstest.Eventually(t, 10*time.Second, "processed after panic", func() bool { return countSubject(t, h.env.JS, "posts.tagged.>") == 1 })
}

// The one-producer rule: a stage publishes only the types the topology assigns to it, under
// its own producer name. Anything else dead-letters the input as permanent and publishes
// nothing — also when the output claims to come from this stage.
func TestOutputOfAnotherProducerIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  func(in events.Event, p *events.PostParsed) events.Event
	}{
		{"another stage's type labelled as this stage", func(in events.Event, p *events.PostParsed) events.Event {
			return events.Derive(in, events.ProducerTagger, &events.PostEnriched{PostRef: p.PostRef, PostedAt: p.Date}, t0)
		}},
		{"another stage's type labelled as that stage", func(in events.Event, p *events.PostParsed) events.Event {
			return events.Derive(in, events.ProducerEnricher, &events.PostEnriched{PostRef: p.PostRef, PostedAt: p.Date}, t0)
		}},
		{"this stage's type labelled as another stage", func(in events.Event, p *events.PostParsed) events.Event {
			o := tagOf(in, p)[0]
			o.Source = events.SourcePrefix + events.ProducerEnricher
			return o
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			publish(t, h.env.JS, parsed(1, 1, "x"))
			h.start(t, h.config(testConsumer()), tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) {
				// A good output first: it must not be published either.
				return []events.Event{tagOf(in, p)[0], tc.out(in, p)}, nil
			}))
			natstest.Eventually(t, 10*time.Second, "dead letter", func() bool { return len(dlqEntries(t, h.env.JS)) == 1 })
			dl := dlqEntries(t, h.env.JS)[0]
			if dl.Class != worker.ClassPermanent || !strings.Contains(dl.Reason, worker.ErrNotProducer.Error()) {
				t.Fatalf("dead letter class %s reason %q", dl.Class, dl.Reason)
			}
			natstest.Eventually(t, 5*time.Second, "consumer idle", func() bool { return consumerIdle(t, h.env.JS, topology.ConsumerTagger) })
			for _, subj := range []string{"posts.enriched.>", "posts.tagged.>"} {
				if got := countSubject(t, h.env.JS, subj); got != 0 {
					t.Fatalf("%s: %d facts published by a refused handler result", subj, got)
				}
			}
		})
	}
}

// The producer comes from the topology: a config naming another one is refused at start.
func TestStageProducerComesFromTheTopology(t *testing.T) {
	h := newHarness(t)
	cfg := h.config(testConsumer())
	cfg.Producer = events.ProducerEnricher
	if _, err := worker.NewStage(h.env.JS, cfg, worker.NewRouter()); err == nil {
		t.Fatal("a tagger stage configured as the enricher was built")
	}
	cfg.Producer = ""
	r := worker.NewRouter()
	worker.On(r, func(context.Context, events.Event, *events.PostTagged) ([]events.Event, error) { return nil, nil })
	if _, err := worker.NewStage(h.env.JS, cfg, r); err == nil {
		t.Fatal("a handler for a type the consumer does not read was accepted")
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := worker.Config{Consumer: jetstream.ConsumerConfig{Name: "a", MaxAckPending: 10}, Batch: 20}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"durable", "filter", "max ack pending"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
