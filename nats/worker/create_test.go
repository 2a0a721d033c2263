package worker_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/worker"
)

// electingJS is a JetStream whose consumer create requests fail as they do while a cluster
// elects a leader (timeout, then "temporarily unavailable") until `failures` have failed.
type electingJS struct {
	jetstream.JetStream
	failures int64
	calls    atomic.Int64
}

func (e *electingJS) CreateOrUpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	switch n := e.calls.Add(1); {
	case n > e.failures:
		return e.JetStream.CreateOrUpdateConsumer(ctx, stream, cfg)
	case n%2 == 1:
		return nil, fmt.Errorf("create consumer: %w", context.DeadlineExceeded)
	default:
		return nil, &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
	}
}

// A stage started while the cluster cannot answer (its consumer's leader is being elected)
// waits for it instead of exiting: in a cluster test both tagger processes exited with
// "consumer tagger: context deadline exceeded" and the pipeline stalled. A refusal (here: no
// such stream) still ends Run at once.
func TestStageStartsOnceTheClusterAnswers(t *testing.T) {
	h := newHarness(t)
	publish(t, h.env.JS, parsed(1, 1, "x"))
	js := &electingJS{JetStream: h.env.JS, failures: 3}
	s, err := worker.NewStage(js, h.config(testConsumer()), tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) {
		return tagOf(in, p), nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	natstest.Eventually(t, 20*time.Second, "the post tagged, or Run ended", func() bool {
		return countSubject(t, h.env.JS, "posts.tagged.>") == 1 || len(done) > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v (after %d create attempts)", err, js.calls.Load())
	}
	if n := countSubject(t, h.env.JS, "posts.tagged.>"); n != 1 {
		t.Fatalf("%d tagged posts, want 1", n)
	}

	cfg := h.config(testConsumer())
	cfg.Stream = "NO_SUCH_STREAM"
	s, err = worker.NewStage(h.env.JS, cfg, worker.NewRouter())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	select {
	case err := <-errc:
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("Run on a missing stream: %v, want %v", err, jetstream.ErrStreamNotFound)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run on a missing stream did not end: a refusal is retried as if unanswered")
	}
}
