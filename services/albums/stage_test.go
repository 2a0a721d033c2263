package albums_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/nats/worker/stagetest"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/albums"
)

// fact wraps a payload as the fact its producer publishes.
func fact(producer string, p events.Payload) events.Event {
	return events.New(producer, p, t0)
}

func TestStageContract(t *testing.T) {
	stagetest.Run(t, stagetest.Harness{
		Consumer: topology.ConsumerAlbums,
		// A fresh server per router: a fresh state, as the suite's second run expects of a
		// restarted process handling the inputs anew.
		Router: func(t *testing.T) *worker.Router {
			e := start(t)
			return albums.Router(e.instance(t))
		},
		Inputs: []events.Event{
			fact(events.ProducerVision, visionOf(10, "cat")),
			fact(events.ProducerIngest, album(555, 10, 11)),
			fact(events.ProducerVision, visionOf(11, "dog")),
		},
		Malformed: []events.Event{
			fact(events.ProducerIngest, &events.AlbumParsed{ChannelID: chA, GroupedID: 9}),
		},
	})
}

func TestStageConfigDefaults(t *testing.T) {
	var cfg albums.StageConfig
	if err := config.Load(&cfg, map[string]string{}); err != nil {
		t.Fatal(err)
	}
	if cfg.Deadline != 10*time.Minute || cfg.Tick != 30*time.Second || cfg.Library().Deadline != 10*time.Minute {
		t.Errorf("defaults %+v", cfg)
	}
	if err := config.Load(&cfg, map[string]string{"TGFLOW_ALBUMS_DEADLINE": "0s"}); err == nil {
		t.Error("a zero deadline was accepted (the library would take its default for it)")
	}
}

// service runs the albums stage on env's server until the returned stop is called.
func service(t *testing.T, e *natstest.Env, cfg albums.StageConfig) (stop func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	d := services.Deps{JS: e.JS, Logger: slog.New(slog.DiscardHandler), Metrics: worker.NewMetrics(reg), Registry: reg}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := albums.NewStage(ctx, d, cfg, cfg.Library())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := st.Run(ctx); err != nil {
			t.Error(err)
		}
	})
	stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stop) // before the server stops
	return stop
}

// stageConfig is a fast stage: the ticker runs every 50 ms, and a summary published by the
// consumer is confirmed from the log after 200 ms (the ticker then closes the album).
func stageConfig(deadline time.Duration) albums.StageConfig {
	return albums.StageConfig{Deadline: deadline, Tick: 50 * time.Millisecond, Grace: 200 * time.Millisecond,
		PendingTTL: time.Hour, MaxOCRChars: 8000, MaxLabels: 20, Concurrency: 4}
}

func publishFacts(t *testing.T, e *env, evs ...events.Event) {
	t.Helper()
	if dups, err := e.pub.Publish(context.Background(), evs); err != nil || dups != 0 {
		t.Fatalf("publish: dups=%d err=%v", dups, err)
	}
}

// count is the number of albums.assembled facts on the log (polled: it opens no reader).
func count(t *testing.T, e *env) int {
	t.Helper()
	ctx := context.Background()
	s, err := e.JS.Stream(ctx, topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := s.Info(ctx, jetstream.WithSubjectFilter("albums.assembled.>"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range si.State.Subjects {
		n += int(c)
	}
	return n
}

// idle waits until the albums consumer exists (the stage creates it) and has acked
// everything on the log.
func idle(t *testing.T, e *env) {
	t.Helper()
	natstest.Eventually(t, 30*time.Second, "albums consumer idle", func() bool {
		return natstest.ConsumerIdle(e.JS, topology.ConsumerAlbums)
	})
}

// settled waits until the consumer has acked everything and no album is open any more
// (the ticker removes an album from the open index only once its summary is confirmed),
// so a second summary a broken stage would publish has been published.
func settled(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	idle(t, e)
	kv, err := e.JS.KeyValue(ctx, topology.BucketAlbums)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, "no album open", func() bool {
		lister, err := kv.ListKeysFiltered(ctx, "o.>")
		if err != nil {
			return false
		}
		n := 0
		for range lister.Keys() {
			n++
		}
		return n == 0
	})
}

func dlqEmpty(t *testing.T, e *env) {
	t.Helper()
	dlq, err := e.JS.Stream(context.Background(), topology.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if di, err := dlq.Info(context.Background()); err != nil || di.State.Msgs != 0 {
		t.Fatalf("DLQ holds %v messages (err %v)", di.State.Msgs, err)
	}
}

// TestStageOnTheLogComplete: an album whose images are all analysed gets exactly one
// complete summary, across a restart between the album and its last vision result.
func TestStageOnTheLogComplete(t *testing.T) {
	e := start(t)
	publishFacts(t, e,
		fact(events.ProducerVision, visionOf(11, "cat")),
		fact(events.ProducerIngest, album(555, 10, 11, 12)),
		fact(events.ProducerVision, visionOf(10, "cat")),
	)
	stop := service(t, e.Env, stageConfig(time.Hour))
	idle(t, e)
	stop()
	if n := count(t, e); n != 0 {
		t.Fatalf("%d summaries before item 12 was analysed", n)
	}
	publishFacts(t, e, fact(events.ProducerVision, visionOf(12, "dog")))
	stop = service(t, e.Env, stageConfig(time.Hour))
	defer stop()
	natstest.Eventually(t, 30*time.Second, "album assembled", func() bool { return count(t, e) > 0 })
	settled(t, e)
	p := assembled(t, e.onLog(t))
	if p.Outcome != events.AlbumComplete || len(p.Missing) != 0 || !slices.Equal(p.MessageIDs, []int64{10, 11, 12}) {
		t.Errorf("outcome %s, missing %v, items %v; want complete, none, [10 11 12]", p.Outcome, p.Missing, p.MessageIDs)
	}
	if got := e.onLog(t)[0].Producer(); got != events.ProducerAlbums {
		t.Errorf("producer %q", got)
	}
	dlqEmpty(t, e)
}

// TestStageOnTheLogDeadline: an album with an image never analysed is summarised by the
// ticker at the deadline, exactly once, listing the missing item.
func TestStageOnTheLogDeadline(t *testing.T) {
	e := start(t)
	publishFacts(t, e,
		fact(events.ProducerIngest, album(777, 20, 21)),
		fact(events.ProducerVision, visionOf(20, "cat")),
	)
	stop := service(t, e.Env, stageConfig(300*time.Millisecond))
	defer stop()
	natstest.Eventually(t, 30*time.Second, "album assembled at the deadline", func() bool { return count(t, e) > 0 })
	settled(t, e)
	p := assembled(t, e.onLog(t))
	if p.Outcome != events.AlbumDeadline || !slices.Equal(p.Missing, []int64{21}) || !slices.Equal(p.MessageIDs, []int64{20, 21}) {
		t.Errorf("outcome %s, missing %v, items %v; want deadline, [21], [20 21]", p.Outcome, p.Missing, p.MessageIDs)
	}
	dlqEmpty(t, e)
}
