package embedder_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/nats/worker/stagetest"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/embed/hashing"
	"github.com/tgflow/tgflow/services/embed/topics"
	"github.com/tgflow/tgflow/services/embedder"
)

func hashingHandler(t *testing.T) *embedder.Handler {
	t.Helper()
	e, err := hashing.New(hashing.Config{Dim: 64})
	if err != nil {
		t.Fatal(err)
	}
	h, err := embedder.NewHandler(e, 8, time.Millisecond, nil, topics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func TestStageContract(t *testing.T) {
	in1, _ := enriched(t, 1, "Вышел Go 1.23")
	in2, _ := enriched(t, 2, "")
	stagetest.Run(t, stagetest.Harness{
		Consumer: topology.ConsumerEmbedder,
		Router:   func(t *testing.T) *worker.Router { return embedder.Router(hashingHandler(t), false) },
		Inputs:   []events.Event{in1, in2},
	})
}

// TestStageOnTheLog runs the stage on an embedded server: every enriched revision gets
// exactly one posts.embedded, and a restart in the middle adds no second one.
func TestStageOnTheLog(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var inputs []events.Event
	for i := range n {
		in, _ := enriched(t, int64(i+1), fmt.Sprintf("пост номер %d про Go и NATS, post %d", i, i))
		inputs = append(inputs, in)
	}
	if dups, err := pub.Publish(ctx, inputs[:n/2]); err != nil || dups != 0 {
		t.Fatalf("publish: dups=%d err=%v", dups, err)
	}

	e, err := hashing.New(hashing.Config{Dim: 64})
	if err != nil {
		t.Fatal(err)
	}
	run := func() (stop func()) {
		reg := prometheus.NewRegistry()
		d := services.Deps{JS: env.JS, Logger: slog.New(slog.DiscardHandler), Metrics: worker.NewMetrics(reg), Registry: reg}
		st, err := embedder.NewStage(ctx, d, embedder.StageConfig{Embedder: embedder.Config{Kind: embedder.KindHashing, Batch: 8, BatchWait: 5 * time.Millisecond}, Topics: topics.Config{Max: 3}}, e)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := st.Run(rctx); err != nil {
				t.Error(err)
			}
		})
		return func() { cancel(); wg.Wait() }
	}
	stop := run()
	count := func() int {
		info, err := env.JS.Stream(ctx, topology.LogStream)
		if err != nil {
			t.Fatal(err)
		}
		si, err := info.Info(ctx, jetstream.WithSubjectFilter("posts.embedded.>"))
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, c := range si.State.Subjects {
			total += int(c)
		}
		return total
	}
	natstest.Eventually(t, 60*time.Second, "first half embedded", func() bool { return count() >= n/2 })
	stop()
	if dups, err := pub.Publish(ctx, inputs[n/2:]); err != nil || dups != 0 {
		t.Fatalf("publish: dups=%d err=%v", dups, err)
	}
	stop = run()
	defer stop()
	natstest.Eventually(t, 60*time.Second, "all embedded", func() bool { return count() >= n })
	// Let any duplicate that a broken restart would publish arrive, then count exactly.
	natstest.Eventually(t, 30*time.Second, "embedder idle", func() bool {
		return natstest.ConsumerIdle(env.JS, topology.ConsumerEmbedder)
	})
	if got := count(); got != n {
		t.Fatalf("%d posts.embedded for %d enriched revisions, want exactly one each", got, n)
	}
	if pub.Duplicates() != 0 {
		t.Fatalf("publisher counted %d duplicates", pub.Duplicates())
	}
	dlq, err := env.JS.Stream(ctx, topology.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if di, err := dlq.Info(ctx); err != nil || di.State.Msgs != 0 {
		t.Fatalf("DLQ holds %v messages (err %v)", di.State.Msgs, err)
	}
}
