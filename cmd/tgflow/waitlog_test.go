package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
)

// electingStreamJS answers stream look-ups as a cluster electing the log's leader does (a
// timeout, then "temporarily unavailable") for the first `failures` calls.
type electingStreamJS struct {
	jetstream.JetStream
	failures int64
	calls    atomic.Int64
}

func (e *electingStreamJS) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	switch n := e.calls.Add(1); {
	case n > e.failures:
		return e.JetStream.Stream(ctx, name)
	case n%2 == 1:
		return nil, fmt.Errorf("stream info: %w", context.DeadlineExceeded)
	default:
		return nil, &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
	}
}

// A service started while the cluster elects the log's leader waits for it (six services of
// a cluster test exited with "log stream TGFLOW: context deadline exceeded"); a missing log
// still stops it at once, saying what to run.
func TestServiceWaitsForTheLogToAnswer(t *testing.T) {
	env := natstest.Start(t)
	js := &electingStreamJS{JetStream: env.JS, failures: 3}
	if err := waitForLog(context.Background(), js, logx.Discard()); err != nil {
		t.Fatalf("waitForLog: %v (after %d look-ups)", err, js.calls.Load())
	}
	if n := js.calls.Load(); n != 4 {
		t.Fatalf("%d look-ups, want 4 (3 unanswered, then the answer)", n)
	}
	if err := env.JS.DeleteStream(context.Background(), topology.LogStream); err != nil {
		t.Fatal(err)
	}
	err := waitForLog(context.Background(), env.JS, logx.Discard())
	if !errors.Is(err, jetstream.ErrStreamNotFound) || !strings.Contains(err.Error(), "tgflow nats apply") {
		t.Fatalf("missing log: %v, want %v and the command to run", err, jetstream.ErrStreamNotFound)
	}
}
