package embed_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
