package doctor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/doctor"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func parsed(ch events.ChannelID, msg int64, text string) events.Event {
	p := &events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: ch, MessageID: msg}, Date: t0, Text: text}}
	return events.New(events.ProducerIngest, p, t0, "0")
}

func publishAll(t *testing.T, js jetstream.JetStream, evs ...events.Event) {
	t.Helper()
	pub, err := publish.New(js, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func applyConsumer(t *testing.T, js jetstream.JetStream, name string) {
	t.Helper()
	c, ok := topology.LookupConsumer(name)
	if !ok {
		t.Fatalf("no consumer %s", name)
	}
	if _, err := topology.ApplyConsumer(context.Background(), js, c); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, js jetstream.JetStream, o doctor.Options) *doctor.Report {
	t.Helper()
	if o.Thresholds == (doctor.Thresholds{}) {
		o.Thresholds = doctor.DefaultThresholds()
	}
	r, err := doctor.Run(context.Background(), js, o)
	if err != nil {
		t.Fatal(err)
	}
	// Both renderings work on every report; the text one ends with the verdict.
	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	verdict := "status: healthy"
	if !r.Healthy {
		verdict = "status: unhealthy"
	}
	if !strings.Contains(text.String(), verdict) {
		t.Fatalf("text report without %q:\n%s", verdict, text.String())
	}
	var js2 strings.Builder
	if err := r.WriteJSON(&js2); err != nil {
		t.Fatal(err)
	}
	var back doctor.Report
	if err := json.Unmarshal([]byte(js2.String()), &back); err != nil || back.Healthy != r.Healthy {
		t.Fatalf("JSON report does not decode to the same verdict (%v): %s", err, js2.String())
	}
	t.Logf("doctor:\n%s", text.String())
	return r
}

func consumer(t *testing.T, r *doctor.Report, name string) doctor.Consumer {
	t.Helper()
	for _, c := range r.Consumers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("consumer %s not in the report", name)
	return doctor.Consumer{}
}

func problems(r *doctor.Report, check, subject string) []doctor.Problem {
	var out []doctor.Problem
	for _, p := range r.Problems {
		if p.Check == check && p.Subject == subject {
			out = append(out, p)
		}
	}
	return out
}

func states(c doctor.Consumer) string { return strings.Join(c.States, ",") }

func thresholds(f func(*doctor.Thresholds)) doctor.Thresholds {
	th := doctor.DefaultThresholds()
	f(&th)
	return th
}

// A consumer with work and nobody pulling is dead when its service is expected here, and
// merely not running (healthy) when it is not.
func TestDeadConsumerAndNotRunning(t *testing.T) {
	env := natstest.Start(t)
	applyConsumer(t, env.JS, topology.ConsumerTagger)
	applyConsumer(t, env.JS, topology.ConsumerProjPostgres)
	publishAll(t, env.JS, parsed(1, 1, "a"), parsed(1, 2, "b"), parsed(1, 3, "c"))

	tests := []struct {
		name        string
		expected    []string
		wantHealthy bool
		wantTagger  string
		wantProj    string
	}{
		{"expected here: dead", []string{topology.ConsumerTagger}, false, doctor.StateDead, doctor.StateNotRunning},
		{"projection expected too: both dead", []string{topology.ConsumerTagger, topology.ConsumerProjPostgres}, false, doctor.StateDead, doctor.StateDead},
		{"nothing expected: not running, healthy", []string{}, true, doctor.StateNotRunning, doctor.StateNotRunning},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, env.JS, doctor.Options{Expected: tc.expected, Thresholds: thresholds(func(th *doctor.Thresholds) { th.DeadAfter = 0 })})
			if r.Healthy != tc.wantHealthy {
				t.Errorf("healthy = %v, want %v: %+v", r.Healthy, tc.wantHealthy, r.Problems)
			}
			if got := states(consumer(t, r, topology.ConsumerTagger)); got != tc.wantTagger {
				t.Errorf("tagger %s, want %s", got, tc.wantTagger)
			}
			if got := states(consumer(t, r, topology.ConsumerProjPostgres)); got != tc.wantProj {
				t.Errorf("proj-postgres %s, want %s", got, tc.wantProj)
			}
			if c := consumer(t, r, topology.ConsumerTagger); c.Pending != 3 || c.Waiting != 0 {
				t.Errorf("tagger pending %d waiting %d, want 3 and 0", c.Pending, c.Waiting)
			}
		})
	}
	// Within the grace after its last activity a consumer is not yet dead.
	r := run(t, env.JS, doctor.Options{Expected: []string{topology.ConsumerTagger}, Thresholds: thresholds(func(th *doctor.Thresholds) { th.DeadAfter = time.Hour })})
	if got := states(consumer(t, r, topology.ConsumerTagger)); got != doctor.StateOK {
		t.Errorf("tagger within the grace: %s, want ok", got)
	}
}

// A handler that hangs: the messages stay unacknowledged, the pulls keep waiting, nothing is
// delivered: stalled (not dead: someone is pulling).
func TestStalledConsumer(t *testing.T) {
	env := natstest.Start(t)
	applyConsumer(t, env.JS, topology.ConsumerTagger)
	publishAll(t, env.JS, parsed(1, 1, "a"), parsed(1, 2, "b"))
	cons, err := env.JS.Consumer(context.Background(), topology.LogStream, topology.ConsumerTagger)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []jetstream.Msg
	cc, err := cons.Consume(func(m jetstream.Msg) { // never acks: a hung handler
		mu.Lock()
		held = append(held, m)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	natstest.Eventually(t, 10*time.Second, "both delivered and a pull waiting", func() bool {
		ci, err := cons.Info(context.Background())
		return err == nil && ci.NumAckPending == 2 && ci.NumWaiting > 0
	})
	th := thresholds(func(th *doctor.Thresholds) { th.StallAfter = 150 * time.Millisecond; th.DeadAfter = 0 })
	var r *doctor.Report
	natstest.Eventually(t, 10*time.Second, "tagger stalled", func() bool {
		r, err = doctor.Run(context.Background(), env.JS, doctor.Options{Expected: []string{topology.ConsumerTagger}, Thresholds: th})
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(consumer(t, r, topology.ConsumerTagger).States, doctor.StateStalled)
	})
	r = run(t, env.JS, doctor.Options{Expected: []string{topology.ConsumerTagger}, Thresholds: th})
	c := consumer(t, r, topology.ConsumerTagger)
	if states(c) != doctor.StateStalled || r.Healthy || len(problems(r, "consumer", topology.ConsumerTagger)) != 1 {
		t.Fatalf("tagger %s (healthy %v), want stalled and unhealthy: %+v", states(c), r.Healthy, r.Problems)
	}
	if c.AckPending != 2 || c.Pending != 0 || c.LastDelivery == nil {
		t.Fatalf("tagger ack pending %d, pending %d, last delivery %v", c.AckPending, c.Pending, c.LastDelivery)
	}
}

// A durable consumer the topology does not define — a leak like the old system's 270 — is
// named; ordered readers are not leaks.
func TestLeakedConsumer(t *testing.T) {
	env := natstest.Start(t)
	applyConsumer(t, env.JS, topology.ConsumerTagger)
	// Created by hand with the JetStream JSON API, as `nats req` or an old deployment would.
	const leak = "tagger-7f3a9c"
	req := fmt.Sprintf(`{"stream_name":%q,"config":{"durable_name":%q,"ack_policy":"explicit","filter_subject":"posts.parsed.>"}}`, topology.LogStream, leak)
	resp, err := env.NC.Request("$JS.API.CONSUMER.CREATE."+topology.LogStream+"."+leak, []byte(req), 5*time.Second)
	if err != nil || strings.Contains(string(resp.Data), `"error"`) {
		t.Fatalf("create the leaked consumer: %v %s", err, resp.Data)
	}
	oc, err := env.JS.OrderedConsumer(context.Background(), topology.LogStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"posts.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := run(t, env.JS, doctor.Options{Expected: []string{topology.ConsumerTagger}})
	if r.Healthy {
		t.Fatal("a leaked consumer must make the report unhealthy")
	}
	if got := states(consumer(t, r, leak)); got != doctor.StateUnknown {
		t.Fatalf("%s: %s, want unknown", leak, got)
	}
	ps := problems(r, "consumer", leak)
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "nats consumer rm "+topology.LogStream+" "+leak) {
		t.Fatalf("problem of the leak: %+v", ps)
	}
	if r.EphemeralReaders != 1 || len(r.Problems) != 1 {
		t.Fatalf("ephemeral readers %d, problems %+v: the ordered reader is not a leak", r.EphemeralReaders, r.Problems)
	}
}

type stageHarness struct {
	env     *natstest.Env
	metrics *worker.Metrics
}

func (h *stageHarness) start(t *testing.T, name, producer string, r *worker.Router) (stop func()) {
	t.Helper()
	c, _ := topology.LookupConsumer(name)
	s, err := worker.NewStage(h.env.JS, worker.Config{Consumer: c.Config(), Producer: producer, Batch: 32, Metrics: h.metrics, Logger: logx.Discard()}, r)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("stage %s: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func idle(t *testing.T, js jetstream.JetStream, name string) bool {
	t.Helper()
	return natstest.ConsumerIdle(js, name)
}

var errPoison = errors.New("poison pill")

func taggerRouter() *worker.Router {
	r := worker.NewRouter()
	worker.On(r, func(_ context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
		if p.Text == "poison" {
			return nil, worker.Permanent(errPoison)
		}
		return []events.Event{events.Derive(in, events.ProducerTagger, &events.PostTagged{PostRef: p.PostRef, Trigger: events.TriggerInitial,
			Tags: []events.Tag{{Name: "t"}}, PostedAt: p.Date, Text: p.Text, Provider: "test"}, t0)}, nil
	})
	return r
}

// Every dead letter is counted by consumer and class, and the count follows the DLQ as it
// grows; a --dlq-max above the depth accepts it.
func TestGrowingDLQ(t *testing.T) {
	env := natstest.Start(t)
	h := &stageHarness{env: env, metrics: worker.NewMetrics(prometheus.NewRegistry())}
	h.start(t, topology.ConsumerTagger, events.ProducerTagger, taggerRouter())
	expect := []string{topology.ConsumerTagger}
	for i := 1; i <= 3; i++ {
		publishAll(t, env.JS, parsed(1, int64(i), "poison"), parsed(2, int64(i), "fine"))
		// Idle alone is not enough: right after a publish the consumer may not count it yet.
		natstest.Eventually(t, 10*time.Second, "the poison dead-lettered and the tagger idle", func() bool {
			dls, err := worker.ListDeadLetters(context.Background(), env.JS, "", 0)
			return err == nil && len(dls) == i && idle(t, env.JS, topology.ConsumerTagger)
		})
		r := run(t, env.JS, doctor.Options{Expected: expect})
		want := []doctor.DLQGroup{{Consumer: topology.ConsumerTagger, Class: string(worker.ClassPermanent), Count: i}}
		if r.DLQ.Total != i || len(r.DLQ.Groups) != 1 || r.DLQ.Groups[0].Consumer != want[0].Consumer || r.DLQ.Groups[0].Class != want[0].Class || r.DLQ.Groups[0].Count != i {
			t.Fatalf("round %d: DLQ %+v, want %+v", i, r.DLQ, want)
		}
		if r.Healthy || len(problems(r, "dlq", topology.ConsumerTagger)) != 1 {
			t.Fatalf("round %d: a DLQ above --dlq-max must be a problem: %+v", i, r.Problems)
		}
		if states(consumer(t, r, topology.ConsumerTagger)) != doctor.StateIdle {
			t.Fatalf("round %d: tagger %s", i, states(consumer(t, r, topology.ConsumerTagger)))
		}
	}
	r := run(t, env.JS, doctor.Options{Expected: expect, Thresholds: thresholds(func(th *doctor.Thresholds) { th.DLQMax = 3 })})
	if !r.Healthy {
		t.Fatalf("3 dead letters with --dlq-max 3: %+v", r.Problems)
	}
}

// The enricher is stopped while the tagger and the embedder run: every tagged post is stuck
// before the enricher, and only there; nothing is stuck before the deadline passes.
func TestStuckPostsNameTheMissingStep(t *testing.T) {
	env := natstest.Start(t)
	h := &stageHarness{env: env, metrics: worker.NewMetrics(prometheus.NewRegistry())}
	applyConsumer(t, env.JS, topology.ConsumerEnricher) // exists, nobody runs it
	h.start(t, topology.ConsumerTagger, events.ProducerTagger, taggerRouter())
	embedded := worker.NewRouter()
	worker.On(embedded, func(context.Context, events.Event, *events.PostEnriched) ([]events.Event, error) {
		return nil, errors.New("the embedder is never reached in this test")
	})
	h.start(t, topology.ConsumerEmbedder, events.ProducerEmbedder, embedded)
	publishAll(t, env.JS, parsed(7, 1, "one"), parsed(7, 2, "two"), parsed(7, 3, "three"))
	natstest.Eventually(t, 10*time.Second, "3 posts tagged, the tagger idle and the embedder's consumer created", func() bool {
		_, err := env.JS.Consumer(context.Background(), topology.LogStream, topology.ConsumerEmbedder)
		return err == nil && natstest.Count(t, env.JS, "posts.tagged.7") == 3 && idle(t, env.JS, topology.ConsumerTagger)
	})
	expect := []string{topology.ConsumerTagger, topology.ConsumerEnricher, topology.ConsumerEmbedder}

	// Before the deadline: nothing is stuck (the enricher is only dead).
	r := run(t, env.JS, doctor.Options{Expected: expect, Thresholds: thresholds(func(th *doctor.Thresholds) { th.DeadAfter = time.Hour })})
	if len(r.Stuck) != 0 || !r.Healthy {
		t.Fatalf("before the deadline: stuck %+v, problems %+v", r.Stuck, r.Problems)
	}
	r = run(t, env.JS, doctor.Options{Expected: expect, Thresholds: thresholds(func(th *doctor.Thresholds) { th.StuckAfter = 0; th.DeadAfter = time.Hour })})
	var got []string
	for _, s := range r.Stuck {
		got = append(got, fmt.Sprintf("%s@%s:%s", s.Key, s.Step, s.Type))
	}
	want := []string{"7/1@enricher:" + string(events.TypePostTagged), "7/2@enricher:" + string(events.TypePostTagged), "7/3@enricher:" + string(events.TypePostTagged)}
	if !slices.Equal(got, want) {
		t.Fatalf("stuck %v, want %v", got, want)
	}
	if r.Healthy || len(problems(r, "stuck", topology.ConsumerEnricher)) != 1 {
		t.Fatalf("stuck posts must be one problem of the enricher: %+v", r.Problems)
	}
	// --max-stuck bounds the list and says there are more.
	r = run(t, env.JS, doctor.Options{Expected: expect, Thresholds: thresholds(func(th *doctor.Thresholds) { th.StuckAfter = 0; th.MaxStuck = 2; th.DeadAfter = time.Hour })})
	if len(r.Stuck) != 2 || !slices.Equal(r.StuckTruncated, []string{topology.ConsumerEnricher}) {
		t.Fatalf("max-stuck 2: %d listed, truncated %v", len(r.Stuck), r.StuckTruncated)
	}
	// The readers doctor used are gone.
	r = run(t, env.JS, doctor.Options{Expected: expect, Thresholds: thresholds(func(th *doctor.Thresholds) { th.DeadAfter = time.Hour })})
	if r.EphemeralReaders != 0 {
		t.Fatalf("%d ephemeral readers left behind", r.EphemeralReaders)
	}
}

// A read model's checkpoint is compared with its consumer's ack floor and the log head; a
// model behind what its consumer acknowledged, or one that cannot be read, is a problem.
func TestProjectionCheckpoints(t *testing.T) {
	env := natstest.Start(t)
	applyConsumer(t, env.JS, topology.ConsumerProjPostgres)
	publishAll(t, env.JS, parsed(1, 1, "a"), parsed(1, 2, "b"), parsed(1, 3, "c"))
	cons, err := env.JS.Consumer(context.Background(), topology.LogStream, topology.ConsumerProjPostgres)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(2)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	errDown := errors.New("connection refused")
	tests := []struct {
		name       string
		checkpoint doctor.CheckpointFunc
		healthy    bool
	}{
		{"at the ack floor", func(context.Context) (uint64, error) { return 2, nil }, true},
		{"ahead of the ack floor (applied, not yet acked)", func(context.Context) (uint64, error) { return 3, nil }, true},
		{"behind the ack floor", func(context.Context) (uint64, error) { return 1, nil }, false},
		{"unreadable", func(context.Context) (uint64, error) { return 0, errDown }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, env.JS, doctor.Options{Expected: []string{}, Checkpoints: map[string]doctor.CheckpointFunc{topology.ConsumerProjPostgres: tc.checkpoint}})
			if r.Healthy != tc.healthy {
				t.Fatalf("healthy %v, want %v: %+v", r.Healthy, tc.healthy, r.Problems)
			}
			var p doctor.Projection
			for _, pr := range r.Projections {
				if pr.Consumer == topology.ConsumerProjPostgres {
					p = pr
				}
			}
			if !p.Configured || p.AckFloor != 2 || p.Head != 3 || p.Pending != 1 {
				t.Fatalf("projection %+v", p)
			}
		})
	}
}

// Channels: the last successful sync and the last failure, from the log; a failure newer
// than the last sync is flagged (a warning: the rest of the system is fine).
func TestChannelsFromTheLog(t *testing.T) {
	env := natstest.Start(t)
	synced := func(id events.ChannelID, at time.Time) events.Event {
		return events.New(events.ProducerIngest, &events.ChannelSynced{ChannelID: id, New: 4, StartedAt: at.Add(-time.Second), FinishedAt: at}, at, at.String())
	}
	failed := func(id events.ChannelID, at time.Time) events.Event {
		return events.New(events.ProducerIngest, &events.ChannelFailed{ChannelID: id, Code: "FLOOD_WAIT", Reason: "wait 600s", At: at}, at, at.String())
	}
	publishAll(t, env.JS, failed(10, t0), synced(10, t0.Add(time.Hour)), synced(20, t0), failed(20, t0.Add(time.Hour)))
	r := run(t, env.JS, doctor.Options{Expected: []string{}})
	if len(r.Channels) != 2 {
		t.Fatalf("channels %+v", r.Channels)
	}
	ok, bad := r.Channels[0], r.Channels[1]
	if ok.Channel != "10" || ok.Failing || ok.LastSync == nil || !ok.LastSync.Equal(t0.Add(time.Hour)) || ok.LastNew != 4 {
		t.Fatalf("channel 10 recovered: %+v", ok)
	}
	if bad.Channel != "20" || !bad.Failing || bad.LastError != "FLOOD_WAIT: wait 600s" || !bad.LastErrorAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("channel 20 failing: %+v", bad)
	}
	if !r.Healthy || len(problems(r, "channel", "20")) != 1 || problems(r, "channel", "20")[0].Severity != doctor.SeverityWarn {
		t.Fatalf("a failing channel is one warning: %+v", r.Problems)
	}
}

// The log near its byte limit, and too little free disk, are problems.
func TestStorageLimits(t *testing.T) {
	env := natstest.Start(t)
	publishAll(t, env.JS, parsed(1, 1, strings.Repeat("x", 2000)))
	cfg := topology.LogStreamConfig()
	cfg.MaxBytes = 4000
	if _, err := env.JS.UpdateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	r := run(t, env.JS, doctor.Options{Expected: []string{}, StoreDir: env.Dir, Thresholds: thresholds(func(th *doctor.Thresholds) { th.FullRatio = 0.5; th.MinFreeDisk = 1 })})
	if r.Healthy || len(problems(r, "storage", topology.LogStream)) != 1 {
		t.Fatalf("log over half its limit: %+v", r.Problems)
	}
	if r.Storage.Disk == nil || r.Storage.Disk.Free == 0 || len(problems(r, "storage", env.Dir)) != 0 {
		t.Fatalf("disk %+v, problems %+v", r.Storage.Disk, r.Problems)
	}
	r = run(t, env.JS, doctor.Options{Expected: []string{}, StoreDir: env.Dir, Thresholds: thresholds(func(th *doctor.Thresholds) { th.MinFreeDisk = r.Storage.Disk.Total + 1 })})
	if r.Healthy || len(problems(r, "storage", env.Dir)) != 1 {
		t.Fatalf("less free disk than required: %+v", r.Problems)
	}
}

func TestBadThresholds(t *testing.T) {
	env := natstest.Start(t)
	_, err := doctor.Run(context.Background(), env.JS, doctor.Options{Thresholds: thresholds(func(th *doctor.Thresholds) { th.StallAfter = -time.Second; th.FullRatio = 2 })})
	if !errors.Is(err, doctor.ErrBadThresholds) || !strings.Contains(err.Error(), "stall-after") || !strings.Contains(err.Error(), "full-ratio") {
		t.Fatalf("err = %v", err)
	}
}

func TestThresholdsJSONRoundTrip(t *testing.T) {
	th := thresholds(func(th *doctor.Thresholds) { th.StuckAfter = 90 * time.Second })
	b, err := json.Marshal(th)
	if err != nil || !strings.Contains(string(b), `"stuck_after":"1m30s"`) {
		t.Fatalf("%s (%v)", b, err)
	}
	var back doctor.Thresholds
	if err := json.Unmarshal(b, &back); err != nil || back != th {
		t.Fatalf("%+v (%v), want %+v", back, err, th)
	}
}
