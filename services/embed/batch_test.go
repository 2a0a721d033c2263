package embed_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services/embed"
)

// lengthEmbedder maps a text to a 2-d vector from its length; "bad" is invalid input.
type lengthEmbedder struct {
	calls   atomic.Int64
	maxSeen atomic.Int64
}

func (*lengthEmbedder) Info() embed.Info {
	return embed.Info{Name: "test", Model: "len", Version: "1", Dim: 2}
}

func (l *lengthEmbedder) Embed(_ context.Context, texts []string) ([][]float32, error) {
	l.calls.Add(1)
	for {
		m := l.maxSeen.Load()
		if int64(len(texts)) <= m || l.maxSeen.CompareAndSwap(m, int64(len(texts))) {
			break
		}
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if t == "bad" {
			return nil, fmt.Errorf("%w: text %d", embed.ErrInvalidInput, i)
		}
		out[i] = []float32{float32(len(t)), 1}
	}
	return out, nil
}

func TestBatcherGathersConcurrentCallers(t *testing.T) {
	e := &lengthEmbedder{}
	b := embed.NewBatcher(e, 16, 50*time.Millisecond)
	defer b.Close()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			text := fmt.Sprintf("%0*d", i+1, 0)
			v, err := b.EmbedOne(context.Background(), text)
			if err != nil {
				t.Error(err)
				return
			}
			if int(v[0]) != i+1 {
				t.Errorf("caller %d got the vector of a text of length %v", i, v[0])
			}
		})
	}
	wg.Wait()
	if e.maxSeen.Load() < 2 {
		t.Errorf("largest batch = %d: concurrent callers were not gathered", e.maxSeen.Load())
	}
	if e.maxSeen.Load() > 16 {
		t.Errorf("largest batch = %d, above MaxBatch 16", e.maxSeen.Load())
	}
}

func TestBatcherIsolatesABadInput(t *testing.T) {
	e := &lengthEmbedder{}
	b := embed.NewBatcher(e, 8, 100*time.Millisecond)
	defer b.Close()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, text := range []string{"ok", "bad", "fine"} {
		wg.Go(func() { _, errs[i] = b.EmbedOne(context.Background(), text) })
	}
	wg.Wait()
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("good texts failed: %v, %v", errs[0], errs[2])
	}
	if !errors.Is(errs[1], embed.ErrInvalidInput) {
		t.Errorf("bad text: %v, want ErrInvalidInput", errs[1])
	}
}

func TestBatcherClosed(t *testing.T) {
	b := embed.NewBatcher(&lengthEmbedder{}, 4, time.Millisecond)
	b.Close()
	if _, err := b.EmbedOne(context.Background(), "x"); !errors.Is(err, embed.ErrBatcherClosed) {
		t.Errorf("err = %v, want ErrBatcherClosed", err)
	}
}

// gatedEmbedder records each batch's size and holds every call until release is closed.
type gatedEmbedder struct {
	release chan struct{}
	mu      sync.Mutex
	sizes   []int
}

func (*gatedEmbedder) Info() embed.Info {
	return embed.Info{Name: "test", Model: "gated", Version: "1", Dim: 1}
}

func (g *gatedEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	g.mu.Lock()
	g.sizes = append(g.sizes, len(texts))
	g.mu.Unlock()
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := make([][]float32, len(texts))
	for i := range out {
		out[i] = []float32{1}
	}
	return out, nil
}

func (g *gatedEmbedder) batches() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.sizes)
}

// While a batch is being embedded, a partial batch keeps gathering past MaxWait (it is sent
// when the embedder is free), but a full one is sent at once.
func TestBatcherGathersWhileABatchIsEmbedded(t *testing.T) {
	const maxBatch, maxWait = 4, 10 * time.Millisecond
	g := &gatedEmbedder{release: make(chan struct{})}
	b := embed.NewBatcher(g, maxBatch, maxWait)
	defer b.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // a failed check leaves no caller waiting
	released := false
	defer func() {
		if !released {
			close(g.release)
		}
	}()
	embedN := func(n int) {
		for range n {
			wg.Go(func() {
				if _, err := b.EmbedOne(ctx, "x"); err != nil && ctx.Err() == nil {
					t.Error(err)
				}
			})
		}
	}
	embedN(1) // nothing in flight: sent alone after MaxWait
	natstest.Eventually(t, 5*time.Second, "the first text is sent alone", func() bool { return len(g.batches()) == 1 })
	embedN(maxBatch - 1) // a partial batch: waits for the first
	time.Sleep(20 * maxWait)
	if got := g.batches(); len(got) != 1 {
		t.Fatalf("batches sent while the first was embedded: %v, want only [1]", got)
	}
	embedN(maxBatch + 1) // fills the partial one and one more: both full, sent at once
	natstest.Eventually(t, 5*time.Second, "full batches are sent while one is embedded",
		func() bool { return len(g.batches()) == 3 })
	embedN(2) // partial again, two batches in flight: sent once both are done
	time.Sleep(20 * maxWait)
	if got := g.batches(); len(got) != 3 {
		t.Fatalf("batches %v: a partial batch was sent while others were embedded", got)
	}
	close(g.release)
	released = true
	natstest.Eventually(t, 5*time.Second, "the partial batch is sent once the embedder is free",
		func() bool { return len(g.batches()) == 4 })
	wg.Wait()
	got := g.batches()
	want := []int{1, maxBatch, maxBatch, 2}
	if !slices.Equal(got, want) {
		t.Errorf("batch sizes %v, want %v", got, want)
	}
}
