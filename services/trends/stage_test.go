package trends_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/nats/worker/stagetest"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/trends"
)

// facts wraps posts.tagged payloads as the tagger publishes them.
func facts(ps ...[]*events.PostTagged) []events.Event {
	var out []events.Event
	for _, group := range ps {
		for _, p := range group {
			out = append(out, events.New(events.ProducerTagger, p, p.PostedAt))
		}
	}
	return out
}

func TestStageContract(t *testing.T) {
	inputs := facts(background(t0), burst("x", t0, 40*time.Minute, 15, 1, 2, 3))
	stagetest.Run(t, stagetest.Harness{
		Consumer: topology.ConsumerTrends,
		Router:   func(t *testing.T) *worker.Router { return trends.Router(machine(t, trends.Config{})) },
		Inputs:   inputs,
	})
}

func TestStageConfig(t *testing.T) {
	var cfg trends.StageConfig
	if err := config.Load(&cfg, map[string]string{}); err != nil {
		t.Fatal(err)
	}
	want := trends.Config{MinChannels: 3, MinCount: 5, MinScore: 3, Cooldown: time.Hour, LateLimit: 2 * time.Hour, MaxSamples: 5, MinHistory: 3 * time.Hour}
	if cfg.Library() != want {
		t.Errorf("defaults %+v, want %+v", cfg.Library(), want)
	}
	tests := []struct {
		name string
		env  map[string]string
	}{
		{name: "zero min channels", env: map[string]string{"TGFLOW_TRENDS_MIN_CHANNELS": "0"}},
		{name: "cooldown not a multiple of 5m", env: map[string]string{"TGFLOW_TRENDS_COOLDOWN": "7m"}},
		{name: "min history over 23h", env: map[string]string{"TGFLOW_TRENDS_MIN_HISTORY": "24h"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg trends.StageConfig
			if err := config.Load(&cfg, tc.env); err == nil {
				t.Errorf("%v accepted", tc.env)
			}
		})
	}
}

type logEnv struct {
	*natstest.Env
	pub *publish.Publisher
}

// run runs the trends stage on e until the returned stop is called.
func (e *logEnv) run(t *testing.T) (stop func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	d := services.Deps{JS: e.JS, Logger: slog.New(slog.DiscardHandler), Metrics: worker.NewMetrics(reg), Registry: reg}
	st, err := trends.NewStage(d, trends.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
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

func (e *logEnv) publish(t *testing.T, evs []events.Event) {
	t.Helper()
	if dups, err := e.pub.Publish(context.Background(), evs); err != nil || dups != 0 {
		t.Fatalf("publish: dups=%d err=%v", dups, err)
	}
}

// idle waits until the trends consumer exists (the stage creates it) and has acked
// everything on the log.
func (e *logEnv) idle(t *testing.T) {
	t.Helper()
	natstest.Eventually(t, 60*time.Second, "trends consumer idle", func() bool {
		return natstest.ConsumerIdle(e.JS, topology.ConsumerTrends)
	})
}

// trendsOnLog reads every trends.detected fact on the log.
func (e *logEnv) trendsOnLog(t *testing.T) []*events.TrendDetected {
	t.Helper()
	s, ok := events.Lookup(events.TypeTrendDetected)
	if !ok {
		t.Fatal("trends.detected is not registered")
	}
	var out []*events.TrendDetected
	for _, ev := range natstest.Facts(t, e.JS, s.Filter()) {
		if ev.Producer() != events.ProducerTrends {
			t.Errorf("trend %s from producer %q", ev.ID, ev.Producer())
		}
		out = append(out, ev.Data.(*events.TrendDetected))
	}
	return out
}

// TestStageOnTheLog runs the stage on an embedded server: a burst of x across three
// channels after a quiet day is detected exactly once; after a restart, more posts of x
// within the cooldown give no second trend (the rebuild restored the cooldown), while a
// burst of y is detected (the rebuild restored the day's history: a machine without it has
// no baseline and detects nothing).
func TestStageOnTheLog(t *testing.T) {
	env := natstest.Start(t)
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &logEnv{Env: env, pub: pub}
	e.publish(t, facts(background(t0), burst("x", t0, 40*time.Minute, 15, 1, 2, 3)))
	stop := e.run(t)
	e.idle(t)
	stop()
	got := e.trendsOnLog(t)
	if len(got) != 1 || got[0].Tag != "x" || !slices.Equal(got[0].Channels, []events.ChannelID{1, 2, 3}) {
		t.Fatalf("trends %v, want one of x across channels 1, 2, 3", tagsOf(got))
	}

	e.publish(t, facts(burst("x", t0.Add(45*time.Minute), 15*time.Minute, 6, 1, 2, 3),
		burst("y", t0.Add(45*time.Minute), 40*time.Minute, 15, 4, 5, 6)))
	e.run(t)
	e.idle(t)
	got = e.trendsOnLog(t)
	if tags := tagsOf(got); !slices.Equal(tags, []string{"x", "y"}) {
		for _, g := range got {
			t.Logf("%s %s..%s n=%d", g.Tag, g.WindowStart, g.WindowEnd, g.Count)
		}
		t.Fatalf("trends %v after the restart, want [x y]: x once (cooldown), y once", tags)
	}
	dlq, err := env.JS.Stream(context.Background(), topology.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if di, err := dlq.Info(context.Background()); err != nil || di.State.Msgs != 0 {
		t.Fatalf("DLQ holds %v messages (err %v)", di.State.Msgs, err)
	}
}
