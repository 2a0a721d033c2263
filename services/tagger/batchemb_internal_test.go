package tagger

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/tgflow/tgflow/services/embed/hashing"
)

// TestBatchedEmbedderGivesTheEmbeddersVectors: concurrent single texts (batched) and a
// list of texts (passed through) get exactly the vectors of the embedder itself.
func TestBatchedEmbedderGivesTheEmbeddersVectors(t *testing.T) {
	inner, err := hashing.New(hashing.Config{Dim: 64})
	if err != nil {
		t.Fatal(err)
	}
	b := newBatchedEmbedder(inner, 4)
	defer b.Close()
	ctx := context.Background()
	texts := []string{"Вышел Go 1.26", "NATS JetStream streams", "кот спит на окне", "a fourth text", "и пятый текст"}
	want, err := inner.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	got := make([][]float32, len(texts))
	var wg sync.WaitGroup
	for i, text := range texts {
		wg.Go(func() {
			v, err := b.Embed(ctx, []string{text})
			if err != nil || len(v) != 1 {
				t.Errorf("%q: %v (%d vectors)", text, err, len(v))
				return
			}
			got[i] = v[0]
		})
	}
	wg.Wait()
	all, err := b.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range texts {
		if !slices.Equal(got[i], want[i]) || !slices.Equal(all[i], want[i]) {
			t.Errorf("%q: the batched vector differs from the embedder's", texts[i])
		}
	}
}
