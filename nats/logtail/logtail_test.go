package logtail_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/nats/logtail"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
)

func TestFollow(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	for i := range 10 {
		if _, err := env.JS.Publish(ctx, fmt.Sprintf("posts.parsed.%d", i+1), []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := env.JS.Publish(ctx, fmt.Sprintf("posts.tagged.%d", i+1), []byte("y")); err != nil {
			t.Fatal(err)
		}
	}
	consumersBefore := consumers(t, env.JS)

	var mu sync.Mutex
	var seqs []uint64
	var caught atomic.Bool
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		err := logtail.Follow(fctx, env.JS, logtail.Options{Filters: []string{"posts.parsed.>"}, From: logtail.From{AfterSeq: 4},
			CaughtUp: func() { caught.Store(true) }},
			func(seq uint64, m jetstream.Msg) error {
				mu.Lock()
				defer mu.Unlock()
				if !caught.Load() && len(seqs) >= 8 {
					t.Errorf("caught up too late")
				}
				seqs = append(seqs, seq)
				return nil
			})
		if err != nil {
			t.Error(err)
		}
	})
	natstest.Eventually(t, 10*time.Second, "caught up", caught.Load)
	// A fact published while following arrives too.
	if _, err := env.JS.Publish(ctx, "posts.parsed.99", []byte("z")); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "the live fact", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seqs) == 9
	})
	cancel()
	wg.Wait()
	// Sequences 5..20 hold parsed facts at the odd ones 5,7,...,19, then 21.
	want := []uint64{5, 7, 9, 11, 13, 15, 17, 19, 21}
	if fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Errorf("followed %v, want %v", seqs, want)
	}
	natstest.Eventually(t, 10*time.Second, "no consumer left", func() bool { return consumers(t, env.JS) == consumersBefore })
}

func consumers(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	s, err := js.Stream(context.Background(), topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}
